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
//!   on the same seeded inputs (uniform in [-1, 1), seed 0; symbolic dims are 1), and every
//!   feature map the source quantizes is compared with the ACCESS model's: the maximum absolute
//!   error and the SNR, beside the relative change of its scale. When either model cannot be run
//!   (an op the evaluator lacks, an input of unknown shape), `qc::access::not_measured` (a
//!   warning) says why and the scales are still reported.

use std::fmt::Write as _;

use qc_ir::rng::SplitMix64;
use qc_ir::{Dim, ElemType, Model, ValueType};
use qc_passes::eval::{Array, run_graph_all};
use qc_passes::fixed::{self, AccessOptions, Incoherent, ScaleRounding};
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
    /// the largest magnitude qc's evaluator computes for it on seeded inputs (uniform in
    /// [-1, 1), seed 1). Without it such a feature map is an error (`qc::access::no_scale`).
    #[arg(long)]
    pub calibrate: bool,
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

/// Seeded inputs for every graph input of `m` without an initializer: uniform in [-1, 1),
/// symbolic dims 1. `Err` says why there are none.
pub fn seeded_inputs(m: &Model, seed: u64) -> Result<Vec<(String, Array)>, String> {
    let g = &m.graph;
    let mut rng = SplitMix64::new(seed);
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
        let dims: Vec<usize> = shape
            .dims
            .iter()
            .map(|d| match d {
                Dim::Known(n) => *n as usize,
                _ => 1,
            })
            .collect();
        let n: usize = dims.iter().product();
        if n > 1 << 24 {
            return Err(format!("graph input `{}` has {n} elements", value.name));
        }
        let vals: Vec<f64> = (0..n).map(|_| rng.symmetric()).collect();
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
    let assumed = args.shapes.apply(&mut model)?;
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
    if !conv.cpu_ops.is_empty() {
        let _ = write!(text, ", {} op(s) left to the CPU ({})", conv.cpu_ops.len(), conv.cpu_ops.join(", "));
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
        let _ = writeln!(
            s,
            "  {:<32} {:>12.6e} {:>12.6e} {:>+8.2}% {:>11} {:>10}",
            c.tensor,
            c.source,
            c.rounded,
            100.0 * c.relative(),
            err,
            snr
        );
    }
    let mut by_layer: indexmap::IndexMap<(String, String), (usize, f64, bool)> = indexmap::IndexMap::new();
    for c in conv.changes.iter().filter(|c| c.attr != "scale") {
        let e = by_layer.entry((c.node.clone(), c.tensor.clone())).or_insert((0, 0.0, c.quantized_here));
        e.0 += 1;
        if c.relative().abs() > e.1.abs() {
            e.1 = c.relative();
        }
    }
    if !by_layer.is_empty() {
        s.push_str("Weights (largest relative change of a channel's scale):\n");
        for ((node, tensor), (n, rel, here)) in &by_layer {
            let note = if *here { " (not quantized in the source: 8 bits, max-abs, by qc)" } else { "" };
            let _ = writeln!(s, "  {node:<32} {tensor:<28} {n:>5} scale(s) {:>+8.3}%{note}", 100.0 * rel);
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
