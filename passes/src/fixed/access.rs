//! QONNX, QDQ and QOperator models to the ACCESS DLA's fixed-point ONNX model
//! (`qc convert --to access`), as `../shared/reference/access-dla-fixed-point-onnx-guide.md`
//! describes it: the float graph, weights stored as `S_w * W_int` and biases as `S_b * B_int`,
//! and on each layer the attributes the guide names for its kind (section III.B).
//!
//! 1. QOperator layers (`QLinearConv`, `QLinearMatMul`) are first written out as
//!    `DequantizeLinear -> Conv/MatMul -> QuantizeLinear`, so that every dialect is read as QDQ;
//!    qonnx's channels-last wrappers as the standard op between Transposes
//!    ([`unwrap_wrappers`]).
//! 2. Constants are folded; a quantizer whose data input is constant quantizes a weight or a
//!    bias. Every other quantizer (`Quant`, `IntQuant`, `Trunc`, `QuantizeLinear`) gives the
//!    feature map it reads a scale: the signed 8-bit step whose range is its range
//!    (`s * max(hi / 127, -lo / 128)`, with `lo..hi` its integer range less its zero point, see
//!    `fm_step`), rounded to a power of two by the chosen [`ScaleRounding`].
//!    `DequantizeLinear` of a feature map passes it on. A QONNX `Trunc` v1 divides its input by
//!    `2^k`, `k = in_bits - out_bits` (its output is `floor(round(x / s) / 2^k) s`): it becomes
//!    a `Div` by `2^k` with its own output scale, its input getting the scale of an
//!    `in_bits`-wide tensor at step `s` when it has none; a `Trunc` v2 (with an output scale)
//!    keeps the value and is read as a quantizer at its output scale.
//! 3. One scale per feature map: the first quantizer of a feature map sets it; scales pass
//!    through the target's ops that keep them (`Relu`, `MaxPool`, `Reshape`, `Concat`, ...),
//!    forward to a value without one, then backward (`fill`). A later quantizer with another scale, and a
//!    scale-keeping op whose input and output scales still differ, are incoherent: by
//!    [`Incoherent::Requantize`] a `Div` by 1 with the new `output_scale` is put there (an
//!    element-wise division is a DLA op that may change scale), by [`Incoherent::Fail`] the
//!    conversion stops with [`FixedError::Incoherent`].
//! 4. The layers get their attributes; weight scales are rounded per output channel to
//!    `2^n / a` (a power of two per tensor for MatMul's `B_scale`) and the weight is stored as
//!    the rounded scale times the source's integers; a weight no quantizer describes is
//!    quantized here (8 bits, per channel, `max |w| / 127`, then rounded); the bias becomes
//!    16-bit integers at scale `input_scale x weight scale`. A channel whose bias does not fit
//!    in 16 bits at that scale gets the smallest weight scale at which it fits, its weights
//!    requantized to it.
//!    A bipolar quantizer of a feature map becomes `Where(Less(x, 0), -s, s)` on the CPU.
//! 5. What enters the DLA from a graph input or a CPU op gets its scale declared where the
//!    guide's attributes do not say it ([`declare_entries`]).
//! 6. The quantizers and the constants only they read are removed; so are the source's QONNX
//!    datatype annotations.

use std::collections::{HashMap, HashSet};

use qc_ir::target::Target;
use qc_ir::{AttrValue, ElemType, Model, Op, OpId, OpKind, QuantParam, ValueId, ValueType};

use super::scale::{Dyadic, ScaleRounding, round_half_up, round_pow2, round_reciprocal_dyadic};
use super::{FixedError, LayerKind, keeps_scale, layer_kind};
use crate::eval::{Array, eval_op};
use crate::passes::to_channels_last::unwrap_wrappers;
use crate::quant::{int_range, quantizer_spec};
use crate::rewrite::{Rewrite, add_const, new_value};

/// What to do where one feature map would need two scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoherent {
    /// Insert a requantization (`Div` by 1 with its own `output_scale`).
    Requantize,
    /// Stop with [`FixedError::Incoherent`].
    Fail,
}

/// Options of [`to_access`].
#[derive(Clone, Debug)]
pub struct AccessOptions {
    pub rounding: ScaleRounding,
    pub incoherent: Incoherent,
    /// Keep ops the target does not have (they run on the CPU, in float); else they are an
    /// error.
    pub allow_cpu_ops: bool,
    /// Inputs to calibrate on: a feature map of a DLA op that no quantizer of the source
    /// describes gets the smallest power-of-two scale that holds the largest magnitude the
    /// evaluator computes for it on these inputs (`max |x| / 127`, rounded up). `None`: such a
    /// feature map is an error ([`FixedError::NoScale`]).
    pub calibrate: Option<Vec<(String, Array)>>,
}

/// One scale as the source model gives it and as the ACCESS model writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleChange {
    /// The node that declares it in the ACCESS model.
    pub node: String,
    /// `output_scale`, `input_scale`, `weight_ch_scales[3]`, `B_scale`, ...
    pub attr: String,
    /// The tensor it is the scale of.
    pub tensor: String,
    pub source: f64,
    pub rounded: f64,
    /// The source gave no scale: the weight was quantized here (max-abs, 8 bits).
    pub quantized_here: bool,
    /// Why the scale moved further than rounding moves it, when it did.
    pub moved: Option<Moved>,
    /// The same, in words for the report (with the numbers behind it).
    pub note: Option<String>,
}

/// Why a scale moved further than rounding moves it ([`ScaleChange::moved`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    /// A feature map whose source range is not that of a signed 8-bit tensor at the source's
    /// step (an unsigned or narrower quantizer, a bipolar one, a minifloat).
    Range,
    /// A weight channel's scale widened so that the layer's bias fits in 16 bits.
    BiasWidened,
    /// A weight channel's scale below 2^-120: its weights are flushed to 0.
    Flushed,
}

impl ScaleChange {
    /// `(rounded - source) / source`.
    pub fn relative(&self) -> f64 {
        (self.rounded - self.source) / self.source
    }
}

/// The result of [`to_access`].
#[derive(Clone, Debug)]
pub struct AccessConversion {
    pub model: Model,
    /// Every scale the ACCESS model declares that comes from the source, in graph order.
    pub changes: Vec<ScaleChange>,
    /// `(feature map in the ACCESS model, the quantized value of the source it stands for)`.
    pub pairs: Vec<(String, String)>,
    /// The requantizations inserted (node names).
    pub requantized: Vec<String>,
    /// QONNX `Trunc` (v1) nodes, whose output is their input divided by `2^(in_bits -
    /// out_bits)`, written as that `Div` (node names).
    pub truncations: Vec<String>,
    /// Ops left to the CPU (node names and op types).
    pub cpu_ops: Vec<String>,
    /// The `Relu`s written for unsigned quantizers of feature maps that may be negative.
    pub clamps: Vec<String>,
    /// The layers that got ACCESS attributes.
    pub layers: usize,
    /// Bias values that saturated at 16 bits.
    pub bias_saturated: u64,
    /// Output channels whose weight scale was widened so that their bias fits in 16 bits
    /// (`layer (count)`).
    pub bias_widened: Vec<String>,
    /// Weight values that saturated at 8 bits (MatMul weights requantized per tensor).
    pub weight_saturated: u64,
    /// QOperator layers written out as DequantizeLinear -> layer -> QuantizeLinear.
    pub qoperator_layers: usize,
    /// BatchNormalizations folded into the layer before them.
    pub batchnorms: usize,
    /// Feature maps whose scale was calibrated (`AccessOptions::calibrate`): name, the largest
    /// magnitude seen, the scale given.
    pub calibrated: Vec<(String, f64, f64)>,
    /// QONNX datatype annotations of the source dropped (the ACCESS attributes type the tensors).
    pub annotations_dropped: usize,
    /// qonnx's channels-last wrappers written as the standard op between two Transposes.
    pub unwrapped: usize,
}

/// Feature-map and weight bit depths, and the bias bit depth (guide II.A).
const FM_BITS: i64 = 8;
const W_BITS: i64 = 8;
const BIAS_BITS: i64 = 16;

fn is_quantizer(op: &Op) -> bool {
    matches!(
        op.kind(),
        OpKind::Quant
            | OpKind::IntQuant
            | OpKind::BipolarQuant
            | OpKind::Trunc
            | OpKind::QuantizeLinear
            | OpKind::DequantizeLinear
    )
}

fn input(op: &Op, i: usize) -> Option<ValueId> {
    op.inputs().get(i).copied().flatten()
}

fn output(op: &Op) -> Option<ValueId> {
    op.outputs().first().copied().flatten()
}

/// A feature-map quantizer: the value it quantizes (resolved), its scale in the source and
/// rounded.
#[derive(Clone, Debug)]
struct Event {
    op: OpId,
    y: ValueId,
    target: ValueId,
    source: f64,
    exp: i32,
    /// An unsigned quantizer of a feature map that may be negative: its clamp at 0 is written
    /// as a `Relu`.
    clamp: bool,
    /// Why the scale is not the source's step rounded ([`fm_note`]).
    note: Option<String>,
    /// The quantizer's output is its input divided by this (`Trunc` v1): written as a `Div`.
    divisor: f64,
    /// The scale of the input the quantizer states (`Trunc` v1), for an input without one.
    input_exp: Option<i32>,
    /// A `BipolarQuant` of a feature map (`s` for `x >= 0`, else `-s`): the DLA has no sign, so
    /// it is written as `Where(Less(x, 0), -s, s)` on the CPU, its output an 8-bit feature map.
    bipolar: bool,
}

