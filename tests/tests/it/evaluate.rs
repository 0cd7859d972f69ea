//! `qc evaluate --fixed-mapping` end to end: a GEMM on an 8x8x8 array, written here (the numbers
//! are those of ZigZag's `gemm_layer.yaml` on `gemm_l1.yaml`, research/zigzag.md 3.2), the JSON
//! schema, the search on the same layer, and the diagnostics for bad search options, an incomplete
//! ordering and an IMC array.

use qc_tests::qc;

/// ZigZag's gemm_l1.yaml: 8x8x8 MACs, a 32-bit output register serving D2, a 512 KiB L1.
pub(crate) const ACCELERATOR: &str = r#"
name: gemm_l1
operational_array:
  input_precision: [8, 8]
  unit_energy: 0.04
  unit_area: 1
  dimensions: [D1, D2, D3]
  sizes: [8, 8, 8]
memories:
  reg_O:
    size: 32
    r_cost: 0.02
    w_cost: 0.02
    area: 0
    latency: 1
    operands: [O]
    ports:
      - {name: w_port_1, type: write, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, fh"]}
      - {name: r_port_1, type: read, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, tl"]}
      - {name: w_port_2, type: write, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, fl"]}
      - {name: r_port_2, type: read, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, th"]}
    served_dimensions: [D2]
  l1:
    size: 4194304
    r_cost: 22.9
    w_cost: 52.01
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - {name: rw_port_1, type: read_write, bandwidth_min: 64, bandwidth_max: 512, allocation: ["I1, tl"]}
      - {name: rw_port_2, type: read_write, bandwidth_min: 64, bandwidth_max: 512, allocation: ["I2, tl"]}
      - {name: rw_port_3, type: read_write, bandwidth_min: 64, bandwidth_max: 2048, allocation: ["O, tl", "O, fl"]}
    served_dimensions: [D1, D2, D3]
"#;

pub(crate) const MAPPING: &str = r#"
- name: default
  spatial_mapping:
    D1: ["D0, 8"]
    D2: ["D2, 8"]
    D3: ["D1, 8"]
  temporal_ordering:
    - [D1, "*"]
    - [D2, "*"]
    - [D0, "*"]
"#;

pub(crate) const WORKLOAD: &str = r#"
- id: 0
  name: gemm
  operator_type: Gemm
  equation: O[d0][d1]+=I[d0][d2]*W[d2][d1]
  loop_dims: [D0, D1, D2]
  loop_sizes: [128, 128, 128]
  operand_precision:
    W: 8
    I: 8
    O: 32
    O_final: 8
  operand_source:
    W: 0
    I: 0
"#;

fn files(dir: &std::path::Path, mapping: &str) -> [String; 3] {
    let p = |n: &str, t: &str| {
        let path = dir.join(n);
        std::fs::write(&path, t).unwrap();
        path.to_str().unwrap().to_string()
    };
    [p("gemm.yaml", WORKLOAD), p("acc.yaml", ACCELERATOR), p("map.yaml", mapping)]
}

#[test]
fn a_fixed_gemm_mapping_costs_what_zigzag_computes() {
    let dir = tempfile::tempdir().unwrap();
    let [w, a, m] = files(dir.path(), MAPPING);
    let (code, text, err) = qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("511,350") && text.contains("8,191"), "{text}");

    let (code, json, err) =
        qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["layers"][0]["name"], "gemm");
    assert_eq!(v["layers"][0]["class"], "mac");
    let energy = v["layers"][0]["energy"].as_f64().unwrap();
    assert!((energy - 511_349.76).abs() < 1e-6, "{energy}");
    assert_eq!(v["layers"][0]["latency"].as_f64(), Some(8191.0));
    assert_eq!(v["total"]["latency"].as_f64(), Some(8191.0));
    let lb = &v["layers"][0]["latency_breakdown"];
    assert_eq!((lb["ideal_temporal_cycle"].as_u64(), lb["stall_slack"].as_i64()), (Some(4096), Some(4094)));
    assert_eq!(v["layers"][0]["energy_breakdown"]["mac"].as_f64(), Some(83_886.08));
    // reg_O: every direction one word per cycle on each of the 64 instances.
    let reg_o = &v["layers"][0]["energy_breakdown"]["operands"][0]["levels"][0];
    assert_eq!(reg_o["memory"], "reg_O");
    assert_eq!(reg_o["accesses"]["tl"], 262_144);

    // The 3d12a96 latency model agrees on this layer.
    let (code, json, _) = qc(&[
        "evaluate",
        &w,
        "--accelerator",
        &a,
        "--mapping",
        &m,
        "--fixed-mapping",
        "--format",
        "json",
        "--latency-model",
        "zigzag-3d12a96",
    ]);
    assert_eq!(code, 0);
    assert!(json.contains("\"latency_model\": \"zigzag-3d12a96\""), "{json}");
}

#[test]
fn what_cannot_be_evaluated_is_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let [w, a, m] = files(dir.path(), MAPPING);
    // Without --fixed-mapping qc searches: on this one-layer GEMM it finds ZigZag's mapping or
    // a better one.
    let (code, json, err) =
        qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--format", "json", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["mapping"], "searched");
    assert!(v["layers"][0]["latency"].as_f64().unwrap() <= 8191.0, "{json}");
    for (flag, value) in
        [("--lpf-limit", "0"), ("--spatial-mappings", "x"), ("--search-budget", "5 parsecs"), ("--jobs", "0")]
    {
        let (code, _, err) = qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, flag, value]);
        assert_eq!(code, 2, "{flag} {value}");
        assert!(err.contains("qc::evaluate::option"), "{flag} {value}: {err}");
    }

    // An ordering that leaves D0 out is incomplete; the message lists the loops to order.
    let partial = MAPPING.replace("    - [D0, \"*\"]\n", "");
    let [w, a, m] = files(dir.path(), &partial);
    let (code, out, err) = qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("qc::evaluate::mapping") && err.contains("`gemm`") && err.contains("D0"), "{err}");

    let no_order = MAPPING.split("  temporal_ordering:").next().unwrap().to_string();
    let [w, a, m] = files(dir.path(), &no_order);
    let (code, _, err) = qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping"]);
    assert_eq!(code, 2);
    assert!(err.contains("[D0, 16], [D1, 16], [D2, 16]"), "{err}");

    // An in-memory-compute array with a MAC energy is refused (the IMC macro model gives it).
    let imc = ACCELERATOR.replace("  unit_energy: 0.04\n", "  unit_energy: 0.04\n  is_imc: True\n");
    std::fs::write(&a, imc).unwrap();
    let [w, _, m] = [w, String::new(), m];
    let (code, _, err) = qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::accelerator::imc"), "{err}");
}

