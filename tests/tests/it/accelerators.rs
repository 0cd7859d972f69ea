//! The built-in accelerator library (`spec/accelerators/`) and `--accelerator NAME|PATH`: every
//! built-in loads through the same checks as a user's file, round-trips through qc's writer and
//! evaluates (ResNet-18, or ZigZag's GEMM layer for the GEMM designs); each ZigZag-derived
//! built-in equals the ZigZag YAML it was transcribed from (as an `Accelerator`, and in `qc
//! evaluate`'s numbers per layer; needs `../shared`); and the `qc accelerators` commands.

use std::path::{Path, PathBuf};

use qc::accelerators::{BUILTIN, DEFAULT, builtin};
use qc_backends::accelerator_file::{
    FileFormat, read_accelerator_file, read_qc_accelerator, write_qc_accelerator,
};
use qc_tests::qc;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn resnet18() -> String {
    root().join("examples/zigzag/resnet18.onnx").display().to_string()
}

fn gemm_layer() -> String {
    root().join("examples/zigzag/gemm_layer.yaml").display().to_string()
}

/// The workload each built-in is evaluated on.
fn workload_for(name: &str) -> String {
    if name.starts_with("gemm_") { gemm_layer() } else { resnet18() }
}

/// The ZigZag YAML each ZigZag-derived built-in was transcribed from, under `../shared`.
const FROM_ZIGZAG: &[(&str, &str)] = &[
    ("tpu_like", "peers/zigzag-inputs/variants/pypi-zigzag-dse-3.9.1/zigzag/inputs/hardware/tpu_like.yaml"),
    ("edge_tpu_like", "peers/zigzag-inputs/zigzag/inputs/hardware/edge_tpu_like.yaml"),
    ("ascend_like", "peers/zigzag-inputs/zigzag/inputs/hardware/ascend_like.yaml"),
    ("meta_prototype", "peers/zigzag-inputs/zigzag/inputs/hardware/meta_prototype.yaml"),
    ("tesla_npu_like", "peers/zigzag-inputs/zigzag/inputs/hardware/tesla_npu_like.yaml"),
    ("eyeriss_like", "peers/zigzag-inputs/zigzag/inputs/hardware/eyeriss_like.yaml"),
    ("gemm_l1", "peers/zigzag-inputs/zigzag/inputs/hardware/gemm_l1.yaml"),
    ("gemm_l1_l3", "peers/zigzag-inputs/zigzag/inputs/hardware/gemm_l1_l3.yaml"),
    ("generic_array_cacti", "peers/zigzag-inputs/zigzag/inputs/hardware/generic_array_cacti.yaml"),
    ("aimc", "peers/zigzag-inputs/zigzag/inputs/hardware/aimc.yaml"),
    ("dimc", "peers/zigzag-inputs/zigzag/inputs/hardware/dimc.yaml"),
];

fn evaluate_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-q", "evaluate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let (code, out, err) = qc(&all);
    assert_eq!(code, 0, "qc {all:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("qc {all:?}: {e}\n{out}"))
}

