//! `qc convert MODEL --to access -o OUT.onnx`: the ACCESS DLA's fixed-point ONNX model from a
//! QONNX, QDQ or QOperator model (`qc_passes::fixed::access` does the conversion).
//!
//! After the conversion, and before anything is written:
//! - the result is checked with `qc check --target access-dla`'s pipeline and rules: a scale
//!   finding (scale missing, not a power of two or `2^n / a`, not per tensor, a mismatch, a
//!   zero point, a bit depth) is a bug of the conversion and fails with
//!   `qc::access::check_failed`; operator limits are left to `qc check`, which reports them;
//! - the cost of rounding is measured: the source model (qc's evaluator, its quantizers as they
//!   are) and the ACCESS model (the integer simulation of `qc run --fixed-point access-dla`) run
//!   on the same seeded inputs (seed 0; each input uniform over the range of the quantizer that
//!   reads it, else in [-1, 1)), and every feature map the source quantizes is compared with the
//!   ACCESS model's: the maximum absolute error and the SNR, beside the relative change of its
//!   scale. When either model cannot be run (an op the evaluator lacks, an input dim that is not
//!   a number and that `--overwrite-input-shape` or `--assume-dims` does not give),
//!   `qc::access::not_measured` (a warning) says why and the scales are still reported.
//!
//! `--access-attributes metadata` writes the attributes as node metadata
//! (`qc_passes::fixed::metadata`) once everything above is done on the inline form.

use std::fmt::Write as _;

use qc_ir::rng::SplitMix64;
use qc_ir::{Dim, ElemType, Model, ValueType};
use qc_passes::eval::{Array, run_graph_all};
use qc_passes::fixed::{self, AccessOptions, Incoherent, Moved, ScaleRounding};
use qc_passes::{ManagerOptions, PassManager, Pipeline};

use crate::convert::ConvertArgs;
use crate::load::{self, LoadOptions};

/// The options of `--to access`.
#[derive(Debug, Clone, clap::Args)]
pub struct AccessArgs {
    /// `--to access`: how scales are rounded to the DLA's formats (feature maps to 2^n, weights
    /// per channel to 2^n / a, a in 1..255): the nearest representable scale, the one below, or
    /// the one above.
    #[arg(long, value_enum, default_value = "nearest")]
    pub scale_rounding: RoundingArg,
    /// `--to access`: where a feature map would need two scales (a quantizer after an op that
    /// keeps scales, such as ReLU or MaxPool, with another scale than its input's): insert a
    /// requantization (`requantize`, a Div by 1 with its own output_scale) or stop with
    /// `qc::access::incoherent` (`fail`).
    #[arg(long, value_enum, default_value = "requantize")]
    pub incoherent: IncoherentArg,
    /// `--to access`: keep ops the DLA does not have (Softmax, Mul, ...) as float ops for the
    /// CPU instead of refusing the model.
    #[arg(long)]
    pub allow_cpu_ops: bool,
    /// `--to access`: give a feature map of a DLA layer that no quantizer of the source
    /// describes (a last layer's float output, say) the smallest power-of-two scale that holds
    /// the largest magnitude qc's evaluator computes for it on seeded inputs (seed 1; each input
    /// uniform over the range of the quantizer that reads it, else in [-1, 1)); every input dim
    /// must then be known. Without it such a feature map is an error (`qc::access::no_scale`).
    #[arg(long)]
    pub calibrate: bool,
    /// `--to access`: where the ACCESS attributes go: `inline`, as attributes of the ops (the
    /// guide's form, which the ACCESS compiler reads; onnx.checker rejects attributes its schemas
    /// do not list), or `metadata`, the same keys and values in each node's metadata_props
    /// (IR version 10; onnx.checker accepts it). `qc check` and `qc run --fixed-point` read both.
    #[arg(long, value_enum, default_value = "inline")]
    pub access_attributes: AttributeFormArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttributeFormArg {
    Inline,
    Metadata,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoundingArg {
    Nearest,
    Down,
    Up,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IncoherentArg {
    Requantize,
    Fail,
}

/// A conversion whose result `qc check` does not accept.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AccessError {
    #[error("the ACCESS model has {count} scale finding(s) under `qc check --target access-dla`: {findings}")]
    #[diagnostic(
        code(qc::access::check_failed),
        help(
            "nothing was written; where a finding is about a tensor the source model does not quantize, \
             quantize it there; otherwise this is a bug in qc's conversion, please report it with the model"
        )
    )]
    CheckFailed { count: usize, findings: String },
}

