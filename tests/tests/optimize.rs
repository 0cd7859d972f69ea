//! `qc optimize` end to end: pipelines, instruments, atomic output, errors.

use prost::Message;
use qc::fixtures::{self as fx, node};
use qc::onnx::proto::{self as pb, DataType};

use qc_tests::qc;

/// x -> Relu -> y, plus a dead Add reading an initializer that nothing else needs.
fn model_with_dead_code(dir: &std::path::Path) -> std::path::PathBuf {
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![
            node("Relu", "", "live", &["x"], &["y"], vec![]),
            node("Add", "", "dead", &["x", "w"], &["unused"], vec![]),
        ],
        initializer: vec![fx::tensor_f32("w", &[1, 4], &[1.0; 4])],
        input: vec![fx::value_info("x", DataType::Float, &[1, 4])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4])],
        value_info: vec![fx::value_info("unused", DataType::Float, &[1, 4])],
        ..Default::default()
    };
    let p = dir.join("in.onnx");
    std::fs::write(&p, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    p
}

#[test]
fn runs_a_pipeline_and_writes_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (code, out, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "fixpoint(eliminate-dead){max=4}",
        "--time-passes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 -> 1 nodes"), "{out}");
    assert!(out.contains("  Add                           1 -> 0"), "{out}");
    assert!(
        out.contains(
            "eliminate-dead: runs=2 changed=1 ops-removed=1 initializers-removed=1 declarations-removed=1"
        ),
        "{out}"
    );
    assert!(out.contains("fixpoint(eliminate-dead){max=4}: 2 round(s), converged"), "{out}");
    assert!(err.contains("eliminate-dead") && err.contains("total"), "timing table on stderr: {err}");
    let loaded = qc::load::load(&output, Default::default()).unwrap();
    assert_eq!(loaded.model.graph.op_count(), 1);
    assert!(loaded.model.graph.initializers.is_empty());
    assert!(loaded.model.graph.value_info.is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("qc-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn prints_and_lists() {
    let (code, out, _) = qc(&["optimize", "--print-pipeline", "--passes", " fixpoint( eliminate-dead ) "]);
    assert_eq!(code, 0);
    assert_eq!(out, "fixpoint(eliminate-dead){max=10}\n");
    let (code, out, _) = qc(&[
        "optimize",
        "--print-pipeline",
        "--passes",
        "fixpoint(fold-constants,eliminate-dead),fold-constants{quant=false}",
        "--fold-quant-weights",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "fixpoint(fold-constants{quant=true},eliminate-dead){max=10},fold-constants{quant=true}\n"
    );
    let (code, out, _) = qc(&["optimize", "--list-passes"]);
    assert_eq!(code, 0);
    assert!(out.contains("eliminate-dead"));
}

#[test]
fn bad_pipelines_and_models_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    for (passes, code_text) in [
        ("eliminate-ded", "qc::pipeline::unknown_pass"),
        ("eliminate-dead,,", "qc::pipeline::syntax"),
        ("eliminate-dead{fast=true}", "qc::pipeline::unknown_option"),
        ("fixpoint(eliminate-dead){max=0}", "qc::pipeline::fixpoint_option"),
    ] {
        let (code, out, err) = qc(&["optimize", i, "-o", o, "--passes", passes]);
        assert_eq!(code, 2, "{passes}: {err}");
        assert!(err.contains(code_text), "{passes}: {err}");
        assert!(out.is_empty());
        assert!(!output.exists());
    }
    let (code, _, err) =
        qc(&["optimize", i, "-o", o, "--passes", "eliminate-dead", "--stop-after", "infer-shapes"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::pipeline::not_in_pipeline"), "{err}");
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, err) = qc(&["optimize", empty.to_str().unwrap(), "-o", o]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::onnx::empty_file"));
    assert!(!output.exists());
    let (code, _, _) = qc(&["optimize", i]);
    assert_eq!(code, 2, "-o is required");
}

#[test]
fn stop_after_and_print_ir_after() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (code, out, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "eliminate-dead,eliminate-dead",
        "--stop-after",
        "eliminate-dead",
        "--print-ir-after",
        "all",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("eliminate-dead: runs=1"), "{out}");
    assert!(out.contains("stopped after eliminate-dead"), "{out}");
    assert_eq!(err.matches("IR after eliminate-dead").count(), 1, "{err}");
}

#[test]
fn the_benchmark_encoder_is_a_valid_10k_node_model() {
    let bytes = fx::transformer_like(313).encode_to_vec();
    let loaded = qc::load::load_bytes(bytes.into(), "encoder", None, Default::default())
        .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert_eq!(loaded.model.graph.op_count(), 10_016);
}

#[test]
fn pass_warnings_render_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![node("Mystery", "com.example", "m", &["x"], &["y"], vec![])],
        input: vec![fx::value_info("x", DataType::Float, &[1, 4])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4])],
        ..Default::default()
    };
    let input = dir.path().join("in.onnx");
    std::fs::write(
        &input,
        fx::model(g, vec![fx::opset("", 13), fx::opset("com.example", 1)]).encode_to_vec(),
    )
    .unwrap();
    let output = dir.path().join("out.onnx");
    let (code, _, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "infer-shapes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("qc::shape::unsupported_op"), "the warning shows its code:\n{err}");
    assert!(err.contains("Mystery"), "{err}");
}

