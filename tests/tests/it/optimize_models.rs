//! The proof that `qc optimize`'s default pipeline, and its optional rewrites (Kneron's options
//! and `fuse-attention`, checked on the models where one of them fires), keep the function: for
//! every generated
//! fixture, every model under `../shared/models` and the ONNX backend `simple` and `pytorch-*`
//! models, the default pipeline runs in-process and
//! - the result verifies, and the node count never grows (but where `opt-matmul` splits);
//! - a second run of the pipeline changes nothing;
//! - every BatchNormalization that reads a Conv's output disappears;
//! - qc's evaluator gives the same outputs on the original and the optimized model, on seeded
//!   random inputs (max |diff| <= 1e-4 x max(1, max |value|)).
//!
//! Models the evaluator cannot run (symbolic dims, unsupported ops, inputs over 50M elements,
//! or more multiply-accumulates than a debug-build evaluation can afford) are listed with the
//! reason; they are still optimized and checked for everything but outputs. A table of node
//! counts before -> after per model goes to stderr (`--nocapture` shows it).

use std::path::{Path, PathBuf};

use prost::Message;
use qc::fixtures as fx;
use qc_ir::{ElemType, Model};
use qc_passes::Pipeline;
use qc_passes::eval::{Array, run_graph};
use qc_passes::manager::{ManagerOptions, PassManager, RunReport};
use qc_passes::registry::DEFAULT_PIPELINE;

/// Inputs with more elements than this are not evaluated.
const MAX_INPUT_ELEMENTS: f64 = 50e6;
/// Models with more multiply-accumulates than this are not evaluated (the reference evaluator
/// is a plain loop nest; `QC_OPTIMIZE_EVAL_MACS` raises the budget).
const DEFAULT_MAX_MACS: f64 = 2e8;

/// The default pipeline with every optional rewrite of `qc optimize` that keeps the op count
/// bounded and is idempotent: Kneron's `--convert-f16`, `--defuse-gaps`, `--replace-dilated-conv`
/// and `--opt-matmul` (with small limits, so that it splits), and `fuse-attention`.
const OPTIONAL_PIPELINE: &str = "remove-static-inputs,convert-f16,infer-shapes,defuse-gaps{form=reduce-mean},\
fixpoint(fold-constants,fold-reshape-own-dims,eliminate-identity,eliminate-common-subexpressions,\
fuse-consecutive-transposes,fuse-consecutive-reshapes,fuse-consecutive-slices,eliminate-layout-roundtrips,\
fuse-transpose-into-gemm,fuse-matmul-add-into-gemm,fuse-normalization,fuse-activations,fuse-attention,\
fuse-mul-add-into-bn,fuse-bn-into-conv,fuse-scale-bias-into-conv,replace-dilated-conv,fuse-pad-into-conv,\
fuse-qkv{max-n=64},eliminate-dead,infer-shapes){max=20},opt-matmul{max-k=64,max-n=64},infer-shapes";

/// The passes of [`OPTIONAL_PIPELINE`] that the default pipeline does not have.
const OPTIONAL_PASSES: [&str; 5] =
    ["convert-f16", "defuse-gaps", "fuse-attention", "replace-dilated-conv", "opt-matmul"];

fn run_pipeline(model: &mut Model, text: &str) -> Result<RunReport, String> {
    let pipeline = Pipeline::parse(text).map_err(|e| format!("{e:?}"))?;
    let mut manager = PassManager::new(pipeline, ManagerOptions { verify_each: true, stop_after: None })
        .map_err(|e| format!("{e:?}"))?;
    manager.run(model, &mut |_, _| {}).map_err(|e| format!("{:?}", miette::Report::new(e)))
}

