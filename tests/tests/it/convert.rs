//! `qc convert` end to end, on the QONNX models under `../shared/models` (qonnx-model-zoo,
//! brevitas-radioml-challenge-21, qonnx-testdata, hls4ml-example-models; the suite says so and
//! checks nothing else when the folder is missing):
//! - every QONNX model converts to QCDQ and back, the command's own check passing; the
//!   round trip gives back as many Quant nodes as the original had and no QuantizeLinear;
//! - qc's evaluator gives the same outputs for the original, the QCDQ and the round-tripped model
//!   on a seeded random batch, wherever it can run the original;
//! - against the QCDQ models QONNX's own converter made (`generated-qcdq/*_qcdq.onnx`): the same
//!   number of QuantizeLinear nodes, and Clip counts that differ exactly by the 8-bit unsigned
//!   narrow Quants QONNX leaves unclipped;
//! - bad input (a missing file, a file that is not a model) fails with a diagnostic and writes
//!   nothing.
//!
//! The number of nodes converted per model is printed (`cargo test --test it -- convert:: --nocapture`).

use std::path::{Path, PathBuf};

use qc_ir::{Model, OpKind};
use qc_passes::eval::{Array, run_graph};
use qc_tests::qc;

const FOLDERS: [&str; 4] =
    ["qonnx-model-zoo", "brevitas-radioml-challenge-21", "qonnx-testdata", "hls4ml-example-models"];

fn load(path: &Path) -> Model {
    qc::load::load(path, qc::load::LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {:?}", path.display(), miette::Report::new(e)))
        .model
}

fn count(m: &Model, kinds: &[OpKind]) -> usize {
    m.graph.ops().filter(|(_, op)| kinds.contains(&op.kind())).count()
}

const QUANT: [OpKind; 2] = [OpKind::Quant, OpKind::IntQuant];
const QONNX_OPS: [OpKind; 6] = [
    OpKind::Quant,
    OpKind::IntQuant,
    OpKind::BipolarQuant,
    OpKind::Trunc,
    OpKind::FloatQuant,
    OpKind::MultiThreshold,
];

/// The models that use a QONNX quantizer, sorted.
fn qonnx_models(shared: &Path) -> Vec<PathBuf> {
    FOLDERS
        .iter()
        .flat_map(|f| qc_tests::files_under(&shared.join("models").join(f), ".onnx"))
        .filter(|p| count(&load(p), &QONNX_OPS) > 0)
        .collect()
}

/// `N` and `M` of `converted N of M` in the summary (`M` is 0 when the summary has no `of M`).
fn converted_of(stdout: &str) -> (usize, usize) {
    let rest = stdout.split(": converted ").nth(1).unwrap_or_else(|| panic!("no `converted` in {stdout}"));
    let words: Vec<&str> = rest.split_whitespace().take(3).collect();
    let n = words[0].parse().unwrap_or_else(|_| panic!("{stdout}"));
    let m =
        if words.get(1) == Some(&"of") { words[2].parse().unwrap_or_else(|_| panic!("{stdout}")) } else { 0 };
    (n, m)
}

/// A seeded random batch for the graph inputs (symbolic dims 1), or why there is none.
fn random_inputs(m: &Model, seed: u64) -> Result<Vec<(String, Array)>, String> {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 16.0 - 8.0
    };
    let mut out = Vec::new();
    for (name, elem, dims) in qc_tests::free_inputs(m, Some(1))? {
        let n = dims.iter().product();
        let a = Array::from_f64s(elem, dims, (0..n).map(|_| next()).collect()).map_err(|e| e.to_string())?;
        out.push((name, a));
    }
    Ok(out)
}

/// The number of elements of the graph inputs that have no initializer (symbolic dims 1).
fn input_elements(m: &Model) -> usize {
    qc_tests::free_inputs(m, Some(1))
        .map(|ins| ins.iter().map(|(_, _, d)| d.iter().product::<usize>()).sum())
        .unwrap_or(0)
}

fn assert_same(name: &str, what: &str, x: &[(String, Array)], y: &[(String, Array)]) {
    assert_eq!(x.len(), y.len(), "{name}: {what}: output count");
    for ((n, a), (_, b)) in x.iter().zip(y) {
        assert_eq!((a.elem, &a.dims), (b.elem, &b.dims), "{name}: {what}: output `{n}`");
        let (va, vb) = (a.to_f64().unwrap(), b.to_f64().unwrap());
        for (i, (p, q)) in va.iter().zip(&vb).enumerate() {
            assert!(p == q || (p.is_nan() && q.is_nan()), "{name}: {what}: output `{n}`[{i}]: {p} vs {q}");
        }
    }
}

