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
