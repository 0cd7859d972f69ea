//! `qc convert --to channels-last` and the `to-channels-last` pass:
//! - every model under `../shared/models` with a Conv, MaxPool or BatchNormalization to wrap
//!   converts (or is refused with `qc::convert::channels_last_unsupported`, naming the node), no
//!   default-domain Conv/MaxPool/BatchNormalization of rank 3 or 4 is left, and qc's evaluator
//!   gives the same outputs before and after on a seeded random batch wherever it can run the
//!   original within the debug-build budget (the larger ones are listed as not evaluated; the
//!   `bench/channels_last_vs_qonnx.sh` run checks them all in a release build);
//! - the hls4ml channels-last models (`*_ch_last.onnx`, already converted by qonnx): the
//!   evaluator runs their wrappers; put back into channels-first form (each wrapper as Transposes
//!   around the standard op) and converted again, they come back with the same wrappers, no
//!   Transpose, and the same outputs, on a smaller input than declared (32 x 32) so that the
//!   debug build stays quick;
//! - the command: a summary, a model that loads back, and bad input (a 3-D Conv, a MaxPool whose
//!   Indices are read, a model with nothing to wrap) with a diagnostic and nothing written.
//!
//! The suite says so and checks nothing else when `../shared` is missing. Per-model results are
//! printed (`cargo test -p qc-tests --test it -- channels_last:: --nocapture`).

use std::path::{Path, PathBuf};

use prost::Message as _;

use qc_ir::op::CHANNELS_LAST_DOMAIN;
use qc_ir::rng::SplitMix64;
use qc_ir::{Dim, ElemType, Model, OpKind, ValueType, dims};
use qc_passes::eval::{Array, run_graph};
use qc_passes::passes::to_channels_last;
use qc_passes::{ManagerOptions, PassManager, Pipeline};
use qc_tests::qc;

const PIPELINE: &str = "infer-shapes,to-channels-last,eliminate-dead,infer-shapes";

/// Multiply-accumulates above which a model is not evaluated in the debug build.
const EVAL_BUDGET_MACS: u64 = 40_000_000;