/// BatchNormalizations whose data input is written by a default-domain Conv: `(all, foldable)`,
/// where foldable ones have constant parameters and a constant Conv weight and bias (an
/// initializer that is also a graph input is a default the caller may override, so it is not a
/// constant; neither is the output of a quantizer that is kept), and the Conv's output feeds only
/// the BatchNormalization.
fn bn_after_conv(m: &Model) -> (usize, usize) {
    let g = &m.graph;
    let constant =
        |v: Option<qc_ir::ValueId>| v.is_none_or(|v| g.value(v).init.is_some() && !g.inputs.contains(&v));
    let (mut all, mut foldable) = (0, 0);
    for (_, op) in g.ops().filter(|(_, op)| op.domain().is_empty() && op.op_type() == "BatchNormalization") {
        let Some(conv) = op.inputs().first().copied().flatten().and_then(|v| g.value(v).producer()) else {
            continue;
        };
        let c = g.op(conv);
        if !(c.domain().is_empty() && c.op_type() == "Conv") {
            continue;
        }
        all += 1;
        // The Conv's output must feed only this BatchNormalization: folding into a shared Conv
        // would change what its other readers see (onnx-simplifier keeps those too).
        let conv_out = c.outputs().first().copied().flatten();
        let single_reader = conv_out.is_some_and(|v| g.value(v).uses().len() == 1 && !g.outputs.contains(&v));
        if single_reader
            && op.inputs().len() == 5
            && op.inputs()[1..].iter().all(|&v| v.is_some() && constant(v))
            && c.inputs().iter().skip(1).all(|&v| constant(v))
        {
            foldable += 1;
        }
    }
    (all, foldable)
}

/// A small deterministic generator (xorshift), seeded by the model's name.
struct Rng(u64);
impl Rng {
    fn new(seed: &str) -> Rng {
        Rng(seed.bytes().fold(0x9E37_79B9_7F4A_7C15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3))
            | 1)
    }
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Seeded random inputs for every graph input without an initializer, or why there are none.
fn random_inputs(m: &Model, seed: &str) -> Result<Vec<(String, Array)>, String> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut total = 0f64;
    for (name, elem, dims) in qc_tests::free_inputs(m, None)? {
        let n: f64 = dims.iter().map(|&d| d as f64).product();
        total += n;
        if total > MAX_INPUT_ELEMENTS {
            return Err(format!("inputs have over {MAX_INPUT_ELEMENTS:e} elements"));
        }
        let values: Vec<f64> = match elem {
            ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16 => {
                (0..n as usize).map(|_| rng.next() * 2.0 - 1.0).collect()
            }
            ElemType::Bool => (0..n as usize).map(|_| f64::from(rng.next() < 0.5)).collect(),
            ElemType::String => return Err(format!("input `{name}` is a string tensor")),
            _ => (0..n as usize).map(|_| (rng.next() * 3.0).floor()).collect(),
        };
        let a = Array::from_f64s(elem, dims, values).map_err(|e| format!("input `{name}`: {e}"))?;
        out.push((name, a));
    }
    Ok(out)
}

/// The largest `|before - after|` relative to the tolerance's scale, or why outputs differ in
/// kind. `Ok(d)` with `d <= 1e-4` passes.
fn output_diff(x: &[(String, Array)], y: &[(String, Array)]) -> Result<f64, String> {
    if x.len() != y.len() {
        return Err(format!("{} outputs before, {} after", x.len(), y.len()));
    }
    let mut worst = 0f64;
    for ((n, a), (_, b)) in x.iter().zip(y) {
        if (a.elem, &a.dims) != (b.elem, &b.dims) {
            return Err(format!(
                "output `{n}`: {} {:?} before, {} {:?} after",
                a.elem, a.dims, b.elem, b.dims
            ));
        }
        let (Ok(va), Ok(vb)) = (a.to_f64(), b.to_f64()) else {
            if a != b {
                return Err(format!("output `{n}` differs"));
            }
            continue;
        };
        let scale = va.iter().filter(|v| v.is_finite()).fold(1f64, |m, v| m.max(v.abs()));
        for (i, (p, q)) in va.iter().zip(&vb).enumerate() {
            if p == q || (p.is_nan() && q.is_nan()) {
                continue;
            }
            let d = (p - q).abs() / scale;
            if d.is_nan() {
                return Err(format!("output `{n}`[{i}]: {p} before, {q} after"));
            }
            worst = worst.max(d);
        }
    }
    Ok(worst)
}