/// The CLI end to end on ZigZag's recorded runs: each layer's recorded choice is written as a
/// mapping-file entry (its spatial mapping, and its loop order, innermost first, as the
/// `temporal_ordering`), and `qc evaluate MODEL --fixed-mapping` must give ZigZag's energy and
/// latency for every layer: lowering, entry selection, spatial fitting, the allocator and the
/// cost model together. Runs with data locality or in-memory compute are left out (their
/// accelerators differ per layer). Skipped with a message when `../shared` is missing.
#[test]
fn recorded_zigzag_choices_evaluate_to_zigzags_numbers_through_the_cli() {
    use qc_tests::zigzag_results::rel_err;
    let Some(shared) = qc_tests::shared_or_say("evaluate") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let dir = tempfile::tempdir().unwrap();
    let mut runs = 0;
    let mut layers = 0;
    for summary in qc_tests::files_under(&root.join("results"), ".summary.json") {
        let run = summary.file_name().unwrap().to_string_lossy().replace(".summary.json", "");
        if ["dimc", "edl", "_mix"].iter().any(|s| run.contains(s)) {
            continue;
        }
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        let path = |k: &str| root.join(s[k].as_str().unwrap()).to_str().unwrap().to_string();
        let (workload, acc, mapping) = (path("workload"), path("accel"), path("mapping"));
        // The operand links of the run's own mapping file.
        let file =
            qc_backends::zigzag::read_mapping_yaml(&std::fs::read_to_string(&mapping).unwrap(), &mapping)
                .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
        let mut yaml = mapping_from_record(&s, &file);
        yaml += "- name: default\n";
        let map = dir.path().join(format!("{run}.yaml"));
        std::fs::write(&map, yaml).unwrap();
        let model = if run.starts_with("head_") { "zigzag-3d12a96" } else { "zigzag-3.9.1" };
        let (code, json, err) = qc(&[
            "evaluate",
            &workload,
            "--accelerator",
            &acc,
            "--mapping",
            map.to_str().unwrap(),
            "--fixed-mapping",
            "--latency-model",
            model,
            "--format",
            "json",
        ]);
        assert_eq!(code, 0, "{run}: {err}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for l in s["layers"].as_array().unwrap() {
            let name = l["layer"].as_str().unwrap();
            let got = v["layers"].as_array().unwrap().iter().find(|x| x["name"] == name);
            let got = got.unwrap_or_else(|| panic!("{run}: qc evaluate has no layer {name}"));
            let (e, t) = (got["energy"].as_f64().unwrap(), got["latency"].as_f64().unwrap());
            let (ze, zt) = (l["energy"].as_f64().unwrap(), l["latency"].as_f64().unwrap());
            assert!(
                rel_err(e, ze) < 1e-9 && rel_err(t, zt) < 1e-9,
                "{run} {name}: qc {e} pJ {t} cycles, ZigZag {ze} pJ {zt} cycles; notes {}",
                got["notes"]
            );
            layers += 1;
        }
        runs += 1;
    }
    println!("{runs} recorded runs, {layers} layers: qc evaluate --fixed-mapping equals ZigZag");
    assert!(runs >= 15, "expected the recorded runs, found {runs}");
}