/// The rules about scales and bit depths, which the conversion must satisfy.
const SCALE_RULES: &[qc_ir::target::Rule] = {
    use qc_ir::target::Rule::*;
    &[
        BitDepth,
        NotQuantized,
        ScaleMissing,
        ScaleNotPowerOfTwo,
        ScaleNotReciprocalDyadic,
        ScaleNotPerTensor,
        WeightScaleCount,
        ScaleMismatch,
        ZeroPoint,
    ]
};

/// Seeded inputs for every graph input of `m` without an initializer: uniform over the range of
/// the quantizer that reads it, or over the values of its integer datatype annotation
/// (`fixed::input_ranges`: what the model was made for), else uniform in [-1, 1). `Err` says
/// why there are none: an input that is not a float tensor, or
/// one with a dim that is not a number (named, with the options that give its dims).
pub fn seeded_inputs(m: &Model, seed: u64) -> Result<Vec<(String, Array)>, String> {
    let g = &m.graph;
    let mut rng = SplitMix64::new(seed);
    let ranges = fixed::input_ranges(m);
    let mut out = Vec::new();
    for &v in &g.inputs {
        let value = g.value(v);
        if value.init.is_some() {
            continue;
        }
        let Some(ValueType::Tensor { elem: Some(elem), shape: Some(shape) }) =
            value.ty.as_ref().and_then(|t| t.ty.as_ref())
        else {
            return Err(format!("graph input `{}` has no tensor type with a shape", value.name));
        };
        if !matches!(elem, ElemType::F32 | ElemType::F16 | ElemType::F64) {
            return Err(format!("graph input `{}` is {elem}, not a float tensor", value.name));
        }
        if shape.dims.iter().any(|d| !matches!(d, Dim::Known(_))) {
            return Err(format!(
                "graph input `{}` has the dims {shape}, not all numbers; give them with {} (or \
                 every unknown dim with --assume-dims N)",
                value.name,
                crate::input_shapes::overwrite_flag(&value.name, &shape.dims)
            ));
        }
        let dims: Vec<usize> = shape
            .dims
            .iter()
            .map(|d| match d {
                Dim::Known(n) => usize::try_from(*n).unwrap_or(usize::MAX),
                _ => 0,
            })
            .collect();
        let n = dims.iter().try_fold(1usize, |p, d| p.checked_mul(*d)).unwrap_or(usize::MAX);
        if n > 1 << 24 {
            return Err(format!("graph input `{}` has more than 2^24 elements", value.name));
        }
        let range = ranges.iter().find(|r| r.name == value.name);
        let (lo, hi) = range.map_or((-1.0, 1.0), |r| (r.lo, r.hi));
        let vals: Vec<f64> = match range.and_then(|r| r.step) {
            // Integer or bipolar values: one of the datatype's, uniformly.
            Some(step) => {
                let levels = ((hi - lo) / step).round() + 1.0;
                (0..n).map(|_| lo + step * (rng.unit() * levels).floor().min(levels - 1.0)).collect()
            }
            None => (0..n).map(|_| lo + (hi - lo) * rng.unit()).collect(),
        };
        let a = Array::from_f64s(*elem, dims, vals).map_err(|e| e.to_string())?;
        out.push((value.name.clone(), a));
    }
    Ok(out)
}

/// Per feature map of the source: the error of the ACCESS model there.
#[derive(Clone, Debug)]
pub struct Measured {
    pub snr_db: f64,
    pub max_abs_error: f64,
}

/// The measurement of [`measure`]: per source tensor name, and the graph outputs.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    pub tensors: indexmap::IndexMap<String, Measured>,
    pub outputs: Vec<(String, Measured)>,
}