fn load(path: &Path) -> Model {
    qc::load::load(path, qc::load::LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {:?}", path.display(), miette::Report::new(e)))
        .model
}

fn run_pipeline(m: &mut Model, pipeline: &str) -> Result<(), String> {
    let mut manager = PassManager::new(
        Pipeline::parse(pipeline).unwrap(),
        ManagerOptions { verify_each: true, stop_after: None },
    )
    .unwrap();
    manager.run(m, &mut |_, _| {}).map(|_| ()).map_err(|e| format!("{:?}", miette::Report::new(e)))
}

/// The standard ops qonnx wraps, on 3-D or 4-D data, left in the main graph.
fn unwrapped(m: &Model) -> Vec<String> {
    let g = &m.graph;
    g.ops()
        .filter(|(_, op)| {
            op.domain().is_empty()
                && matches!(op.kind(), OpKind::Conv | OpKind::MaxPool | OpKind::BatchNormalization)
                && op
                    .inputs()
                    .first()
                    .copied()
                    .flatten()
                    .and_then(|x| dims::rank(g, x))
                    .is_some_and(|r| r == 3 || r == 4)
        })
        .map(|(id, _)| g.op_label(id))
        .collect()
}

fn wrappers(m: &Model) -> usize {
    m.graph.ops().filter(|(_, op)| op.domain() == CHANNELS_LAST_DOMAIN).count()
}

fn transposes(m: &Model) -> usize {
    m.graph.ops().filter(|(_, op)| op.kind() == OpKind::Transpose).count()
}

/// The multiply-accumulates of the Convs, Gemms and MatMuls whose dims are known.
fn macs(m: &Model) -> u64 {
    let g = &m.graph;
    let known = |v: Option<qc_ir::ValueId>| v.and_then(|v| dims::known(g, v).ok());
    let prod = |d: &[u64]| d.iter().product::<u64>();
    g.ops()
        .map(|(_, op)| {
            let (x, w, y) = (
                known(op.inputs().first().copied().flatten()),
                known(op.inputs().get(1).copied().flatten()),
                known(op.outputs().first().copied().flatten()),
            );
            match (op.op_type(), x, w, y) {
                ("Conv", _, Some(w), Some(y)) => prod(&y) * prod(&w[1..]),
                ("Gemm" | "MatMul", Some(x), _, Some(y)) => prod(&y) * x.last().copied().unwrap_or(1),
                _ => 0,
            }
        })
        .sum()
}

/// Seeded random inputs for the graph inputs of `m` (symbolic dims 1), or why there are none.
/// `spatial` replaces every dim but the first and last (channels-last models at a smaller size).
fn inputs(m: &Model, spatial: Option<usize>) -> Result<Vec<(String, Array)>, String> {
    let g = &m.graph;
    let mut rng = SplitMix64::new(0x5eed_0003);
    let mut out = Vec::new();
    for &v in &g.inputs {
        let value = g.value(v);
        if value.init.is_some() {
            continue;
        }
        let Some(ValueType::Tensor { elem: Some(elem), shape: Some(shape) }) =
            value.ty.as_ref().and_then(|t| t.ty.clone())
        else {
            return Err(format!("input `{}` has no tensor type", value.name));
        };
        let mut d: Vec<usize> =
            shape.dims.iter().map(|d| if let Dim::Known(n) = d { *n as usize } else { 1 }).collect();
        if let Some(s) = spatial {
            let n = d.len();
            for x in d.iter_mut().take(n.saturating_sub(1)).skip(1) {
                *x = s;
            }
        }
        if !matches!(elem, ElemType::F32) {
            return Err(format!("input `{}` is {elem}", value.name));
        }
        let n: usize = d.iter().product();
        let data = (0..n).map(|_| rng.symmetric() * 4.0).collect();
        out.push((value.name.clone(), Array::from_f64s(elem, d, data).map_err(|e| e.to_string())?));
    }
    Ok(out)
}

/// Runs both models on the same inputs; the largest absolute difference, or why they differ.
fn compare(before: &Model, after: &Model, ins: &[(String, Array)]) -> Result<f64, String> {
    let x = run_graph(before, ins).map_err(|e| format!("before: {e}"))?;
    let y = run_graph(after, ins).map_err(|e| format!("after: {e}"))?;
    let mut max = 0.0f64;
    for ((name, a), (_, b)) in x.iter().zip(&y) {
        if (a.elem, &a.dims) != (b.elem, &b.dims) {
            return Err(format!(
                "output `{name}`: {}{:?} before, {}{:?} after",
                a.elem, a.dims, b.elem, b.dims
            ));
        }
        let (va, vb) = (a.to_f64().map_err(|e| e.to_string())?, b.to_f64().map_err(|e| e.to_string())?);
        for (i, (p, q)) in va.iter().zip(&vb).enumerate() {
            if p == q || (p.is_nan() && q.is_nan()) {
                continue;
            }
            let d = (p - q).abs();
            // One unit in the last place of f32 at this magnitude.
            let ulp = f64::from(f32::EPSILON) * p.abs().max(q.abs()).max(f64::from(f32::MIN_POSITIVE));
            if d > ulp {
                return Err(format!("output `{name}`[{i}]: {p} before, {q} after"));
            }
            max = max.max(d);
        }
    }
    Ok(max)
}

#[test]
fn shared_models_keep_their_outputs() {
    let Some(shared) = qc_tests::shared_or_say("channels_last") else { return };
    let mut converted = 0;
    let mut evaluated = 0;
    for path in qc_tests::files_under(&shared.join("models"), ".onnx") {
        let name = path.strip_prefix(&shared).unwrap_or(&path).display().to_string();
        let mut original = load(&path);
        if run_pipeline(&mut original, "infer-shapes").is_err() {
            eprintln!("{name}: shape inference fails, not converted");
            continue;
        }
        let problems = to_channels_last::unconvertible(&original);
        if !problems.is_empty() {
            assert!(
                problems.iter().all(|p| !p.node.is_empty() && !p.reason.is_empty()),
                "{name}: {problems:?}"
            );
            eprintln!("{name}: refused: {}", problems[0]);
            continue;
        }
        let before_wrappers = wrappers(&original);
        let mut model = original.clone();
        run_pipeline(&mut model, PIPELINE).unwrap_or_else(|e| panic!("{name}: {e}"));
        let wrapped = wrappers(&model) - before_wrappers;
        if wrapped == 0 {
            assert_eq!(unwrapped(&original), Vec::<String>::new(), "{name}");
            continue;
        }
        converted += 1;
        assert_eq!(unwrapped(&model), Vec::<String>::new(), "{name}: left channels-first");
        let m = macs(&original);
        let status = if m > EVAL_BUDGET_MACS {
            format!("not evaluated ({m} MACs, over the debug budget)")
        } else {
            match inputs(&original, None) {
                Err(why) => format!("not evaluated ({why})"),
                Ok(ins) => match run_graph(&original, &ins) {
                    Err(e) => format!("not evaluated (the evaluator cannot run the original: {e})"),
                    Ok(_) => {
                        let max = compare(&original, &model, &ins).unwrap_or_else(|e| panic!("{name}: {e}"));
                        evaluated += 1;
                        format!("same outputs (max |diff| {max:e})")
                    }
                },
            }
        };
        eprintln!(
            "{name}: {wrapped} wrapped, Transposes {} -> {}, nodes {} -> {}; {status}",
            transposes(&original),
            transposes(&model),
            original.graph.op_count(),
            model.graph.op_count()
        );
    }
    eprintln!("channels_last: {converted} model(s) converted, {evaluated} evaluated before and after");
    assert!(converted >= 10, "only {converted} models converted");
    assert!(evaluated >= 5, "only {evaluated} models evaluated");
}

#[test]
fn hls4ml_channels_last_models_round_trip() {
    let Some(shared) = qc_tests::shared_or_say("channels_last") else { return };
    let dir = shared.join("models/hls4ml-example-models");
    let models: Vec<PathBuf> = qc_tests::files_under(&dir, "_ch_last.onnx").into_iter().collect();
    assert_eq!(models.len(), 3, "the three hls4ml *_ch_last models");
    for path in models {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut original = load(&path);
        run_pipeline(&mut original, "infer-shapes").unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = wrappers(&original);
        assert!(n > 0, "{name}");
        let mut first = original.clone();
        // The channels-first model qonnx's conversion starts from, computing the same.
        let unwrapped =
            to_channels_last::unwrap_wrappers(&mut first).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(unwrapped, n, "{name}");
        run_pipeline(&mut first, "infer-shapes").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(wrappers(&first), 0, "{name}");
        let mut again = first.clone();
        run_pipeline(&mut again, PIPELINE).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(wrappers(&again), n, "{name}: the same wrappers");
        assert_eq!(transposes(&again), 0, "{name}: every Transpose cancels");
        let ins = inputs(&original, Some(32)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let a = compare(&original, &first, &ins).unwrap_or_else(|e| panic!("{name}, unwrapped: {e}"));
        let b = compare(&first, &again, &ins).unwrap_or_else(|e| panic!("{name}, converted again: {e}"));
        eprintln!(
            "{name}: {n} wrappers; channels-first form {} Transposes, converted again 0; max |diff| {a:e} and {b:e}",
            transposes(&first)
        );
    }
}

/// Writes the model in `text` as ONNX to `dir/name`.
fn write_model(dir: &Path, name: &str, text: &str) -> PathBuf {
    let m = qc_ir::text::parse_model(text).unwrap_or_else(|e| panic!("{name}: {:?}", miette::Report::new(e)));
    let path = dir.join(name);
    std::fs::write(&path, qc::onnx::export_model(&m).encode_to_vec()).unwrap();
    path
}

const SMALL: &str = r#"
ir_version 8
opset_import "" 13

graph @g(%x: f32[1,2,4,4]) -> (%y: f32[1,3,2,2]) {
  init %w = f32[3,2,1,1] floats [0.5, -1.0, 1.5, 0.25, 1.0, -0.5]
  init %b = f32[3] floats [0.1, -0.1, 0.2]
  %c = ""::Conv(%x, %w, %b) name "conv"
  %r = ""::Relu(%c) name "relu"
  %y = ""::MaxPool(%r) {kernel_shape = [2, 2], strides = [2, 2]} name "pool"
}
"#;

#[test]
fn command_writes_a_checked_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_model(dir.path(), "small.onnx", SMALL);
    let output = dir.path().join("small_cl.onnx");
    let (code, out, err) =
        qc(&["convert", input.to_str().unwrap(), "--to", "channels-last", "-o", output.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrapped 2 op(s) in qonnx.custom_op.channels_last (1 Conv, 1 MaxPool)"), "{out}");
    assert!(out.contains("Transposes: 0 -> 2"), "{out}");
    assert!(out.contains("Checked with qc's evaluator on 3 random batches"), "{out}");
    assert!(out.contains("0 not bit-identical"), "{out}");
    let m = load(&output);
    assert_eq!(wrappers(&m), 2);
    assert_eq!(m.opset_version(CHANNELS_LAST_DOMAIN), Some(13));
    let _ = qc::onnx::export_model(&m).encode_to_vec();
}

#[test]
fn bad_input_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "conv3d",
            r#"
ir_version 8
opset_import "" 13

graph @g(%x: f32[1,1,2,2,2]) -> (%y: f32[1,1,2,2,2]) {
  init %w = f32[1,1,1,1,1] floats [2.0]
  %y = ""::Conv(%x, %w) name "conv3d"
}
"#,
            "node `conv3d` (Conv) cannot be converted to channels-last: its data is 5-D",
        ),
        (
            "indices",
            r#"
ir_version 8
opset_import "" 13

graph @g(%x: f32[1,1,2,2]) -> (%y: f32[1,1,1,1], %i: i64[1,1,1,1]) {
  %y, %i = ""::MaxPool(%x) {kernel_shape = [2, 2]} name "pool"
}
"#,
            "node `pool` (MaxPool) cannot be converted to channels-last: its output 1 (`i`) is read",
        ),
    ];
    for (name, text, message) in cases {
        let input = write_model(dir.path(), &format!("{name}.onnx"), text);
        let output = dir.path().join(format!("{name}_cl.onnx"));
        let (code, out, err) = qc(&[
            "convert",
            input.to_str().unwrap(),
            "--to",
            "channels-last",
            "-o",
            output.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(err.contains("qc::convert::channels_last_unsupported"), "{name}: {err}");
        assert!(err.contains(message), "{name}: {err}");
        assert!(!output.exists(), "{name}: written");
    }
    // Nothing to wrap: said so, nothing written, exit 0.
    let input = write_model(
        dir.path(),
        "dense.onnx",
        r#"
ir_version 8
opset_import "" 13

graph @g(%x: f32[1,4]) -> (%y: f32[1,4]) {
  %y = ""::Relu(%x) name "relu"
}
"#,
    );
    let output = dir.path().join("dense_cl.onnx");
    let (code, out, err) =
        qc(&["convert", input.to_str().unwrap(), "--to", "channels-last", "-o", output.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing to convert"), "{out}");
    assert!(!output.exists());
}