/// Converts `model` (shapes inferred) to the ACCESS fixed-point model (see the module doc).
pub fn to_access(
    model: &Model,
    target: &Target,
    opts: &AccessOptions,
) -> Result<AccessConversion, FixedError> {
    let mut m = model.clone();
    let qoperator_layers = super::qoperator::expand(&mut m)?;
    let unwrapped = unwrap_channels_last(&mut m)?;
    let (batchnorms, overrides) = fold_batchnorm(&mut m);
    let order: Vec<OpId> = m.graph.topo_order().map_err(|c| FixedError::Unsupported {
        node: c.first().map(|&o| m.graph.op_label(o)).unwrap_or_default(),
        reason: "the graph has a cycle".into(),
    })?;
    if !m
        .graph
        .ops()
        .any(|(_, op)| is_quantizer(op) || matches!(op.kind(), OpKind::FloatQuant | OpKind::MultiThreshold))
    {
        return Err(FixedError::NotQuantized);
    }
    let consts = fold_constants(&m, &order);
    let is_const = |v: ValueId| consts[v.index()].is_some();
    let g = &m.graph;

    // Quantizers of feature maps, and what the target lacks.
    let mut alias: HashMap<ValueId, ValueId> = HashMap::new();
    let resolve = |alias: &HashMap<ValueId, ValueId>, mut v: ValueId| {
        while let Some(&t) = alias.get(&v) {
            v = t;
        }
        v
    };
    let mut events: Vec<Event> = Vec::new();
    let mut removed: HashSet<OpId> = HashSet::new();
    let mut cpu: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for &id in &order {
        let op = g.op(id);
        let (Some(x), Some(y)) = (input(op, 0), output(op)) else { continue };
        if op.outputs().iter().flatten().all(|v| is_const(*v)) && !g.outputs.contains(&y) {
            continue; // folded
        }
        if op.kind() == OpKind::FloatQuant
            && let Some((s, max)) = minifloat_range(op, &consts)
        {
            // A minifloat has no integer form: the DLA's signed 8-bit grid over its range stands
            // for it (uniform where the source's is finer near 0), as for a quantizer of that
            // range.
            let node = g.op_label(id);
            let need = max * s / 127.0;
            let d = round_pow2(need, opts.rounding).ok_or_else(|| FixedError::Unrepresentable {
                node: node.clone(),
                tensor: g.value(y).name.clone(),
                reason: format!("range +-{:e} has no power-of-two step between 2^-120 and 2^120", max * s),
            })?;
            events.push(Event {
                op: id,
                y,
                target: resolve(&alias, x),
                source: need,
                exp: d.exp,
                clamp: false,
                note: Some(format!(
                    "minifloat of range +-{:.4}: a uniform signed 8-bit grid over it",
                    max * s
                )),
                divisor: 1.0,
                input_exp: None,
                bipolar: false,
            });
            removed.insert(id);
            continue;
        }
        if matches!(op.kind(), OpKind::FloatQuant | OpKind::MultiThreshold) {
            problems.push(format!("{} `{}` (no integer form on the DLA)", op.op_type(), g.op_label(id)));
            continue;
        }
        // The Clip of a QCDQ quantizer (QuantizeLinear -> Clip -> DequantizeLinear) is part of
        // the quantizer: its bounds narrowed the QuantizeLinear's range (below), and it goes.
        if op.kind() == OpKind::Clip
            && g.value(x).producer().is_some_and(|p| removed.contains(&p))
            && qcdq_clip(g, x, &consts).is_some_and(|(c, _, _)| c == id)
        {
            removed.insert(id);
            alias.insert(y, resolve(&alias, x));
            continue;
        }
        if op.kind() == OpKind::BipolarQuant {
            let node = g.op_label(id);
            let s = input(op, 1)
                .and_then(|v| consts[v.index()].as_ref())
                .and_then(|a| a.to_f64().ok())
                .filter(|v| v.len() == 1)
                .map(|v| v[0])
                .filter(|s| *s > 0.0 && s.is_finite())
                .ok_or_else(|| FixedError::Unrepresentable {
                    node: node.clone(),
                    tensor: g.value(y).name.clone(),
                    reason: "its scale is not one positive constant".into(),
                })?;
            if m.onnx_opset() < 9 {
                return Err(FixedError::Unsupported {
                    node,
                    reason: "a BipolarQuant is written as Less and Where, which need ONNX opset 9 or later"
                        .into(),
                });
            }
            let exp = bipolar_exp(s).ok_or_else(|| FixedError::Unrepresentable {
                node: node.clone(),
                tensor: g.value(y).name.clone(),
                reason: format!("scale {s} has no power-of-two step between 2^-120 and 2^120"),
            })?;
            cpu.push(format!("BipolarQuant `{node}` (as Less and Where)"));
            events.push(Event {
                op: id,
                y,
                target: resolve(&alias, x),
                source: s,
                exp,
                clamp: false,
                note: Some(format!(
                    "bipolar +-{s}: +-{} steps on signed 8 bits",
                    (s / 2f64.powi(exp)).round()
                )),
                divisor: 1.0,
                input_exp: None,
                bipolar: true,
            });
            removed.insert(id);
            continue;
        }
        if !is_quantizer(op) {
            if target.entries_for(op).is_empty() && !target.is_absorbed(op) {
                cpu.push(format!("{} `{}`", op.op_type(), g.op_label(id)));
            }
            continue;
        }
        removed.insert(id);
        if op.kind() == OpKind::DequantizeLinear {
            alias.insert(y, resolve(&alias, x));
            continue;
        }
        let node = g.op_label(id);
        let unrepresentable = |reason: String| FixedError::Unrepresentable {
            node: node.clone(),
            tensor: g.value(y).name.clone(),
            reason,
        };
        let mut q = fm_quantizer(&m, op, &consts).map_err(unrepresentable)?;
        if op.kind() == OpKind::QuantizeLinear
            && let Some((_, cmin, cmax)) = qcdq_clip(g, y, &consts)
        {
            q.lo = q.lo.max(cmin - q.z);
            q.hi = q.hi.min(cmax - q.z);
        }
        let FmQuant { s, lo, hi, .. } = q;
        let need = fm_step(s, lo, hi);
        let pow2 = |need: f64| {
            round_pow2(need, opts.rounding).ok_or_else(|| {
                unrepresentable(format!("scale {s} has no power of two between 2^-120 and 2^120"))
            })
        };
        let d = pow2(need)?;
        let input_exp = match q.input {
            Some((is, ilo, ihi)) if q.divisor != 1.0 => Some(pow2(fm_step(is, ilo, ihi))?.exp),
            _ => None,
        };
        // A value-changing Trunc is written as a Div, which has no clamp at 0.
        let clamp = lo >= 0.0 && q.divisor == 1.0 && !nonneg(&m, x, 0);
        events.push(Event {
            op: id,
            y,
            target: resolve(&alias, x),
            source: s,
            exp: d.exp,
            clamp,
            note: fm_note(s, lo, hi, need),
            divisor: q.divisor,
            input_exp,
            bipolar: false,
        });
    }
    if !problems.is_empty() {
        return Err(FixedError::UnsupportedOps { ops: problems.join(", "), hint_cpu: false });
    }
    if !cpu.is_empty() && !opts.allow_cpu_ops {
        return Err(FixedError::UnsupportedOps { ops: cpu.join(", "), hint_cpu: true });
    }

    // One scale per feature map.
    let mut scale: HashMap<ValueId, i32> = HashMap::new();
    let mut requant_events: Vec<Event> = Vec::new();
    let mut clamp_events: Vec<(Event, bool)> = Vec::new();
    for ev in &events {
        let t = resolve(&alias, ev.target);
        if ev.bipolar {
            // Its output is another value than its input, computed on the CPU.
            scale.insert(ev.y, ev.exp);
            requant_events.push(ev.clone());
            continue;
        }
        if ev.divisor != 1.0 {
            // Its output is another value than its input: a Div by the divisor, with its scale.
            if let Some(e) = ev.input_exp {
                scale.entry(t).or_insert(e);
            }
            scale.insert(ev.y, ev.exp);
            requant_events.push(ev.clone());
            continue;
        }
        if ev.clamp {
            let needs_div = match scale.get(&t) {
                None => {
                    scale.insert(t, ev.exp);
                    false
                }
                Some(&e) => e != ev.exp,
            };
            if needs_div && opts.incoherent == Incoherent::Fail {
                return Err(FixedError::Incoherent {
                    node: g.op_label(ev.op),
                    tensor: g.value(t).name.clone(),
                    first: 2f64.powi(scale[&t]),
                    second: 2f64.powi(ev.exp),
                });
            }
            scale.insert(ev.y, ev.exp);
            clamp_events.push((ev.clone(), needs_div));
            continue;
        }
        match scale.get(&t) {
            None => {
                scale.insert(t, ev.exp);
                alias.insert(ev.y, t);
            }
            Some(&e) if e == ev.exp => {
                alias.insert(ev.y, t);
            }
            Some(&e) => {
                if opts.incoherent == Incoherent::Fail {
                    return Err(FixedError::Incoherent {
                        node: g.op_label(ev.op),
                        tensor: g.value(t).name.clone(),
                        first: 2f64.powi(e),
                        second: 2f64.powi(ev.exp),
                    });
                }
                scale.insert(ev.y, ev.exp);
                requant_events.push(ev.clone());
            }
        }
    }
    let eff = |v: ValueId| resolve(&alias, v);
    // The ops that stay, with their effective inputs.
    let live: Vec<OpId> = order
        .iter()
        .copied()
        .filter(|id| {
            let op = g.op(*id);
            !removed.contains(id)
                && !op.outputs().iter().flatten().all(|v| is_const(*v) && !g.outputs.contains(v))
        })
        .collect();
    let keeps = |op: &Op| keeps_scale(target, op);
    fill(g, &live, &mut scale, &eff, &is_const, &keeps);
    // Layer outputs read only by bipolar quantizers: only their signs matter, which saturation
    // keeps, so they get the accumulator's resolution (below) rather than a calibrated range.
    let bipolar_ops: HashSet<OpId> = events.iter().filter(|e| e.bipolar).map(|e| e.op).collect();
    let sign_only = |v: ValueId| {
        !g.outputs.contains(&v)
            && !g.value(v).uses().is_empty()
            && g.value(v).uses().iter().all(|(r, slot)| *slot == 0 && bipolar_ops.contains(r))
    };
    // A weighted layer's weights as integers at rounded per-channel scales ([`weight_ints`]),
    // the weight along axis 0 (a Gemm's `[K, N]` weight without transB along axis 1).
    let layer_weights = |op: &Op, w: ValueId, wv: &Array| {
        let axis = usize::from(op.kind() == OpKind::Gemm && op.attr_int("transB", 0).unwrap_or(0) == 0);
        let src = overrides.get(&w).cloned().or_else(|| weight_source(&m, w, &consts, false));
        weight_ints(wv, axis, src.as_ref(), opts.rounding, target.scales.max_denominator)
            .map(|wi| (axis, src, wi))
    };
    // What it gave for the layers below, kept for when their attributes are written.
    let mut weights = HashMap::new();
    for &id in &live {
        let op = g.op(id);
        let (Some(LayerKind::Weighted), Some(x), Some(w), Some(y)) =
            (layer_kind(op), input(op, 0).map(eff), input(op, 1), output(op).map(eff))
        else {
            continue;
        };
        let (Some(&in_e), Some(wv)) = (scale.get(&x), consts[w.index()].as_ref()) else { continue };
        if scale.contains_key(&y) || !sign_only(y) || target.entries_for(op).is_empty() {
            continue;
        }
        let Ok(lw) = layer_weights(op, w, wv) else {
            continue; // reported where the layer's attributes are written
        };
        // Every nonzero accumulator is at least one output step: its sign is kept.
        let finest = lw.2.1.iter().map(|d| d.value()).fold(f64::INFINITY, f64::min);
        let e = (f64::from(in_e) + finest.log2()).floor();
        if e.is_finite() {
            scale.insert(y, (e as i32).clamp(-120, 120));
        }
        weights.insert(id, lw);
    }
    // Calibration of the feature maps of DLA ops that nothing gave a scale.
    let mut calibrated: Vec<(String, f64, f64)> = Vec::new();
    if let Some(inputs) = &opts.calibrate {
        let values = crate::eval::run_graph_all(&m, inputs)?;
        for &id in &live {
            let op = g.op(id);
            if target.entries_for(op).is_empty() {
                continue;
            }
            let vs: Vec<ValueId> = match layer_kind(op) {
                Some(LayerKind::Weighted | LayerKind::Pool) => {
                    op.inputs().first().copied().flatten().into_iter().chain(output(op)).collect()
                }
                Some(LayerKind::MatMul) => {
                    op.inputs().iter().take(2).flatten().copied().chain(output(op)).collect()
                }
                Some(LayerKind::OutputOnly) => {
                    op.inputs().iter().flatten().copied().chain(output(op)).collect()
                }
                None if keeps(op) => super::data_inputs(op).into_iter().chain(output(op)).collect(),
                None => Vec::new(),
            };
            for v in vs.into_iter().map(eff) {
                if is_const(v) || scale.contains_key(&v) {
                    continue;
                }
                let Some(Ok(vals)) = values[v.index()].as_ref().map(|a| a.to_f64()) else { continue };
                let max = vals.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                let exp = if max > 0.0 && max.is_finite() {
                    round_pow2(max / 127.0, ScaleRounding::Up).map_or(0, |d| d.exp)
                } else {
                    0
                };
                scale.insert(v, exp);
                calibrated.push((g.value(v).name.clone(), max, 2f64.powi(exp)));
                fill(g, &live, &mut scale, &eff, &is_const, &keeps);
            }
        }
    }

    // Scale-keeping ops whose inputs still have another scale: requantize those inputs.
    let mut input_requant: Vec<(OpId, usize, i32)> = Vec::new();
    for &id in &live {
        let op = g.op(id);
        let Some(y) = output(op) else { continue };
        let (true, Some(&e)) = (keeps(op), scale.get(&y)) else { continue };
        let data: Vec<ValueId> = super::data_inputs(op);
        for (slot, x) in op.inputs().iter().enumerate() {
            let Some(x) = *x else { continue };
            if !data.contains(&x) {
                continue;
            }
            let ex = eff(x);
            if let Some(&ei) = scale.get(&ex)
                && ei != e
            {
                if opts.incoherent == Incoherent::Fail {
                    return Err(FixedError::Incoherent {
                        node: g.op_label(id),
                        tensor: g.value(ex).name.clone(),
                        first: 2f64.powi(ei),
                        second: 2f64.powi(e),
                    });
                }
                input_requant.push((id, slot, e));
            }
        }
    }

    // Attributes of the layers.
    let mut changes: Vec<ScaleChange> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut attrs: HashMap<OpId, Vec<(String, AttrValue)>> = HashMap::new();
    let written: Vec<(ValueId, OpId, Option<ValueId>)> = requant_events
        .iter()
        .filter(|e| !e.bipolar)
        .map(|e| (eff(e.target), e.op, None))
        .chain(clamp_events.iter().map(|(e, _)| (eff(e.target), e.op, Some(e.y))))
        .collect();
    let mut declared = Declared::default();
    declare_entries(
        &Entries {
            g,
            target,
            live: &live,
            eff: &eff,
            is_const: &is_const,
            keeps: &keeps,
            bipolar: &bipolar_ops,
            written: &written,
            requantized: &input_requant.iter().map(|&(id, slot, _)| (id, slot)).collect(),
        },
        &scale,
        &mut declared,
        &mut missing,
    );
    for (id, name, bits, e) in &declared.attrs {
        let a = attrs.entry(*id).or_default();
        a.push((name.to_string(), AttrValue::Float(2f32.powi(*e))));
        a.push((bits.to_string(), AttrValue::Int(FM_BITS)));
    }
    let mut new_inputs: Vec<(OpId, usize, Array, String)> = Vec::new();
    let (mut bias_saturated, mut weight_saturated, mut layers) = (0u64, 0u64, 0usize);
    let mut bias_widened: Vec<String> = Vec::new();
    for &id in &live {
        let op = g.op(id);
        if target.entries_for(op).is_empty() {
            continue;
        }
        let Some(kind) = layer_kind(op) else {
            // A DLA op that keeps scales: its data input and its output need one too.
            if keeps(op) {
                let node = g.op_label(id);
                for v in super::data_inputs(op).into_iter().chain(output(op)).map(eff) {
                    if !is_const(v) && !scale.contains_key(&v) {
                        missing.push(format!("`{}` of `{node}`", g.value(v).name));
                    }
                }
            }
            continue;
        };
        let node = g.op_label(id);
        let Some(y) = output(op) else { continue };
        let fm = |v: ValueId, what: &str, missing: &mut Vec<String>| -> Option<i32> {
            let e = scale.get(&eff(v)).copied();
            if e.is_none() {
                missing.push(format!("{what} `{}` of `{node}`", g.value(eff(v)).name));
            }
            e
        };
        let mut a: Vec<(String, AttrValue)> = Vec::new();
        let put_fm = |name: &str, bits: &str, e: i32, a: &mut Vec<(String, AttrValue)>| {
            a.push((name.to_string(), AttrValue::Float(2f32.powi(e))));
            a.push((bits.to_string(), AttrValue::Int(FM_BITS)));
        };
        let out_e = fm(y, "output", &mut missing);
        match kind {
            LayerKind::Weighted => {
                let x = input(op, 0).map(eff);
                let in_e = x.and_then(|x| fm(x, "input", &mut missing));
                let (Some(in_e), Some(out_e), Some(w)) = (in_e, out_e, input(op, 1)) else { continue };
                let Some(wv) = consts[w.index()].as_ref() else {
                    missing.push(format!("constant weight (input 1) of `{node}`"));
                    continue;
                };
                let lw = match weights.remove(&id) {
                    Some(lw) => lw,
                    None => layer_weights(op, w, wv).map_err(|reason| FixedError::Unrepresentable {
                        node: node.clone(),
                        tensor: g.value(w).name.clone(),
                        reason,
                    })?,
                };
                let (axis, src, (mut ints, mut rounded, src_scales, flushed)) = lw;
                let per = channel_index(&wv.dims, axis, rounded.len());
                // The bias is stored at `input_scale x weight scale` in 16 bits: a channel whose
                // bias does not fit gets the smallest weight scale at which it does, its weights
                // requantized to it (coarser weights, an exact bias; a saturated bias would shift
                // every output of the channel).
                let mut widened = vec![false; rounded.len()];
                if let Some(bv) = input(op, 2).and_then(|b| consts[b.index()].as_ref()) {
                    let vals = bv.to_f64()?;
                    let n = rounded.len();
                    let per_b = channel_index(&bv.dims, bv.dims.len().saturating_sub(1), n);
                    let mut need = vec![0.0f64; n];
                    for (i, v) in vals.iter().enumerate() {
                        let min = v.abs() / (32767.0 * 2f64.powi(in_e));
                        if vals.len() == 1 {
                            need.iter_mut().for_each(|x| *x = x.max(min));
                        } else {
                            need[per_b(i)] = need[per_b(i)].max(min);
                        }
                    }
                    for c in 0..n {
                        if rounded[c].value() >= need[c] {
                            continue;
                        }
                        let Some(d) = round_reciprocal_dyadic(
                            need[c],
                            target.scales.max_denominator,
                            ScaleRounding::Up,
                        ) else {
                            continue; // no wider scale in range: the bias saturates, and is counted
                        };
                        for (i, q) in ints.iter_mut().enumerate() {
                            if per(i) == c {
                                let r = round_half_up(*q * src_scales[c] / d.value());
                                if !(-128.0..=127.0).contains(&r) {
                                    weight_saturated += 1;
                                }
                                *q = r.clamp(-128.0, 127.0);
                            }
                        }
                        rounded[c] = d;
                        widened[c] = true;
                    }
                    let count = widened.iter().filter(|w| **w).count();
                    if count > 0 {
                        bias_widened.push(format!("{node} ({count})"));
                    }
                }
                let stored: Vec<f64> =
                    ints.iter().enumerate().map(|(i, q)| q * rounded[per(i)].value()).collect();
                // weight_ch_scales run along axis 0: a Gemm's `[K, N]` weight is stored as
                // `[N, K]` with transB = 1.
                let (stored, dims) = if axis == 1 && wv.dims.len() == 2 {
                    let (k, n) = (wv.dims[0], wv.dims[1]);
                    let t: Vec<f64> = (0..n * k).map(|i| stored[(i % k) * n + i / k]).collect();
                    a.push(("transB".into(), AttrValue::Int(1)));
                    (t, vec![n, k])
                } else {
                    (stored, wv.dims.clone())
                };
                new_inputs.push((id, 1, Array::from_f64s(ElemType::F32, dims, stored)?, format!("{node}_w")));
                for (c, (r, s)) in rounded.iter().zip(&src_scales).enumerate() {
                    changes.push(ScaleChange {
                        node: node.clone(),
                        attr: format!("weight_ch_scales[{c}]"),
                        tensor: g.value(w).name.clone(),
                        source: *s,
                        rounded: r.value(),
                        quantized_here: src.is_none(),
                        moved: if widened[c] {
                            Some(Moved::BiasWidened)
                        } else if flushed[c] {
                            Some(Moved::Flushed)
                        } else {
                            None
                        },
                        note: if widened[c] {
                            Some("widened so that the 16-bit bias fits".to_string())
                        } else if flushed[c] {
                            Some("below 2^-120: the channel's weights are flushed to 0".to_string())
                        } else {
                            None
                        },
                    });
                }
                if let Some(b) = input(op, 2)
                    && let Some(bv) = consts[b.index()].as_ref()
                {
                    let vals = bv.to_f64()?;
                    let per = channel_index(&bv.dims, bv.dims.len().saturating_sub(1), rounded.len());
                    let mut out = Vec::with_capacity(vals.len());
                    for (i, v) in vals.iter().enumerate() {
                        let s = 2f64.powi(in_e) * rounded[per(i)].value();
                        let q = round_half_up(v / s);
                        if !(-32768.0..=32767.0).contains(&q) {
                            bias_saturated += 1;
                        }
                        out.push(q.clamp(-32768.0, 32767.0) * s);
                    }
                    new_inputs.push((
                        id,
                        2,
                        Array::from_f64s(ElemType::F32, bv.dims.clone(), out)?,
                        format!("{node}_b"),
                    ));
                }
                put_fm("input_scale", "input_bitdepth", in_e, &mut a);
                a.push(("weight_bitdepth".into(), AttrValue::Int(W_BITS)));
                a.push((
                    "weight_ch_scales".into(),
                    AttrValue::Floats(rounded.iter().map(|d| d.value() as f32).collect()),
                ));
                put_fm("output_scale", "output_bitdepth", out_e, &mut a);
                if input(op, 2).is_some() {
                    a.push(("bias_bitdepth".into(), AttrValue::Int(BIAS_BITS)));
                }
            }
            LayerKind::MatMul => {
                let (Some(xa), Some(xb)) = (input(op, 0), input(op, 1)) else { continue };
                let a_e = fm(xa, "input A", &mut missing);
                let b_e = if let Some(bv) = consts[xb.index()].as_ref() {
                    // A constant B: one power-of-two scale (B_scale), the weights requantized to it.
                    let src = weight_source(&m, xb, &consts, true);
                    let s = match &src {
                        Some(p) => p.values().iter().copied().fold(0.0, f64::max),
                        None => bv.to_f64()?.iter().fold(0.0f64, |m, x| m.max(x.abs())) / 127.0,
                    };
                    let s = if s > 0.0 { s } else { 1.0 };
                    let d = round_pow2(s, opts.rounding).ok_or_else(|| FixedError::Unrepresentable {
                        node: node.clone(),
                        tensor: g.value(xb).name.clone(),
                        reason: format!("weight scale {s} has no power of two"),
                    })?;
                    let mut stored = Vec::new();
                    for v in bv.to_f64()? {
                        let q = round_half_up(v / d.value());
                        if !(-128.0..=127.0).contains(&q) {
                            weight_saturated += 1;
                        }
                        stored.push(q.clamp(-128.0, 127.0) * d.value());
                    }
                    new_inputs.push((
                        id,
                        1,
                        Array::from_f64s(ElemType::F32, bv.dims.clone(), stored)?,
                        format!("{node}_w"),
                    ));
                    changes.push(ScaleChange {
                        node: node.clone(),
                        attr: "B_scale".into(),
                        tensor: g.value(xb).name.clone(),
                        source: s,
                        rounded: d.value(),
                        quantized_here: src.is_none(),
                        moved: None,
                        note: None,
                    });
                    Some(d.exp)
                } else {
                    fm(xb, "input B", &mut missing)
                };
                let (Some(a_e), Some(b_e), Some(out_e)) = (a_e, b_e, out_e) else { continue };
                put_fm("A_scale", "A_bitdepth", a_e, &mut a);
                put_fm("B_scale", "B_bitdepth", b_e, &mut a);
                put_fm("output_scale", "output_bitdepth", out_e, &mut a);
            }
            LayerKind::Pool => {
                let Some(x) = input(op, 0) else { continue };
                // A max pooling requantized at its input reads the requantized scale.
                let requantized =
                    input_requant.iter().find(|(o, slot, _)| *o == id && *slot == 0).map(|r| r.2);
                let in_e = match requantized {
                    Some(e) => Some(e),
                    None => fm(x, "input", &mut missing),
                };
                let (Some(in_e), Some(out_e)) = (in_e, out_e) else { continue };
                put_fm("input_scale", "input_bitdepth", in_e, &mut a);
                put_fm("output_scale", "output_bitdepth", out_e, &mut a);
            }
            LayerKind::OutputOnly => {
                let Some(out_e) = out_e else { continue };
                put_fm("output_scale", "output_bitdepth", out_e, &mut a);
            }
        }
        layers += 1;
        attrs.entry(id).or_default().extend(a);
    }
    if !missing.is_empty() {
        return Err(FixedError::NoScale { what: missing.join(", "), count: missing.len() });
    }
    // The feature-map scales, one per quantizer of the source, first.
    let mut fm_changes: Vec<ScaleChange> = events
        .iter()
        .map(|ev| ScaleChange {
            node: g.op_label(ev.op),
            attr: "scale".into(),
            tensor: g.value(ev.y).name.clone(),
            // A bipolar `+-s` is `+-k` steps of `s / k`: that step is what the DLA's rounds.
            source: if ev.bipolar {
                ev.source / (ev.source / 2f64.powi(ev.exp)).round().max(1.0)
            } else {
                ev.source
            },
            rounded: 2f64.powi(ev.exp),
            quantized_here: false,
            moved: ev.note.is_some().then_some(Moved::Range),
            note: ev.note.clone(),
        })
        .collect();
    fm_changes.append(&mut changes);
    let changes = fm_changes;

    // Rewrite: attributes, new weights and biases, requantizations, quantizers removed.
    let mut rw = Rewrite::default();
    let one = add_const(&mut m.graph, "access_requant_one", &Array::scalar_f32(1.0));
    let mut requantized = Vec::new();
    let div = |e: i32, name: &str| {
        let mut op = Op::new("Div", None);
        op.name = Some(name.to_string());
        op.with_attr("output_scale", AttrValue::Float(2f32.powi(e)))
            .with_attr("output_bitdepth", AttrValue::Int(FM_BITS))
    };
    for (id, a) in &attrs {
        let op = m.graph.op_mut(*id);
        for (k, v) in a {
            op.set_attr(k, v.clone());
        }
    }
    for &(id, slot) in &declared.swapped {
        let ins = m.graph.op(id).inputs().to_vec();
        m.graph.set_input(id, 0, ins[slot]);
        m.graph.set_input(id, slot, ins[0]);
    }
    // Constants computed by ops (a quantized weight read by an op that is not a layer, a shape
    // from a Constant op) become initializers, so that no quantizer is left to compute them.
    for &id in &live {
        if removed.contains(&id) {
            continue;
        }
        for (slot, v) in m.graph.op(id).inputs().to_vec().into_iter().enumerate() {
            let Some(v) = v else { continue };
            if m.graph.value(v).producer().is_none()
                || new_inputs.iter().any(|(o, s, _, _)| *o == id && *s == slot)
            {
                continue;
            }
            if let Some(a) = consts[v.index()].as_ref() {
                let base = m.graph.value(v).name.clone();
                let c = add_const(&mut m.graph, &base, a);
                m.graph.set_input(id, slot, Some(c));
            }
        }
    }
    for (id, slot, arr, base) in new_inputs {
        let v = add_const(&mut m.graph, &base, &arr);
        m.graph.set_input(id, slot, Some(v));
    }
    // Feature-map quantizers that needed another scale become `Div(x, 1)` writing their output.
    let requant_ops: HashSet<OpId> =
        requant_events.iter().map(|e| e.op).chain(clamp_events.iter().map(|(e, _)| e.op)).collect();
    // A quantizer written as other ops: the scale declared for it goes on the op that reads its
    // input (or, for a bipolar one, writes its output).
    let declared_on = |op: Op, quantizer: OpId| {
        attrs.get(&quantizer).into_iter().flatten().fold(op, |op, (k, v)| op.with_attr(k, v.clone()))
    };
    // Unsigned quantizers of feature maps that may be negative become `Relu` (after a
    // requantization when the scales differ).
    let mut clamps = Vec::new();
    for (ev, needs_div) in &clamp_events {
        let label = m.graph.op_label(ev.op);
        let x = eff(ev.target);
        let mut new = Vec::new();
        let src = if *needs_div {
            let r = new_value(&mut m.graph, &format!("{label}_requantized"));
            let name = format!("{label}_requantize");
            new.push((declared_on(div(ev.exp, &name), ev.op), vec![Some(x), Some(one)], vec![Some(r)]));
            requantized.push(name);
            r
        } else {
            x
        };
        let name = format!("{label}_clamp");
        let relu = Op::new("Relu", None).with_name(name.clone());
        let relu = if *needs_div { relu } else { declared_on(relu, ev.op) };
        new.push((relu, vec![Some(src)], vec![Some(ev.y)]));
        rw.set(ev.op, new);
        set_float(&mut m.graph, ev.y);
        clamps.push(name);
    }
    let mut truncations = Vec::new();
    for ev in &requant_events {
        let label = m.graph.op_label(ev.op);
        let x = eff(ev.target);
        if ev.bipolar {
            let s = ev.source as f32;
            let zero = add_const(&mut m.graph, &format!("{label}_zero"), &Array::scalar_f32(0.0));
            let neg = add_const(&mut m.graph, &format!("{label}_minus_scale"), &Array::scalar_f32(-s));
            let pos = add_const(&mut m.graph, &format!("{label}_scale"), &Array::scalar_f32(s));
            let c = new_value(&mut m.graph, &format!("{label}_negative"));
            rw.set(
                ev.op,
                vec![
                    (
                        Op::new("Less", None).with_name(format!("{label}_less")),
                        vec![Some(x), Some(zero)],
                        vec![Some(c)],
                    ),
                    (
                        declared_on(Op::new("Where", None).with_name(format!("{label}_where")), ev.op),
                        vec![Some(c), Some(neg), Some(pos)],
                        vec![Some(ev.y)],
                    ),
                ],
            );
            set_float(&mut m.graph, ev.y);
            continue;
        }
        if ev.divisor != 1.0 {
            let name = format!("{label}_div");
            let k =
                add_const(&mut m.graph, &format!("{label}_divisor"), &Array::scalar_f32(ev.divisor as f32));
            rw.set(
                ev.op,
                vec![(declared_on(div(ev.exp, &name), ev.op), vec![Some(x), Some(k)], vec![Some(ev.y)])],
            );
            set_float(&mut m.graph, ev.y);
            truncations.push(name);
            continue;
        }
        let name = format!("{label}_requantize");
        rw.set(
            ev.op,
            vec![(declared_on(div(ev.exp, &name), ev.op), vec![Some(x), Some(one)], vec![Some(ev.y)])],
        );
        set_float(&mut m.graph, ev.y);
        requantized.push(name);
    }
    // Inputs of scale-keeping ops that have another scale.
    let mut by_op: HashMap<OpId, Vec<(usize, i32)>> = HashMap::new();
    for (id, slot, e) in input_requant {
        by_op.entry(id).or_default().push((slot, e));
    }
    let mut by_op: Vec<(OpId, Vec<(usize, i32)>)> = by_op.into_iter().collect();
    by_op.sort_by_key(|(id, _)| m.graph.position(*id));
    for (id, slots) in by_op {
        let op = m.graph.op(id).clone();
        let mut ins = op.inputs().to_vec();
        let mut new = Vec::new();
        for (slot, e) in slots {
            let Some(x) = ins[slot] else { continue };
            let x = eff(x);
            let base = format!("{}_requantized", m.graph.value(x).name);
            let r = new_value(&mut m.graph, &base);
            let name = format!("{}_requantize_{slot}", m.graph.op_label(id));
            new.push((div(e, &name), vec![Some(x), Some(one)], vec![Some(r)]));
            ins[slot] = Some(r);
            requantized.push(name);
        }
        let outs = op.outputs().to_vec();
        new.push((op, ins, outs));
        rw.set(id, new);
    }
    // Every other quantizer goes; its readers read the feature map it quantized.
    let mut renamed: HashMap<ValueId, ValueId> = HashMap::new();
    for &id in &order {
        if !removed.contains(&id) || requant_ops.contains(&id) {
            continue;
        }
        rw.set(id, Vec::new());
        let Some(y) = output(m.graph.op(id)) else { continue };
        let t = eff(y);
        let is_output = m.graph.outputs.contains(&y);
        let read =
            m.graph.value(y).uses().iter().any(|(r, _)| !removed.contains(r) || requant_ops.contains(r));
        if t == y || !(is_output || read) {
            rw.drop_if_unused([y]);
            continue;
        }
        if is_output {
            renamed.insert(t, y);
        }
        if !rw.replace_uses(&m.graph, y, t) {
            return Err(FixedError::Unsupported {
                node: m.graph.op_label(id),
                reason: format!(
                    "its output `{}` cannot be replaced by `{}` (a graph input read as a graph output)",
                    m.graph.value(y).name,
                    m.graph.value(t).name
                ),
            });
        }
        rw.drop_if_unused([y]);
    }
    // A graph output keeps its name: the value that replaced it is the output itself.
    let pairs: Vec<(String, String)> = events
        .iter()
        .map(|ev| {
            let t = eff(ev.y);
            let t = renamed.get(&t).copied().unwrap_or(t);
            (m.graph.value(t).name.clone(), m.graph.value(ev.y).name.clone())
        })
        .collect();
    rw.apply(&mut m.graph);
    remove_dead(&mut m);
    // The source's QONNX datatype annotations (a BIPOLAR or UINT4 input, an INT32 accumulator)
    // describe tensors the ACCESS model types by its 8-bit attributes: they go.
    let mut annotations_dropped = 0;
    for a in &mut m.graph.quantization_annotations {
        let before = a.entries.len();
        a.entries.retain(|e| e.key != "finn_datatype");
        annotations_dropped += before - a.entries.len();
    }
    m.graph.quantization_annotations.retain(|a| !a.entries.is_empty());
    if requantized.is_empty() {
        crate::rewrite::drop_unused(&mut m.graph, &[one]);
    }
    Ok(AccessConversion {
        model: m,
        changes,
        pairs,
        requantized,
        cpu_ops: cpu,
        clamps,
        layers,
        bias_saturated,
        bias_widened,
        truncations,
        weight_saturated,
        qoperator_layers,
        batchnorms,
        calibrated,
        annotations_dropped,
        unwrapped,
    })
}

