//! `qc::check::not-quantized`: no tensor of the model has a quantization (no QONNX quantizer,
//! QDQ, QLinear op, ACCESS or ZigZag attribute, or annotation). Reported once, instead of a
//! finding per tensor, and only when some op could run on the DLA.
//!
//! Why: the DLA computes in fixed point: every tensor it reads or writes is an integer and a
//! scale (ACCESS DLA guide section III, line 125), and its compiler takes those scales from
//! the model; a float model gives it none.
//!
//! Example: a float model straight from training, `Conv(x: f32[1,3,224,224], w: f32[...])`
//! with no Quant, QuantizeLinear or `output_scale`: quantize it (quantization-aware training)
//! and export its scales.

use qc_ir::target::{Allowed, Rule, ScaleFormat, Target};

use super::super::{Facts, Finding};

/// The finding for a model that describes no quantization (the caller has found none), when
/// some op matches an operator entry.
pub(crate) fn check(f: &Facts<'_>) -> Option<Finding> {
    if f.entry.is_empty() {
        return None;
    }
    let mut x = f.finding(Rule::NotQuantized, None, None);
    x.message = "the model describes no quantization: every tensor is float".into();
    x.observed = "no QONNX Quant, QuantizeLinear/DequantizeLinear, QLinear or ACCESS scale attributes".into();
    x.allowed = allowed_summary(f.target);
    x.hint = "quantize the model (quantization-aware training, guide IV) and export its scales as ACCESS attributes, QONNX Quant nodes or QDQ".into();
    Some(x)
}

fn allowed_summary(t: &Target) -> String {
    let bits = |a: &Option<Allowed>| a.as_ref().map_or("any".to_string(), Allowed::describe);
    let scales = |s: ScaleFormat| match s {
        ScaleFormat::PowerOfTwo => "power-of-two",
        ScaleFormat::ReciprocalDyadic => "reciprocal dyadic",
        ScaleFormat::Any => "any",
    };
    format!(
        "{}-bit feature maps with {} scales, {}-bit weights with {} scales, {}-bit biases",
        bits(&t.tensors.feature_map.bits),
        scales(t.scales.feature_map),
        bits(&t.tensors.weight.bits),
        scales(t.scales.weight),
        bits(&t.tensors.bias.bits),
    )
}
