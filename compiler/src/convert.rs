//! `qc convert`: QONNX `Quant` to QCDQ (`QuantizeLinear -> [Clip] -> DequantizeLinear`) and
//! back, checked with the reference evaluator before anything is written.
//!
//! The model is loaded, `infer-shapes` runs, then `quant-to-qcdq` (`--to qcdq`) or
//! `qcdq-to-quant` (`--to qonnx`), with the verifier after each pass. The summary paragraph says
//! how many nodes were converted and why the others were kept (the passes' warnings,
//! `qc::convert::kept_quant` / `qc::convert::kept_qdq`, name them). Then, unless `--no-verify`,
//! the conversion is checked with qc's evaluator:
//! - **node by node**, always: each converted quantizer (the `Quant` on one side, its
//!   QuantizeLinear, Clip and DequantizeLinear on the other) is evaluated on at least 4096 seeded
//!   random inputs that span its integer range past both ends and include exact ties. The rewrite
//!   is exact, so the results must be identical (a `-0` from Quant equals the `+0` of
//!   DequantizeLinear);
//! - **whole model**, when the evaluator can run it (every op supported, every graph input of
//!   known type and rank): the original and the converted model on three seeded random batches
//!   (uniform in ±1, ±8, ±64; symbolic dims are 1). Every output element must agree to within one
//!   unit in the last place of the larger magnitude, and the maximum absolute difference is
//!   reported. Equal per-node results make the whole model bit-identical too; the one-ulp margin
//!   is there for ops the opset raise rewrote, and the summary counts any element that is not
//!   bit-identical.
//!
//! A difference fails with `qc::convert::mismatch`; a converted model the evaluator cannot run
//! although it runs the original fails with `qc::convert::eval_failed`. When the whole model
//! cannot be evaluated, `qc::convert::not_verified` (a warning) says why, and the node-by-node
//! check stands alone. The whole-model check runs the evaluator six times; on large models (big
//! feature maps, the evaluator is a reference implementation) it takes seconds to minutes, which
//! is what `--no-verify` is for. On any error nothing is written; the output is written
//! atomically.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use qc_ir::{Dim, ElemType, Model, OpKind, ValueId, ValueType};
use qc_passes::eval::{Array, EvalError, eval_op, run_graph};
use qc_passes::passes::{qcdq_to_quant, quant_to_qcdq};
use qc_passes::quant::const_values;
use qc_passes::{ManagerOptions, PassManager, Pipeline};

use crate::load::{self, LoadOptions};

/// Arguments of `qc convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// The ONNX or QONNX model.
    pub model: PathBuf,
    /// The form to convert to: `qcdq` (QuantizeLinear -> [Clip] -> DequantizeLinear) or `qonnx`
    /// (Quant in qonnx.custom_op.general).
    #[arg(long, value_enum)]
    pub to: Target,
    /// Where to write the converted model.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Skip the check with the reference evaluator (the whole-model part runs the evaluator six
    /// times, which is slow on large models).
    #[arg(long)]
    pub no_verify: bool,
    /// Read the file into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
}

/// The quantization style to convert to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// ONNX QuantizeLinear -> [Clip] -> DequantizeLinear.
    Qcdq,
    /// QONNX Quant.
    Qonnx,
}

/// Why a conversion was not written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConvertError {
    #[error("the converted model differs from the original at {at}: {detail}")]
    #[diagnostic(
        code(qc::convert::mismatch),
        help(
            "nothing was written; this is a bug in qc's conversion, please report it with the model \
             (--no-verify writes the result unchecked)"
        )
    )]
    Mismatch { at: String, detail: String },

    #[error("the converted model cannot be evaluated at {at}, although the original can: {detail}")]
    #[diagnostic(
        code(qc::convert::eval_failed),
        help(
            "nothing was written; this is a bug in qc's conversion or evaluator, please report it with the model"
        )
    )]
    EvalFailed { at: String, detail: String },
}