/// `(layer, energy, latency)` of every costed layer.
fn per_layer(v: &serde_json::Value) -> Vec<(String, f64, f64)> {
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["energy"].as_f64().unwrap(),
                l["latency"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_builtin_loads_validates_and_round_trips() {
    assert!(BUILTIN.len() >= 11);
    assert!(BUILTIN.iter().any(|(n, _)| *n == DEFAULT));
    for (name, text) in BUILTIN {
        let file = format!("spec/accelerators/{name}.yaml");
        // The same reader, and so the same checks, as a user's file given by path.
        let read = read_accelerator_file(text, &file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (acc, lines, format) = (read.accelerator, read.lines, read.format);
        assert_eq!(format, FileFormat::Qc, "{name}");
        let (description, provenance) = lines.unwrap();
        assert!(!description.is_empty() && !provenance.is_empty(), "{name}");
        assert!(provenance.contains("spec/accelerators/README.md"), "{name}: {provenance}");
        assert_eq!(builtin(name).unwrap().accelerator, acc, "{name}");
        // The writer round-trips exactly.
        let written = write_qc_accelerator(&acc, &description, &provenance);
        let back = read_qc_accelerator(&written, "written.yaml").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back.accelerator, acc, "{name}");
        assert_eq!((back.description, back.provenance), (description, provenance), "{name}");
        // Names are not paths.
        assert!(!qc::accelerators::is_path(name), "{name}");
    }
    // Each has its section in the provenance document.
    let readme = std::fs::read_to_string(root().join("spec/accelerators/README.md")).unwrap();
    for (name, _) in BUILTIN {
        assert!(
            readme.contains(&format!("## `{name}`")),
            "spec/accelerators/README.md has no section for {name}"
        );
    }
}

#[test]
fn every_builtin_evaluates() {
    for (name, _) in BUILTIN {
        let w = workload_for(name);
        let v = evaluate_json(&[&w, "--accelerator", name]);
        assert_eq!(v["accelerator_source"], "built-in", "{name}");
        let total = v["total"]["energy"].as_f64().unwrap();
        let cycles = v["total"]["latency"].as_f64().unwrap();
        assert!(total > 0.0 && cycles > 0.0, "{name}: {total} pJ, {cycles} cycles");
        assert!(v["unfit"].as_array().unwrap().is_empty(), "{name}: {}", v["unfit"]);
        eprintln!(
            "{name} on {}: {total:.6e} pJ, {cycles} cycles",
            Path::new(&w).file_name().unwrap().display()
        );
    }
}

#[test]
fn zigzag_builtins_equal_the_yaml_they_came_from() {
    let Some(shared) = qc_tests::shared_or_say("accelerators (built-ins vs ZigZag YAML)") else { return };
    for (name, rel) in FROM_ZIGZAG {
        let path = shared.join(rel);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let zigzag = qc_backends::zigzag::read_accelerator_yaml(&text, &path.display().to_string()).unwrap();
        assert_eq!(builtin(name).unwrap().accelerator, zigzag, "{name} differs from {}", path.display());
        // And the numbers: the same energy and latency per layer, bit for bit.
        let w = workload_for(name);
        let p = path.display().to_string();
        let by_name = evaluate_json(&[&w, "--accelerator", name]);
        let by_path = evaluate_json(&[&w, "--accelerator", &p]);
        assert_eq!(by_path["accelerator_source"], "file");
        assert!(!per_layer(&by_name).is_empty(), "{name}");
        assert_eq!(per_layer(&by_name), per_layer(&by_path), "{name}");
        assert_eq!(by_name["total"], by_path["total"], "{name}");
    }
}

#[test]
fn list_names_every_builtin() {
    let (code, out, err) = qc(&["accelerators", "list"]);
    assert_eq!(code, 0, "{err}");
    for (name, _) in BUILTIN {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name} missing from\n{out}");
    }
    assert!(out.contains(&format!("{DEFAULT} (default)")), "{out}");
    assert!(out.contains("D1×D2 = 16×16"), "{out}");
}

#[test]
fn show_prints_the_hierarchy_as_markdown() {
    let (code, out, err) = qc(&["accelerators", "show", "eyeriss_v1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("## Accelerator `eyeriss_v1`"), "{out}");
    assert!(out.contains("| memory | operands | size |"), "{out}");
    assert!(out.contains("| glb_108KB | I1, O | 108 KiB (884736 bits) | 24 | 24 |"), "{out}");
    assert!(out.contains("Array: D1×D2 = 12×14 (168 MAC units)"), "{out}");
    let (code, out, _) = qc(&["accelerators", "show", "gemmini", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["array"]["mac_units"], 256);
    assert_eq!(v["memories"][3]["size_bits"], 256 * 1024 * 8);
}

#[test]
fn show_yaml_writes_a_file_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["tpu_like", "gemmini"] {
        let file = dir.path().join(format!("{name}.yaml"));
        let f = file.display().to_string();
        let (code, out, err) = qc(&["accelerators", "show", name, "--format", "yaml", "-o", &f]);
        assert_eq!((code, out.as_str()), (0, ""), "{err}");
        let text = std::fs::read_to_string(&file).unwrap();
        let read = read_accelerator_file(&text, &f).unwrap();
        let (acc, format) = (read.accelerator, read.format);
        assert_eq!(format, FileFormat::Qc);
        assert_eq!(acc, builtin(name).unwrap().accelerator);
        // The file is an `--accelerator` as the built-in is, with the same numbers.
        let a = evaluate_json(&[&resnet18(), "--accelerator", &f]);
        let b = evaluate_json(&[&resnet18(), "--accelerator", name]);
        assert_eq!(a["accelerator_source"], "file");
        assert_eq!(per_layer(&a), per_layer(&b));
        // Shown again from the file, it is the same text.
        let (_, again, _) = qc(&["accelerators", "show", &f, "--format", "yaml"]);
        assert_eq!(again, text);
    }
}

#[test]
fn unknown_names_and_paths_are_told_apart() {
    // An unknown name: the built-in names and how to give a path.
    let (code, _, err) = qc(&["evaluate", &gemm_layer(), "--accelerator", "tpu_lik"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::accelerator::unknown"), "{err}");
    assert!(err.contains("no built-in accelerator is called `tpu_lik`"), "{err}");
    assert!(err.contains("gemmini") && err.contains("eyeriss_v1"), "{err}");
    assert!(err.contains("is read as a file"), "{err}");
    let (code, _, err) = qc(&["accelerators", "show", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::accelerator::unknown"), "{err}");
    // With an extension or a `/`, a value is a path, even when a built-in has that name.
    for p in ["tpu_like.yaml", "./tpu_like", "no/such/dir/gemmini"] {
        let (code, _, err) = qc(&["evaluate", &gemm_layer(), "--accelerator", p]);
        assert_eq!(code, 2, "{p}");
        assert!(err.contains("qc::io::read") && err.contains("cannot read accelerator file"), "{p}: {err}");
    }
    // --compare takes names too.
    let (code, out, err) =
        qc(&["-q", "evaluate", &gemm_layer(), "--accelerator", "gemm_l1", "--compare", "gemm_l1_l3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("on gemm_l1_l3"), "{out}");
}

#[test]
fn files_of_either_format_load_and_errors_say_which_format() {
    let dir = tempfile::tempdir().unwrap();
    let text = write_qc_accelerator(&builtin("gemm_l1").unwrap().accelerator, "d", "p");
    let bad = text.replacen("bandwidth_max_bits_per_cycle: ", "bandwidth_max_bits_per_cycle: -", 1);
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, bad).unwrap();
    let (code, _, err) = qc(&["accelerators", "show", &f.display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::accelerator::bandwidth"), "{err}");
    assert!(err.contains("qc accelerator file"), "{err}");
    // Without `format:`, a file is ZigZag's, and the error says so.
    let z = dir.path().join("zigzag.yaml");
    std::fs::write(&z, "name: x\nmemories: {}\n").unwrap();
    let (code, _, err) = qc(&["accelerators", "show", &z.display().to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::accelerator::schema") && err.contains("ZigZag accelerator"), "{err}");
}

#[test]
fn evaluate_without_accelerator_uses_the_default_and_says_so() {
    let (code, out, err) = qc(&["-q", "evaluate", &resnet18()]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert!(lines.next().unwrap().ends_with(&format!("on {DEFAULT}")), "{out}");
    assert_eq!(
        lines.next().unwrap(),
        "accelerator: built-in default (tpu_like; give --accelerator NAME|PATH for another)"
    );
    assert_eq!(lines.next().unwrap(), "spatial mapping: searched (no --mapping)");
    let v = evaluate_json(&[&resnet18()]);
    assert_eq!(v["accelerator_source"], "built-in default");
    assert_eq!(v["accelerator"], DEFAULT);
    let named = evaluate_json(&[&resnet18(), "--accelerator", DEFAULT]);
    assert_eq!(per_layer(&v), per_layer(&named));
}

/// The in-memory-compute built-ins through `qc evaluate`: searched and compared with each other,
/// every report shows the clock period, the latency in ns and the array's energy by part, and the
/// JSON's numbers hold together.
#[test]
fn imc_builtins_evaluate_compare_and_report_their_clock_and_breakdown() {
    let w = gemm_layer();
    let v = evaluate_json(&[&w, "--accelerator", "dimc", "--compare", "aimc"]);
    let designs = v["designs"].as_array().unwrap();
    assert_eq!(designs.len(), 2);
    for (d, kind, serial) in [(&designs[0], "digital", 8), (&designs[1], "analog", 4)] {
        let imc = &d["imc"];
        assert_eq!(
            (imc["type"].as_str(), imc["cycles_per_mac"].as_u64()),
            (Some(kind), Some(serial)),
            "{imc}"
        );
        assert_eq!(d["data_locality"], "on");
        let tclk = imc["tclk_ns"].as_f64().unwrap();
        let latency = d["total"]["latency"].as_f64().unwrap();
        assert_eq!(imc["latency_ns"].as_f64().unwrap(), tclk * latency);
        for l in d["layers"].as_array().unwrap() {
            let parts: f64 =
                l["imc"]["energy_breakdown"].as_object().unwrap().values().map(|x| x.as_f64().unwrap()).sum();
            let mac = l["energy_breakdown"]["mac"].as_f64().unwrap();
            assert!((parts - mac).abs() <= 1e-9 * mac, "{parts} vs {mac}");
            assert_eq!(l["imc"]["tclk_ns"].as_f64(), Some(tclk));
            // Every MAC takes the serial cycles: at least MACs / units of them, times those.
            let macs: f64 = l["macs"].as_str().unwrap().parse().unwrap();
            assert!(l["latency"].as_f64().unwrap() >= (macs / 16384.0).ceil() * serial as f64);
        }
    }
    for format in ["text", "md", "html"] {
        let (code, out, err) = qc(&["-q", "evaluate", &w, "--accelerator", "aimc", "--format", format]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("analog in-memory compute") && out.contains("tclk"), "{format}: {out}");
        assert!(out.contains("ns") && out.contains("adcs"), "{format}: {out}");
    }
    // `qc accelerators show` describes the array.
    let (code, out, _) = qc(&["accelerators", "show", "dimc"]);
    assert_eq!(code, 0);
    assert!(out.contains("digital in-memory compute") && out.contains("tclk 3.757"), "{out}");
}