fn max_macs() -> f64 {
    std::env::var("QC_OPTIMIZE_EVAL_MACS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_MAX_MACS)
}

#[derive(Default)]
struct Tally {
    /// Whether [`OPTIONAL_PIPELINE`] is checked instead of the default.
    optional: bool,
    rows: Vec<String>,
    failures: Vec<String>,
    not_evaluated: Vec<String>,
    not_loaded: Vec<String>,
    evaluated: usize,
    optimized: usize,
}

impl Tally {
    fn check(&mut self, name: &str, original: Model) {
        let mut optimized = original.clone();
        let before = original.graph.op_count();
        let bn_conv = bn_after_conv(&original);
        let pipeline = if self.optional { OPTIONAL_PIPELINE } else { DEFAULT_PIPELINE };
        let report = match run_pipeline(&mut optimized, pipeline) {
            Ok(r) => r,
            Err(e) => {
                self.failures.push(format!("{name}: the pipeline failed: {e}"));
                return;
            }
        };
        self.optimized += 1;
        let used: Vec<&str> = report.runs.iter().filter(|r| r.changed).map(|r| r.pass).collect();
        let optional_used: Vec<&str> = used.iter().copied().filter(|p| OPTIONAL_PASSES.contains(p)).collect();
        if self.optional && optional_used.is_empty() {
            // Nothing beyond the default pipeline fired: the default's proof covers this model.
            return;
        }
        let after = optimized.graph.op_count();
        let problems = qc_ir::verify_model(&optimized);
        if !problems.is_empty() {
            self.failures.push(format!("{name}: the result does not verify: {problems:?}"));
        }
        if after > before && !optional_used.contains(&"opt-matmul") {
            self.failures.push(format!("{name}: {before} -> {after} nodes"));
        }
        let (left, left_foldable) = bn_after_conv(&optimized);
        if left_foldable > 0 {
            self.failures.push(format!(
                "{name}: {left_foldable} BatchNormalization(s) after a Conv with constant weights are left"
            ));
        }
        for f in report.fixpoints.iter().filter(|f| f.stop != qc_passes::manager::FixpointStop::Converged) {
            self.failures.push(format!("{name}: the fixpoint did not converge: {}", f.stop_text()));
        }
        let mut again = optimized.clone();
        match run_pipeline(&mut again, pipeline) {
            Ok(r) => {
                let changed: Vec<&str> = r.runs.iter().filter(|r| r.changed).map(|r| r.pass).collect();
                if !changed.is_empty() {
                    self.failures.push(format!("{name}: a second run changed the model ({changed:?})"));
                }
            }
            Err(e) => self.failures.push(format!("{name}: the second run failed: {e}")),
        }
        let macs = qc_passes::cost::inference_cost(&original, &Default::default())
            .total
            .get("total_macs")
            .copied()
            .unwrap_or(0.0);
        let bn = match (bn_conv.0, left) {
            (0, _) => String::new(),
            (n, 0) => format!("; {n} BN after Conv folded"),
            (n, k) => format!(
                "; {} of {n} BN after Conv folded, {k} kept (Conv output shared, or weights behind a quantizer)",
                n - k
            ),
        };
        let eval = if macs > max_macs() {
            Err(format!("{macs:.3e} MACs over the evaluation budget {:.0e}", max_macs()))
        } else {
            random_inputs(&original, name).and_then(|inputs| {
                let x = run_graph(&original, &inputs).map_err(|e| format!("the evaluator: {e}"))?;
                Ok((inputs, x))
            })
        };
        let verdict = match eval {
            Err(why) => {
                self.not_evaluated.push(format!("{name}: {why}"));
                "not evaluated".to_string()
            }
            Ok((inputs, x)) => match run_graph(&optimized, &inputs) {
                Err(e) => {
                    self.failures.push(format!("{name}: the optimized model does not evaluate: {e}"));
                    "FAIL".into()
                }
                Ok(y) => match output_diff(&x, &y) {
                    Ok(d) if d <= 1e-4 => {
                        self.evaluated += 1;
                        format!("same outputs (rel. max diff {d:.1e})")
                    }
                    Ok(d) => {
                        self.failures.push(format!("{name}: outputs differ (rel. max diff {d:e})"));
                        "FAIL".into()
                    }
                    Err(e) => {
                        self.failures.push(format!("{name}: {e}"));
                        "FAIL".into()
                    }
                },
            },
        };
        let by = if self.optional { format!(" (by {})", optional_used.join(", ")) } else { String::new() };
        self.rows.push(format!("| {name} | {before} -> {after}{by} | {verdict}{bn} |"));
    }

    fn load_and_check(&mut self, name: &str, path: &Path) {
        match qc::load::load(path, Default::default()) {
            Ok(l) => self.check(name, l.model),
            Err(e) => self.not_loaded.push(format!("{name}: {e}")),
        }
    }
}

fn fixtures() -> Vec<(&'static str, qc::onnx::proto::ModelProto)> {
    vec![
        ("fixture tiny_qonnx", fx::tiny_qonnx()),
        ("fixture deep_mlp(8)", fx::deep_mlp(8)),
        ("fixture transformer_like(2)", fx::transformer_like(2)),
    ]
}

fn backend_models(shared: &Path) -> Vec<(String, PathBuf)> {
    let root = shared.join("conformance/onnx-backend");
    let mut out = Vec::new();
    for suite in ["simple", "pytorch-converted", "pytorch-operator"] {
        for e in std::fs::read_dir(root.join(suite)).into_iter().flatten().flatten() {
            let p = e.path().join("model.onnx");
            if p.is_file() {
                out.push((format!("{suite}/{}", e.file_name().to_string_lossy()), p));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_default_pipeline_keeps_every_models_function() {
    check_every_model(false);
}

/// The same proof for the rewrites not in the default pipeline (Kneron's options and
/// `fuse-attention`), on every model where one of them changes something.
#[test]
fn the_optional_rewrites_keep_every_models_function() {
    check_every_model(true);
}

fn check_every_model(optional: bool) {
    let start = std::time::Instant::now();
    let mut t = Tally { optional, ..Tally::default() };
    for (name, proto) in fixtures() {
        let model = qc::onnx::import_model(proto).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        t.check(name, model);
    }
    if let Some(shared) = qc_tests::shared_or_say("optimize_models") {
        let models = shared.join("models");
        for p in qc_tests::files_under(&models, ".onnx") {
            let name = p.strip_prefix(&models).unwrap_or(&p).display().to_string();
            t.load_and_check(&name, &p);
        }
        for (name, p) in backend_models(&shared) {
            t.load_and_check(&name, &p);
        }
    }
    eprintln!("| model | nodes before -> after | qc evaluator |\n|---|---|---|");
    for r in &t.rows {
        eprintln!("{r}");
    }
    eprintln!(
        "\n{} model(s) optimized, {} compared with the evaluator, {} not evaluated, {} not loaded, \
         {} failure(s), {:.1} s",
        t.optimized,
        t.evaluated,
        t.not_evaluated.len(),
        t.not_loaded.len(),
        t.failures.len(),
        start.elapsed().as_secs_f64()
    );
    for (title, list) in [("not evaluated", &t.not_evaluated), ("not loaded", &t.not_loaded)] {
        if !list.is_empty() {
            eprintln!("{title}:");
            for l in list {
                eprintln!("  {l}");
            }
        }
    }
    assert!(t.failures.is_empty(), "{} failure(s):\n{}", t.failures.len(), t.failures.join("\n"));
}

/// `qc optimize` on its own output changes nothing, byte for byte.
#[test]
fn optimizing_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, proto)) in fixtures().into_iter().enumerate() {
        let input = dir.path().join(format!("in{i}.onnx"));
        std::fs::write(&input, proto.encode_to_vec()).unwrap();
        let (once, twice) =
            (dir.path().join(format!("once{i}.onnx")), dir.path().join(format!("twice{i}.onnx")));
        let (code, _, err) =
            qc_tests::qc(&["optimize", input.to_str().unwrap(), "-o", once.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        let (code, _, err) =
            qc_tests::qc(&["optimize", once.to_str().unwrap(), "-o", twice.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(
            std::fs::read(&once).unwrap(),
            std::fs::read(&twice).unwrap(),
            "{name}: second run changed it"
        );
    }
}
