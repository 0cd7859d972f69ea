//! Scales: propagation through the graph, and the fixed-point scale rules of a target.
//!
//! [`propagate`] (the `propagate-scales` pass) gives feature maps the quantization their DLA
//! reading needs:
//! 0. a `QuantizeLinear`/`DequantizeLinear` whose scale or zero point is the output of a
//!    `Constant` op (as QCDQ exporters write them) gets that parameter into its spec, which
//!    `absorb-quant` reads from initializers only;
//! 1. a value that no source describes (no spec, or only an `inferred` one without a scale) and
//!    that a quantizer reads (`Quant`, `IntQuant`, `BipolarQuant`, `QuantizeLinear`) takes the
//!    quantizer's output spec: on the DLA, the layer that writes the value requantizes it;
//! 2. then, to a fixpoint, forward and backward through the ops that keep scales
//!    ([`KEEPS_SCALE`]): an output without a scale takes its data input's spec, and a data input
//!    without one takes the output's. A per-axis scale passes only through ops that keep every
//!    element on its axis ([`KEEPS_AXES`]) and through `Transpose`, which moves the axis.
//!
//! Values that a source describes are never changed. Propagated specs have origin `inferred`.
//!
//! [`check`] then applies the target's rules to every feature map, weight and bias of the DLA
//! ops (bit depths, scale formats, one scale per feature map, one weight scale per output channel,
//! zero points, deprecated attributes) and checks coherence: a DLA op that may not change scale
//! writes its output with its input's scale, and every op that declares the scale of a feature map
//! it reads (ACCESS `input_scale`, `A_scale`, `B_scale`) agrees with the scale its producer
//! declares (`output_scale`) and with the other readers.

use std::collections::HashMap;

use qc_ir::target::{Allowed, Rule, ScaleFormat, Severity, Target};
use qc_ir::{AttrValue, DataType, Model, Op, OpId, OpKind, QuantOrigin, QuantParam, QuantSpec, ValueId};

use super::{Facts, Finding, show_scale};

/// Op types whose output keeps the scale of their data input (input 0; every input for
/// `Concat`): data movement, the ReLU family, max pooling, and `BatchNormalization`, which the
/// DLA folds into the layer before it.
pub const KEEPS_SCALE: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Clip",
    "MaxPool",
    "GlobalMaxPool",
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Identity",
    "Dropout",
    "Slice",
    "Split",
    "Pad",
    "DepthToSpace",
    "SpaceToDepth",
    "Resize",
    "Upsample",
    "Expand",
    "Tile",
    "BatchNormalization",
];

/// The scale-keeping ops that keep every element on its axis, so a per-axis scale stays valid.
pub const KEEPS_AXES: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Clip",
    "MaxPool",
    "GlobalMaxPool",
    "Identity",
    "Dropout",
    "Pad",
    "Resize",
    "Upsample",
    "BatchNormalization",
];

/// The spec `op` gives its output when its data input has `spec` (forward), or the spec its
/// input gets when its output has `spec` (backward): the same spec, with a per-axis scale moved
/// through a `Transpose`, and dropped (`None`) through ops that move elements across axes.
fn carry(op: &Op, spec: &QuantSpec, forward: bool, rank: Option<usize>) -> Option<QuantSpec> {
    let per_axis =
        |p: &Option<QuantParam>| matches!(p, Some(QuantParam::PerAxis { .. } | QuantParam::Blocked { .. }));
    if !per_axis(&spec.scale) && !per_axis(&spec.zero_point) {
        return Some(spec.clone());
    }
    if KEEPS_AXES.contains(&op.op_type()) {
        return Some(spec.clone());
    }
    if op.op_type() != "Transpose" {
        return None;
    }
    let perm: Vec<i64> = match op.attr_ints("perm").ok().flatten() {
        Some(p) => p.to_vec(),
        None => (0..rank? as i64).rev().collect(),
    };
    let move_axis = |p: &Option<QuantParam>| -> Option<Option<QuantParam>> {
        match p {
            Some(QuantParam::PerAxis { axis, values }) => {
                let a = if *axis < 0 { *axis + perm.len() as i64 } else { *axis };
                // Output axis i is input axis perm[i].
                let new = if forward {
                    perm.iter().position(|x| *x == a)? as i64
                } else {
                    *perm.get(usize::try_from(a).ok()?)?
                };
                Some(Some(QuantParam::PerAxis { axis: new, values: values.clone() }))
            }
            Some(QuantParam::Blocked { .. }) => None,
            other => Some(other.clone()),
        }
    };
    Some(QuantSpec {
        scale: move_axis(&spec.scale)?,
        zero_point: move_axis(&spec.zero_point)?,
        ..spec.clone()
    })
}