/// qonnx's channels-last wrappers as the DLA reads them ([`unwrap_wrappers`]), shapes inferred
/// again; the count of wrappers.
fn unwrap_channels_last(m: &mut Model) -> Result<usize, FixedError> {
    let n = unwrap_wrappers(m).map_err(|(node, reason)| FixedError::Unsupported { node, reason })?;
    if n > 0 {
        let pipeline = crate::pipeline::Pipeline::parse("infer-shapes").expect("the pipeline parses");
        let opts = crate::manager::ManagerOptions { verify_each: false, stop_after: None };
        crate::manager::PassManager::new(pipeline, opts)
            .and_then(|mut pm| pm.run(m, &mut |_, _| {}))
            .map_err(|e| FixedError::Unsupported {
                node: String::new(),
                reason: format!("shape inference after unwrapping the channels-last ops: {e}"),
            })?;
    }
    Ok(n)
}

/// What [`declare_entries`] adds to the model.
#[derive(Default)]
struct Declared {
    /// `(op, scale attribute, bit-depth attribute, exponent)`, written on the op.
    attrs: Vec<(OpId, &'static str, &'static str, i32)>,
    /// `(op, slot)`: an `Add` or `Sum` whose input `slot` (a graph input) becomes input 0.
    swapped: Vec<(OpId, usize)>,
}

