//! Bad input never panics: each malformed model gets a diagnostic with a stable code that names
//! the file and the node or tensor, exit code 2, and nothing on stdout. Every fixture is built
//! here, in code.

use std::path::{Path, PathBuf};

use prost::Message;
use qc::fixtures::{self as fx, attr_float, node, tensor_f32, value_info};
use qc::onnx::proto::{self as pb, DataType};

struct Run {
    code: u8,
    stdout: String,
    stderr: String,
}

fn qc(args: &[&str]) -> Run {
    let mut argv: Vec<std::ffi::OsString> = vec!["qc".into()];
    argv.extend(args.iter().map(Into::into));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = qc::cli::main_with(argv, &mut out, &mut err, false);
    Run { code, stdout: String::from_utf8_lossy(&out).into(), stderr: String::from_utf8_lossy(&err).into() }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Inspects and costs `path` and checks the failure: exit 2, nothing on stdout, the code and
/// every `mentions` in the rendered diagnostic, the file named.
fn assert_rejected(path: &Path, code: &str, mentions: &[&str]) -> String {
    let p = path.to_str().unwrap();
    for (command, format) in [("inspect", "text"), ("inspect", "json"), ("cost", "text"), ("cost", "json")] {
        let r = qc(&[command, p, "--format", format]);
        assert_eq!(r.code, 2, "exit code for {p}; stderr:\n{}", r.stderr);
        assert!(r.stdout.is_empty(), "something was written for {p}: {}", r.stdout);
        assert!(r.stderr.contains(code), "expected {code} for {p}, got:\n{}", r.stderr);
        let file = path.file_name().unwrap().to_str().unwrap();
        assert!(r.stderr.contains(file), "the diagnostic does not name the file:\n{}", r.stderr);
        for m in mentions {
            assert!(r.stderr.contains(m), "expected `{m}` in:\n{}", r.stderr);
        }
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    qc(&["inspect", p]).stderr
}

/// A two-node graph x -> Relu(a) -> y -> Relu(b) -> z, to be broken by each test.
fn chain() -> pb::GraphProto {
    pb::GraphProto {
        name: Some("chain".into()),
        node: vec![
            node("Relu", "", "a", &["x"], &["y"], vec![]),
            node("Relu", "", "b", &["y"], &["z"], vec![]),
        ],
        input: vec![value_info("x", DataType::Float, &[1, 4])],
        output: vec![value_info("z", DataType::Float, &[1, 4])],
        ..Default::default()
    }
}

fn encode(g: pb::GraphProto) -> Vec<u8> {
    fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()
}

#[test]
fn the_unbroken_chain_loads() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ok.onnx", &encode(chain()));
    let r = qc(&["inspect", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("2 nodes"));
}

#[test]
fn missing_file() {
    let r = qc(&["inspect", "/nonexistent/model.onnx"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("qc::io::read") && r.stderr.contains("/nonexistent/model.onnx"),
        "{}",
        r.stderr
    );
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_rejected(&write(dir.path(), "empty.onnx", b""), "qc::onnx::empty_file", &["is empty"]);
}

#[test]
fn random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = fx::weights(4096, 7).iter().map(|w| (w.to_bits() >> 7) as u8).collect();
    assert_rejected(
        &write(dir.path(), "random.onnx", &bytes),
        "qc::onnx::decode",
        &["not a valid ONNX protobuf"],
    );
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = fx::tiny_qonnx().encode_to_vec();
    let text =
        assert_rejected(&write(dir.path(), "cut.onnx", &full[..full.len() / 2]), "qc::onnx::decode", &[]);
    assert!(text.contains("truncated"), "the hint should say the file looks truncated:\n{text}");
}

#[test]
fn valid_protobuf_of_the_wrong_message() {
    let dir = tempfile::tempdir().unwrap();
    let tensor = tensor_f32("input_0", &[1, 4], &[1.0, 2.0, 3.0, 4.0]).encode_to_vec();
    let text = assert_rejected(&write(dir.path(), "input_0.pb", &tensor), "qc::onnx::", &[]);
    assert!(text.contains("TensorProto"), "the hint should say what the file looks like:\n{text}");
}

#[test]
fn unsupported_ir_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = fx::model(chain(), vec![fx::opset("", 13)]);
    m.ir_version = Some(99);
    assert_rejected(&write(dir.path(), "future.onnx", &m.encode_to_vec()), "qc::onnx::ir_version", &["99"]);
    m.ir_version = None;
    let mut g = chain();
    g.node.clear();
    m.graph = Some(g);
    assert_rejected(
        &write(dir.path(), "noversion.onnx", &m.encode_to_vec()),
        "qc::onnx::ir_version",
        &["(none)"],
    );
}

#[test]
fn a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = chain();
    g.node[0].input = vec!["z".into()];
    g.input.clear();
    assert_rejected(&write(dir.path(), "cycle.onnx", &encode(g)), "qc::verify::cycle", &["`a`", "`b`"]);
}