/// ZigZag's recorded choice for each layer of a run, as mapping-file entries named after the
/// layers: the spatial mapping, the loop order (every operand's levels, flattened, give the same
/// order, innermost first) and the links of the run's own mapping file.
fn mapping_from_record(s: &serde_json::Value, file: &qc_backends::mapping::MappingFile) -> String {
    use qc_tests::zigzag_results::{parse_spatial, parse_temporal};
    let mut yaml = String::new();
    for l in s["layers"].as_array().unwrap() {
        let name = l["layer"].as_str().unwrap();
        let sm = parse_spatial(l["spatial_mapping"].as_str().unwrap()).unwrap();
        let tm = parse_temporal(l["temporal"].as_str().unwrap()).unwrap();
        let entry = file.entry_for(name, "").unwrap();
        yaml += &format!("- name: \"{name}\"\n  spatial_mapping:\n");
        for (oa, u) in &sm.dims {
            let items: Vec<String> = u.iter().map(|(d, f)| format!("\"{d}, {f}\"")).collect();
            yaml += &format!("    {oa}: [{}]\n", items.join(", "));
        }
        let order: Vec<String> =
            tm.levels("O").unwrap().iter().flatten().map(|t| format!("[{}, {}]", t.dim, t.size)).collect();
        yaml += &format!("  temporal_ordering: [{}]\n  memory_operand_links:\n", order.join(", "));
        for (role, mem) in &entry.links.links {
            yaml += &format!("    {role}: {mem}\n");
        }
    }
    yaml
}

