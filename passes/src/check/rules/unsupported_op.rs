//! `qc::check::unsupported-op`: no operator entry of the target covers the op, so it runs on
//! the CPU. Also a convolution that is neither standard (`group = 1`) nor depth-wise (one input
//! channel per group).
//!
//! Why: the DLA runs the operators of the ACCESS DLA guide's section II.B (convolutions, fully
//! connected layers, pools, element-wise add and division, activations); any other op falls back
//! to the CPU, with a transfer each way between DLA segments. The hint says how such ops are
//! usually replaced; a final Softmax can simply stay on the CPU.
//!
//! The hints read the op's neighbourhood: a `Gather` of a constant table at run-time integer
//! indices is named an embedding lookup; a `Mul` of two activations is not told to fold into a
//! convolution; a `Softmax` that feeds other layers (attention) is not a final one; normalization
//! and activation ops (`LayerNormalization`, `Gelu`, their written-out pieces) say what the DLA
//! lacks and how to keep them one CPU op.
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
    if let Some(table) = embedding_table(f, id) {
        x.message = format!(
            "`{shown}` is an embedding lookup (rows of the constant table `{table}` at run-time indices); {} has no lookup unit, so it runs on the CPU",
            f.target.name
        );
    }
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
        "Softmax" | "LogSoftmax" if feeds_layers(f, id) => {
            "a softmax inside the network (as in attention, between the scores MatMul and the MatMul with V): \
             the DLA has no exponent unit, so it runs on the CPU with a transfer each way; keep the MatMuls \
             around it on the DLA, or use a target that lists Softmax"
                .into()
        }
        "Softmax" | "LogSoftmax" => "a final softmax usually stays on the CPU; nothing to do if it is the last op".into(),
        "LayerNormalization" | "RMSNormalization" | "SimplifiedLayerNormalization" | "SkipLayerNormalization" => {
            "a normalization computed at run time per token (a mean, a variance, a square root and a division), \
             which the DLA cannot do: it runs on the CPU between DLA segments; keep it one op (not written out \
             as ReduceMean, Sub, Pow, Sqrt, Div), so that it is one CPU op with one transfer each way"
                .into()
        }
        "ReduceMean" | "Pow" | "Sqrt" | "Reciprocal" | "Erf" => {
            "a piece of a normalization or an activation written out op by op (ReduceMean, Pow, Sqrt and Div \
             make a layer normalization; Erf makes GELU): each piece runs on the CPU with its own transfers; \
             as one LayerNormalization or Gelu op it is one CPU op"
                .into()
        }
        "Gelu" | "FastGelu" | "BiasGelu" | "Mish" | "Softplus" | "Elu" | "Selu" | "Swish" => {
            "not an activation the DLA computes (it pipelines ReLU, PReLU and LeakyReLU, and approximates Tanh, \
             Sigmoid and HardSwish stepwise): it runs on the CPU between DLA segments; to keep the layer on the \
             DLA, train the model with one of those activations"
                .into()
        }
        "Gather" if embedding_table(f, id).is_some() => {
            "an embedding lookup moves data and computes nothing: run it on the CPU before the first DLA \
             segment, or outside the model (feed the embedded tokens as the model's input)"
                .into()
        }
        "Gather" | "GatherElements" | "GatherND"
            if f.input(id, 0).is_some_and(|v| !f.is_constant(v))
                && producer.is_none_or(|p| !matches!(p, OpKind::Shape)) =>
        {
            "it picks slices of a feature map (a class token, a time step): it moves data only; where the \
             indices are a range, a Slice or a Reshape does the same, otherwise it stays on the CPU"
                .into()
        }
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
        "Sub" if !op.inputs().iter().flatten().any(|v| f.is_constant(*v)) => {
            "it subtracts one activation from another (a layer normalization written out subtracts the mean \
             this way), which no layer of the DLA does: it runs on the CPU between DLA segments; as one \
             LayerNormalization op the whole normalization is one CPU op"
                .into()
        }
        "Mul" if !op.inputs().iter().flatten().any(|v| f.is_constant(*v)) => {
            "both operands are computed at run time (an activation times an activation, as in gating or \
             attention), which no layer of the DLA does: it runs on the CPU between DLA segments; a gate \
             x * Sigmoid(x) can become HardSwish, which the DLA approximates (retrain to check the accuracy)"
                .into()
        }
        "Mul" | "Sub" => "a multiplication or subtraction by constants is an affine map: fold it into the neighbouring convolution, batch normalization or matrix product's weight (attention's 1/sqrt(d) scale into the query projection)".into(),
        _ => "the CPU runs it between DLA segments, with a transfer each way; replace it with a DLA operator where the model allows".into(),
    };
    x
}

/// The constant table a `Gather` reads, when it is an embedding lookup: input 0 is a constant
/// of rank 2 or more, the indices are computed at run time and are integers, on axis 0.
fn embedding_table(f: &Facts<'_>, id: OpId) -> Option<String> {
    let op = f.op(id);
    if op.kind() != OpKind::Gather || !op.domain().is_empty() || op.attr_int("axis", 0).ok()? != 0 {
        return None;
    }
    let (table, indices) = (f.input(id, 0)?, f.input(id, 1)?);
    let integer = matches!(
        crate::rewrite::elem_in(&f.model.graph, indices),
        Some(qc_ir::ElemType::I64 | qc_ir::ElemType::I32)
    );
    let rank = f.dims(table).map_or(0, |d| d.len());
    (f.is_constant(table) && !f.is_constant(indices) && integer && rank >= 2).then(|| f.name(table))
}

/// Whether an op's output goes on to other ops (it is not only a graph output).
fn feeds_layers(f: &Facts<'_>, id: OpId) -> bool {
    f.output(id).is_some_and(|y| !f.model.graph.value(y).uses().is_empty())
}