/// Runs `qc convert`, writing the summary to `out`; returns the warnings to print.
pub fn run(args: &ConvertArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let mut warnings: Vec<miette::Report> =
        loaded.warnings.iter().cloned().map(miette::Report::new).collect();
    let original = loaded.model;
    let mut model = original.clone();
    let pass = match args.to {
        Target::Qcdq => quant_to_qcdq::INFO.name,
        Target::Qonnx => qcdq_to_quant::INFO.name,
    };
    let pipeline = Pipeline::parse(&format!("infer-shapes,{pass}"))?;
    let mut manager = PassManager::new(pipeline, ManagerOptions { verify_each: true, stop_after: None })?;
    let report = manager.run(&mut model, &mut |_, _| {})?;
    warnings.extend(report.warnings.iter().cloned().map(miette::Report::new));
    let stats = report.totals().get(pass).map(|t| t.stats.clone()).unwrap_or_default();

    let mut text = summary(args, &original, &model, &stats);
    if args.no_verify {
        text.push_str("Not checked (--no-verify).\n");
    } else {
        let (quant_side, qdq_side) = match args.to {
            Target::Qcdq => (&original, &model),
            Target::Qonnx => (&model, &original),
        };
        let nodes = check_nodes(quant_side, qdq_side, args.to)?;
        let _ = write!(
            text,
            "Checked with qc's evaluator: the {} converted node(s) agree exactly at {} points (random inputs, \
             or the weights they quantize)",
            nodes.nodes, nodes.values
        );
        if nodes.skipped > 0 {
            let _ = write!(text, " ({} more not evaluated alone: input over 2^26 elements)", nodes.skipped);
        }
        match check_model(&original, &model)? {
            Ok(w) => {
                let max = if w.max_abs == 0.0 { "0".to_string() } else { format!("{:.3e}", w.max_abs) };
                let _ = writeln!(
                    text,
                    "; the whole model on {} random batches: max |diff| = {max} over {} output value(s), {} not bit-identical.",
                    w.batches, w.values, w.inexact
                );
            }
            Err(reason) => {
                let _ = writeln!(text, "; the whole model was not evaluated ({reason}).");
                warnings.push(miette::miette!(
                    severity = miette::Severity::Warning,
                    code = "qc::convert::not_verified",
                    help = "the converted nodes were still checked one by one; see spec/cli.md",
                    "the whole model was not evaluated: {reason}"
                ));
            }
        }
    }

    let source_dir = args.model.parent();
    crate::write::write_model(&mut model, &args.output, source_dir, crate::write::MAX_INLINE_BYTES).map_err(
        |e| {
            miette::miette!(
                code = "qc::io::write",
                help = "check that the output's folder exists and is writable",
                "cannot write `{}`: {e}",
                args.output.display()
            )
        },
    )?;
    out.write_all(text.as_bytes())
        .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write output: {e}"))?;
    Ok(warnings)
}

