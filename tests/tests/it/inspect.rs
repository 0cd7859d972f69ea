//! `qc inspect` end to end: the shipped example, text and JSON, and quantization styles.

use prost::Message;
use qc::fixtures as fx;
use qc::onnx::proto::DataType;

use qc_tests::qc;

fn example() -> String {
    format!("{}/../examples/tiny_qonnx.onnx", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_shipped_example_is_what_the_fixture_code_builds() {
    let shipped = std::fs::read(example()).expect("examples/tiny_qonnx.onnx ships in the repo");
    assert!(
        shipped == fx::tiny_qonnx().encode_to_vec(),
        "examples/tiny_qonnx.onnx is stale: run `cargo run -p qc --example gen_models -- example examples/tiny_qonnx.onnx`"
    );
}

#[test]
fn text_report_of_the_example() {
    let (code, out, err) = qc(&["inspect", &example()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty());
    for line in [
        "ir version  8   producer qc-fixtures",
        "opsets      ai.onnx 13, qonnx.custom_op.general 1",
        "graph       tiny_qonnx: 9 nodes, 8 initializers, 318 parameters (1.2 KiB)",
        "  x  f32[1,3,16,16]",
        "  y  f32[1,10]",
        "qonnx                         Quant x4",
    ] {
        assert!(out.contains(line), "missing `{line}` in:\n{out}");
    }
}

#[test]
fn json_report_of_the_example() {
    let (code, out, _) = qc(&["inspect", &example(), "--format", "json"]);
    assert_eq!(code, 0);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["nodes"], 9);
    assert_eq!(j["ir_version"], 8);
    assert_eq!(j["parameters"], 318);
    assert_eq!(j["parameter_bytes"], 318 * 4);
    assert_eq!(j["inputs"][0]["shape"], serde_json::json!([1, 3, 16, 16]));
    let hist = j["op_histogram"].as_array().unwrap();
    let quant = hist.iter().find(|o| o["op_type"] == "Quant").unwrap();
    assert_eq!(quant["domain"], "qonnx.custom_op.general");
    assert_eq!(quant["count"], 4);
    assert_eq!(hist.iter().map(|o| o["count"].as_u64().unwrap()).sum::<u64>(), 9);
    assert_eq!(j["quantization"][0]["style"], "qonnx");
}

#[test]
fn every_quantization_style_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let g = qc::onnx::proto::GraphProto {
        node: vec![
            fx::node("QuantizeLinear", "", "q", &["x", "s", "z"], &["xq"], vec![]),
            fx::node("DequantizeLinear", "", "dq", &["xq", "s", "z"], &["xd"], vec![]),
            fx::node(
                "Conv",
                "",
                "conv",
                &["xd", "w"],
                &["c"],
                vec![fx::attr_float("output_scale", 0.5), fx::attr_float("input_scale", 0.25)],
            ),
            fx::node("Relu", "", "r", &["c"], &["y"], vec![fx::attr_int("act_size", 8)]),
        ],
        initializer: vec![fx::scalar_f32("s", 0.1), fx::tensor_f32("w", &[1, 1, 1, 1], &[1.0])],
        input: vec![
            fx::value_info("x", DataType::Float, &[1, 1, 2, 2]),
            fx::value_info("z", DataType::Uint8, &[]),
        ],
        output: vec![fx::value_info("y", DataType::Float, &[1, 1, 2, 2])],
        ..Default::default()
    };
    let p = dir.path().join("styles.onnx");
    std::fs::write(&p, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    let (code, out, err) = qc(&["inspect", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let styles: Vec<String> = j["quantization"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["style"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(styles, ["access-attributes", "qdq", "zigzag-attributes"]);
    assert_eq!(
        j["quantization"][0]["found"],
        serde_json::json!(["input_scale on 1 node(s)", "output_scale on 1 node(s)"])
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let (code, _, err) = qc(&["inspect"]);
    assert_eq!(code, 2);
    assert!(err.contains("MODEL"), "{err}");
    let (code, _, _) = qc(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, out, _) = qc(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("inspect"));
}
