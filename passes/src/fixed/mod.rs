//! Fixed point for the ACCESS DLA: writing the fixed-point ONNX model the DLA compiler reads
//! ([`access::to_access`], `qc convert --to access`) and simulating its integer arithmetic
//! ([`sim::simulate`], `qc run --fixed-point access-dla`). The arithmetic, rounding and
//! saturation are specified in `spec/fixed_point.md`; the scale formats in [`scale`].

pub mod access;
pub mod metadata;
mod qoperator;
pub mod scale;
pub mod sim;

use qc_ir::target::Target;
use qc_ir::{Op, OpKind, ValueId};

pub use access::{
    AccessConversion, AccessOptions, Incoherent, InputRange, Moved, ScaleChange, input_ranges, to_access,
};
pub use metadata::{has_metadata_form, lift_metadata, to_metadata};
pub use scale::ScaleRounding;
pub use sim::{LayerError, Placement, Simulation, simulate};

use crate::eval::EvalError;

/// Why a conversion or a simulation could not be done.
#[derive(Clone, Debug, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum FixedError {
    #[error(
        "the model has no quantization: no Quant, BipolarQuant, Trunc, QuantizeLinear, DequantizeLinear, QLinearConv or QLinearMatMul node"
    )]
    #[diagnostic(
        code(qc::access::not_quantized),
        help(
            "the ACCESS model's scales come from the source's quantizers: quantize the model first \
             (for example with Brevitas or onnxruntime's quantize_static), then convert it"
        )
    )]
    NotQuantized,

    #[error("node `{node}`: the scale of `{tensor}` cannot be represented on the ACCESS DLA: {reason}")]
    #[diagnostic(
        code(qc::access::unrepresentable_scale),
        help(
            "feature maps need one positive per-tensor scale with zero point 0, weights a positive \
             scale per output channel; requantize that tensor in the source model"
        )
    )]
    Unrepresentable { node: String, tensor: String, reason: String },

    #[error("the ACCESS DLA has no {ops}")]
    #[diagnostic(
        code(qc::access::unsupported_op),
        help(
            "{}",
            if *hint_cpu {
                "pass --allow-cpu-ops to keep them as float ops on the CPU (`qc check --target access-dla` lists the target's operators)"
            } else {
                "these quantizers have no integer form on the DLA; quantize with Quant or QuantizeLinear instead"
            }
        )
    )]
    UnsupportedOps { ops: String, hint_cpu: bool },

    #[error("`{tensor}` would need two scales at node `{node}`: {first} and {second}")]
    #[diagnostic(
        code(qc::access::incoherent),
        help(
            "a feature map has one scale, and only convolution, matrix multiplication, average \
             pooling, element-wise add/div, ReduceSum and the saturating activations may change it; \
             pass --incoherent requantize to insert a requantization there"
        )
    )]
    Incoherent { node: String, tensor: String, first: f64, second: f64 },

    #[error("{count} feature map(s) or weight(s) of DLA layers have no scale: {what}")]
    #[diagnostic(
        code(qc::access::no_scale),
        help(
            "every feature map a DLA layer reads or writes needs a scale: put a quantizer (Quant, or \
             QuantizeLinear -> DequantizeLinear) on it in the source model, or pass --calibrate"
        )
    )]
    NoScale { what: String, count: usize },

    #[error("node `{node}`: {attr} = {value} is not {format}")]
    #[diagnostic(
        code(qc::fixed::bad_scale),
        help(
            "run `qc check --target access-dla` on the model; `qc convert --to access` writes scales in the DLA's formats"
        )
    )]
    BadScale { node: String, attr: String, value: f64, format: &'static str },

    #[error("node `{node}` cannot be converted or simulated: {reason}")]
    #[diagnostic(
        code(qc::fixed::unsupported),
        help("this form of the op is not supported by qc's fixed-point conversion and simulation")
    )]
    Unsupported { node: String, reason: String },

    #[error("the model has no ACCESS scale attributes (output_scale, input_scale, A_scale)")]
    #[diagnostic(
        code(qc::fixed::no_access_attributes),
        help("write the ACCESS fixed-point model first: qc convert MODEL --to access -o OUT.onnx")
    )]
    NoAccessAttributes,

    #[error("node `{node}`: metadata entry {key} = `{value}` cannot be read: {reason}")]
    #[diagnostic(
        code(qc::fixed::bad_metadata),
        help(
            "an ACCESS key in a node's metadata_props holds its attribute's value as text: a number \
             (an integer for the bit depths), or [a,b,...] for weight_ch_scales; write each key either \
             as an attribute or as metadata, or both with the same value"
        )
    )]
    BadMetadata { node: String, key: String, value: String, reason: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Eval(#[from] EvalError),
}

/// What ACCESS attributes a layer gets (guide III.B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LayerKind {
    /// Conv, Gemm: input, weight (per channel), output and bias.
    Weighted,
    /// MatMul: A, B and output.
    MatMul,
    /// The pools: input and output.
    Pool,
    /// Element-wise Add/Div/Sum, ReduceSum, the saturating activations: output.
    OutputOnly,
}

pub(crate) fn layer_kind(op: &Op) -> Option<LayerKind> {
    use OpKind::*;
    Some(match op.kind() {
        Conv | Gemm => LayerKind::Weighted,
        MatMul => LayerKind::MatMul,
        MaxPool | AveragePool | GlobalAveragePool | GlobalMaxPool => LayerKind::Pool,
        Add | Div | Sum | ReduceSum | Tanh | Sigmoid | HardSwish => LayerKind::OutputOnly,
        _ => return None,
    })
}

/// Whether `op` is a DLA op that keeps its input's scale.
pub(crate) fn keeps_scale(target: &Target, op: &Op) -> bool {
    !target.entries_for(op).is_empty() && !target.may_change_scale(op)
}

/// The data inputs whose scale an op keeps: every input of `Concat`, else input 0.
pub(crate) fn data_inputs(op: &Op) -> Vec<ValueId> {
    crate::check::scales::data_inputs(op)
}
