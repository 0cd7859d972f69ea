//! `qc::check::unsupported-op`: no operator entry of the target covers the op, so it runs on
//! the CPU. Also a convolution that is neither standard (`group = 1`) nor depth-wise (one input
//! channel per group).
//!
//! Why: the DLA runs the operators of the ACCESS DLA guide's section II.B (convolutions, fully
//! connected layers, pools, element-wise add and division, activations); any other op falls back
//! to the CPU, with a transfer each way between DLA segments. The hint says how such ops are
//! usually replaced; a final Softmax can simply stay on the CPU.
//!
//! Example: `Pad(x: f32[1,16,32,32]) {pads = [0, 0, 1, 1, 0, 0, 1, 1]}` before a `Conv`: fold the
//! padding into the convolution's `pads`; `Conv(x: f32[1,16,8,8], w: f32[16,4,3,3]) {group = 4}`
//! is grouped: split it into standard convolutions joined by a Concat.

use qc_ir::target::Rule;
use qc_ir::{OpId, OpKind};

use super::super::{Facts, Finding, Quantity};

/// The finding for an op no operator entry covers.
pub(crate) fn check(f: &Facts<'_>, id: OpId) -> Finding {
    let op = f.op(id);
    let mut x = f.finding(Rule::UnsupportedOp, Some(id), None);
    let ty = op.op_type();
    let shown = if op.domain().is_empty() { ty.to_string() } else { format!("{}::{ty}", op.domain()) };
    x.allowed = format!("the operators `qc targets show {}` lists", f.target.name);
    if !f.target.entries_for(op).is_empty() && matches!(op.kind(), OpKind::Conv) {
        // Covered by name, but neither standard nor depth-wise: a grouped convolution.
        let group = op.attr_int("group", 1).unwrap_or(1);
        let channels = f.input(id, 0).and_then(|v| f.dims(v)).and_then(|d| d.get(1).copied().flatten());
        x.observed_value = channels
            .and_then(|c| i64::try_from(c).ok())
            .map(|c| Quantity::Named(vec![("group", group), ("input_channels", c)]));
        let channels = channels.map_or("?".to_string(), |c| c.to_string());
        x.message = format!(
            "a convolution with group {group} over {channels} input channels is neither standard nor depth-wise; it runs on the CPU"
        );
        x.observed = format!("group {group}, {channels} input channels");
        x.allowed = "group 1 (standard) or one input channel per group (depth-wise)".into();
        x.hint =
            format!("split it into {group} standard convolutions joined by a Concat, or make it depth-wise");
        return x;
    }
    x.message = format!("`{shown}` is not an operator of {}; it runs on the CPU", f.target.name);
    x.observed = shown;
    // What produced input 0 (and what produced that op's input 0), for hints that depend on it.
    let producer_of = |op: OpId| f.input(op, 0).and_then(|v| f.model.graph.value(v).producer());
    let producer = producer_of(id).map(|p| f.op(p).kind());
    let integer_result = |op: OpId| {
        producer_of(op).map(|p| f.op(p).kind()) == Some(OpKind::Cast)
            && producer_of(op)
                .and_then(producer_of)
                .is_some_and(|p| matches!(f.op(p).kind(), OpKind::ConvInteger | OpKind::MatMulInteger))
    };
    let dynamic = "dynamic quantization (onnxruntime's quantize_dynamic): its scales are computed at run time, \
                   which a fixed-point DLA cannot do; quantize statically (QDQ, constant scales) so that the layer \
                   is a quantized Conv or MatMul";
    x.hint = match ty {
        _ if op.domain() == crate::shape::channels_last::DOMAIN => {
            "a qonnx channels-last wrapper: convert the model back to channels-first (NCHW) so that it is the standard op".into()
        }
        "Identity" | "Dropout" => "it computes nothing at inference: remove it before export".into(),
        "Softmax" | "LogSoftmax" => "a final softmax usually stays on the CPU; nothing to do if it is the last op".into(),
        "Pad" => "fold it into the next convolution's pads (zeros, at most 3 per side)".into(),
        _ if op.domain() == qc_ir::op::MICROSOFT_DOMAIN
            && matches!(ty, "FusedConv" | "FusedGemm" | "FusedMatMul") =>
        {
            "onnxruntime's offline optimizer fused it with its activation: save the model without its \
             extended optimizations (ORT_ENABLE_BASIC) so that it is the standard op and activation"
                .into()
        }
        _ if op.domain() == qc_ir::op::MICROSOFT_DOMAIN => {
            "an onnxruntime contrib op: save the model without onnxruntime's offline optimizations so that \
             it is made of standard ops"
                .into()
        }
        "DynamicQuantizeLinear" | "ConvInteger" | "MatMulInteger" => dynamic.to_string(),
        "Mul" if producer == Some(OpKind::DynamicQuantizeLinear) => {
            format!("it multiplies a run-time scale of DynamicQuantizeLinear by the weight's scale: {dynamic}")
        }
        "Mul" if integer_result(id) => {
            format!("it scales an integer layer's result by the run-time scales of its operands: {dynamic}")
        }
        "Cast" if matches!(producer, Some(OpKind::ConvInteger | OpKind::MatMulInteger)) => {
            format!("it turns an integer layer's int32 result to float before the Mul by the scales: {dynamic}")
        }
        "Shape" | "Gather" | "ConstantOfShape" | "Cast" | "Range" => {
            "shape arithmetic: fold it into constants (`qc optimize` folds constants)".into()
        }
        "Clip" => "a Clip from 0 is a ReLU with saturation: use Relu and let the 8-bit output saturate".into(),
        "Mul" | "Sub" => "a multiplication or subtraction by constants is an affine map: fold it into the neighbouring convolution or batch normalization".into(),
        _ => "the CPU runs it between DLA segments, with a transfer each way; replace it with a DLA operator where the model allows".into(),
    };
    x
}