/// Runs the source model in float and the ACCESS model in fixed point on seeded inputs and
/// compares them at every pair `(ACCESS value, source value)` and at the graph outputs.
pub fn measure(
    source: &Model,
    access: &Model,
    target: &qc_ir::target::Target,
    pairs: &[(String, String)],
) -> Result<Measurement, String> {
    let inputs = seeded_inputs(source, 0)?;
    let src = run_graph_all(source, &inputs).map_err(|e| format!("the source model: {e}"))?;
    let sim = fixed::simulate(access, target, &inputs).map_err(|e| format!("the ACCESS model: {e}"))?;
    let value_in = |m: &Model, vals: &[Option<Array>], name: &str| -> Option<Vec<f64>> {
        vals.get(m.graph.find(name)?.index())?.as_ref()?.to_f64().ok()
    };
    // A QuantizeLinear writes integers: the source's float value is its DequantizeLinear's.
    let float_name = |name: &str| -> Option<String> {
        let g = &source.graph;
        let v = g.find(name)?;
        let a = src.get(v.index())?.as_ref()?;
        if a.domain().ok()? == qc_passes::eval::Domain::Float {
            return Some(name.to_string());
        }
        g.value(v).uses().iter().find_map(|(op, _)| {
            let op = g.op(*op);
            (op.kind() == qc_ir::OpKind::DequantizeLinear)
                .then(|| op.outputs().first().copied().flatten())
                .flatten()
                .map(|y| g.value(y).name.clone())
        })
    };
    let mut out = Measurement::default();
    for (a, s) in pairs {
        let Some(src_name) = float_name(s) else { continue };
        let (Some(r), Some(f)) = (value_in(source, &src, &src_name), value_in(access, &sim.values, a)) else {
            continue;
        };
        if r.len() != f.len() {
            continue;
        }
        let (snr_db, max_abs_error) = fixed::sim::snr(&r, &f);
        out.tensors.insert(s.clone(), Measured { snr_db, max_abs_error });
    }
    for (name, f) in &sim.outputs {
        let (Some(r), Ok(f)) = (value_in(source, &src, name), f.to_f64()) else { continue };
        if r.len() == f.len() {
            let (snr_db, max_abs_error) = fixed::sim::snr(&r, &f);
            out.outputs.push((name.clone(), Measured { snr_db, max_abs_error }));
        }
    }
    Ok(out)
}

/// `12.3 dB`, `exact`.
pub fn show_db(x: f64) -> String {
    if x == f64::INFINITY {
        "exact".into()
    } else if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.1} dB")
    }
}