/// `--all-layers` costs the pooling layers too, as ZigZag costs them: ResNet-18's MaxPool and
/// GlobalAveragePool on tpu_like with the mapping ZigZag 3.9.1 chose for them when it ran
/// `qc lower`'s YAML of the model (no unrolling; measured 2026-11-21 with
/// `bench/lower_zigzag_check.sh`'s venv): 116,592,390.656 pJ / 1,906,690 cycles and
/// 2,615,507.3 pJ / 28,226 cycles.
#[test]
fn all_layers_costs_pooling_as_zigzag_does() {
    let Some(shared) = qc_tests::shared_or_say("evaluate") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("results/v391_tpu.summary.json")).unwrap())
            .unwrap();
    let p = |k: &str| root.join(s[k].as_str().unwrap()).to_str().unwrap().to_string();
    let (workload, acc, mapping) = (p("workload"), p("accel"), p("mapping"));
    let file = qc_backends::zigzag::read_mapping_yaml(&std::fs::read_to_string(&mapping).unwrap(), &mapping)
        .unwrap();
    let mut yaml = mapping_from_record(&s, &file);
    yaml += "- name: /maxpool/MaxPool\n  spatial_mapping: {}\n  temporal_ordering: [[FX, 3], [FY, 3], [OY, 56], [OX, 8], [OX, 7], [G, 64]]\n";
    yaml += "- name: /avgpool/GlobalAveragePool\n  spatial_mapping: {}\n  temporal_ordering: [[FX, 7], [FY, 7], [G, 512]]\n";
    yaml += "- name: default\n  spatial_mapping: {D1: [\"G, 32\"]}\n  temporal_ordering: [[OX, \"*\"], [OY, \"*\"], [G, \"*\"]]\n";
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("all.yaml");
    std::fs::write(&map, yaml).unwrap();
    let args = [
        "evaluate",
        &workload,
        "--accelerator",
        &acc,
        "--mapping",
        map.to_str().unwrap(),
        "--fixed-mapping",
        "--format",
        "json",
    ];
    let (code, json, err) = qc(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 21, "without --all-layers: the 21 layers ZigZag costs");
    assert!(v["not_costed"].as_array().unwrap().iter().any(|n| n["name"] == "/maxpool/MaxPool"));

    let (code, json, err) = qc(&[&args[..], &["--all-layers"]].concat());
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 31);
    let get = |n: &str| layers.iter().find(|l| l["name"] == n).unwrap();
    let (mp, gap) = (get("/maxpool/MaxPool"), get("/avgpool/GlobalAveragePool"));
    assert_eq!((mp["class"].as_str(), gap["class"].as_str()), (Some("pooling"), Some("pooling")));
    assert!((mp["energy"].as_f64().unwrap() - 116_592_390.656).abs() < 1e-3, "{}", mp["energy"]);
    assert_eq!(mp["latency"].as_f64(), Some(1_906_690.0));
    assert!((gap["energy"].as_f64().unwrap() - 2_615_507.3).abs() < 0.1, "{}", gap["energy"]);
    assert_eq!(gap["latency"].as_f64(), Some(28_226.0));
    assert_eq!(get("/layer1/layer1.0/Add")["class"], "element-wise");
}