/// What [`propagate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Propagation {
    /// QuantizeLinear/DequantizeLinear parameters read from `Constant` ops.
    pub from_constant_ops: u64,
    /// Values that took the spec of the quantizer reading them.
    pub from_quantizers: u64,
    pub forward: u64,
    pub backward: u64,
    /// Scale-keeping ops whose input and output scales differ, and feature maps whose declared
    /// scales disagree.
    pub conflicts: u64,
}

/// The scale a spec gives its values: its scale, or 1 for an integer type that no ACCESS
/// attribute describes (QONNX's `INT8` has scale 1; an ACCESS bit depth without a scale is a
/// missing scale, and `DynamicQuantizeLinear`'s scale is only known at run time).
pub fn effective_scale(q: &QuantSpec) -> Option<QuantParam> {
    match &q.scale {
        Some(s) => Some(s.clone()),
        None if q.dtype.is_integer()
            && !matches!(q.origin, QuantOrigin::AccessAttributes | QuantOrigin::OnnxDynamic) =>
        {
            Some(QuantParam::PerTensor(1.0))
        }
        None => None,
    }
}

fn scale_of(model: &Model, v: ValueId) -> Option<QuantParam> {
    model.graph.value(v).quant.as_ref().and_then(effective_scale)
}

/// Whether propagation may give `v` a spec: nothing describes it, or only an inferred datatype
/// without a scale.
fn open(model: &Model, v: ValueId) -> bool {
    let value = model.graph.value(v);
    value.init.is_none()
        && match &value.quant {
            None => true,
            Some(q) => q.origin == QuantOrigin::Inferred && q.scale.is_none(),
        }
}

fn keeps_scale(op: &Op) -> bool {
    op.domain().is_empty() && KEEPS_SCALE.contains(&op.op_type())
}

fn is_quantizer(op: &Op) -> bool {
    matches!(op.kind(), OpKind::Quant | OpKind::IntQuant | OpKind::BipolarQuant | OpKind::QuantizeLinear)
}

/// The data inputs whose scale an op keeps: every input of `Concat`, else input 0.
fn data_inputs(op: &Op) -> Vec<ValueId> {
    if op.op_type() == "Concat" {
        op.inputs().iter().flatten().copied().collect()
    } else {
        op.inputs().first().copied().flatten().into_iter().collect()
    }
}