/// The graph as [`declare_entries`] reads it.
struct Entries<'a> {
    g: &'a qc_ir::Graph,
    target: &'a Target,
    live: &'a [OpId],
    eff: &'a dyn Fn(ValueId) -> ValueId,
    is_const: &'a dyn Fn(ValueId) -> bool,
    keeps: &'a dyn Fn(&Op) -> bool,
    /// `BipolarQuant`s of feature maps: written as CPU ops.
    bipolar: &'a HashSet<OpId>,
    /// Quantizers written as DLA ops that do not declare their input's scale (`Relu` for an
    /// unsigned one, `Div` for a requantization or a `Trunc`): `(value read, quantizer, the
    /// value it writes when it keeps the scale)`.
    written: &'a [(ValueId, OpId, Option<ValueId>)],
    /// `(op, slot)`: inputs of scale-keeping ops read through a requantization (a `Div`).
    requantized: &'a HashSet<(OpId, usize)>,
}

/// Feature maps that enter the DLA from outside it (a graph input, or the output of a CPU op, a
/// bipolar quantizer's included) and that no DLA reader declares (a layer's `input_scale`,
/// `A_scale`, `B_scale`), directly or through ops that keep the scale: the guide gives the other
/// readers (an element-wise Add or Div, a Reshape, a Concat) no attribute for an input's scale.
/// qc declares them where the model can say it: a graph input by `input_scale`/`input_bitdepth`
/// on a DLA op that reads it as input 0 (an `Add` or `Sum` that reads it as input 1 gets its
/// inputs swapped), a CPU op's output by `output_scale`/`output_bitdepth` on that op (the host
/// writes the tensor for the DLA at that scale). Anything else is `missing`.
fn declare_entries(
    e: &Entries,
    scale: &HashMap<ValueId, i32>,
    out: &mut Declared,
    missing: &mut Vec<String>,
) {
    let g = e.g;
    let target_has = |op: &Op| !e.target.entries_for(op).is_empty();
    let live: HashSet<OpId> = e.live.iter().copied().collect();
    let mut readers: HashMap<ValueId, Vec<(OpId, usize)>> = HashMap::new();
    for &id in e.live {
        for (slot, v) in g.op(id).inputs().iter().enumerate() {
            if let Some(v) = v {
                readers.entry((e.eff)(*v)).or_default().push((id, slot));
            }
        }
    }
    let written: HashMap<OpId, Option<ValueId>> = e.written.iter().map(|&(_, q, y)| (q, y)).collect();
    for &(v, q, _) in e.written {
        readers.entry(v).or_default().push((q, 0));
    }
    // On the DLA: an op the target has, or a quantizer written as a DLA op.
    let on_dla = |id: OpId| written.contains_key(&id) || target_has(g.op(id));
    // Whether a DLA op reads input `slot` as a feature map (`Some`), and declares its scale.
    let reads = |id: OpId, slot: usize| -> Option<bool> {
        if written.contains_key(&id) {
            return Some(false);
        }
        let op = g.op(id);
        match layer_kind(op) {
            Some(LayerKind::Weighted | LayerKind::Pool) => (slot == 0).then_some(true),
            Some(LayerKind::MatMul) => (slot <= 1).then_some(true),
            Some(LayerKind::OutputOnly) => Some(false),
            None if (e.keeps)(op) => (slot == 0 || op.op_type() == "Concat").then_some(false),
            None => None,
        }
    };
    let cpu_writer = |v: ValueId| -> Option<Option<OpId>> {
        match g.value(v).producer() {
            None => Some(None),
            Some(p) if e.bipolar.contains(&p) || live.contains(&p) && !on_dla(p) => Some(Some(p)),
            Some(_) => None,
        }
    };
    let mut seen: HashSet<ValueId> = HashSet::new();
    let reads_of = e.live.iter().flat_map(|&id| {
        g.op(id).inputs().iter().enumerate().filter_map(move |(slot, v)| v.map(|v| (id, slot, (e.eff)(v))))
    });
    let reads_of: Vec<(OpId, usize, ValueId)> =
        reads_of.chain(e.written.iter().map(|&(v, q, _)| (q, 0, v))).collect();
    for (id, slot, v) in reads_of {
        if !on_dla(id) || (e.is_const)(v) || reads(id, slot).is_none() || !seen.insert(v) {
            continue;
        }
        let Some(writer) = cpu_writer(v) else { continue };
        // A CPU op's output is always declared: the check passes scales through ops by their
        // type, the CPU's included, so a declaration downstream need not reach back to it.
        if let Some(p) = writer {
            match scale.get(&v) {
                Some(&exp) => out.attrs.push((p, "output_scale", "output_bitdepth", exp)),
                None => missing.push(format!("`{}` read by `{}`", g.value(v).name, g.op_label(id))),
            }
            continue;
        }
        // A graph input: declared downstream?
        let mut stack = vec![v];
        let mut visited = HashSet::new();
        let mut declared = false;
        while let Some(x) = stack.pop() {
            if !visited.insert(x) {
                continue;
            }
            for &(r, rs) in readers.get(&x).into_iter().flatten() {
                if !on_dla(r) {
                    continue;
                }
                if e.requantized.contains(&(r, rs)) {
                    continue; // read by a Div, which declares its output only
                }
                match (reads(r, rs), written.get(&r)) {
                    (Some(true), _) => declared = true,
                    (Some(false), Some(y)) => stack.extend(*y),
                    (Some(false), None) if (e.keeps)(g.op(r)) => stack.extend(output(g.op(r)).map(e.eff)),
                    _ => {}
                }
            }
        }
        if declared {
            continue;
        }
        let Some(&exp) = scale.get(&v) else {
            missing.push(format!("`{}` read by `{}`", g.value(v).name, g.op_label(id)));
            continue;
        };
        let direct: Vec<(OpId, usize)> = readers
            .get(&v)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&(r, rs)| on_dla(r) && reads(r, rs).is_some())
            .collect();
        if let Some(&(r, _)) = direct.iter().find(|(_, rs)| *rs == 0) {
            out.attrs.push((r, "input_scale", "input_bitdepth", exp));
        } else if let Some(&(r, rs)) = direct.iter().find(|&&(r, rs)| {
            matches!(g.op(r).kind(), OpKind::Add | OpKind::Sum)
                && g.op(r)
                    .inputs()
                    .first()
                    .copied()
                    .flatten()
                    .map(e.eff)
                    .is_some_and(|x| (e.is_const)(x) || cpu_writer(x).is_none())
                && rs > 0
        }) {
            out.swapped.push((r, rs));
            out.attrs.push((r, "input_scale", "input_bitdepth", exp));
        } else {
            let (r, rs) = direct.first().copied().unwrap_or((id, slot));
            missing.push(format!(
                "graph input `{}` (read by `{}` as input {rs}, which has no attribute for its scale)",
                g.value(v).name,
                g.op_label(r)
            ));
        }
    }
}

