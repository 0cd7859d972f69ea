//! `qc lower` end to end: the three formats, a ZigZag YAML as input, and bad input.

use prost::Message;
use qc::fixtures::{self as fx, node};
use qc::onnx::proto::{self as pb, DataType};
use qc_tests::qc;

/// x[1,3,8,8] -> Conv(3x3, pads 1) -> Relu -> MaxPool(2x2) -> y
fn small_cnn(dir: &std::path::Path) -> std::path::PathBuf {
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![
            node("Conv", "", "conv", &["x", "w"], &["c"], vec![fx::attr_ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "", "relu", &["c"], &["r"], vec![]),
            node(
                "MaxPool",
                "",
                "pool",
                &["r"],
                &["y"],
                vec![fx::attr_ints("kernel_shape", &[2, 2]), fx::attr_ints("strides", &[2, 2])],
            ),
        ],
        initializer: vec![fx::tensor_f32("w", &[4, 3, 3, 3], &fx::weights(108, 1))],
        input: vec![fx::value_info("x", DataType::Float, &[1, 3, 8, 8])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4, 4, 4])],
        ..Default::default()
    };
    let p = dir.join("cnn.onnx");
    std::fs::write(&p, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    p
}

#[test]
fn lowers_in_every_format_and_reads_its_own_zigzag_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_cnn(dir.path());
    let m = m.to_str().unwrap();

    let (code, text, err) = qc(&["lower", m]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("dims B=1, G=1, K=4, C=3, OY=8, OX=8, FY=3, FX=3"), "{text}");
    assert!(text.contains("iy = 1*oy + 1*fy - 1 extent 8 pad (1, 1)"), "{text}");
    assert!(text.contains(r#"not_lowered "relu" Relu"#), "{text}");
    assert!(text.contains("2 layers lowered (6912 MACs in MAC layers), 1 nodes not lowered"), "{text}");
    // The text form parses back to the same workload.
    let body = text.split("\n// ").next().unwrap();
    let w = qc_ir::text::parse_workload(body).unwrap();
    assert_eq!(qc_ir::text::print_workload(&w), body);

    let (code, json, err) = qc(&["lower", m, "--format", "json", "--default-precision", "4,4,4,12"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["layers"][0]["name"], "conv");
    assert_eq!(v["layers"][0]["iterations"], "6912");
    assert_eq!(v["layers"][0]["psum_bits"], 12);
    assert_eq!(v["layers"][0]["inputs"][0]["bits"], 4);
    assert_eq!(v["not_lowered"][0]["op_type"], "Relu");

    let yaml = dir.path().join("cnn.yaml");
    let (code, _, err) = qc(&["lower", m, "--format", "zigzag-yaml", "-o", yaml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, again, err) = qc(&["lower", yaml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(again.contains("dims B=1, G=1, K=4, C=3, OY=8, OX=8, FY=3, FX=3"), "{again}");
    assert!(again.contains(r#"layer 0 "conv""#), "{again}");
}

#[test]
fn bad_input_is_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_cnn(dir.path());
    let (code, out, err) = qc(&["lower", m.to_str().unwrap(), "--default-precision", "8,8"]);
    assert_eq!(code, 2);
    assert!(out.is_empty() && err.contains("qc::lower::default_precision"), "{err}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "- id: 0\n  equation: nonsense\n").unwrap();
    let (code, _, err) = qc(&["lower", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::zigzag::"), "{err}");
    let (code, _, err) = qc(&["lower", dir.path().join("missing.onnx").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
}

/// The cnn with its batch declared `-1`, as Paddle2ONNX writes it.
fn dynamic_cnn(dir: &std::path::Path) -> std::path::PathBuf {
    let p = small_cnn(dir);
    let mut m = pb::ModelProto::decode(std::fs::read(&p).unwrap().as_slice()).unwrap();
    m.graph.as_mut().unwrap().input = vec![fx::value_info("x", DataType::Float, &[-1, 3, 8, 8])];
    m.graph.as_mut().unwrap().output = vec![fx::value_info("y", DataType::Float, &[-1, 4, 4, 4])];
    let q = dir.join("dynamic.onnx");
    std::fs::write(&q, m.encode_to_vec()).unwrap();
    q
}

#[test]
fn unknown_input_dims_are_asked_for_never_counted_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let m = dynamic_cnn(dir.path());
    let m = m.to_str().unwrap();
    // A -1 dim loads, with a warning.
    let (code, text, err) = qc(&["inspect", m]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("qc::onnx::negative_dim") && text.contains("x"), "{err}");
    // Counts that depend on it are refused, naming the input and the flag.
    for cmd in ["lower", "cost"] {
        let (code, out, err) = qc(&[cmd, m]);
        assert_eq!((code, out.as_str()), (2, ""), "{cmd}: {err}");
        assert!(
            err.contains("qc::input_shape::unknown_dims")
                && err.contains("`x` [?,3,8,8]")
                && err.contains("--overwrite-input-shape x:D0,3,8,8"),
            "{cmd}: {err}"
        );
    }
    // Given, they count; assumed, the outputs say so.
    let (code, text, err) = qc(&["cost", m, "--overwrite-input-shape", "x:1,3,8,8"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("6,912 MACs"), "{text}");
    let (code, text, err) = qc(&["lower", m, "--assume-dims", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("// assumed (--assume-dims): x dim 0 (?) = 1"), "{text}");
    let (code, json, _) = qc(&["lower", m, "--assume-dims", "2", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["assumptions"][0]["value"], 2);
    assert_eq!(v["assumptions"][0]["input"], "x");
    // Bad values of the flags are diagnostics.
    for (args, code_name) in [
        (vec!["lower", m, "--overwrite-input-shape", "x:1,3,8"], "qc::input_shape::rank"),
        (vec!["lower", m, "--overwrite-input-shape", "y:1,3,8,8"], "qc::input_shape::unknown_input"),
        (vec!["lower", m, "--overwrite-input-shape", "x-1"], "qc::input_shape::syntax"),
        (vec!["lower", m, "--assume-dims", "1", "--psum-bits", "wide"], "qc::lower::psum_bits"),
    ] {
        let (code, out, err) = qc(&args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(err.contains(code_name), "{args:?}: {err}");
    }
}
