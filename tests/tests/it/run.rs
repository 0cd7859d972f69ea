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

/// A declaration whose dims are sizes, names (`N`) or unknown (`?`).
fn decl(name: &str, dims: &[&str]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::dimension::Value as D;
    let mut v = fx::value_info(name, DataType::Float, &vec![1; dims.len()]);
    let Some(pb::type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
        unreachable!("value_info declares a tensor")
    };
    for (d, s) in t.shape.as_mut().unwrap().dim.iter_mut().zip(dims) {
        d.value = match *s {
            "?" => None,
            s => Some(s.parse().map_or_else(|_| D::DimParam(s.into()), D::DimValue)),
        };
    }
    v
}

/// Writes an array of `dims` (all ones) of `elem` as a .npy file in `dir`.
fn npy(dir: &std::path::Path, file: &str, elem: ElemType, dims: &[usize]) -> String {
    let n: usize = dims.iter().product();
    let raw: Vec<u8> = match elem {
        ElemType::F32 => (0..n).flat_map(|_| 1.0f32.to_le_bytes()).collect(),
        ElemType::F64 => (0..n).flat_map(|_| 1.0f64.to_le_bytes()).collect(),
        _ => unreachable!("the tests use f32 and f64"),
    };
    let path = dir.join(file);
    std::fs::write(&path, qc::npy::write(elem, dims, &raw).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn inputs_are_checked_against_the_declared_types_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    // y = a + b, with a: f32[N,3] and b: f32[N,?].
    let g = pb::GraphProto {
        node: vec![node("Add", "", "add", &["a", "b"], &["y"], vec![])],
        input: vec![decl("a", &["N", "3"]), decl("b", &["N", "?"])],
        output: vec![decl("y", &["N", "3"])],
        ..Default::default()
    };
    let model = dir.path().join("m.onnx");
    std::fs::write(&model, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    let m = model.to_str().unwrap();
    let outdir = dir.path().join("out");
    let d = dir.path();
    let run = |a: &str, b: &str| {
        qc(&[
            "run",
            m,
            "--input",
            &format!("a={a}"),
            "--input",
            &format!("b={b}"),
            "--output-dir",
            outdir.to_str().unwrap(),
        ])
    };

    // `N` binds to 2 in both; `?` takes 1 (broadcast by Add).
    let (code, out, err) =
        run(&npy(d, "a23.npy", ElemType::F32, &[2, 3]), &npy(d, "b21.npy", ElemType::F32, &[2, 1]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("y: f32[2,3] = [2.000000"), "{out}");
    std::fs::remove_dir_all(&outdir).unwrap();

    let b23 = npy(d, "b23.npy", ElemType::F32, &[2, 3]);
    let cases: [(String, &str, &[&str]); 4] = [
        (
            npy(d, "a23f8.npy", ElemType::F64, &[2, 3]),
            "qc::run::input_type",
            &["graph input `a`", "declared f32[N,3], given f64[2,3]", "a.astype(numpy.float32)"],
        ),
        (
            npy(d, "a231.npy", ElemType::F32, &[2, 3, 1]),
            "qc::run::input_rank",
            &["graph input `a` has rank 3, not 2", "declared f32[N,3], given f32[2,3,1]"],
        ),
        (
            npy(d, "a24.npy", ElemType::F32, &[2, 4]),
            "qc::run::input_dim",
            &["dimension 1 is 4, not 3", "declared f32[N,3], given f32[2,4]"],
        ),
        (
            npy(d, "a13.npy", ElemType::F32, &[1, 3]),
            "qc::run::input_dim_binding",
            &[
                "graph input `b`: dimension 0 (`N`) is 2, but `N` is 1 in input `a`",
                "declared f32[N,?], given f32[2,3]",
            ],
        ),
    ];
    for (a, code_name, texts) in &cases {
        let (code, out, err) = run(a, &b23);
        let err = unwrapped(&err);
        assert_eq!(code, 2, "{code_name}: {out}{err}");
        assert!(err.contains(code_name), "{err}");
        for t in *texts {
            assert!(err.contains(t), "{code_name}: `{t}` not in {err}");
        }
        assert!(out.is_empty(), "nothing ran: {out}");
        assert!(!outdir.exists(), "nothing written");
    }

    // Every problem at once: a wrong type and dim, an unknown name, a missing input.
    let a = npy(d, "a24f8.npy", ElemType::F64, &[2, 4]);
    let (code, out, err) = qc(&["run", m, "--input", &format!("a={a}"), "--input", "z=z.npy"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("qc::run::inputs") && err.contains("4 problems"), "{err}");
    for code_name in
        ["qc::run::unknown_input", "qc::run::missing_input", "qc::run::input_type", "qc::run::input_dim"]
    {
        assert!(err.contains(code_name), "{code_name} not in {err}");
    }
    let (code, _, err) = qc(&[
        "run",
        m,
        "--input",
        &format!("a={a}"),
        "--input",
        &format!("a={a}"),
        "--input",
        &format!("b={b23}"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::run::duplicate_input"), "{err}");
}

/// Standard error with miette's line wrapping undone: words joined by single spaces, the
/// margin's `│` left out.
fn unwrapped(err: &str) -> String {
    err.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ")
}