/// The values a graph input was made for.
#[derive(Clone, Debug, PartialEq)]
pub struct InputRange {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
    /// The values are `lo + k step` (an integer or bipolar datatype); `None`: any value in range.
    pub step: Option<f64>,
}

/// For each graph input that a feature-map quantizer reads (directly, or through ops that only
/// move values or a ReLU), the range of real values that quantizer represents:
/// `((lo - z) s, (hi - z) s)`, narrowed by a QCDQ quantizer's Clip; else, for an input with a QONNX datatype annotation of integers
/// (`INT8`, `UINT4`, `BIPOLAR`, ...), that datatype's values. This is the range the source model
/// was made for, which the seeded inputs of the rounding measurement and of `--calibrate` span.
pub fn input_ranges(model: &Model) -> Vec<InputRange> {
    let g = &model.graph;
    let Ok(order) = g.topo_order() else { return Vec::new() };
    let consts = fold_constants(model, &order);
    let mut out = Vec::new();
    for &v in &g.inputs {
        if g.value(v).init.is_some() {
            continue;
        }
        let mut at = v;
        let mut found = None;
        'walk: for _ in 0..16 {
            for (id, slot) in g.value(at).uses() {
                let op = g.op(*id);
                if *slot != 0 {
                    continue;
                }
                if matches!(op.kind(), OpKind::Quant | OpKind::IntQuant | OpKind::QuantizeLinear)
                    && let Ok(mut q) = fm_quantizer(model, op, &consts)
                {
                    // A QCDQ quantizer's Clip narrows its range, as in the conversion.
                    if op.kind() == OpKind::QuantizeLinear
                        && let Some((_, cmin, cmax)) = output(op).and_then(|y| qcdq_clip(g, y, &consts))
                    {
                        q.lo = q.lo.max(cmin - q.z);
                        q.hi = q.hi.min(cmax - q.z);
                    }
                    found = Some((q.lo * q.s, q.hi * q.s));
                    break 'walk;
                }
            }
            // One reader that only moves values (or a ReLU) and that is followed further.
            let next = g.value(at).uses().iter().find_map(|(id, slot)| {
                let op = g.op(*id);
                (*slot == 0
                    && matches!(
                        op.kind(),
                        OpKind::Relu
                            | OpKind::Reshape
                            | OpKind::Flatten
                            | OpKind::Transpose
                            | OpKind::Identity
                            | OpKind::Squeeze
                            | OpKind::Unsqueeze
                    ))
                .then(|| output(op))
                .flatten()
            });
            match next {
                Some(y) => at = y,
                None => break,
            }
        }
        let name = g.value(v).name.clone();
        if let Some((lo, hi)) = found
            && lo < hi
            && lo.is_finite()
            && hi.is_finite()
        {
            out.push(InputRange { name, lo, hi, step: None });
            continue;
        }
        let annotated = g.quantization_annotations.iter().find_map(|a| {
            (a.tensor_name.as_deref() == Some(name.as_str()))
                .then(|| a.entries.iter().find(|e| e.key == "finn_datatype"))
                .flatten()
                .and_then(|e| qc_ir::DataType::parse(&e.value))
        });
        if let Some(dt) = annotated
            && let Some((lo, hi)) = dt.int_range()
            && lo < hi
            && hi - lo <= 1 << 24
        {
            let step = if dt == qc_ir::DataType::Bipolar { 2.0 } else { 1.0 };
            out.push(InputRange { name, lo: lo as f64, hi: hi as f64, step: Some(step) });
        }
    }
    out
}