/// Runs `qc convert --to access`, writing the report to `out`; returns the warnings to print.
pub fn run(args: &ConvertArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let mut warnings: Vec<miette::Report> = args.shapes.unanswered(&loaded.warnings);
    let mut model = loaded.model;
    // --calibrate evaluates the model, which needs every input dim.
    let assumed = if args.access.calibrate {
        args.shapes.resolve(&mut model)?
    } else {
        args.shapes.apply(&mut model)?
    };
    if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
        warnings.push(miette::miette!(
            severity = miette::Severity::Advice,
            code = "qc::input_shape::assumed",
            "{line}"
        ));
    }
    let pipeline = Pipeline::parse("infer-shapes")?;
    let mut manager = PassManager::new(pipeline, ManagerOptions { verify_each: true, stop_after: None })?;
    let report = manager.run(&mut model, &mut |_, _| {})?;
    args.shape_errors.refuse(&report.warnings)?;
    warnings.extend(report.warnings.iter().cloned().map(miette::Report::new));

    let target = crate::targets::builtin("access-dla").expect("access-dla is built in");
    let a = &args.access;
    let opts = AccessOptions {
        rounding: match a.scale_rounding {
            RoundingArg::Nearest => ScaleRounding::Nearest,
            RoundingArg::Down => ScaleRounding::Down,
            RoundingArg::Up => ScaleRounding::Up,
        },
        incoherent: match a.incoherent {
            IncoherentArg::Requantize => Incoherent::Requantize,
            IncoherentArg::Fail => Incoherent::Fail,
        },
        allow_cpu_ops: a.allow_cpu_ops,
        calibrate: match a.calibrate {
            false => None,
            true => Some(seeded_inputs(&model, 1).map_err(|reason| {
                miette::miette!(
                    code = "qc::access::not_measured",
                    help = "--calibrate needs every graph input to be a float tensor of known shape",
                    "cannot calibrate: {reason}"
                )
            })?),
        },
    };
    let conv = fixed::to_access(&model, &target, &opts)?;
    let mut access = conv.model.clone();
    let checked = crate::check::check_model(&mut access, &target, &args.shape_errors)?;
    let bad: Vec<String> = checked
        .report
        .findings
        .iter()
        .filter(|f| SCALE_RULES.contains(&f.rule))
        .map(|f| format!("[{}] {}", f.rule.name(), f.message))
        .collect();
    if !bad.is_empty() {
        return Err(AccessError::CheckFailed { count: bad.len(), findings: bad.join("; ") }.into());
    }
    let others = checked.report.findings.len();

    let mut text = format!(
        "{} -> {}: the ACCESS fixed-point model: {} layer(s) with ACCESS attributes, scales rounded {}",
        args.model.display(),
        args.output.display(),
        conv.layers,
        opts.rounding.name()
    );
    if conv.batchnorms > 0 {
        let _ = write!(text, ", {} BatchNormalization(s) folded into the layer before", conv.batchnorms);
    }
    if conv.unwrapped > 0 {
        let _ = write!(
            text,
            ", {} channels-last op(s) written as the standard op between Transposes (the DLA reads N, C, H, W)",
            conv.unwrapped
        );
    }
    if conv.qoperator_layers > 0 {
        let _ = write!(text, ", {} QOperator layer(s) read as QDQ", conv.qoperator_layers);
    }
    if !conv.requantized.is_empty() {
        let _ = write!(
            text,
            ", {} requantization(s) inserted ({})",
            conv.requantized.len(),
            conv.requantized.join(", ")
        );
    }
    if !conv.truncations.is_empty() {
        let _ = write!(
            text,
            ", {} Trunc(s) written as a Div by 2^(in_bits - out_bits) ({})",
            conv.truncations.len(),
            conv.truncations.join(", ")
        );
    }
    if !conv.clamps.is_empty() {
        let _ = write!(
            text,
            ", {} unsigned quantizer(s) written as Relu ({})",
            conv.clamps.len(),
            conv.clamps.join(", ")
        );
    }
    if !conv.calibrated.is_empty() {
        let names: Vec<String> = conv
            .calibrated
            .iter()
            .map(|(n, max, s)| format!("`{n}` max |x| {max:.4} -> 2^{}", s.log2().round() as i64))
            .collect();
        let _ = write!(text, ", {} scale(s) calibrated ({})", names.len(), names.join(", "));
    }
    if conv.annotations_dropped > 0 {
        let _ = write!(
            text,
            ", {} QONNX datatype annotation(s) dropped (the ACCESS attributes give the bit depths)",
            conv.annotations_dropped
        );
    }
    if !conv.cpu_ops.is_empty() {
        let _ = write!(text, ", {} op(s) left to the CPU ({})", conv.cpu_ops.len(), conv.cpu_ops.join(", "));
    }
    if !conv.bias_widened.is_empty() {
        let _ = write!(
            text,
            ", weight scales widened so that the 16-bit bias fits in {} layer(s) ({} channel(s): {})",
            conv.bias_widened.len(),
            conv.changes.iter().filter(|c| c.moved == Some(Moved::BiasWidened)).count(),
            conv.bias_widened.join(", ")
        );
    }
    if conv.bias_saturated + conv.weight_saturated > 0 {
        let _ = write!(
            text,
            ", {} bias and {} weight value(s) saturated",
            conv.bias_saturated, conv.weight_saturated
        );
    }
    let _ = writeln!(
        text,
        ".\n`qc check --target access-dla`: no scale finding ({others} other finding(s): operator limits and placement, which `qc check` reports)."
    );
    let measured = match measure(&model, &conv.model, &target, &conv.pairs) {
        Ok(m) => Some(m),
        Err(reason) => {
            warnings.push(miette::miette!(
                severity = miette::Severity::Warning,
                code = "qc::access::not_measured",
                help = "the scales are reported without the error they cause; see spec/fixed_point.md",
                "the rounding error was not measured: {reason}"
            ));
            None
        }
    };
    text.push_str(&render(&conv, measured.as_ref()));

    let source_dir = args.model.parent();
    let mut out_model = conv.model;
    if a.access_attributes == AttributeFormArg::Metadata {
        let ops = fixed::to_metadata(&mut out_model);
        let _ = writeln!(
            text,
            "ACCESS attributes written as node metadata ({ops} node(s), IR version {}).",
            out_model.ir_version.map_or("-".to_string(), |v| v.to_string())
        );
    }
    crate::write::write_model(&mut out_model, &args.output, source_dir, crate::write::MAX_INLINE_BYTES)
        .map_err(|e| {
            miette::miette!(
                code = "qc::io::write",
                help = "check that the output's folder exists and is writable",
                "cannot write `{}`: {e}",
                args.output.display()
            )
        })?;
    out.write_all(text.as_bytes())
        .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write output: {e}"))?;
    Ok(warnings)
}

