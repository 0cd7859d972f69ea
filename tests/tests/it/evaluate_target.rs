//! `qc evaluate --target` (only the ops a DLA target places on the DLA are costed; the report
//! gives the DLA/CPU split and each CPU op's rule) and `qc evaluate --optimize` (the default
//! optimization pipeline in memory first), on the repository's int8 example model.

use qc_tests::qc;
use serde_json::Value;

fn example() -> String {
    format!("{}/../examples/ppocr_cls_int8.onnx", env!("CARGO_MANIFEST_DIR"))
}

const SHAPE: &str = "x:1,3,48,192";

fn evaluate_json(extra: &[&str]) -> Value {
    let model = example();
    let mut args = vec!["evaluate", model.as_str(), "--overwrite-input-shape", SHAPE, "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = qc(&args);
    assert_eq!(code, 0, "qc {args:?} failed: {err}");
    serde_json::from_str(&out).expect("qc evaluate writes JSON")
}

fn macs(v: &Value) -> u128 {
    v.as_str().expect("MACs are strings").parse().expect("MACs are numbers")
}

fn layer_energy(doc: &Value) -> Vec<(String, f64)> {
    doc["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_string(), l["energy"].as_f64().unwrap()))
        .collect()
}

#[test]
fn the_target_splits_the_model_between_dla_and_cpu() {
    let all = evaluate_json(&[]);
    let split = evaluate_json(&["--target", "access-dla"]);
    let p = &split["placement"];
    assert_eq!(p["target"], "access-dla");
    // Every compute op of the example lowers, so no MAC count is unknown.
    assert_eq!(p["uncounted"], serde_json::json!([]));
    let (dla_macs, cpu_macs) = (macs(&p["dla"]["macs"]), macs(&p["cpu"]["macs"]));
    let all_macs: u128 = all["layers"].as_array().unwrap().iter().map(|l| macs(&l["macs"])).sum();
    // The split covers the whole model: what the DLA gets plus what the CPU gets is every MAC.
    assert_eq!(dla_macs + cpu_macs, all_macs);
    assert!(cpu_macs > 0 && dla_macs > 0, "the example has compute on both units: {p}");
    // Only the DLA's layers are costed, and each costs what it costs without --target.
    let costed: u128 = split["layers"].as_array().unwrap().iter().map(|l| macs(&l["macs"])).sum();
    assert_eq!(costed, dla_macs);
    let whole = layer_energy(&all);
    for (name, e) in layer_energy(&split) {
        let same = whole
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} costed only with --target"));
        assert_eq!(same.1, e, "{name}");
    }
    // Every CPU op says which rule sent it there; its layers are listed as not costed, saying so.
    let cpu_ops = p["cpu_ops"].as_array().unwrap();
    assert_eq!(cpu_ops.len() as u64, p["cpu"]["ops"].as_u64().unwrap());
    assert!(cpu_ops.iter().all(|o| o["rule"].as_str().unwrap().starts_with("qc::check::")), "{cpu_ops:?}");
    let conv = cpu_ops.iter().find(|o| o["op_type"] == "Conv" && macs(&o["macs"]) > 0).expect("a CPU Conv");
    let name = conv["node"].as_str().unwrap();
    assert!(split["layers"].as_array().unwrap().iter().all(|l| l["name"] != name));
    let skipped = split["not_costed"].as_array().unwrap().iter().find(|n| n["name"] == name).unwrap();
    assert!(skipped["reason"].as_str().unwrap().contains("runs on the CPU of access-dla"), "{skipped}");
    assert!(split["total"]["energy"].as_f64().unwrap() < all["total"]["energy"].as_f64().unwrap());
}

#[test]
fn the_text_report_shows_the_split_and_the_rules() {
    let model = example();
    let (code, out, err) = qc(&[
        "evaluate",
        &model,
        "--overwrite-input-shape",
        SHAPE,
        "--target",
        "access-dla",
        "--width",
        "100",
    ]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("placement on access-dla: ")).expect(&out);
    assert!(line.contains("op(s) on the DLA (") && line.contains("on the CPU ("), "{line}");
    assert!(out.contains("cpu ops by type and rule: "), "{out}");
    assert!(out.lines().any(|l| l.starts_with("  cpu: ") && l.contains("qc::check::")), "{out}");
    // Markdown and HTML list every CPU op.
    for format in ["md", "html"] {
        let (code, out, err) = qc(&[
            "evaluate",
            &model,
            "--overwrite-input-shape",
            SHAPE,
            "--target",
            "access-dla",
            "--format",
            format,
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("qc::check::unsupported-op") && out.contains("HardSigmoid"), "{format}");
    }
}

#[test]
fn optimize_in_memory_equals_optimizing_the_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let optimized = dir.path().join("opt.onnx");
    let model = example();
    let (code, _, err) =
        qc(&["optimize", &model, "-o", optimized.to_str().unwrap(), "--overwrite-input-shape", SHAPE]);
    assert_eq!(code, 0, "{err}");
    let in_memory = evaluate_json(&["--optimize"]);
    let said = in_memory["optimized"][0].as_str().expect("the report says what --optimize changed");
    assert!(said.starts_with("optimized in memory (qc optimize's default pipeline): 554 -> "), "{said}");
    let (code, out, err) = qc(&["evaluate", optimized.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let from_file: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(layer_energy(&in_memory), layer_energy(&from_file));
    assert_eq!(in_memory["total"], from_file["total"]);
}

#[test]
fn target_and_optimize_need_a_graph_and_a_known_target() {
    let model = example();
    let (code, _, err) =
        qc(&["evaluate", &model, "--overwrite-input-shape", SHAPE, "--target", "no-such-dla"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::target::unknown") && err.contains("access-dla"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("w.yaml");
    let (code, _, err) = qc(&[
        "lower",
        &model,
        "--overwrite-input-shape",
        SHAPE,
        "--format",
        "zigzag-yaml",
        "-o",
        yaml.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for flag in ["--optimize", "--target"] {
        let mut args = vec!["evaluate", yaml.to_str().unwrap(), flag];
        if flag == "--target" {
            args.push("access-dla");
        }
        let (code, _, err) = qc(&args);
        assert_eq!(code, 2, "{flag}");
        assert!(err.contains("qc::evaluate::option") && err.contains("no graph"), "{flag}: {err}");
    }
}

#[test]
fn the_readme_sweep_file_sweeps_the_builtin_it_names() {
    let (acc, _) = qc::accelerators::resolve_accelerator(Some("tpu_like")).expect("tpu_like is built in");
    let path = format!("{}/../examples/sweep_tpu_like.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("examples/sweep_tpu_like.yaml ships");
    let sweep =
        qc_backends::sweep::read_sweep_yaml(&text, &path, &acc).expect("the README's sweep file reads");
    assert_eq!(sweep.design_indices().len(), 48, "the README says 48 designs");
}