/// A layer that fits the array entirely (no temporal loops) is mapped and costed; a layer no
/// ordering fits is a diagnostic naming the memory that is too small, with nothing written.
#[test]
fn a_layer_without_temporal_loops_and_a_layer_nothing_fits() {
    let dir = tempfile::tempdir().unwrap();
    let [_, a, _] = files(dir.path(), MAPPING);
    let map = dir.path().join("default.yaml");
    std::fs::write(&map, "- name: default\n").unwrap();
    let m = map.to_str().unwrap();
    let small = dir.path().join("small.yaml");
    std::fs::write(&small, WORKLOAD.replace("[128, 128, 128]", "[8, 8, 8]")).unwrap();
    let w = small.to_str().unwrap();
    for mapping_type in ["uneven", "even"] {
        let args = [
            "evaluate",
            w,
            "--accelerator",
            &a,
            "--mapping",
            m,
            "--format",
            "json",
            "--mapping-type",
            mapping_type,
        ];
        let (code, json, err) = qc(&args);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let l = &v["layers"][0];
        assert_eq!(l["latency_breakdown"]["ideal_temporal_cycle"], 1, "{json}");
        assert_eq!(l["utilization"]["spatial"], 1.0);
    }

    let tiny = dir.path().join("tiny.yaml");
    std::fs::write(&tiny, ACCELERATOR.replace("size: 4194304", "size: 4096")).unwrap();
    let [w, _, _] = files(dir.path(), MAPPING);
    let out = dir.path().join("out.json");
    let (code, _, err) = qc(&[
        "evaluate",
        &w,
        "--accelerator",
        tiny.to_str().unwrap(),
        "--mapping",
        m,
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]);
    // The layer that fits nowhere is listed with the memory and what would fit, the others are
    // costed, and the exit code is 1.
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let unfit = v["unfit"].as_array().unwrap();
    assert_eq!(unfit.len(), 1, "{v}");
    assert_eq!(unfit[0]["memory"], "l1");
    assert!(unfit[0]["reason"].as_str().unwrap().contains("it fits with a larger `l1`"), "{v}");
    assert_eq!(v["layers"].as_array().unwrap().len(), 0);
    assert_eq!(v["total"]["energy"], 0.0);
    // The text report says so too.
    let (code, text, _) =
        qc(&["evaluate", &w, "--accelerator", tiny.to_str().unwrap(), "--mapping", m, "--width", "200"]);
    assert_eq!(code, 1);
    assert!(text.contains("1 layer(s) do not fit") && text.contains("memory `l1`"), "{text}");
}

#[test]
fn a_mapping_that_does_not_fit_the_layer_or_the_array_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (MAPPING.replace("D3: [\"D1, 8\"]", "D3: [\"Q, 8\"]"), "qc::mapping::unknown_dim", "layer(s) `gemm`"),
        (
            MAPPING.replace("    - [D0, \"*\"]\n", "    - [D0, \"*\"]\n    - [QX, 2]\n"),
            "qc::mapping::unknown_dim",
            "a loop over `QX`",
        ),
        (
            MAPPING.replace("D1: [\"D0, 8\"]", "D1: [\"D0, 16\"]"),
            "qc::mapping::unrolling",
            "which has 8 units",
        ),
    ];
    for (mapping, code_name, text) in &cases {
        let [w, a, m] = files(dir.path(), mapping);
        for fixed in [true, false] {
            let mut args = vec!["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--quiet"];
            if fixed {
                args.push("--fixed-mapping");
            }
            let (code, out, err) = qc(&args);
            let err = unwrapped(&err);
            assert_eq!((code, out.as_str()), (2, ""), "{code_name}: {err}");
            assert!(err.contains(code_name) && err.contains(text) && err.contains("map.yaml:"), "{err}");
        }
    }
    // Two problems: both, together.
    let both =
        MAPPING.replace("D3: [\"D1, 8\"]", "D3: [\"Q, 8\"]").replace("D1: [\"D0, 8\"]", "D1: [\"D0, 16\"]");
    let [w, a, m] = files(dir.path(), &both);
    let (code, _, err) = qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping"]);
    let err = unwrapped(&err);
    assert_eq!(code, 2);
    assert!(err.contains("qc::mapping::misfit") && err.contains("2 problems"), "{err}");
    assert!(err.contains("qc::mapping::unknown_dim") && err.contains("qc::mapping::unrolling"), "{err}");

    // An entry that names no layer and no operator type: a warning, and the evaluation runs.
    let unused = format!("{MAPPING}- name: Conv\n  spatial_mapping:\n    D1: [\"K, 8\"]\n");
    let [w, a, m] = files(dir.path(), &unused);
    let (code, text, err) = qc(&["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping"]);
    let err = unwrapped(&err);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("511,350"), "{text}");
    assert!(
        err.contains("qc::mapping::unused_entry")
            && err.contains("`Conv`")
            && err.contains("(this workload's: Gemm)"),
        "{err}"
    );
}

/// Standard error with miette's line wrapping undone: words joined by single spaces, the
/// margin's `│` left out.
fn unwrapped(err: &str) -> String {
    err.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ")
}