#[test]
fn an_input_nothing_provides() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = chain();
    g.node[1].input = vec!["ghost".into()];
    assert_rejected(
        &write(dir.path(), "undefined.onnx", &encode(g)),
        "qc::verify::undefined_input",
        &["`b`", "`ghost`"],
    );
}

#[test]
fn two_producers_of_one_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = chain();
    g.node[1].output = vec!["y".into()];
    g.node.push(node("Relu", "", "c", &["y"], &["z"], vec![]));
    assert_rejected(
        &write(dir.path(), "dup.onnx", &encode(g)),
        "qc::verify::duplicate_producer",
        &["`y`", "`a`", "`b`"],
    );
}

#[test]
fn dims_whose_product_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = chain();
    let mut t = tensor_f32("huge", &[1 << 40, 1 << 40], &[]);
    t.raw_data = Some(Default::default());
    g.initializer.push(t);
    assert_rejected(
        &write(dir.path(), "overflow.onnx", &encode(g)),
        "qc::verify::tensor",
        &["`huge`", "overflows"],
    );
}

#[test]
fn raw_data_of_the_wrong_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = chain();
    g.initializer.push(tensor_f32("w", &[2, 3], &[1.0; 5]));
    assert_rejected(
        &write(dir.path(), "short.onnx", &encode(g)),
        "qc::verify::tensor",
        &["`w`", "20 bytes", "need 24"],
    );
}

#[test]
fn wrong_attribute_type_on_a_known_op() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = chain();
    g.initializer.push(tensor_f32("k", &[4, 1, 1, 1], &[1.0; 4]));
    g.node.push(node("Conv", "", "conv0", &["x", "k"], &["c"], vec![attr_float("group", 1.0)]));
    assert_rejected(
        &write(dir.path(), "attr.onnx", &encode(g)),
        "qc::verify::attribute_type",
        &["`group`", "`conv0`", "int"],
    );
}

/// A model whose initializer `w` (4 floats) is stored at `location`, `offset`, `length`.
fn external_model(location: &str, offset: Option<u64>, length: Option<u64>) -> Vec<u8> {
    let mut g = chain();
    let mut t = tensor_f32("w", &[4], &[]);
    t.raw_data = None;
    t.data_location = Some(pb::DataLocation::External as i32);
    let entry = |k: &str, v: String| pb::StringStringEntryProto { key: Some(k.into()), value: Some(v) };
    t.external_data.push(entry("location", location.into()));
    if let Some(o) = offset {
        t.external_data.push(entry("offset", o.to_string()));
    }
    if let Some(l) = length {
        t.external_data.push(entry("length", l.to_string()));
    }
    g.initializer.push(t);
    encode(g)
}

#[test]
fn external_data_outside_the_model_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(root.path().join("secret.bin"), [0u8; 16]).unwrap();
    let up = write(&dir, "up.onnx", &external_model("../secret.bin", None, None));
    assert_rejected(&up, "qc::onnx::external_data_path", &["`w`", "../secret.bin", "`..`"]);
    let abs = root.path().join("secret.bin");
    let abs = write(&dir, "abs.onnx", &external_model(abs.to_str().unwrap(), None, None));
    assert_rejected(&abs, "qc::onnx::external_data_path", &["absolute"]);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.path().join("secret.bin"), dir.join("link.bin")).unwrap();
        let link = write(&dir, "link.onnx", &external_model("link.bin", None, None));
        assert_rejected(&link, "qc::onnx::external_data_path", &["outside the model's folder"]);
    }
}

#[test]
fn external_data_past_the_end_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.bin"), [0u8; 20]).unwrap();
    let past = write(dir.path(), "past.onnx", &external_model("w.bin", Some(8), Some(16)));
    assert_rejected(&past, "qc::onnx::external_data_bounds", &["`w`", "past the end", "offset 8"]);
    let wrong = write(dir.path(), "wrong.onnx", &external_model("w.bin", Some(0), Some(12)));
    assert_rejected(&wrong, "qc::onnx::external_data_bounds", &["need 16"]);
}