#[test]
fn every_qonnx_model_converts_to_qcdq_and_back() {
    let Some(shared) = qc_tests::shared_or_say("convert") else { return };
    let models = qonnx_models(&shared);
    assert!(models.len() >= 15, "found only {models:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for path in &models {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let start = std::time::Instant::now();
        let qcdq = dir.path().join(format!("{name}.qcdq.onnx"));
        let back = dir.path().join(format!("{name}.qonnx.onnx"));
        let args = |from: &Path, to: &str, out: &Path| {
            vec![
                "convert".to_string(),
                from.display().to_string(),
                "--to".into(),
                to.into(),
                "-o".into(),
                out.display().to_string(),
            ]
        };
        let run = |a: Vec<String>| {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let (code, out, err) = qc(&a);
            assert_eq!(code, 0, "{name}: qc {}\n{out}\n{err}", a.join(" "));
            assert!(!err.contains("qc::convert::mismatch") && !err.contains('×'), "{name}: {err}");
            out
        };
        let out = run(args(path, "qcdq", &qcdq));
        if out.contains("nothing to convert") {
            // Only quantizers without a QCDQ form (or none that convert): nothing is written.
            assert!(!qcdq.exists(), "{name}: {out}");
            assert_eq!(out.lines().count(), 1, "{name}: {out}");
            println!("{name}: {}", out.trim());
            continue;
        }
        let (converted, quants) = converted_of(&out);
        assert!(out.contains("agree exactly"), "{name}: the command did not check: {out}");
        assert!(out.contains("max |diff| = 0 ") || out.contains("not evaluated"), "{name}: {out}");
        // The whole-model check of the way back is left to the comparison below on the models
        // with large inputs (the espcn ones: six evaluator runs of a 128x128 super-resolution net).
        let mut back_args = args(&qcdq, "qonnx", &back);
        if input_elements(&load(path)) > 1 << 14 {
            back_args.push("--no-verify".into());
        }
        let back_out = run(back_args);
        let (reconverted, _) = converted_of(&back_out);

        let (original, a, b) = (load(path), load(&qcdq), load(&back));
        assert_eq!(count(&original, &QUANT), quants, "{name}");
        assert_eq!(count(&a, &[OpKind::QuantizeLinear]), converted, "{name}");
        assert_eq!(count(&a, &[OpKind::DequantizeLinear]), converted, "{name}");
        assert_eq!(count(&a, &QUANT), quants - converted, "{name}: kept Quant nodes");
        assert_eq!(reconverted, converted, "{name}: every QCDQ chain comes back");
        assert_eq!(count(&b, &QUANT), quants, "{name}: round trip");
        assert_eq!(count(&b, &[OpKind::QuantizeLinear, OpKind::DequantizeLinear, OpKind::Clip]), 0, "{name}");
        assert_eq!(count(&b, &QONNX_OPS), count(&original, &QONNX_OPS), "{name}");

        let evaluated = match random_inputs(&original, 0x9e37_79b9_7f4a_7c15) {
            Ok(inputs) => match run_graph(&original, &inputs) {
                Ok(x) => {
                    let y = run_graph(&a, &inputs).unwrap_or_else(|e| panic!("{name}: QCDQ: {e}"));
                    let z = run_graph(&b, &inputs).unwrap_or_else(|e| panic!("{name}: round trip: {e}"));
                    assert_same(&name, "original vs QCDQ", &x, &y);
                    assert_same(&name, "original vs round trip", &x, &z);
                    "same outputs".to_string()
                }
                Err(e) => format!("not evaluated here ({e}); the command checked node by node"),
            },
            Err(e) => format!("not evaluated here ({e})"),
        };
        println!(
            "{name}: converted {converted} of {quants} Quant node(s), {reconverted} back; {evaluated} [{:.1} s]",
            start.elapsed().as_secs_f64()
        );
        total += converted;
    }
    println!("{} QONNX models, {total} Quant nodes converted", models.len());
}