/// The paragraph that says what was converted, what was kept and why.
fn summary(
    args: &ConvertArgs,
    before: &Model,
    after: &Model,
    stats: &indexmap::IndexMap<String, u64>,
) -> String {
    let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
    let reason = |k: &str| match args.to {
        Target::Qcdq => quant_to_qcdq::kept_reason(k),
        Target::Qonnx => qcdq_to_quant::kept_reason(k),
    };
    let kept: Vec<(u64, &'static str)> =
        stats.iter().filter_map(|(k, &n)| reason(k).map(|r| (n, r))).filter(|(n, _)| *n > 0).collect();
    let kept_total: u64 = kept.iter().map(|(n, _)| n).sum();
    let converted = stat("converted");
    let mut s = format!("{} -> {}: ", args.model.display(), args.output.display());
    match args.to {
        Target::Qcdq => {
            let _ = write!(
                s,
                "converted {converted} of {} Quant node(s) to QuantizeLinear -> DequantizeLinear ({} with a Clip, {} per channel)",
                converted + kept_total,
                stat("with-clip"),
                stat("per-channel")
            );
            if stat("rounding-name-normalized") > 0 {
                let _ = write!(
                    s,
                    ", {} of them with rounding_mode spelled other than ROUND",
                    stat("rounding-name-normalized")
                );
            }
        }
        Target::Qonnx => {
            let _ = write!(
                s,
                "converted {converted} DequantizeLinear node(s) to Quant ({} with a QuantizeLinear and a Clip, {} per channel, {} of a constant)",
                stat("with-clip"),
                stat("per-channel"),
                stat("constant-dequantize")
            );
        }
    }
    if kept.is_empty() {
        s.push_str("; kept none");
    } else {
        let why: Vec<String> = kept.iter().map(|(n, r)| format!("{n} because {r}")).collect();
        let _ = write!(s, "; kept {kept_total}: {}", why.join("; "));
    }
    if stat("other-quantizers") > 0 {
        let _ = write!(
            s,
            "; {} BipolarQuant/Trunc/FloatQuant/MultiThreshold node(s) have no QCDQ form and were left as they are",
            stat("other-quantizers")
        );
    }
    if stat("lone-quantize") > 0 {
        let _ = write!(
            s,
            "; {} QuantizeLinear node(s) remain without a matching DequantizeLinear",
            stat("lone-quantize")
        );
    }
    let (o1, o2) = (before.opset_version(""), after.opset_version(""));
    if o1 != o2 {
        let v = |o: Option<i64>| o.map_or("none".to_string(), |v| v.to_string());
        let _ = write!(
            s,
            "; the default-domain opset was raised from {} to {} ({} op(s) rewritten to their newer form)",
            v(o1),
            v(o2),
            stat("ops-upgraded")
        );
    }
    let _ = writeln!(s, ". Nodes: {} -> {}.", before.graph.op_count(), after.graph.op_count());
    s
}

/// A small deterministic generator (SplitMix64), so that checks are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn sym(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Concrete dims for a declared shape: symbolic and unknown dims are 1.
fn concrete(dims: &[Dim]) -> Vec<usize> {
    dims.iter().map(|d| if let Dim::Known(n) = d { *n as usize } else { 1 }).collect()
}

/// The declared element type and dims of a value, from whichever model knows them.
fn declared(models: &[&Model], name: &str) -> Option<(ElemType, Vec<Dim>)> {
    models.iter().find_map(|m| {
        let v = m.graph.find(name)?;
        match m.graph.value(v).ty.as_ref()?.ty.as_ref()? {
            ValueType::Tensor { elem: Some(e), shape: Some(s) } => Some((*e, s.dims.clone())),
            _ => None,
        }
    })
}

/// Evaluates value `v` of `m` from its producers, with `bound` values given by name, up to
/// `depth` ops back.
fn eval_value(
    m: &Model,
    v: ValueId,
    bound: &HashMap<String, Array>,
    depth: usize,
) -> Result<Array, EvalError> {
    let g = &m.graph;
    let val = g.value(v);
    if let Some(a) = bound.get(&val.name) {
        return Ok(a.clone());
    }
    if let Some(t) = val.tensor() {
        return Array::from_tensor(t, m);
    }
    let missing = || EvalError::MissingInput { name: val.name.clone() };
    let p = val.producer().filter(|_| depth > 0).ok_or_else(missing)?;
    let op = g.op(p);
    let args = op
        .inputs()
        .iter()
        .map(|i| i.map(|i| eval_value(m, i, bound, depth - 1)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<Option<&Array>> = args.iter().map(Option::as_ref).collect();
    let opset = m.onnx_opset();
    let slot = op.outputs().iter().position(|o| *o == Some(v)).unwrap_or(0);
    eval_op(op, &refs, opset)?.into_iter().nth(slot).ok_or_else(missing)
}

struct NodeCheck {
    nodes: usize,
    values: usize,
    /// Nodes whose input has more than 2^26 elements, not evaluated alone.
    skipped: usize,
}

/// Checks every converted quantizer on its own: the Quant in `quant_side` against the
/// QuantizeLinear/Clip/DequantizeLinear chain that writes the same value in `qdq_side`.
fn check_nodes(quant_side: &Model, qdq_side: &Model, to: Target) -> Result<NodeCheck, ConvertError> {
    let mut check = NodeCheck { nodes: 0, values: 0, skipped: 0 };
    let mut rng = Rng(0x5eed_0001);
    for (id, op) in quant_side.graph.ops() {
        if !matches!(op.kind(), OpKind::Quant | OpKind::IntQuant) {
            continue;
        }
        let Some(y) = op.outputs().first().copied().flatten() else { continue };
        let y_name = &quant_side.graph.value(y).name;
        let Some(y2) = qdq_side.graph.find(y_name) else { continue };
        let Some(p2) = qdq_side.graph.value(y2).producer() else { continue };
        if qdq_side.graph.op(p2).kind() != OpKind::DequantizeLinear {
            continue;
        }
        let label = match to {
            Target::Qcdq => quant_side.graph.op_label(id),
            Target::Qonnx => qdq_side.graph.op_label(p2),
        };
        let input = |i: usize| op.inputs().get(i).copied().flatten();
        let scales = const_values(quant_side, input(1)).map(|(_, v)| v).unwrap_or_else(|| vec![1.0]);
        let bits = const_values(quant_side, input(3)).and_then(|(_, v)| v.first().copied()).unwrap_or(8.0);
        let (s_min, s_max) = scales.iter().fold((f64::MAX, 0.0f64), |(a, b), &s| (a.min(s), b.max(s)));
        let top = 2f64.powf(bits.clamp(1.0, 16.0));
        let x = input(0).filter(|&x| quant_side.graph.value(x).tensor().is_none());
        // A dynamic input gets random values; its dims are the declared ones (4096 values when
        // unknown: the parameters are then scalars), repeated until 4096 values were tried.
        let x = x.map(|x| {
            let name = quant_side.graph.value(x).name.clone();
            let dims =
                declared(&[qdq_side, quant_side], &name).map_or_else(|| vec![4096], |(_, d)| concrete(&d));
            (name, dims)
        });
        let too_big =
            |d: &[usize]| d.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).is_none_or(|n| n > 1 << 26);
        if x.as_ref().is_some_and(|(_, d)| too_big(d)) {
            check.skipped += 1;
            continue;
        }
        let rounds = x
            .as_ref()
            .map_or(1, |(_, d)| 4096usize.div_ceil(d.iter().product::<usize>().max(1)).clamp(1, 4096));
        for _ in 0..rounds {
            let mut bound = HashMap::new();
            if let Some((name, dims)) = &x {
                let (name, dims) = (name.clone(), dims.clone());
                let n: usize = dims.iter().product();
                let v: Vec<f64> = (0..n)
                    .map(|_| match rng.below(10) {
                        0..=3 => rng.sym() * s_max * top * 1.5,
                        4..=7 => rng.sym() * s_min * top,
                        _ => {
                            let k = rng.below(2 * top as u64 + 1) as f64 - top;
                            (k + 0.5) * if rng.below(2) == 0 { s_min } else { s_max }
                        }
                    })
                    .collect();
                let a = Array::from_f64s(ElemType::F32, dims, v).map_err(|e| ConvertError::EvalFailed {
                    at: format!("node `{label}`"),
                    detail: e.to_string(),
                })?;
                bound.insert(name, a);
            }
            let fail = |e: EvalError| ConvertError::EvalFailed {
                at: format!("node `{label}`"),
                detail: e.to_string(),
            };
            let a = eval_value(quant_side, y, &bound, 2).map_err(fail)?;
            let b = eval_value(qdq_side, y2, &bound, 5).map_err(fail)?;
            let (va, vb) = (a.to_f64().map_err(fail)?, b.to_f64().map_err(fail)?);
            if a.dims != b.dims || va.len() != vb.len() {
                return Err(ConvertError::Mismatch {
                    at: format!("node `{label}`"),
                    detail: format!("the output has dims {:?} from Quant but {:?} from QCDQ", a.dims, b.dims),
                });
            }
            if let Some(i) = (0..va.len()).find(|&i| !(va[i] == vb[i] || (va[i].is_nan() && vb[i].is_nan())))
            {
                let xs = bound.values().next().and_then(|x| x.to_f64().ok()).and_then(|x| x.get(i).copied());
                return Err(ConvertError::Mismatch {
                    at: format!("node `{label}`"),
                    detail: format!(
                        "element {i}{}: Quant gives {}, QuantizeLinear/DequantizeLinear give {}",
                        xs.map_or(String::new(), |x| format!(" (input {x})")),
                        va[i],
                        vb[i]
                    ),
                });
            }
            check.values += va.len();
        }
        check.nodes += 1;
    }
    Ok(check)
}

struct WholeCheck {
    batches: usize,
    values: usize,
    max_abs: f64,
    inexact: usize,
}

/// One unit in the last place at `x` in the precision of `elem` (0: compare exactly).
fn ulp(elem: ElemType, x: f64) -> f64 {
    let x = x.abs();
    match elem {
        ElemType::F32 if x.is_finite() => {
            let f = x as f32;
            f64::from(f32::from_bits(f.to_bits() + 1) - f)
        }
        ElemType::F64 if x.is_finite() => f64::from_bits(x.to_bits() + 1) - x,
        _ => 0.0,
    }
}

/// Runs both models on three seeded random batches and compares every output. `Ok(Err(reason))`
/// when the original model cannot be evaluated.
fn check_model(before: &Model, after: &Model) -> Result<Result<WholeCheck, String>, ConvertError> {
    let g = &before.graph;
    let mut specs = Vec::new();
    for &v in &g.inputs {
        let value = g.value(v);
        if value.init.is_some() {
            continue;
        }
        let Some((elem, dims)) = declared(&[before, after], &value.name) else {
            return Ok(Err(format!("graph input `{}` has no known tensor type and rank", value.name)));
        };
        let dims = concrete(&dims);
        if dims.iter().try_fold(1usize, |a, &b| a.checked_mul(b)).is_none_or(|n| n > 1 << 24) {
            return Ok(Err(format!("graph input `{}` has more than 2^24 elements", value.name)));
        }
        if !matches!(
            elem,
            ElemType::F16
                | ElemType::F32
                | ElemType::F64
                | ElemType::BF16
                | ElemType::I8
                | ElemType::I16
                | ElemType::I32
                | ElemType::I64
                | ElemType::U8
                | ElemType::U16
                | ElemType::U32
                | ElemType::U64
                | ElemType::Bool
        ) {
            return Ok(Err(format!(
                "graph input `{}` is of type {elem}, which the check does not fill",
                value.name
            )));
        }
        specs.push((value.name.clone(), elem, dims));
    }
    let mut rng = Rng(0x5eed_0002);
    let mut check = WholeCheck { batches: 0, values: 0, max_abs: 0.0, inexact: 0 };
    for (batch, amplitude) in [1.0, 8.0, 64.0].into_iter().enumerate() {
        let mut inputs = Vec::new();
        for (name, elem, dims) in &specs {
            let n: usize = dims.iter().product();
            let is_float = matches!(elem, ElemType::F16 | ElemType::F32 | ElemType::F64 | ElemType::BF16);
            let v: Vec<f64> =
                (0..n).map(|_| if is_float { rng.sym() * amplitude } else { rng.below(4) as f64 }).collect();
            match Array::from_f64s(*elem, dims.clone(), v) {
                Ok(a) => inputs.push((name.clone(), a)),
                Err(e) => return Ok(Err(format!("graph input `{name}` cannot be filled: {e}"))),
            }
        }
        let x = match run_graph(before, &inputs) {
            Ok(x) => x,
            Err(e) => return Ok(Err(format!("the evaluator cannot run the original model: {e}"))),
        };
        let y = run_graph(after, &inputs)
            .map_err(|e| ConvertError::EvalFailed { at: "the whole model".into(), detail: e.to_string() })?;
        for ((name, a), (_, b)) in x.iter().zip(&y) {
            let at = || format!("output `{name}`");
            if (a.elem, &a.dims) != (b.elem, &b.dims) {
                return Err(ConvertError::Mismatch {
                    at: at(),
                    detail: format!("{}{:?} before, {}{:?} after", a.elem, a.dims, b.elem, b.dims),
                });
            }
            let (Ok(va), Ok(vb)) = (a.to_f64(), b.to_f64()) else { continue };
            for (i, (&p, &q)) in va.iter().zip(&vb).enumerate() {
                if p.to_bits() == q.to_bits() || p == q || (p.is_nan() && q.is_nan()) {
                    continue;
                }
                let d = (p - q).abs();
                if d > ulp(a.elem, p.abs().max(q.abs())) || d.is_nan() {
                    return Err(ConvertError::Mismatch {
                        at: at(),
                        detail: format!(
                            "element {i} of random batch {batch} (±{amplitude}): {p} before, {q} after"
                        ),
                    });
                }
                check.inexact += 1;
                check.max_abs = check.max_abs.max(d);
            }
            check.values += va.len();
        }
        check.batches += 1;
    }
    Ok(Ok(check))
}