/// Passes scales through the scale-keeping ops, forward to an output without one, then backward
/// to an input without one, to a fixpoint. Forward first: a feature map keeps the scale of the
/// value it comes from, so that where two scales meet (a Concat of differently scaled branches,
/// a quantizer after a MaxPool) the requantization is put there, at the op that merges or
/// rescales them, and not moved up to an earlier value (a graph input, whose requantization no
/// attribute could describe).
fn fill(
    g: &qc_ir::Graph,
    live: &[OpId],
    scale: &mut HashMap<ValueId, i32>,
    eff: &dyn Fn(ValueId) -> ValueId,
    is_const: &dyn Fn(ValueId) -> bool,
    keeps: &dyn Fn(&Op) -> bool,
) {
    for _ in 0..=live.len() {
        let mut changed = false;
        for &id in live {
            let op = g.op(id);
            let Some(y) = output(op) else { continue };
            let y = eff(y);
            if !keeps(op) || scale.contains_key(&y) {
                continue;
            }
            if let Some(e) = super::data_inputs(op).into_iter().map(eff).find_map(|x| scale.get(&x).copied())
            {
                scale.insert(y, e);
                changed = true;
            }
        }
        for &id in live.iter().rev() {
            let op = g.op(id);
            let Some(y) = output(op) else { continue };
            if !keeps(op) {
                continue;
            }
            if let Some(&e) = scale.get(&eff(y)) {
                for x in super::data_inputs(op).into_iter().map(eff).filter(|x| !is_const(*x)) {
                    if let std::collections::hash_map::Entry::Vacant(slot) = scale.entry(x) {
                        slot.insert(e);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// Folds each `BatchNormalization` that is the only reader of a Conv's, Gemm's or 2-D MatMul's
/// output (constant weights and parameters) into that layer, as the DLA does (guide II.B.9):
/// with `k = gamma / sqrt(var + eps)` per channel, the weight of output channel `c` times `k_c`
/// and the bias `(b - mean) k + beta`; a MatMul becomes a Gemm with that bias. The quantized
/// weight keeps its integers: its scale per channel becomes `s_c |k_c|` (returned by weight
/// value, for the weight's rounding), the sign going into the integers.
fn fold_batchnorm(m: &mut Model) -> (usize, HashMap<ValueId, QuantParam>) {
    let mut overrides = HashMap::new();
    let Ok(order) = m.graph.topo_order() else { return (0, overrides) };
    let consts = fold_constants(m, &order);
    let mut rw = Rewrite::default();
    let mut folded = 0;
    for &id in &order {
        let bn = m.graph.op(id);
        if bn.kind() != OpKind::BatchNormalization || bn.outputs().iter().flatten().count() != 1 {
            continue;
        }
        let (Some(c), Some(y)) = (input(bn, 0), output(bn)) else { continue };
        let Some(p) = m.graph.value(c).producer() else { continue };
        let layer = m.graph.op(p);
        let only_reader = m.graph.value(c).uses().len() == 1 && !m.graph.outputs.contains(&c);
        let kind = layer.kind();
        let rank2 = qc_ir::dims::rank(&m.graph, c) == Some(2);
        let fits = match kind {
            OpKind::Conv => true,
            OpKind::Gemm => {
                layer.attr_int("transA", 0).unwrap_or(0) == 0
                    && layer.attr_float("alpha", 1.0).unwrap_or(1.0) == 1.0
                    && layer.attr_float("beta", 1.0).unwrap_or(1.0) == 1.0
                    && rank2
            }
            OpKind::MatMul => rank2,
            _ => false,
        };
        if !only_reader || !fits || rw.touches(p) {
            continue;
        }
        let param =
            |i: usize| input(bn, i).and_then(|v| consts[v.index()].as_ref()).and_then(|a| a.to_f64().ok());
        let (Some(gamma), Some(beta), Some(mean), Some(var)) = (param(1), param(2), param(3), param(4))
        else {
            continue;
        };
        let eps = f64::from(bn.attr_float("epsilon", 1e-5).unwrap_or(1e-5));
        let Some(w) = input(layer, 1) else { continue };
        let Some(wa) = consts[w.index()].as_ref() else { continue };
        let n = gamma.len();
        // The output-channel axis of the weight.
        let axis = match kind {
            OpKind::Conv => 0,
            OpKind::Gemm if layer.attr_int("transB", 0).unwrap_or(0) != 0 => 0,
            _ => 1,
        };
        if [beta.len(), mean.len(), var.len()].iter().any(|l| *l != n) || wa.dims.get(axis) != Some(&n) {
            continue;
        }
        let k: Vec<f64> = (0..n).map(|c| gamma[c] / (var[c] + eps).sqrt()).collect();
        if k.iter().any(|x| !x.is_finite() || *x == 0.0) {
            continue;
        }
        let Ok(wv) = wa.to_f64() else { continue };
        let per = channel_index(&wa.dims, axis, n);
        let new_w: Vec<f64> = wv.iter().enumerate().map(|(i, x)| x * k[per(i)]).collect();
        let b: Vec<f64> = match input(layer, 2).filter(|_| kind != OpKind::MatMul) {
            Some(bv) => match consts[bv.index()].as_ref().and_then(|a| a.to_f64().ok()) {
                Some(v) if v.len() == n => v,
                Some(v) if v.len() == 1 => vec![v[0]; n],
                _ => continue,
            },
            None => vec![0.0; n],
        };
        let new_b: Vec<f64> = (0..n).map(|c| (b[c] - mean[c]) * k[c] + beta[c]).collect();
        let Ok(wa2) = Array::from_f64s(ElemType::F32, wa.dims.clone(), new_w) else { continue };
        let Ok(ba) = Array::from_f64s(ElemType::F32, vec![n], new_b) else { continue };
        let src = weight_source(m, w, &consts, false);
        let label = m.graph.op_label(p);
        let mut new_op = m.graph.op(p).clone();
        let x = input(&new_op, 0);
        let wv2 = add_const(&mut m.graph, &format!("{label}_w_bn"), &wa2);
        let bv2 = add_const(&mut m.graph, &format!("{label}_b_bn"), &ba);
        if let Some(s) = src {
            let scales: Option<Vec<f64>> = match &s {
                QuantParam::PerTensor(v) => Some(k.iter().map(|kc| v * kc.abs()).collect()),
                QuantParam::PerAxis { values, .. } if values.len() == n => {
                    Some(values.iter().zip(&k).map(|(v, kc)| v * kc.abs()).collect())
                }
                _ => None,
            };
            if let Some(values) = scales {
                overrides.insert(wv2, QuantParam::PerAxis { axis: axis as i64, values });
            }
        }
        if kind == OpKind::MatMul {
            let mut gemm = Op::new("Gemm", None);
            gemm.name = new_op.name.clone();
            new_op = gemm;
        }
        if !rw.replace_uses(&m.graph, y, c) {
            continue;
        }
        rw.set(p, vec![(new_op, vec![x, Some(wv2), Some(bv2)], vec![Some(c)])]);
        rw.set(id, Vec::new());
        folded += 1;
    }
    rw.apply(&mut m.graph);
    remove_dead(m);
    (folded, overrides)
}

/// Whether `v` is known to be non-negative in the source: written by a ReLU, a Sigmoid or an
/// unsigned quantizer with zero point 0, through ops that only move or select values.
fn nonneg(m: &Model, v: ValueId, depth: usize) -> bool {
    let g = &m.graph;
    let Some(p) = g.value(v).producer() else { return false };
    if depth > 64 {
        return false;
    }
    let op = g.op(p);
    match op.kind() {
        OpKind::Relu | OpKind::Sigmoid | OpKind::Softmax | OpKind::Exp | OpKind::Abs => true,
        OpKind::Quant | OpKind::IntQuant | OpKind::QuantizeLinear | OpKind::DequantizeLinear => {
            quantizer_spec(m, op).is_some_and(|q| {
                let unsigned = match op.kind() {
                    OpKind::Quant | OpKind::IntQuant => op.qonnx_quant().is_ok_and(|a| !a.signed),
                    _ => !q.dtype.signed(),
                };
                unsigned && q.zero_point.as_ref().is_none_or(|z| z.values().iter().all(|z| *z == 0.0))
            }) || (op.kind() == OpKind::DequantizeLinear
                && input(op, 0).is_some_and(|x| nonneg(m, x, depth + 1)))
        }
        OpKind::MaxPool
        | OpKind::Reshape
        | OpKind::Flatten
        | OpKind::Transpose
        | OpKind::Identity
        | OpKind::Squeeze
        | OpKind::Unsqueeze
        | OpKind::Dropout => input(op, 0).is_some_and(|x| nonneg(m, x, depth + 1)),
        OpKind::Concat => op.inputs().iter().flatten().all(|x| nonneg(m, *x, depth + 1)),
        _ => false,
    }
}

/// Declares `v` a float tensor (a QuantizeLinear output written by a requantization now).
fn set_float(g: &mut qc_ir::Graph, v: ValueId) {
    if let Some(ti) = g.value_mut(v).ty.as_mut()
        && let Some(ValueType::Tensor { elem, .. }) = ti.ty.as_mut()
    {
        *elem = Some(ElemType::F32);
    }
}

/// Removes ops none of whose outputs is read or is a graph output, to a fixpoint.
fn remove_dead(m: &mut Model) {
    loop {
        let dead: Vec<OpId> = m
            .graph
            .ops()
            .filter(|(_, op)| {
                op.outputs()
                    .iter()
                    .flatten()
                    .all(|v| m.graph.value(*v).uses().is_empty() && !m.graph.outputs.contains(v))
            })
            .map(|(id, _)| id)
            .collect();
        if dead.is_empty() {
            break;
        }
        let mut values = Vec::new();
        for id in dead {
            if let Some(op) = m.graph.remove_op(id) {
                values.extend(op.inputs().iter().flatten().copied());
                values.extend(op.outputs().iter().flatten().copied());
            }
        }
        crate::rewrite::drop_unused(&mut m.graph, &values);
    }
}

/// Every value computable from constants alone (initializers, `Constant` ops and ops on them),
/// by value index; ops with subgraphs and outputs over 2^24 elements are not folded.
fn fold_constants(m: &Model, order: &[OpId]) -> Vec<Option<Array>> {
    let g = &m.graph;
    let mut c: Vec<Option<Array>> = vec![None; g.value_count()];
    for &v in &g.initializers {
        if let Some(t) = g.value(v).tensor() {
            c[v.index()] = Array::from_tensor(t, m).ok();
        }
    }
    let opset = m.onnx_opset();
    for &id in order {
        let op = g.op(id);
        if crate::rewrite::subgraphs(op).next().is_some() {
            continue;
        }
        // The shape of a tensor of known dims is a constant (exporters compute reshapes so).
        if op.kind() == OpKind::Shape
            && op.attr("start").is_none()
            && op.attr("end").is_none()
            && let (Some(x), Some(y)) = (input(op, 0), output(op))
            && let Ok(dims) = qc_ir::dims::known(g, x)
            && let Ok(a) = Array::from_i64(vec![dims.len()], dims.iter().map(|&d| d as i64).collect())
        {
            c[y.index()] = Some(a);
            continue;
        }
        if !op.inputs().iter().flatten().all(|v| c[v.index()].is_some()) {
            continue;
        }
        let args: Vec<Option<&Array>> =
            op.inputs().iter().map(|s| s.and_then(|v| c[v.index()].as_ref())).collect();
        let Ok(outs) = eval_op(op, &args, opset) else { continue };
        for (slot, a) in op.outputs().iter().zip(outs) {
            if let Some(v) = slot
                && a.len() <= 1 << 24
            {
                c[v.index()] = Some(a);
            }
        }
    }
    c
}

/// A feature-map quantizer as the conversion reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct FmQuant {
    /// The step of its output.
    s: f64,
    /// Its output's integer range, less the zero point.
    lo: f64,
    hi: f64,
    /// Its output is its input divided by this (1 but for QONNX's `Trunc` v1, whose output is
    /// `floor(round(x / s) / 2^(in_bits - out_bits)) s`).
    divisor: f64,
    /// The step and integer range of its input, when it states them (`Trunc`).
    input: Option<(f64, f64, f64)>,
    /// Its zero point.
    z: f64,
}

/// The `Clip` of a QCDQ quantizer on `q` (the output of a QuantizeLinear): `q`'s only reader, with
/// constant scalar bounds, read only by DequantizeLinear. Its id and bounds (in the integer
/// domain, zero point included).
fn qcdq_clip(g: &qc_ir::Graph, q: ValueId, consts: &[Option<Array>]) -> Option<(OpId, f64, f64)> {
    let [(c, 0)] = g.value(q).uses() else { return None };
    let clip = g.op(*c);
    if clip.kind() != OpKind::Clip || g.outputs.contains(&q) {
        return None;
    }
    let bound = |i: usize| -> Option<f64> {
        let v = consts[input(clip, i)?.index()].as_ref()?.to_f64().ok()?;
        (v.len() == 1).then(|| v[0])
    };
    let (lo, hi) = (bound(1)?, bound(2)?);
    let y = output(clip)?;
    let only_dq = !g.value(y).uses().is_empty()
        && g.value(y).uses().iter().all(|(r, _)| g.op(*r).kind() == OpKind::DequantizeLinear);
    (only_dq && lo <= hi).then_some((*c, lo, hi))
}

/// The scale and integer range (less the zero point) of a feature-map quantizer.
fn fm_quantizer(m: &Model, op: &Op, consts: &[Option<Array>]) -> Result<FmQuant, String> {
    let scalar = |i: usize| -> Option<f64> {
        let a = consts[input(op, i)?.index()].as_ref()?;
        let v = a.to_f64().ok()?;
        (v.len() == 1).then(|| v[0])
    };
    if op.kind() == OpKind::Trunc {
        // v1: (x, scale, zero point, input bits, output bits); v2 (6 inputs): (x, scale, zero
        // point, input bits, output scale, output bits), with `signed` and `narrow`.
        let v2 = op.inputs().len() >= 6;
        let params = if v2 {
            (scalar(1), scalar(2), scalar(3), scalar(5), scalar(4))
        } else {
            (scalar(1), scalar(2), scalar(3), scalar(4), scalar(1))
        };
        let (Some(s), Some(z), Some(inb), Some(outb), Some(out_s)) = params else {
            return Err("its scale, zero point and bit widths are not constant scalars".into());
        };
        if z != 0.0 {
            return Err(format!("its zero point is {z}, and the DLA's zero points are 0"));
        }
        if !(s > 0.0 && s.is_finite() && out_s > 0.0 && out_s.is_finite()) {
            return Err(format!("its scale {s} is not a positive number"));
        }
        if !(1.0..=62.0).contains(&inb)
            || !(1.0..=62.0).contains(&outb)
            || inb.fract() != 0.0
            || outb.fract() != 0.0
        {
            return Err(format!("its bit widths {inb} and {outb} are not whole numbers in 1..=62"));
        }
        let signed = op.attr_int("signed", 1).unwrap_or(1) != 0;
        let narrow = v2 && op.attr_int("narrow", 0).unwrap_or(0) != 0;
        let (lo, hi) = int_range(signed, narrow, outb as u32);
        let (ilo, ihi) = int_range(signed, false, inb as u32);
        let divisor = if v2 { 1.0 } else { 2f64.powf(inb - outb) };
        return Ok(FmQuant {
            s: out_s,
            lo: lo as f64,
            hi: hi as f64,
            divisor,
            input: Some((s, ilo as f64, ihi as f64)),
            z: 0.0,
        });
    }
    let spec = quantizer_spec(m, op).ok_or("it is not a quantizer qc reads")?;
    let s = match &spec.scale {
        Some(QuantParam::PerTensor(s)) => *s,
        Some(p) if p.values().windows(2).all(|w| w[0] == w[1]) && !p.values().is_empty() => p.values()[0],
        Some(_) => return Err("its scale is per channel, and a feature map has one scale".into()),
        None => return Err("its scale is not a constant".into()),
    };
    if !(s > 0.0 && s.is_finite()) {
        return Err(format!("its scale {s} is not a positive number"));
    }
    let z = match &spec.zero_point {
        Some(p) if p.values().windows(2).all(|w| w[0] == w[1]) => p.values().first().copied().unwrap_or(0.0),
        Some(_) => return Err("its zero point is per channel".into()),
        None => 0.0,
    };
    let bits = spec.dtype.bitwidth();
    if !spec.dtype.is_scaled_int() {
        return Err(format!("it quantizes to {}, not to integers", spec.dtype.name()));
    }
    let signed = match op.kind() {
        OpKind::Quant | OpKind::IntQuant => op.qonnx_quant().map(|a| a.signed).unwrap_or(true),
        _ => spec.dtype.signed(),
    };
    let (lo, hi) = int_range(signed, spec.narrow, bits.clamp(1, 62));
    Ok(FmQuant { s, lo: lo as f64 - z, hi: hi as f64 - z, divisor: 1.0, input: None, z })
}

/// The power-of-two scale (before rounding) of the signed 8-bit feature map that stands for a
/// quantizer of step `s` and integer range `lo..=hi` (zero point subtracted): the one whose
/// range `-128..=127` steps matches the source's, `s * max(hi / 127, -lo / 128)`. A signed 8-bit
/// source keeps its step; an unsigned 8-bit one needs about twice it (one bit of resolution
/// goes to the sign); a narrower one gets a finer step, so that the DLA saturates where the
/// source clamps (the DLA has no clip at another level); a wider one a coarser step.
pub(crate) fn fm_step(s: f64, lo: f64, hi: f64) -> f64 {
    let k = (hi / 127.0).max(-lo / 128.0);
    if k > 0.0 && k.is_finite() { s * k } else { s }
}

/// A QONNX `FloatQuant` whose scale, exponent and mantissa widths, exponent bias and (optional)
/// maximum are constant scalars: its scale and the largest magnitude of its format, so that its
/// output is within `+-max * scale`.
fn minifloat_range(op: &Op, consts: &[Option<Array>]) -> Option<(f64, f64)> {
    let scalar = |i: usize| -> Option<f64> {
        let v = consts[input(op, i)?.index()].as_ref()?.to_f64().ok()?;
        (v.len() == 1).then(|| v[0])
    };
    let (s, eb, mb, bias) = (scalar(1)?, scalar(2)?, scalar(3)?, scalar(4)?);
    let mut max = crate::eval::quant::float_format_max(eb as f32, mb as f32, bias as f32);
    if input(op, 5).is_some() {
        max = max.min(scalar(5)?);
    }
    (s > 0.0 && s.is_finite() && max > 0.0 && max.is_finite()).then_some((s, max))
}

/// The exponent of the 8-bit feature map that holds a bipolar `+-s`: the finest power-of-two
/// step at which `s` is at most 127 steps, so that `+-s` is within half a step (exact when `s` is a
/// power of two: 64 steps).
fn bipolar_exp(s: f64) -> Option<i32> {
    let e = (s / 127.0).log2().ceil();
    (e.is_finite() && (-120.0..=120.0).contains(&e)).then_some(e as i32)
}

/// Why a feature map's scale is not the source's step (see [`fm_step`]), for the report.
fn fm_note(s: f64, lo: f64, hi: f64, need: f64) -> Option<String> {
    let ratio = need / s;
    if (ratio - 1.0).abs() < 1e-9 {
        return None;
    }
    let levels = hi - lo + 1.0;
    let bits = levels.log2().ceil() as i64;
    let sign = if lo >= 0.0 { "unsigned" } else { "signed" };
    Some(format!("{sign} {bits}-bit source: its range on signed 8 bits needs step x{ratio:.3}"))
}

/// The scale of the quantizer a constant weight comes from, through data-movement ops
/// (`Transpose`, `Reshape`, `Identity`) only when the scale is per tensor.
/// With `any_axis`, a per-axis scale is returned whatever ops it came through (for a per-tensor
/// use of its largest value).
fn weight_source(m: &Model, w: ValueId, consts: &[Option<Array>], any_axis: bool) -> Option<QuantParam> {
    let g = &m.graph;
    let mut v = w;
    let mut moved = false;
    for _ in 0..16 {
        let p = g.value(v).producer()?;
        let op = g.op(p);
        if is_quantizer(op) && op.kind() != OpKind::QuantizeLinear {
            let spec = quantizer_spec(m, op)?;
            if let Some(z) = &spec.zero_point
                && z.values().iter().any(|z| *z != 0.0)
            {
                return None;
            }
            let s = spec.scale?;
            return match s {
                QuantParam::PerTensor(_) => Some(s),
                QuantParam::PerAxis { .. } if !moved || any_axis => Some(s),
                _ if s.values().windows(2).all(|w| w[0] == w[1]) => {
                    Some(QuantParam::PerTensor(s.values()[0]))
                }
                _ => None,
            };
        }
        if !matches!(op.kind(), OpKind::Transpose | OpKind::Reshape | OpKind::Identity | OpKind::Flatten) {
            return None;
        }
        moved = true;
        v = input(op, 0).filter(|x| consts[x.index()].is_some())?;
    }
    None
}

/// Flat index to channel index along `axis` for `n` channels (one channel: always 0).
fn channel_index(dims: &[usize], axis: usize, n: usize) -> Box<dyn Fn(usize) -> usize> {
    if n <= 1 || axis >= dims.len() || dims[axis] != n {
        return Box::new(|_| 0);
    }
    let inner: usize = dims[axis + 1..].iter().product::<usize>().max(1);
    Box::new(move |i| (i / inner) % n)
}

/// The integers of a weight, its scales rounded per output channel, and the source's scales.
#[allow(clippy::type_complexity)]
fn weight_ints(
    w: &Array,
    axis: usize,
    src: Option<&QuantParam>,
    how: ScaleRounding,
    max_a: u32,
) -> Result<(Vec<f64>, Vec<Dyadic>, Vec<f64>, Vec<bool>), String> {
    let vals = w.to_f64().map_err(|e| e.to_string())?;
    let n = *w.dims.get(axis).ok_or("the weight has no output-channel axis")?;
    let per = channel_index(&w.dims, axis, n);
    let src_scales: Vec<f64> = match src {
        Some(QuantParam::PerTensor(s)) => vec![*s; n],
        Some(QuantParam::PerAxis { values, .. }) if values.len() == n => values.clone(),
        Some(_) => return Err("its per-channel scales do not match its output channels".into()),
        None => {
            // Not quantized in the source: 8 bits per channel, max-abs.
            let mut max = vec![0.0f64; n];
            for (i, x) in vals.iter().enumerate() {
                max[per(i)] = max[per(i)].max(x.abs());
            }
            max.into_iter().map(|m| if m > 0.0 { m / 127.0 } else { 1.0 }).collect()
        }
    };
    let mut ints: Vec<f64> = vals
        .iter()
        .enumerate()
        .map(|(i, x)| round_half_up(x / src_scales[per(i)]).clamp(-128.0, 127.0))
        .collect();
    // A channel whose scale is below the smallest the DLA's format holds (a BatchNormalization
    // with a vanishing gamma folded into it) has weights below 2^-113: they are flushed to the
    // integers of that smallest scale (zero, for any real model), and the channel reported.
    let smallest = Dyadic { exp: MIN_WEIGHT_EXP, den: 1 };
    let mut flushed = vec![false; n];
    let rounded = src_scales
        .iter()
        .enumerate()
        .map(|(c, s)| match round_reciprocal_dyadic(*s, max_a, how) {
            Some(d) => Ok(d),
            None if *s > 0.0 && *s < smallest.value() => {
                flushed[c] = true;
                Ok(smallest)
            }
            None => Err(format!("weight scale {s} has no form 2^n / a within 2^-120..2^120")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, q) in ints.iter_mut().enumerate() {
        if flushed[per(i)] {
            *q = round_half_up(vals[i] / smallest.value()).clamp(-128.0, 127.0);
        }
    }
    Ok((ints, rounded, src_scales, flushed))
}

/// The exponent of the smallest weight scale qc writes, `2^-120` (an f32 holds it exactly).
const MIN_WEIGHT_EXP: i32 = -120;
