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

use qc_ir::rng::SplitMix64;
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
    /// The form to convert to: `qcdq` (QuantizeLinear -> [Clip] -> DequantizeLinear), `qonnx`
    /// (Quant in qonnx.custom_op.general) or `channels-last` (qonnx's channels-last wrappers).
    #[arg(long, value_enum)]
    pub to: ConvertTo,
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
    #[command(flatten)]
    pub shapes: crate::input_shapes::InputShapeArgs,
    #[command(flatten)]
    pub shape_errors: crate::shape_errors::ShapeErrorArgs,
    #[command(flatten)]
    pub access: crate::convert_access::AccessArgs,
}

/// What `qc convert` converts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvertTo {
    /// ONNX QuantizeLinear -> [Clip] -> DequantizeLinear.
    Qcdq,
    /// QONNX Quant.
    Qonnx,
    /// The ACCESS DLA's fixed-point ONNX model (`--scale-rounding`, `--incoherent`,
    /// `--allow-cpu-ops`, `--calibrate`; see spec/fixed_point.md and `crate::convert_access`).
    Access,
    /// qonnx's channels-last layout (`crate::convert_channels_last`).
    ChannelsLast,
}

/// The quantization style to convert to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantForm {
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
    let form = match args.to {
        ConvertTo::Qcdq => QuantForm::Qcdq,
        ConvertTo::Qonnx => QuantForm::Qonnx,
        ConvertTo::Access => return crate::convert_access::run(args, out),
        ConvertTo::ChannelsLast => return crate::convert_channels_last::run(args, out),
    };
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let mut warnings: Vec<miette::Report> = args.shapes.unanswered(&loaded.warnings);
    let mut original = loaded.model;
    let assumed = args.shapes.apply(&mut original)?;
    if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
        warnings.push(miette::miette!(
            severity = miette::Severity::Advice,
            code = "qc::input_shape::assumed",
            "{line}"
        ));
    }
    let mut model = original.clone();
    let pass = match form {
        QuantForm::Qcdq => quant_to_qcdq::INFO.name,
        QuantForm::Qonnx => qcdq_to_quant::INFO.name,
    };
    let pipeline = Pipeline::parse(&format!("infer-shapes,{pass}"))?;
    let mut manager = PassManager::new(pipeline, ManagerOptions { verify_each: true, stop_after: None })?;
    let report = manager.run(&mut model, &mut |_, _| {})?;
    args.shape_errors.refuse(&report.warnings)?;
    warnings.extend(report.warnings.iter().cloned().map(miette::Report::new));
    let stats = report.totals().get(pass).map(|t| t.stats.clone()).unwrap_or_default();

    if stats.get("converted").copied().unwrap_or(0) == 0 {
        // Nothing changed that matters: no output, no check.
        let text = nothing_to_convert(args, form, &stats);
        out.write_all(text.as_bytes())
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write output: {e}"))?;
        return Ok(warnings);
    }
    let mut text = summary(args, form, &original, &model, &stats);
    if args.no_verify {
        text.push_str("Not checked (--no-verify).\n");
    } else {
        let (quant_side, qdq_side) = match form {
            QuantForm::Qcdq => (&original, &model),
            QuantForm::Qonnx => (&model, &original),
        };
        let nodes = check_nodes(quant_side, qdq_side, form)?;
        let _ = write!(
            text,
            "Checked with qc's evaluator: the {} converted node(s) agree exactly at {} points (random inputs, \
             or the weights they quantize)",
            nodes.nodes, nodes.values
        );
        if nodes.skipped > 0 {
            let _ = write!(text, " ({} more not evaluated alone: input over 2^26 elements)", nodes.skipped);
        }
        match check_whole(
            &original,
            &model,
            "the converted nodes were still checked one by one",
            &mut warnings,
        )? {
            Ok(w) => {
                let _ = writeln!(text, "; the whole model on {w}.");
            }
            Err(reason) => {
                let _ = writeln!(text, "; the whole model was not evaluated ({reason}).");
            }
        }
    }

    write_result(args, &mut model, &text, out)?;
    Ok(warnings)
}

/// [`check_model`] for a conversion's report: `Ok(what it saw)` ([`whole_model_text`]), or
/// `Err(reason)` the whole model was not evaluated, with the warning `qc::convert::not_verified`
/// pushed (its help says what was checked instead, `instead`).
pub(crate) fn check_whole(
    original: &Model,
    model: &Model,
    instead: &str,
    warnings: &mut Vec<miette::Report>,
) -> Result<Result<String, String>, ConvertError> {
    Ok(match check_model(original, model)? {
        Ok(w) => Ok(whole_model_text(&w)),
        Err(reason) => {
            warnings.push(miette::miette!(
                severity = miette::Severity::Warning,
                code = "qc::convert::not_verified",
                help = format!("{instead}; see spec/cli.md"),
                "the whole model was not evaluated: {reason}"
            ));
            Err(reason)
        }
    })
}

