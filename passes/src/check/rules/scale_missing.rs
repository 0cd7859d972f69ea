//! `qc::check::scale-missing`: a feature map or weight that the DLA reads or writes has no
//! scale, or a weight is not quantized at all. A missing scale is reported once, where it
//! starts, not again after every op that keeps scales.
//!
//! Why: the DLA's tensors are integers with a scale (ACCESS DLA guide line 125), and its
//! compiler reads each layer's scales from the model (section III.B lists the scale attributes
//! of each op: `output_scale`, `weight_ch_scales`, `input_scale`); without one it cannot
//! requantize.
//!
//! Example: `Conv(x, w) {output_bitdepth = 8}` with no `output_scale`: give the op the
//! attributes `output_scale` and `output_bitdepth`; in a QONNX or QDQ model, put a Quant (or
//! QuantizeLinear/DequantizeLinear) after the layer.

use qc_ir::target::{Allowed, Rule};
use qc_ir::{OpId, QuantSpec, ValueId};

use super::super::scales::{data_inputs, has_access_attributes, keeps_scale, scale_of};
use super::super::{Facts, Finding};

/// A datatype for a report: `INT8`, `FLOAT32`.
fn dtype_text(q: Option<&QuantSpec>) -> String {
    q.map_or("FLOAT32".to_string(), |q| q.dtype.name())
}

/// A feature map `v` (a graph input when `input`) without a scale; nothing when the op that
/// writes it keeps the scale of an input that has none either (reported at that input).
pub(crate) fn feature_map(f: &Facts<'_>, v: ValueId, at: Option<OpId>, input: bool, out: &mut Vec<Finding>) {
    let t = f.target;
    let g = &f.model.graph;
    let kind = if input { "graph input" } else { "feature map" };
    let name = f.name(v);
    let spec = g.value(v).quant.as_ref();
    let limits = if input { &t.tensors.input } else { &t.tensors.feature_map };
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
}

/// Weight `w` of op `id` is not quantized (`spec`, if any, is an inferred float type).
pub(crate) fn weight_not_quantized(f: &Facts<'_>, id: OpId, w: ValueId, spec: Option<&QuantSpec>) -> Finding {
    let t = f.target;
    let mut x = f.finding(Rule::ScaleMissing, Some(id), Some(w));
    x.message = format!("weight `{}` is not quantized", f.name(w));
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
    x
}

/// Weight `w` of op `id` has a bit depth (`spec`) but no scale.
pub(crate) fn weight_without_scale(f: &Facts<'_>, id: OpId, w: ValueId, spec: &QuantSpec) -> Finding {
    let t = f.target;
    let mut x = f.finding(Rule::ScaleMissing, Some(id), Some(w));
    x.message = format!("weight `{}` has a bit depth but no scale", f.name(w));
    x.observed = format!("{}, no scale", spec.dtype);
    x.allowed =
        format!("{} scales, one per output channel", t.scales.weight.describe(t.scales.max_denominator));
    x.hint = format!("give `{}` the attribute weight_ch_scales", f.label(id));
    x
}