#[test]
fn external_data_is_checked_at_load_and_read_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = [0.5f32, 1.5, 2.5, 3.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut file = vec![0xAAu8; 8];
    file.extend_from_slice(&data);
    std::fs::write(dir.path().join("w.bin"), &file).unwrap();
    let p = write(dir.path(), "ext.onnx", &external_model("w.bin", Some(8), Some(16)));
    let loaded = qc::load::load(&p, Default::default()).expect("loads");
    assert!(loaded.warnings.is_empty());
    assert_eq!(loaded.external_files.len(), 1);
    assert_eq!(loaded.external_files[0].bytes, 16);
    let m = &loaded.model;
    let w = m.graph.value(m.graph.find("w").unwrap()).tensor().unwrap();
    assert_eq!(&m.tensor_bytes(w).unwrap()[..], &data[..]);
    let r = qc(&["inspect", p.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("w.bin  1 tensor(s)  16 B"), "{}", r.stdout);
}

#[test]
fn missing_external_file_is_a_warning_until_the_data_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "shape_only.onnx", &external_model("weights.bin", None, None));
    let r = qc(&["inspect", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("qc::onnx::external_data_missing") && r.stderr.contains("weights.bin"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("MISSING"));
    let loaded = qc::load::load(&p, Default::default()).unwrap();
    let m = &loaded.model;
    let w = m.graph.value(m.graph.find("w").unwrap()).tensor().unwrap();
    let e = m.tensor_bytes(w).unwrap_err();
    assert!(e.to_string().contains("weights.bin"), "{e}");
}

#[test]
fn every_problem_in_a_model_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = chain();
    g.node[1].input = vec!["ghost".into()];
    g.initializer.push(tensor_f32("w", &[2, 3], &[1.0; 5]));
    g.node.push(node("Conv", "", "conv0", &["x", "w"], &["c"], vec![attr_float("group", 1.0)]));
    let text = assert_rejected(
        &write(dir.path(), "many.onnx", &encode(g)),
        "qc::onnx::invalid",
        &["3 problem(s)", "qc::verify::undefined_input", "qc::verify::tensor", "qc::verify::attribute_type"],
    );
    assert!(text.contains("`ghost`"));
}

#[test]
fn fuzz_regressions() {
    // `fuzz/regressions/<target>/`: each saved finding, through the check its fuzz target runs.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for (target, check) in qc_tests::fuzz::TARGETS {
        let inputs = qc_tests::files_under(&dir.join(target), "");
        for p in &inputs {
            check(&std::fs::read(p).unwrap());
        }
        eprintln!("fuzz target {target}: replayed {} saved input(s)", inputs.len());
    }
}

/// A Conv named `conv` whose weight is rank 2 for a rank-4 input: a contradiction shape inference
/// finds (onnxruntime loads neither this model nor what an optimizer would write from it).
fn conv_with_a_rank_2_weight() -> Vec<u8> {
    let g = pb::GraphProto {
        name: Some("bad_conv".into()),
        node: vec![node("Conv", "", "conv", &["x", "w"], &["y"], vec![])],
        input: vec![value_info("x", DataType::Float, &[1, 3, 8, 8])],
        output: vec![pb::ValueInfoProto { name: Some("y".into()), ..Default::default() }],
        initializer: vec![tensor_f32("w", &[4, 3], &[0.5; 12])],
        ..Default::default()
    };
    encode(g)
}

#[test]
fn shape_contradictions_stop_every_model_reading_command_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "bad_conv.onnx", &conv_with_a_rank_2_weight());
    let p = m.to_str().unwrap();
    let out = dir.path().join("out.onnx");
    let o = out.to_str().unwrap();
    let qcdq = dir.path().join("qcdq.onnx");
    let commands: [&[&str]; 6] = [
        &["optimize", p, "-o", o],
        &["convert", p, "--to", "qcdq", "-o", qcdq.to_str().unwrap()],
        &["lower", p],
        &["evaluate", p],
        &["cost", p],
        &["check", p, "--target", "access-dla"],
    ];
    for args in commands {
        let r = qc(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("qc::shape::contradiction"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("qc::shape::rank") && r.stderr.contains("conv"), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("--allow-shape-errors"), "the hint names the flag: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(!out.exists() && !qcdq.exists(), "{args:?} wrote its output");
    }
    let r = qc(&["optimize", p, "-o", o, "--allow-shape-errors"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(out.exists(), "with --allow-shape-errors the output is written");
    assert!(r.stderr.contains("qc::shape::rank"), "the error is still a warning: {}", r.stderr);
    let r = qc(&["cost", p, "--allow-shape-errors"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn inspect_lists_shape_contradictions_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "bad_conv.onnx", &conv_with_a_rank_2_weight());
    let p = m.to_str().unwrap();
    let r = qc(&["inspect", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("shape errors 1"), "{}", r.stdout);
    assert!(r.stdout.contains("qc::shape::rank: conv"), "{}", r.stdout);
    let r = qc(&["inspect", p, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let errors = j["shape_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().starts_with("qc::shape::rank: conv"), "{errors:?}");
    // A sound model has no such field.
    let ok = write(dir.path(), "chain.onnx", &encode(chain()));
    let r = qc(&["inspect", ok.to_str().unwrap(), "--format", "json"]);
    assert!(!r.stdout.contains("shape_errors"), "{}", r.stdout);
}