/// `N random batches (B): max |diff| = M over V output value(s), K not bit-identical`: what the
/// whole-model check saw.
pub(crate) fn whole_model_text(w: &WholeCheck) -> String {
    let max = if w.max_abs == 0.0 { "0".to_string() } else { format!("{:.3e}", w.max_abs) };
    let on = w.batch.as_deref().map_or(String::new(), |b| format!(" ({b})"));
    format!(
        "{} random batches{on}: max |diff| = {max} over {} output value(s), {} not bit-identical",
        w.batches, w.values, w.inexact
    )
}

/// Writes the converted model to `args.output` (atomically, its external data beside it), then
/// the summary `text` to `out`.
pub(crate) fn write_result(
    args: &ConvertArgs,
    model: &mut Model,
    text: &str,
    out: &mut dyn std::io::Write,
) -> miette::Result<()> {
    let source_dir = args.model.parent();
    crate::write::write_model(model, &args.output, source_dir, crate::write::MAX_INLINE_BYTES).map_err(
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
        .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write output: {e}"))
}

/// The one line for a model with nothing to convert: why, and that nothing was written.
fn nothing_to_convert(
    args: &ConvertArgs,
    form: QuantForm,
    stats: &indexmap::IndexMap<String, u64>,
) -> String {
    let reason = |k: &str| match form {
        QuantForm::Qcdq => quant_to_qcdq::kept_reason(k),
        QuantForm::Qonnx => qcdq_to_quant::kept_reason(k),
    };
    let mut why: Vec<String> = stats
        .iter()
        .filter(|(_, n)| **n > 0)
        .filter_map(|(k, &n)| reason(k).map(|r| format!("{n} kept because {r}")))
        .collect();
    let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
    if stat("other-quantizers") > 0 {
        why.push(format!(
            "{} BipolarQuant/Trunc/FloatQuant/MultiThreshold node(s) have no QCDQ form",
            stat("other-quantizers")
        ));
    }
    if stat("lone-quantize") > 0 {
        why.push(format!(
            "{} QuantizeLinear node(s) without a matching DequantizeLinear",
            stat("lone-quantize")
        ));
    }
    if why.is_empty() {
        why.push(
            match form {
                QuantForm::Qcdq => "the model has no QONNX Quant node",
                QuantForm::Qonnx => "the model has no DequantizeLinear node",
            }
            .to_string(),
        );
    }
    format!(
        "{}: nothing to convert ({}); `{}` not written.\n",
        args.model.display(),
        why.join("; "),
        args.output.display()
    )
}

/// The paragraph that says what was converted, what was kept and why.
fn summary(
    args: &ConvertArgs,
    form: QuantForm,
    before: &Model,
    after: &Model,
    stats: &indexmap::IndexMap<String, u64>,
) -> String {
    let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
    let reason = |k: &str| match form {
        QuantForm::Qcdq => quant_to_qcdq::kept_reason(k),
        QuantForm::Qonnx => qcdq_to_quant::kept_reason(k),
    };
    let kept: Vec<(u64, &'static str)> =
        stats.iter().filter_map(|(k, &n)| reason(k).map(|r| (n, r))).filter(|(n, _)| *n > 0).collect();
    let kept_total: u64 = kept.iter().map(|(n, _)| n).sum();
    let converted = stat("converted");
    let mut s = format!("{} -> {}: ", args.model.display(), args.output.display());
    match form {
        QuantForm::Qcdq => {
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
        QuantForm::Qonnx => {
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
fn check_nodes(quant_side: &Model, qdq_side: &Model, to: QuantForm) -> Result<NodeCheck, ConvertError> {
    let mut check = NodeCheck { nodes: 0, values: 0, skipped: 0 };
    let mut rng = SplitMix64::new(0x5eed_0001);
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
            QuantForm::Qcdq => quant_side.graph.op_label(id),
            QuantForm::Qonnx => qdq_side.graph.op_label(p2),
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
                        0..=3 => rng.symmetric() * s_max * top * 1.5,
                        4..=7 => rng.symmetric() * s_min * top,
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

pub(crate) struct WholeCheck {
    /// How the batch dim was chosen, when the model declares one above 1.
    pub batch: Option<String>,
    pub batches: usize,
    pub values: usize,
    pub max_abs: f64,
    pub inexact: usize,
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

/// Elementwise ops (with numpy broadcasting of their other operands), including the
/// quantizers: each output row depends only on the same rows of the inputs that have them.
const ELEMENTWISE: &[&str] = &[
    "Relu",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "Clip",
    "Identity",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Erf",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Softsign",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Mish",
    "ThresholdedRelu",
    "Cast",
    "Not",
    "Reciprocal",
    "IsNaN",
    "IsInf",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "Where",
    "PRelu",
    "Dropout",
    "BatchNormalization",
    "Quant",
    "IntQuant",
    "BipolarQuant",
    "Trunc",
    "QuantizeLinear",
    "DequantizeLinear",
];

/// Ops whose first input is the batched one and whose other inputs are weights: each output row
/// (sample) depends on the same input sample only.
const PER_SAMPLE: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    "LRN",
    "InstanceNormalization",
    "DepthToSpace",
    "SpaceToDepth",
];

/// Why `m` might compute an output row from more than the same row of its inputs (`batch` rows
/// in dim 0): the first op that is not known to keep rows apart. `None` when every op keeps them
/// apart, so that the model can be checked on one row. Conservative: an op not listed, a rank
/// that is not known, or an attribute that touches dim 0 all count as mixing.
///
/// Walks the graph in program order, knowing for each value either that it is computed from
/// constants only (and its rank, if known), or that it is batched (dim 0 is the batch) and its
/// rank. Graph inputs are batched with their declared rank.
fn batch_mixing(m: &Model, batch: u64) -> Option<String> {
    let g = &m.graph;
    let mut batched: HashMap<ValueId, usize> = HashMap::new();
    // Values computed from constants only, with their rank when known.
    let mut free: HashMap<ValueId, Option<usize>> = HashMap::new();
    for &v in &g.inputs {
        let value = g.value(v);
        if let Some(t) = value.tensor() {
            free.insert(v, Some(t.dims.len()));
            continue;
        }
        match declared(&[m], &value.name) {
            Some((_, d)) if d.first() == Some(&Dim::Known(batch)) => batched.insert(v, d.len()),
            _ => return Some(format!("graph input `{}` has no declared batch of {batch}", value.name)),
        };
    }
    let opset = m.onnx_opset();
    for (id, op) in g.ops() {
        let ins: Vec<ValueId> = op.inputs().iter().flatten().copied().collect();
        let free_rank = |v: ValueId| -> Option<Option<usize>> {
            if let Some(r) = free.get(&v) {
                return Some(*r);
            }
            g.value(v).tensor().map(|t| Some(t.dims.len()))
        };
        let outs: Vec<ValueId> = op.outputs().iter().flatten().copied().collect();
        let t = op.op_type();
        if ins.iter().all(|&v| free_rank(v).is_some()) {
            // Constants in, constants out; the rank for the elementwise ones.
            let r = if ELEMENTWISE.contains(&t) {
                ins.iter()
                    .map(|&v| free_rank(v).flatten())
                    .collect::<Option<Vec<usize>>>()
                    .and_then(|r| r.into_iter().max())
            } else {
                None
            };
            for o in outs {
                free.insert(o, r.or_else(|| declared(&[m], &g.value(o).name).map(|(_, d)| d.len())));
            }
            continue;
        }
        let rank_of = |v: ValueId| batched.get(&v).copied().or_else(|| free_rank(v).flatten());
        let is_free = |v: ValueId| free_rank(v).is_some();
        let first = ins.first().and_then(|v| batched.get(v).copied());
        let axis = |default: i64, r: usize| {
            let a = op.attr_int("axis", default).unwrap_or(0);
            if a < 0 { a + r as i64 } else { a }
        };
        let out_rank: Option<usize> = match t {
            _ if ELEMENTWISE.contains(&t) => {
                let r = ins
                    .iter()
                    .map(|&v| rank_of(v))
                    .collect::<Option<Vec<usize>>>()
                    .and_then(|r| r.into_iter().max());
                r.filter(|&r| {
                    ins.iter().all(|&v| match batched.get(&v) {
                        Some(&k) => k == r,
                        // Broadcast from the right: a rank below r, or a dim 0 of 1.
                        None => {
                            rank_of(v).is_some_and(|k| k < r)
                                || declared(&[m], &g.value(v).name)
                                    .is_some_and(|(_, d)| d.len() == r && d[0] == Dim::Known(1))
                        }
                    }) && (!matches!(t, "QuantizeLinear" | "DequantizeLinear") || axis(1, r) != 0)
                })
            }
            _ if PER_SAMPLE.contains(&t) => first.filter(|_| ins[1..].iter().all(|&v| is_free(v))),
            "Flatten" => first.filter(|&r| axis(1, r) >= 1).map(|_| 2),
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                first.filter(|&r| axis(if opset < 13 { 1 } else { -1 }, r) >= 1)
            }
            "Transpose" => {
                first.filter(|_| op.attr_ints("perm").ok().flatten().is_some_and(|p| p.first() == Some(&0)))
            }
            "MatMul" => first.filter(|&r| {
                r >= 2 && ins[1..].iter().all(|&v| is_free(v) && rank_of(v).is_some_and(|k| k <= 2))
            }),
            "Gemm" => first
                .filter(|_| {
                    op.attr_int("transA", 0).ok() == Some(0)
                        && ins[1..].iter().all(|&v| is_free(v))
                        && op.inputs().get(2).copied().flatten().is_none_or(|c| {
                            rank_of(c).is_some_and(|k| k < 2)
                                || declared(&[m], &g.value(c).name)
                                    .is_some_and(|(_, d)| d.len() == 2 && d[0] == Dim::Known(1))
                        })
                })
                .map(|_| 2),
            "Reshape" => {
                let shape = const_values(m, op.inputs().get(1).copied().flatten()).map(|(_, s)| s);
                let rest: Option<u64> = declared(&[m], &g.value(ins[0]).name).and_then(|(_, d)| {
                    d.get(1..)?.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).product()
                });
                let keeps = |s: &[f64]| match s.first() {
                    Some(&0.0) => true,
                    Some(&-1.0) => {
                        s[1..].iter().all(|&x| x >= 1.0)
                            && rest == Some(s[1..].iter().product::<f64>() as u64)
                    }
                    _ => false,
                };
                first
                    .filter(|_| op.attr_int("allowzero", 0).ok() == Some(0))
                    .and(shape.filter(|s| keeps(s)))
                    .map(|s| s.len())
            }
            "Concat" => first.filter(|&r| axis(1, r) >= 1 && ins.iter().all(|v| batched.get(v) == Some(&r))),
            _ => None,
        };
        let Some(r) = out_rank else { return Some(format!("`{}` ({t})", g.op_label(id))) };
        for o in outs {
            batched.insert(o, r);
        }
    }
    None
}

/// Runs both models on three seeded random batches and compares every output. `Ok(Err(reason))`
/// when the original model cannot be evaluated. When every graph input declares the same batch
/// (dim 0) above 1 and both models keep the rows of that batch apart ([`batch_mixing`]), the
/// check runs on batches of one row.
pub(crate) fn check_model(before: &Model, after: &Model) -> Result<Result<WholeCheck, String>, ConvertError> {
    let g = &before.graph;
    let mut declared_dims = Vec::new();
    for &v in &g.inputs {
        let value = g.value(v);
        if value.init.is_some() {
            continue;
        }
        let Some((_, dims)) = declared(&[before, after], &value.name) else {
            return Ok(Err(format!("graph input `{}` has no known tensor type and rank", value.name)));
        };
        declared_dims.push(dims);
    }
    let batch = match declared_dims.first().and_then(|d| d.first()) {
        Some(&Dim::Known(b)) if b > 1 && declared_dims.iter().all(|d| d.first() == Some(&Dim::Known(b))) => {
            Some(b)
        }
        _ => None,
    };
    let Some(batch) = batch else { return check_model_on(before, after, None) };
    let mixing = batch_mixing(before, batch).or_else(|| batch_mixing(after, batch));
    if let Some(op) = mixing {
        let mut check = check_model_on(before, after, None)?;
        if let Ok(c) = &mut check {
            c.batch = Some(format!("the declared batch of {batch}: op {op} may mix its rows"));
        }
        return Ok(check);
    }
    match check_model_on(before, after, Some(1))? {
        Ok(mut c) => {
            c.batch = Some(format!("batch 1 instead of the declared {batch}: every op keeps the rows apart"));
            Ok(Ok(c))
        }
        // The evaluator may hold the declared batch elsewhere (a declared intermediate shape):
        // the full batch then.
        Err(_) => check_model_on(before, after, None),
    }
}

/// [`check_model`] with dim 0 of every graph input set to `batch` if given.
fn check_model_on(
    before: &Model,
    after: &Model,
    batch: Option<usize>,
) -> Result<Result<WholeCheck, String>, ConvertError> {
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
        let mut dims = concrete(&dims);
        if let (Some(b), Some(d0)) = (batch, dims.first_mut()) {
            *d0 = b;
        }
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
    let mut rng = SplitMix64::new(0x5eed_0002);
    let mut check = WholeCheck { batch: None, batches: 0, values: 0, max_abs: 0.0, inexact: 0 };
    for (batch, amplitude) in [1.0, 8.0, 64.0].into_iter().enumerate() {
        let mut inputs = Vec::new();
        for (name, elem, dims) in &specs {
            let n: usize = dims.iter().product();
            let is_float = matches!(elem, ElemType::F16 | ElemType::F32 | ElemType::F64 | ElemType::BF16);
            let v: Vec<f64> = (0..n)
                .map(|_| if is_float { rng.symmetric() * amplitude } else { rng.below(4) as f64 })
                .collect();
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