#[test]
fn qcdq_matches_what_qonnx_makes() {
    let Some(shared) = qc_tests::shared_or_say("convert") else { return };
    let theirs = qc_tests::files_under(&shared.join("models/generated-qcdq"), "_qcdq.onnx");
    assert!(theirs.len() >= 6, "{theirs:?}");
    let dir = tempfile::tempdir().unwrap();
    for t in theirs {
        let stem = t.file_name().unwrap().to_string_lossy().trim_end_matches("_qcdq.onnx").to_string();
        let source = FOLDERS
            .iter()
            .map(|f| shared.join("models").join(f).join(format!("{stem}.onnx")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no source model for {}", t.display()));
        let ours = dir.path().join(format!("{stem}.qcdq.onnx"));
        let (code, out, err) = qc(&[
            "convert",
            source.to_str().unwrap(),
            "--to",
            "qcdq",
            "-o",
            ours.to_str().unwrap(),
            "--no-verify",
        ]);
        assert_eq!(code, 0, "{stem}: {out}{err}");
        let (original, a, b) = (load(&source), load(&ours), load(&t));
        let ql = |m: &Model| count(m, &[OpKind::QuantizeLinear]);
        let clips = |m: &Model| count(m, &[OpKind::Clip]);
        // QONNX's converter leaves an 8-bit unsigned narrow Quant ([0, 254]) unclipped.
        let unsigned_narrow_8 = original
            .graph
            .ops()
            .filter(|(_, op)| QUANT.contains(&op.kind()))
            .filter(|(_, op)| op.qonnx_quant().is_ok_and(|q| !q.signed && q.narrow))
            .filter(|(_, op)| {
                qc_passes::quant::const_values(&original, op.inputs()[3]).is_some_and(|(_, v)| v == [8.0])
            })
            .count();
        assert_eq!(ql(&a), ql(&b), "{stem}: QuantizeLinear nodes, qc vs QONNX");
        assert_eq!(count(&a, &QUANT), count(&b, &QUANT), "{stem}: Quant nodes left");
        assert_eq!(clips(&a), clips(&b) + unsigned_narrow_8, "{stem}: Clip nodes");
        println!(
            "{stem}: QuantizeLinear {} (QONNX {}), Clip {} (QONNX {}, + {unsigned_narrow_8} unsigned narrow 8-bit), \
             Quant left {}; QONNX also writes {} Constant nodes where qc writes initializers",
            ql(&a),
            ql(&b),
            clips(&a),
            clips(&b),
            count(&a, &QUANT),
            count(&b, &[OpKind::Constant])
        );
    }
}

#[test]
fn bad_input_fails_with_a_diagnostic_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let o = out.to_str().unwrap();

    let missing = dir.path().join("missing.onnx");
    let (code, stdout, err) = qc(&["convert", missing.to_str().unwrap(), "--to", "qcdq", "-o", o]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty() && err.contains("qc::io::read") && err.contains("missing.onnx"), "{err}");
    assert!(!out.exists());

    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf \xff\xff\xff").unwrap();
    let (code, stdout, err) = qc(&["convert", garbage.to_str().unwrap(), "--to", "qonnx", "-o", o]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty() && err.contains("qc::onnx::") && err.contains("help"), "{err}");
    assert!(!out.exists());

    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, err) = qc(&["convert", empty.to_str().unwrap(), "--to", "qcdq", "-o", o]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::onnx::empty_file"), "{err}");
    assert!(!out.exists());

    let (code, _, err) = qc(&["convert", garbage.to_str().unwrap(), "--to", "qdq", "-o", o]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("qcdq") && err.contains("qonnx"), "the usage error lists the targets: {err}");
    assert!(!out.exists());
}

#[test]
fn a_small_model_converts_and_reports() {
    // A model built here, so that this test runs without ../shared: one 4-bit signed narrow Quant.
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
ir_version 8
opset_import "" 13
opset_import "qonnx.custom_op.general" 1
graph @g(%x: f32[2,8]) -> (%y: f32[2,8]) {
  init %scale = f32[] floats [0.0625]
  init %zp = f32[] floats [0.0]
  init %bits = f32[] floats [4.0]
  init %bits9 = f32[] floats [9.0]
  %q = qonnx.custom_op.general::Quant(%x, %scale, %zp, %bits) {signed = 1, narrow = 1, rounding_mode = "ROUND"} name "act"
  %y = qonnx.custom_op.general::Quant(%q, %scale, %zp, %bits9) {signed = 1, narrow = 0, rounding_mode = "ROUND"} name "wide"
}
"#;
    let model = qc_ir::text::parse_model(text).unwrap();
    let input = dir.path().join("in.onnx");
    let out = dir.path().join("out.onnx");
    std::fs::write(&input, prost::Message::encode_to_vec(&qc::onnx::export_model(&model))).unwrap();
    let (code, stdout, err) =
        qc(&["convert", input.to_str().unwrap(), "--to", "qcdq", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("converted 1 of 2 Quant node(s)"), "{stdout}");
    assert!(stdout.contains("1 with a Clip"), "{stdout}");
    assert!(stdout.contains("kept 1: 1 because the bitwidth is not a whole number in [2, 8]"), "{stdout}");
    assert!(stdout.contains("max |diff| = 0"), "{stdout}");
    assert!(
        err.contains("1 Quant node(s) kept") && err.contains("`wide`") && err.contains("(bitwidth 9)"),
        "{err}"
    );
    let converted = load(&out);
    assert_eq!(count(&converted, &[OpKind::Clip]), 1);

    let nowhere = dir.path().join("no/such/folder/out.onnx");
    let (code, stdout, err) =
        qc(&["convert", input.to_str().unwrap(), "--to", "qcdq", "-o", nowhere.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty() && err.contains("qc::io::write") && err.contains("folder"), "{err}");
    assert!(!nowhere.exists());

    let (code, stdout, _) = qc(&[
        "convert",
        out.to_str().unwrap(),
        "--to",
        "qonnx",
        "-o",
        input.to_str().unwrap(),
        "--no-verify",
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("converted 1 DequantizeLinear node(s) to Quant") && stdout.contains("Not checked"),
        "{stdout}"
    );
    assert_eq!(count(&load(&input), &QUANT), 2);
}

/// `qc convert` on the model of `text`, written to a temporary folder: exit code, stdout, stderr,
/// and whether the output was written.
fn convert_text(text: &str, to: &str) -> (u8, String, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let model = qc_ir::text::parse_model(text).unwrap();
    let input = dir.path().join("in.onnx");
    let out = dir.path().join("out.onnx");
    std::fs::write(&input, prost::Message::encode_to_vec(&qc::onnx::export_model(&model))).unwrap();
    let (code, stdout, err) =
        qc(&["convert", input.to_str().unwrap(), "--to", to, "-o", out.to_str().unwrap()]);
    (code, stdout, err, out.exists())
}

#[test]
fn a_model_with_nothing_to_convert_says_so_and_writes_nothing() {
    let float = r#"
ir_version 8
opset_import "" 13
graph @g(%x: f32[4,8]) -> (%y: f32[4,8]) {
  %y = ""::Relu(%x) name "relu"
}
"#;
    for to in ["qcdq", "qonnx"] {
        let (code, stdout, err, written) = convert_text(float, to);
        assert_eq!(code, 0, "{stdout}{err}");
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains("nothing to convert") && stdout.contains("not written"), "{stdout}");
        assert!(!stdout.contains("Checked"), "an unchanged model is not verified: {stdout}");
        assert!(!written);
    }
    let (_, stdout, _, _) = convert_text(float, "qcdq");
    assert!(stdout.contains("the model has no QONNX Quant node"), "{stdout}");
}

#[test]
fn the_whole_model_check_runs_on_one_row_when_the_model_keeps_rows_apart() {
    let model = |tail: &str, out: &str| {
        format!(
            r#"
ir_version 8
opset_import "" 13
opset_import "qonnx.custom_op.general" 1
graph @g(%x: f32[512,8]) -> (%y: f32[{out}]) {{
  init %scale = f32[] floats [0.0625]
  init %zp = f32[] floats [0.0]
  init %bits = f32[] floats [4.0]
  init %b = f32[8] floats [1, 2, 3, 4, 5, 6, 7, 8]
  %q = qonnx.custom_op.general::Quant(%x, %scale, %zp, %bits) {{signed = 1, narrow = 0, rounding_mode = "ROUND"}} name "act"
  %s = ""::Add(%q, %b) name "bias"
  {tail}
}}
"#
        )
    };
    let rows = model(r#"%y = ""::Relu(%s) name "relu""#, "512,8");
    let (code, stdout, err, written) = convert_text(&rows, "qcdq");
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(written);
    assert!(stdout.contains("batch 1 instead of the declared 512"), "{stdout}");
    let mixed = model(r#"%y = ""::Transpose(%s) {perm = [1, 0]} name "swap""#, "8,512");
    let (code, stdout, err, _) = convert_text(&mixed, "qcdq");
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("the declared batch of 512: op `swap` (Transpose) may mix its rows"), "{stdout}");
}