/// The per-layer table: feature-map scales (one row per quantizer of the source, with the error
/// measured there), then the weight scales per layer (the largest relative change over its
/// channels), then the graph outputs.
pub fn render(conv: &fixed::AccessConversion, m: Option<&Measurement>) -> String {
    let mut s = String::from("\nFeature maps (one row per quantizer of the source):\n");
    let _ = writeln!(
        s,
        "  {:<32} {:>12} {:>12} {:>9} {:>11} {:>10}",
        "tensor", "source", "ACCESS", "change", "max |err|", "SNR"
    );
    for c in conv.changes.iter().filter(|c| c.attr == "scale") {
        let (err, snr) = match m.and_then(|m| m.tensors.get(&c.tensor)) {
            Some(x) => (format!("{:.3e}", x.max_abs_error), show_db(x.snr_db)),
            None => ("-".into(), "-".into()),
        };
        let note = c.note.as_deref().map(|n| format!("  ({n})")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<32} {:>12.6e} {:>12.6e} {:>+8.2}% {:>11} {:>10}{note}",
            c.tensor,
            c.source,
            c.rounded,
            100.0 * c.relative(),
            err,
            snr
        );
    }
    // Per layer: the channel count, the largest relative change of a channel's scale from
    // rounding alone, the channels widened for the bias and their largest change, whether qc
    // quantized the weight.
    struct Row {
        n: usize,
        rounding: f64,
        widened: usize,
        widened_max: f64,
        flushed: usize,
        here: bool,
    }
    let mut by_layer: indexmap::IndexMap<(String, String), Row> = indexmap::IndexMap::new();
    for c in conv.changes.iter().filter(|c| c.attr != "scale") {
        let e = by_layer.entry((c.node.clone(), c.tensor.clone())).or_insert(Row {
            n: 0,
            rounding: 0.0,
            widened: 0,
            widened_max: 0.0,
            flushed: 0,
            here: c.quantized_here,
        });
        e.n += 1;
        match c.moved {
            Some(Moved::Flushed) => e.flushed += 1,
            Some(Moved::BiasWidened) => {
                e.widened += 1;
                e.widened_max = e.widened_max.max(c.relative());
            }
            Some(Moved::Range) | None if c.relative().abs() > e.rounding.abs() => e.rounding = c.relative(),
            Some(Moved::Range) | None => {}
        }
    }
    if !by_layer.is_empty() {
        s.push_str("Weights (largest relative change of a channel's scale):\n");
        for ((node, tensor), r) in &by_layer {
            let mut note = String::new();
            if r.widened > 0 {
                // A widening by orders of magnitude (a channel whose weights vanish next to its
                // bias) reads better as a factor.
                let by = if r.widened_max < 99.0 {
                    format!("{:+.1}%", 100.0 * r.widened_max)
                } else {
                    format!("x{:.3e}", 1.0 + r.widened_max)
                };
                let _ = write!(
                    note,
                    " ({} channel(s) widened so that the 16-bit bias fits, by up to {by})",
                    r.widened
                );
            }
            if r.flushed > 0 {
                let _ = write!(note, " ({} channel(s) below 2^-120: weights flushed to 0)", r.flushed);
            }
            if r.here {
                note.push_str(" (not quantized in the source: 8 bits, max-abs, by qc)");
            }
            let _ = writeln!(
                s,
                "  {node:<32} {tensor:<28} {:>5} scale(s) {:>+8.3}%{note}",
                r.n,
                100.0 * r.rounding
            );
        }
    }
    if let Some(m) = m {
        for (name, x) in &m.outputs {
            let _ = writeln!(
                s,
                "Output `{name}` against the source model: max |err| = {:.3e}, SNR {}",
                x.max_abs_error,
                show_db(x.snr_db)
            );
        }
    }
    s
}