/// Propagates quantization specs to feature maps (see the module doc).
pub fn propagate(model: &mut Model) -> Propagation {
    let mut stats = Propagation::default();
    let order: Vec<OpId> =
        model.graph.topo_order().unwrap_or_else(|_| model.graph.ops().map(|(id, _)| id).collect());
    let constant = constants(model, &order);
    let set = |model: &mut Model, v: ValueId, spec: &QuantSpec| {
        model.graph.value_mut(v).quant = Some(QuantSpec { origin: QuantOrigin::Inferred, ..spec.clone() });
    };
    // 0. QDQ parameters that `Constant` ops hold.
    stats.from_constant_ops = qdq_params_from_constant_ops(model, &order);
    // 1. Values read by a quantizer.
    for &id in &order {
        let op = model.graph.op(id);
        if !is_quantizer(op) {
            continue;
        }
        let (Some(x), Some(y)) =
            (op.inputs().first().copied().flatten(), op.outputs().first().copied().flatten())
        else {
            continue;
        };
        if constant[x.index()] || !open(model, x) {
            continue;
        }
        if let Some(spec) = model.graph.value(y).quant.clone().filter(|q| effective_scale(q).is_some()) {
            set(model, x, &spec);
            stats.from_quantizers += 1;
        }
    }
    // 2. Through the ops that keep scales, to a fixpoint (each round fills at least one value).
    for _ in 0..=model.graph.value_count() {
        let mut changed = false;
        for &id in &order {
            let op = model.graph.op(id);
            if !keeps_scale(op) {
                continue;
            }
            let Some(y) = op.outputs().first().copied().flatten() else { continue };
            let ins = data_inputs(op);
            let rank = |v: ValueId| qc_ir::dims::rank(&model.graph, v);
            if open(model, y)
                && let Some(spec) = ins.iter().find_map(|x| {
                    let q = model.graph.value(*x).quant.as_ref().filter(|q| effective_scale(q).is_some())?;
                    carry(op, q, true, rank(*x))
                })
            {
                set(model, y, &spec);
                stats.forward += 1;
                changed = true;
            }
        }
        for &id in order.iter().rev() {
            let op = model.graph.op(id);
            if !keeps_scale(op) {
                continue;
            }
            let Some(y) = op.outputs().first().copied().flatten() else { continue };
            let rank = qc_ir::dims::rank(&model.graph, y);
            let Some(spec) = model
                .graph
                .value(y)
                .quant
                .as_ref()
                .filter(|q| effective_scale(q).is_some())
                .and_then(|q| carry(op, q, false, rank))
            else {
                continue;
            };
            for x in data_inputs(op) {
                if !constant[x.index()] && open(model, x) {
                    set(model, x, &spec);
                    stats.backward += 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Conflicts left: scale-keeping ops whose scales differ, and disagreeing declarations.
    for &id in &order {
        let op = model.graph.op(id);
        if keeps_scale(op)
            && let Some(y) = op.outputs().first().copied().flatten()
            && let Some(sy) = scale_of(model, y)
            && data_inputs(op).iter().any(|x| scale_of(model, *x).is_some_and(|sx| !same(&sx, &sy, 1e-6)))
        {
            stats.conflicts += 1;
        }
    }
    let position: HashMap<OpId, usize> = model.graph.ops().enumerate().map(|(i, (id, _))| (id, i)).collect();
    for v in (0..model.graph.value_count()).map(ValueId::from_index) {
        let claims = claims(model, v, &position);
        if claims.iter().any(|c| (c.scale - claims[0].scale).abs() > 1e-6 * claims[0].scale.abs()) {
            stats.conflicts += 1;
        }
    }
    stats
}

/// Fills the scale and zero point of QuantizeLinear/DequantizeLinear specs from `Constant` ops
/// (`absorb-quant` reads initializers only). Returns how many parameters it filled.
fn qdq_params_from_constant_ops(model: &mut Model, order: &[OpId]) -> u64 {
    let mut filled = 0;
    for &id in order {
        let op = model.graph.op(id);
        if !matches!(op.kind(), OpKind::QuantizeLinear | OpKind::DequantizeLinear) {
            continue;
        }
        let Some(y) = op.outputs().first().copied().flatten() else { continue };
        let Some(spec) = model.graph.value(y).quant.clone().filter(|q| q.origin == QuantOrigin::OnnxQdq)
        else {
            continue;
        };
        let axis = op.attr_int("axis", 1).ok();
        let param = |slot: usize| {
            let v = op.inputs().get(slot).copied().flatten()?;
            let p = model.graph.value(v).producer()?;
            let c = model.graph.op(p);
            if c.op_type() != "Constant" || !c.domain().is_empty() {
                return None;
            }
            let (dims, values) = match &c.attr("value")?.value {
                AttrValue::Tensor(t) => {
                    let a = crate::eval::Array::from_tensor(t, model).ok()?;
                    (a.dims.clone(), a.to_f64().ok()?)
                }
                AttrValue::Float(x) => (Vec::new(), vec![f64::from(*x)]),
                _ => return None,
            };
            crate::quant::param_from(&dims, values, axis)
        };
        let mut new = spec.clone();
        if new.scale.is_none() {
            new.scale = param(1);
            filled += u64::from(new.scale.is_some());
        }
        if new.zero_point.is_none() {
            new.zero_point = param(2);
            filled += u64::from(new.zero_point.is_some());
        }
        if new != spec {
            model.graph.value_mut(y).quant = Some(new);
        }
    }
    filled
}

fn constants(model: &Model, order: &[OpId]) -> Vec<bool> {
    let g = &model.graph;
    let mut c: Vec<bool> =
        (0..g.value_count()).map(|i| g.value(ValueId::from_index(i)).init.is_some()).collect();
    for &id in order {
        let op = g.op(id);
        if op.inputs().iter().flatten().all(|v| c[v.index()]) {
            for v in op.outputs().iter().flatten() {
                c[v.index()] = true;
            }
        }
    }
    c
}

/// Whether two scales are equal within relative tolerance `tol`.
fn same(a: &QuantParam, b: &QuantParam, tol: f64) -> bool {
    let (x, y) = (a.values(), b.values());
    let uniform = |v: &[f64]| v.windows(2).all(|p| p[0] == p[1]);
    if x.len() != y.len() {
        return uniform(x) && uniform(y) && close(x[0], y[0], tol);
    }
    x.iter().zip(y).all(|(p, q)| close(*p, *q, tol))
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * a.abs().max(b.abs())
}

/// One op's statement of a value's scale.
#[derive(Clone, Debug)]
struct Claim {
    op: OpId,
    /// The attribute (`output_scale`, `input_scale`, ...).
    attr: &'static str,
    scale: f64,
    /// The producer declares it.
    producer: bool,
}

fn attr_f64(op: &Op, name: &str) -> Option<f64> {
    match &op.attr(name)?.value {
        // The decimal the exporter wrote, not the f32's binary expansion.
        AttrValue::Float(x) => x.to_string().parse().ok(),
        AttrValue::Int(x) => Some(*x as f64),
        _ => None,
    }
}

/// The scales ops declare for `v` with ACCESS attributes: its producer's `output_scale`, then
/// each reader's `input_scale`/`A_scale` (input 0) or `B_scale` (input 1), in graph order.
fn claims(model: &Model, v: ValueId, position: &HashMap<OpId, usize>) -> Vec<Claim> {
    let g = &model.graph;
    let value = g.value(v);
    let mut out = Vec::new();
    if let Some(p) = value.producer()
        && g.op(p).outputs().first().copied().flatten() == Some(v)
        && let Some(s) = attr_f64(g.op(p), "output_scale")
    {
        out.push(Claim { op: p, attr: "output_scale", scale: s, producer: true });
    }
    let mut readers: Vec<(OpId, u32)> = value.uses().to_vec();
    readers.sort_by_key(|(o, s)| (position.get(o).copied().unwrap_or(0), *s));
    for (op, slot) in readers {
        let attrs: &[&'static str] = match slot {
            0 => &["input_scale", "A_scale"],
            1 => &["B_scale"],
            _ => &[],
        };
        for attr in attrs {
            if let Some(s) = attr_f64(g.op(op), attr) {
                out.push(Claim { op, attr, scale: s, producer: false });
            }
        }
    }
    out
}

/// Whether `x` is `2^n` within relative tolerance `tol`.
fn is_pow2(x: f64, tol: f64) -> bool {
    x > 0.0 && x.is_finite() && close(x, 2f64.powi(x.log2().round() as i32), tol)
}

/// Whether `x` is `2^n / a` with integer `a` in `1..=max_a`, within relative tolerance `tol`.
pub fn is_reciprocal_dyadic(x: f64, max_a: u32, tol: f64) -> bool {
    if !(x > 0.0 && x.is_finite()) {
        return false;
    }
    // x = 2^n / a  <=>  a = 2^n / x; a in [1, max_a] fixes n to a few candidates.
    let lo = x.log2().floor() as i32;
    let hi = (x * f64::from(max_a)).log2().ceil() as i32;
    (lo..=hi).any(|n| {
        let a = 2f64.powi(n) / x;
        let r = a.round();
        r >= 1.0 && r <= f64::from(max_a) && close(x, 2f64.powi(n) / r, tol)
    })
}

fn fits(format: ScaleFormat, x: f64, t: &Target) -> bool {
    match format {
        ScaleFormat::PowerOfTwo => is_pow2(x, t.scales.tolerance),
        ScaleFormat::ReciprocalDyadic => {
            is_reciprocal_dyadic(x, t.scales.max_denominator, t.scales.tolerance)
        }
        ScaleFormat::Any => x > 0.0 && x.is_finite(),
    }
}

/// The powers of two around `x`, for hints.
fn nearest_pow2(x: f64) -> String {
    if !(x > 0.0 && x.is_finite()) {
        return "a positive power of two".into();
    }
    let lo = x.log2().floor() as i32;
    format!("2^{} = {} or 2^{} = {}", lo, 2f64.powi(lo), lo + 1, 2f64.powi(lo + 1))
}

/// A datatype for a report: `INT8`, `FLOAT32`.
fn dtype_text(q: Option<&QuantSpec>) -> String {
    q.map_or("FLOAT32".to_string(), |q| q.dtype.name())
}

/// Whether the model describes any quantization (a spec from a source, not inferred).
pub fn quantized(model: &Model) -> bool {
    model.graph.values().any(|(_, v)| v.quant.as_ref().is_some_and(|q| q.origin != QuantOrigin::Inferred))
}

/// The scale findings (see the module doc).
pub fn check(f: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let t = f.target;
    if !quantized(f.model) {
        if !f.entry.is_empty() {
            let mut x = f.finding(Rule::NotQuantized, None, None);
            x.message = "the model describes no quantization: every tensor is float".into();
            x.observed =
                "no QONNX Quant, QuantizeLinear/DequantizeLinear, QLinear or ACCESS scale attributes".into();
            x.allowed = allowed_summary(t);
            x.hint = "quantize the model (quantization-aware training, guide IV) and export its scales as ACCESS attributes, QONNX Quant nodes or QDQ".into();
            out.push(x);
        }
        return out;
    }
    let fms = f.feature_maps();
    let set = fms.iter().map(|fm| fm.value).collect();
    for fm in &fms {
        // The same quantization as the feature map the producer reads: reported there.
        let spec = |v: ValueId| {
            f.model.graph.value(v).quant.as_ref().map(|q| (q.dtype, q.scale.clone(), q.zero_point.clone()))
        };
        let inherited =
            f.passed_on_from(fm.value, &set).is_some_and(|x| spec(x).is_some() && spec(x) == spec(fm.value));
        if !inherited {
            feature_map(f, fm.value, Some(fm.at), fm.input, &mut out);
        }
    }
    for &id in &f.order {
        let Some(entry) = f.entry.get(&id) else { continue };
        for &slot in &entry.weights {
            if let Some(w) = f.input(id, slot).filter(|w| f.is_constant(*w)) {
                weight(f, id, w, &mut out);
            }
        }
        for &slot in &entry.bias {
            if let Some(b) = f.input(id, slot).filter(|b| f.is_constant(*b)) {
                bias(f, id, b, &mut out);
            }
        }
        for (attr, instead) in &t.deprecated_attributes {
            if f.op(id).attr(attr).is_some() {
                let mut x = f.finding(Rule::DeprecatedAttribute, Some(id), None);
                x.message = format!("attribute `{attr}` is deprecated");
                x.observed = format!("`{attr}`");
                x.allowed = "the attributes the guide does not deprecate".into();
                x.hint = instead.clone();
                out.push(x);
            }
        }
        if !t.may_change_scale(f.op(id)) {
            keeps(f, id, &mut out);
        }
    }
    coherence(f, &mut out);
    out
}

fn allowed_summary(t: &Target) -> String {
    let bits = |a: &Option<Allowed>| a.as_ref().map_or("any".to_string(), Allowed::describe);
    format!(
        "{}-bit feature maps with {} scales, {}-bit weights with {} scales, {}-bit biases",
        bits(&t.tensors.feature_map.bits),
        match t.scales.feature_map {
            ScaleFormat::PowerOfTwo => "power-of-two",
            ScaleFormat::ReciprocalDyadic => "reciprocal dyadic",
            ScaleFormat::Any => "any",
        },
        bits(&t.tensors.weight.bits),
        match t.scales.weight {
            ScaleFormat::PowerOfTwo => "power-of-two",
            ScaleFormat::ReciprocalDyadic => "reciprocal dyadic",
            ScaleFormat::Any => "any",
        },
        bits(&t.tensors.bias.bits),
    )
}

/// A bit-depth finding, or `None` when `dtype` is allowed. A narrower integer type than the
/// target's is a warning: its values fit, and the DLA computes them at its own width.
fn bit_depth(
    f: &Facts<'_>,
    allowed: &Option<Allowed>,
    dtype: DataType,
    what: String,
    at: Option<OpId>,
    v: ValueId,
) -> Option<Finding> {
    let a = allowed.as_ref()?;
    let bits = i64::from(dtype.bitwidth());
    if dtype.is_scaled_int() && a.contains(bits) {
        return None;
    }
    let mut x = f.finding(Rule::BitDepth, at, Some(v));
    let widest = a.values.as_ref().and_then(|v| v.iter().max().copied()).or(a.max);
    let narrower = dtype.is_scaled_int() && widest.is_some_and(|w| bits < w);
    if narrower {
        x.severity = Severity::Warning.max(f.target.severity(Rule::BitDepth));
        x.message = format!("{what} is {dtype}, narrower than the DLA's {} bits", a.describe());
        x.hint = format!(
            "its values fit in {} bits, so the DLA runs it at {} bits; re-export it with that bit depth to say so",
            a.describe(),
            a.describe()
        );
    } else {
        x.message = format!("{what} is {dtype}; the DLA has {} bits", a.describe());
        x.hint = if dtype.is_float() {
            format!("quantize it to {} bits", a.describe())
        } else {
            format!("requantize it to {} bits", a.describe())
        };
    }
    x.observed = if dtype.is_float() {
        format!("{dtype} (not an integer type)")
    } else {
        format!("{dtype} ({bits} bits)")
    };
    x.allowed = format!("{} bits", a.describe());
    Some(x)
}

fn feature_map(f: &Facts<'_>, v: ValueId, at: Option<OpId>, input: bool, out: &mut Vec<Finding>) {
    let t = f.target;
    let g = &f.model.graph;
    let kind = if input { "graph input" } else { "feature map" };
    let name = f.name(v);
    let spec = g.value(v).quant.as_ref();
    let limits = if input { &t.tensors.input } else { &t.tensors.feature_map };
    let Some(scale) = spec.and_then(effective_scale) else {
        // A scale-keeping op whose input has no scale either: reported at the input.
        let inherited = g.value(v).producer().is_some_and(|p| {
            keeps_scale(f.op(p))
                && data_inputs(f.op(p)).iter().any(|x| scale_of(f.model, f.canonical(*x)).is_none())
        });
        if inherited {
            return;
        }
        let mut x = f.finding(Rule::ScaleMissing, at, Some(v));
        x.message = format!("{kind} `{name}` has no scale");
        x.observed = format!("{}, no scale", dtype_text(spec));
        x.allowed = format!(
            "{} bits with a scale that is {}",
            limits.bits.as_ref().map_or("any".to_string(), Allowed::describe),
            t.scales.feature_map.describe(t.scales.max_denominator)
        );
        x.hint = match at.filter(|_| !input) {
            Some(p) if has_access_attributes(f.op(p)) => {
                format!("give `{}` the attributes output_scale and output_bitdepth", f.label(p))
            }
            Some(p) => format!(
                "quantize the output of `{}`: a Quant (QONNX) or QuantizeLinear/DequantizeLinear after it",
                f.label(p)
            ),
            None => format!(
                "quantize `{name}`: a Quant or QuantizeLinear/DequantizeLinear, or input_scale on the op that reads it"
            ),
        };
        out.push(x);
        return;
    };
    let spec = spec.expect("a scale comes from a spec");
    if let Some(x) = bit_depth(f, &limits.bits, spec.dtype, format!("{kind} `{name}`"), at, v) {
        out.push(x);
    }
    let values = scale.values();
    let uniform = values.windows(2).all(|p| close(p[0], p[1], t.scales.tolerance));
    if !uniform {
        let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        let mut x = f.finding(Rule::ScaleNotPerTensor, at, Some(v));
        x.message = format!("{kind} `{name}` has {} scales, one per slice", values.len());
        x.observed = format!("{} scales from {} to {}", values.len(), show_scale(lo), show_scale(hi));
        x.allowed = "one scale for the whole tensor".into();
        x.hint = "quantize feature maps per tensor; per-channel scales are for weights".into();
        out.push(x);
    } else if let Some(&s) = values.first()
        && !fits(t.scales.feature_map, s, t)
    {
        let rule = match t.scales.feature_map {
            ScaleFormat::PowerOfTwo => Rule::ScaleNotPowerOfTwo,
            _ => Rule::ScaleNotReciprocalDyadic,
        };
        let mut x = f.finding(rule, at, Some(v));
        x.message = format!(
            "the scale of {kind} `{name}` is not {}",
            t.scales.feature_map.describe(t.scales.max_denominator)
        );
        x.observed = show_scale(s);
        x.allowed = t.scales.feature_map.describe(t.scales.max_denominator);
        x.hint = match t.scales.feature_map {
            ScaleFormat::PowerOfTwo => format!(
                "use {} (a power-of-two scale is a shift); retrain or recalibrate with power-of-two activation quantizers",
                nearest_pow2(s)
            ),
            _ => "requantize with a scale of the target's format".into(),
        };
        out.push(x);
    }
    zero_point(f, spec, format!("{kind} `{name}`"), at, v, out);
}

fn zero_point(
    f: &Facts<'_>,
    spec: &QuantSpec,
    what: String,
    at: Option<OpId>,
    v: ValueId,
    out: &mut Vec<Finding>,
) {
    if !f.target.scales.zero_point_zero {
        return;
    }
    let Some(zp) = &spec.zero_point else { return };
    let nonzero: Vec<f64> = zp.values().iter().copied().filter(|z| *z != 0.0).collect();
    if nonzero.is_empty() {
        return;
    }
    let mut x = f.finding(Rule::ZeroPoint, at, Some(v));
    x.message = format!("{what} has a nonzero zero point");
    x.observed = if zp.values().len() == 1 {
        format!("zero point {}", nonzero[0])
    } else {
        format!("{} of {} zero points nonzero, first {}", nonzero.len(), zp.values().len(), nonzero[0])
    };
    x.allowed = "zero point 0 (symmetric, scale only)".into();
    x.hint = "quantize symmetrically: signed integers with zero point 0".into();
    out.push(x);
}

fn has_access_attributes(op: &Op) -> bool {
    ["output_scale", "output_bitdepth", "input_scale", "weight_ch_scales", "A_scale"]
        .iter()
        .any(|a| op.attr(a).is_some())
}

/// The axis of a weight that holds output channels, and their count.
fn out_channels(f: &Facts<'_>, id: OpId, w: ValueId) -> Option<(usize, u64)> {
    let d = f.dims(w)?;
    let op = f.op(id);
    let axis = match op.kind() {
        OpKind::Gemm => {
            if op.gemm().ok()?.trans_b {
                0
            } else {
                1
            }
        }
        OpKind::MatMul => d.len().checked_sub(1)?,
        _ => 0,
    };
    Some((axis, (*d.get(axis)?)?))
}

fn weight(f: &Facts<'_>, id: OpId, w: ValueId, out: &mut Vec<Finding>) {
    let t = f.target;
    let spec = f.model.graph.value(w).quant.as_ref();
    let name = f.name(w);
    let what = format!("weight `{name}`");
    let Some(spec) = spec.filter(|q| !q.dtype.is_float() || q.origin != QuantOrigin::Inferred) else {
        let mut x = f.finding(Rule::ScaleMissing, Some(id), Some(w));
        x.message = format!("{what} is not quantized");
        x.observed = format!("{}, no scale", dtype_text(spec));
        x.allowed = format!(
            "{} bits with {} scales, one per output channel",
            t.tensors.weight.bits.as_ref().map_or("any".to_string(), Allowed::describe),
            t.scales.weight.describe(t.scales.max_denominator)
        );
        x.hint = if has_access_attributes(f.op(id)) {
            format!("give `{}` the attributes weight_bitdepth and weight_ch_scales", f.label(id))
        } else {
            "quantize it: a Quant (QONNX) or DequantizeLinear of integer weights".into()
        };
        out.push(x);
        return;
    };
    if let Some(x) = bit_depth(f, &t.tensors.weight.bits, spec.dtype, what.clone(), Some(id), w) {
        out.push(x);
    }
    match effective_scale(spec) {
        None => {
            let mut x = f.finding(Rule::ScaleMissing, Some(id), Some(w));
            x.message = format!("{what} has a bit depth but no scale");
            x.observed = format!("{}, no scale", spec.dtype);
            x.allowed = format!(
                "{} scales, one per output channel",
                t.scales.weight.describe(t.scales.max_denominator)
            );
            x.hint = format!("give `{}` the attribute weight_ch_scales", f.label(id));
            out.push(x);
        }
        Some(scale) => {
            let bad: Vec<(usize, f64)> = scale
                .values()
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, s)| !fits(t.scales.weight, *s, t))
                .collect();
            if !bad.is_empty() {
                let rule = match t.scales.weight {
                    ScaleFormat::PowerOfTwo => Rule::ScaleNotPowerOfTwo,
                    _ => Rule::ScaleNotReciprocalDyadic,
                };
                let mut x = f.finding(rule, Some(id), Some(w));
                let per_channel = scale.values().len() > 1;
                let shown: Vec<String> = bad
                    .iter()
                    .take(3)
                    .map(|(c, s)| {
                        if per_channel { format!("channel {c}: {}", show_scale(*s)) } else { show_scale(*s) }
                    })
                    .collect();
                x.message = format!(
                    "{} of {} scale(s) of {what} are not {}",
                    bad.len(),
                    scale.values().len(),
                    t.scales.weight.describe(t.scales.max_denominator)
                );
                x.observed = format!("{}{}", shown.join(", "), if bad.len() > 3 { ", ..." } else { "" });
                x.allowed = t.scales.weight.describe(t.scales.max_denominator);
                x.hint = format!(
                    "round each scale to the nearest 2^n / a (a in 1..{}) and requantize the weights with it",
                    t.scales.max_denominator
                );
                out.push(x);
            }
            let count_problem = match &scale {
                QuantParam::PerTensor(_) => None,
                QuantParam::PerAxis { axis, values } => match out_channels(f, id, w) {
                    Some((want_axis, n)) => {
                        let rank = f.dims(w).map_or(0, |d| d.len()) as i64;
                        let axis = if *axis < 0 { axis + rank } else { *axis };
                        if values.len() as u64 != n {
                            Some((
                                format!("{} scales", values.len()),
                                format!("{n} scales, one per output channel"),
                            ))
                        } else if axis != want_axis as i64 && values.len() > 1 {
                            Some((
                                format!("{} scales along axis {axis}", values.len()),
                                format!("one per output channel, along axis {want_axis}"),
                            ))
                        } else {
                            None
                        }
                    }
                    None => None,
                },
                QuantParam::Blocked { values, .. } => {
                    Some((format!("{} blocked scales", values.len()), "one scale per output channel".into()))
                }
            };
            if let Some((observed, allowed)) = count_problem {
                let mut x = f.finding(Rule::WeightScaleCount, Some(id), Some(w));
                x.message = format!("{what} does not have one scale per output channel");
                x.observed = observed;
                x.allowed = allowed;
                x.hint = "write one scale per output channel (weight_ch_scales has as many entries as the layer has output channels)".into();
                out.push(x);
            }
        }
    }
    zero_point(f, spec, what, Some(id), w, out);
}

/// Biases: only a bias whose quantization is declared is checked (a float bias is quantized by
/// the DLA compiler with scale input scale x weight scale).
fn bias(f: &Facts<'_>, id: OpId, b: ValueId, out: &mut Vec<Finding>) {
    let Some(spec) = f.model.graph.value(b).quant.as_ref().filter(|q| q.origin != QuantOrigin::Inferred)
    else {
        return;
    };
    let what = format!("bias `{}`", f.name(b));
    if let Some(x) = bit_depth(f, &f.target.tensors.bias.bits, spec.dtype, what.clone(), Some(id), b) {
        out.push(x);
    }
    zero_point(f, spec, what, Some(id), b, out);
}

/// A DLA op that may not change scale: its output's scale equals each data input's.
fn keeps(f: &Facts<'_>, id: OpId, out: &mut Vec<Finding>) {
    let g = &f.model.graph;
    let op = f.op(id);
    let Some(y) = f.output(id) else { return };
    let Some(sy) = scale_of(f.model, y) else { return };
    for x in op.inputs().iter().flatten().copied().filter(|x| !f.is_constant(*x)) {
        let Some(sx) = scale_of(f.model, x) else { continue };
        if same(&sx, &sy, f.target.scales.tolerance) {
            continue;
        }
        let mut fi = f.finding(Rule::ScaleMismatch, Some(id), Some(y));
        fi.message = format!(
            "{} may not change scale, but its input `{}` and its output `{}` have different scales",
            op.op_type(),
            g.value(x).name,
            g.value(y).name
        );
        fi.observed = format!("input {}, output {}", show_param(&sx), show_param(&sy));
        fi.allowed = format!("equal scales ({} keeps its input's scale)", op.op_type());
        fi.hint = format!("give `{}` the scale of `{}`", g.value(y).name, g.value(x).name);
        out.push(fi);
    }
}

fn show_param(p: &QuantParam) -> String {
    match p.values() {
        [x] => show_scale(*x),
        v if v.windows(2).all(|p| p[0] == p[1]) => show_scale(v[0]),
        v => format!("{} per-channel scales", v.len()),
    }
}

/// Every op that declares the scale of a feature map it reads agrees with the producer's
/// declaration (or, without one, with the first declaration).
fn coherence(f: &Facts<'_>, out: &mut Vec<Finding>) {
    let g = &f.model.graph;
    for v in (0..g.value_count()).map(ValueId::from_index) {
        let claims = claims(f.model, v, &f.positions);
        let Some(reference) = claims.first() else { continue };
        let name = &g.value(v).name;
        let by_whom = |c: &Claim| format!("`{}` {} {}", f.label(c.op), c.attr, show_scale(c.scale));
        for c in &claims[1..] {
            if close(c.scale, reference.scale, f.target.scales.tolerance) {
                continue;
            }
            let mut x = f.finding(Rule::ScaleMismatch, Some(c.op), Some(v));
            x.message = if reference.producer {
                format!(
                    "`{}` reads `{name}` with another scale than its producer writes it with",
                    f.label(c.op)
                )
            } else {
                format!(
                    "`{}` and `{}` read `{name}` with different scales",
                    f.label(reference.op),
                    f.label(c.op)
                )
            };
            x.observed = by_whom(c);
            x.allowed = format!("{} ({})", show_scale(reference.scale), by_whom(reference));
            x.hint = format!(
                "a feature map has one scale: set {} of `{}` to {}",
                c.attr,
                f.label(c.op),
                reference.scale
            );
            out.push(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_dyadic_scales_are_recognised() {
        // Against a brute-force search over n and a.
        for x in
            [0.125, 1.0 / 3.0, 0.75, 1.0 / 255.0, 1.0 / 257.0, 0.01, 0.003, 2f64.powi(-7) / 5.0, 1e-9, 7.5]
        {
            let want = (1..=255).any(|a| (-60..=60).any(|n| close(x, 2f64.powi(n) / f64::from(a), 1e-6)));
            assert_eq!(is_reciprocal_dyadic(x, 255, 1e-6), want, "{x}");
        }
        assert!(is_reciprocal_dyadic(1.0 / 3.0, 255, 1e-6));
        assert!(is_reciprocal_dyadic(0.01, 255, 1e-6)); // 2^0 / 100
        assert!(!is_reciprocal_dyadic(0.75, 255, 1e-6)); // 3/4 would need a = 4/3
        assert!(!is_reciprocal_dyadic(1.0 / 257.0, 255, 1e-6));
        assert!(!is_reciprocal_dyadic(0.0, 255, 1e-6));
        assert!(is_pow2(0.125, 1e-6) && !is_pow2(0.1, 1e-6));
    }
}