#[test]
fn clear_descriptions_removes_every_doc_string() {
    let dir = tempfile::tempdir().unwrap();
    let mut relu = node("Relu", "", "r", &["x"], &["y"], vec![]);
    relu.doc_string = Some("File model.py, line 3".into());
    let g = pb::GraphProto {
        name: Some("g".into()),
        doc_string: Some("graph doc".into()),
        node: vec![relu],
        input: vec![fx::value_info("x", DataType::Float, &[1, 4])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4])],
        ..Default::default()
    };
    let input = dir.path().join("in.onnx");
    std::fs::write(&input, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    let output = dir.path().join("out.onnx");
    let (code, out, err) =
        qc(&["optimize", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--clear-descriptions"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cleared=2"), "{out}");
    let m = pb::ModelProto::decode(std::fs::read(&output).unwrap().as_slice()).unwrap();
    let g = m.graph.unwrap();
    assert_eq!(g.doc_string, None);
    assert!(g.node.iter().all(|n| n.doc_string.is_none()));
}

#[test]
fn overwrite_input_shape_reinfers_from_the_new_dims() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let (code, _, err) = qc(&["optimize", i, "-o", o, "--overwrite-input-shape", "x:N,4"]);
    assert_eq!(code, 0, "{err}");
    let m = pb::ModelProto::decode(std::fs::read(&output).unwrap().as_slice()).unwrap();
    let g = m.graph.unwrap();
    let dims = |v: &pb::ValueInfoProto| format!("{:?}", v.r#type);
    assert!(dims(&g.input[0]).contains("\"N\""), "{}", dims(&g.input[0]));
    assert!(dims(&g.output[0]).contains("\"N\""), "the output is inferred again: {}", dims(&g.output[0]));
    for (spec, code) in [
        ("x-4", "qc::optimize::input_shape_syntax"),
        ("x:1,-4", "qc::optimize::input_shape_syntax"),
        ("nope:1,4", "qc::optimize::unknown_input"),
    ] {
        let o2 = dir.path().join("bad.onnx");
        let (c, out, err) = qc(&["optimize", i, "-o", o2.to_str().unwrap(), "--overwrite-input-shape", spec]);
        assert_eq!(c, 2, "{spec}: {err}");
        assert!(out.is_empty() && err.contains(code), "{spec}: {err}");
        assert!(!o2.exists(), "nothing is written for {spec}");
    }
}
