//! `qc run` end to end: `.npy` and `.pb` inputs, `.npy` outputs, and its errors.

use prost::Message;
use qc::fixtures::{self as fx, node};
use qc::onnx::proto::{self as pb, DataType};
use qc_ir::{ElemType, TensorData};

use qc_tests::qc;

#[test]
fn runs_a_model_on_npy_and_pb_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let g = pb::GraphProto {
        node: vec![
            node("Add", "", "add", &["x", "b"], &["s"], vec![]),
            node("Relu", "", "relu", &["s"], &["y"], vec![]),
        ],
        input: vec![
            fx::value_info("x", DataType::Float, &[2, 2]),
            fx::value_info("b", DataType::Float, &[2]),
        ],
        output: vec![fx::value_info("y", DataType::Float, &[2, 2])],
        ..Default::default()
    };
    let model = dir.path().join("m.onnx");
    std::fs::write(&model, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    let x: Vec<u8> = [1.0f32, -2.0, 3.0, -4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let xfile = dir.path().join("x.npy");
    std::fs::write(&xfile, qc::npy::write(ElemType::F32, &[2, 2], &x).unwrap()).unwrap();
    let bfile = dir.path().join("b.pb");
    std::fs::write(&bfile, fx::tensor_f32("b", &[2], &[0.5, 0.5]).encode_to_vec()).unwrap();
    let outdir = dir.path().join("out");
    let (code, out, err) = qc(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        &format!("x={}", xfile.display()),
        "--input",
        &format!("b={}", bfile.display()),
        "--output-dir",
        outdir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("y: f32[2,2] = [1.500000, 0.000000, 3.500000, 0.000000]"), "{out}");
    let y = qc::npy::read(&std::fs::read(outdir.join("y.npy")).unwrap(), "y.npy", "y").unwrap();
    let TensorData::Raw(raw) = &y.data else { panic!() };
    let values: Vec<f32> = raw.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(values, [1.5, 0.0, 3.5, 0.0]);

    let m = model.to_str().unwrap();
    let (code, _, err) = qc(&["run", m, "--input", &format!("x={}", xfile.display())]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::run::missing_input") && err.contains("`b`"), "{err}");
    let (code, _, err) = qc(&["run", m, "--input", "z=x.npy"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::run::unknown_input") && err.contains("x, b"), "{err}");
    let (code, _, err) = qc(&["run", m, "--input", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::run::input_syntax"), "{err}");
    let bad = dir.path().join("bad.npy");
    std::fs::write(&bad, b"\x93NUMPY\x01\x00\x05\x00{'a'}").unwrap();
    let (code, _, err) = qc(&["run", m, "--input", &format!("x={}", bad.display())]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::npy::format"), "{err}");
}
