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

use qc_ir::target::{ScaleFormat, Target};
use qc_ir::{AttrValue, Model, Op, OpId, OpKind, QuantOrigin, QuantParam, QuantSpec, ValueId};

use super::{Facts, Finding, rules};

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

pub(crate) fn scale_of(model: &Model, v: ValueId) -> Option<QuantParam> {
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

pub(crate) fn keeps_scale(op: &Op) -> bool {
    op.domain().is_empty() && KEEPS_SCALE.contains(&op.op_type())
}

fn is_quantizer(op: &Op) -> bool {
    matches!(op.kind(), OpKind::Quant | OpKind::IntQuant | OpKind::BipolarQuant | OpKind::QuantizeLinear)
}

/// The data inputs whose scale an op keeps: every input of `Concat`, else input 0.
pub(crate) fn data_inputs(op: &Op) -> Vec<ValueId> {
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
pub(crate) fn same(a: &QuantParam, b: &QuantParam, tol: f64) -> bool {
    let (x, y) = (a.values(), b.values());
    let uniform = |v: &[f64]| v.windows(2).all(|p| p[0] == p[1]);
    if x.len() != y.len() {
        return uniform(x) && uniform(y) && close(x[0], y[0], tol);
    }
    x.iter().zip(y).all(|(p, q)| close(*p, *q, tol))
}

pub(crate) fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * a.abs().max(b.abs())
}

/// One op's statement of a value's scale.
#[derive(Clone, Debug)]
pub(crate) struct Claim {
    pub op: OpId,
    /// The attribute (`output_scale`, `input_scale`, ...).
    pub attr: &'static str,
    pub scale: f64,
    /// The producer declares it.
    pub producer: bool,
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
pub(crate) fn claims(model: &Model, v: ValueId, position: &HashMap<OpId, usize>) -> Vec<Claim> {
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
pub(crate) fn is_pow2(x: f64, tol: f64) -> bool {
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

pub(crate) fn fits(format: ScaleFormat, x: f64, t: &Target) -> bool {
    match format {
        ScaleFormat::PowerOfTwo => is_pow2(x, t.scales.tolerance),
        ScaleFormat::ReciprocalDyadic => {
            is_reciprocal_dyadic(x, t.scales.max_denominator, t.scales.tolerance)
        }
        ScaleFormat::Any => x > 0.0 && x.is_finite(),
    }
}

/// Whether the model describes any quantization (a spec from a source, not inferred).
pub fn quantized(model: &Model) -> bool {
    model.graph.values().any(|(_, v)| v.quant.as_ref().is_some_and(|q| q.origin != QuantOrigin::Inferred))
}

/// The scale findings (see the module doc). Each rule's decision and message is in its file
/// under `rules/`; this walks the feature maps, weights and biases in the order findings are
/// reported.
pub fn check(f: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    if !quantized(f.model) {
        out.extend(rules::not_quantized::check(f));
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
        rules::deprecated_attribute::check(f, id, &mut out);
        if !f.target.may_change_scale(f.op(id)) {
            rules::scale_mismatch::keeps(f, id, &mut out);
        }
    }
    rules::scale_mismatch::coherence(f, &mut out);
    out
}

/// A feature map's rules: a scale, its bit depth, one scale, of the target's format, and its
/// zero point.
fn feature_map(f: &Facts<'_>, v: ValueId, at: Option<OpId>, input: bool, out: &mut Vec<Finding>) {
    let t = f.target;
    let kind = if input { "graph input" } else { "feature map" };
    let what = format!("{kind} `{}`", f.name(v));
    let spec = f.model.graph.value(v).quant.as_ref();
    let limits = if input { &t.tensors.input } else { &t.tensors.feature_map };
    let (Some(spec), Some(scale)) = (spec, spec.and_then(effective_scale)) else {
        rules::scale_missing::feature_map(f, v, at, input, out);
        return;
    };
    out.extend(rules::bit_depth::check(f, &limits.bits, spec.dtype, what.clone(), at, v));
    let values = scale.values();
    if !rules::scale_not_per_tensor::check(f, &what, at, v, values, out)
        && let Some(&s) = values.first()
    {
        match t.scales.feature_map {
            ScaleFormat::PowerOfTwo => rules::scale_not_power_of_two::feature_map(f, &what, at, v, s, out),
            _ => rules::scale_not_reciprocal_dyadic::feature_map(f, &what, at, v, s, out),
        }
    }
    rules::zero_point::check(f, spec, what, at, v, out);
}

/// Whether an op carries any ACCESS scale attribute (hints name the attribute to add).
pub(crate) fn has_access_attributes(op: &Op) -> bool {
    ["output_scale", "output_bitdepth", "input_scale", "weight_ch_scales", "A_scale"]
        .iter()
        .any(|a| op.attr(a).is_some())
}

/// A weight's rules: quantized, its bit depth, a scale, of the target's format, one per output
/// channel, and its zero point.
fn weight(f: &Facts<'_>, id: OpId, w: ValueId, out: &mut Vec<Finding>) {
    let t = f.target;
    let spec = f.model.graph.value(w).quant.as_ref();
    let what = format!("weight `{}`", f.name(w));
    let Some(spec) = spec.filter(|q| !q.dtype.is_float() || q.origin != QuantOrigin::Inferred) else {
        out.push(rules::scale_missing::weight_not_quantized(f, id, w, spec));
        return;
    };
    out.extend(rules::bit_depth::check(f, &t.tensors.weight.bits, spec.dtype, what.clone(), Some(id), w));
    match effective_scale(spec) {
        None => out.push(rules::scale_missing::weight_without_scale(f, id, w, spec)),
        Some(scale) => {
            match t.scales.weight {
                ScaleFormat::PowerOfTwo => {
                    rules::scale_not_power_of_two::weight(f, id, w, scale.values(), out)
                }
                _ => rules::scale_not_reciprocal_dyadic::weight(f, id, w, scale.values(), out),
            }
            rules::weight_scale_count::check(f, id, w, &scale, out);
        }
    }
    rules::zero_point::check(f, spec, what, Some(id), w, out);
}

/// Biases: only a bias whose quantization is declared is checked (a float bias is quantized by
/// the DLA compiler with scale input scale x weight scale).
fn bias(f: &Facts<'_>, id: OpId, b: ValueId, out: &mut Vec<Finding>) {
    let Some(spec) = f.model.graph.value(b).quant.as_ref().filter(|q| q.origin != QuantOrigin::Inferred)
    else {
        return;
    };
    let what = format!("bias `{}`", f.name(b));
    out.extend(rules::bit_depth::check(
        f,
        &f.target.tensors.bias.bits,
        spec.dtype,
        what.clone(),
        Some(id),
        b,
    ));
    rules::zero_point::check(f, spec, what, Some(id), b, out);
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
