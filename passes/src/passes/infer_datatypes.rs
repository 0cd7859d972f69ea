//! `infer-datatypes`: gives every value of the main graph a QONNX datatype, with QONNX's rules.
//!
//! What it does: first, each `finn_datatype` entry of the graph's `quantization_annotation`
//! becomes the spec of its tensor (origin `annotation`) unless the tensor has one already. Then
//! it visits the ops in graph order, again and again until a whole round changes nothing (QONNX's
//! `InferDataTypes`, research/qonnx.md 1(b)):
//!
//! - quantizers (`Quant`, `IntQuant`, `BipolarQuant`, `Trunc`, `FloatQuant`, `MultiThreshold`,
//!   `QuantizeLinear`, `DequantizeLinear`): the spec [`crate::quant::quantizer_spec`] reads
//!   from the op (datatype, scale, zero point, rounding);
//! - `Sign`: `BIPOLAR`;
//! - MAC-like ops (`MatMul`, `Gemm`, `Conv`, `Add`, `Sub`, `Mul`), over all their inputs: `INT32`
//!   if every input is an integer type and one is signed (or the op is `Sub`), `UINT32` if every
//!   input is an unsigned integer type, `SCALEDINT<32>` if every input is an integer, fixed-point
//!   or scaled-integer type, `FLOAT32` if any is a float type; otherwise the output keeps what it
//!   had;
//! - `Resize`/`Upsample` in `nearest` mode (also when `mode` is absent, ONNX's default, where
//!   qonnx crashes): the input's datatype;
//! - the data-movement ops (`Reshape`, `Transpose`, `Flatten`, `Slice`, `Gather`,
//!   `GatherElements`, `GatherND`, `Identity`, `Expand`, `MaxPool`, `GlobalMaxPool`, `Scatter`,
//!   `ScatterElements`, `ScatterND`, `Squeeze`, `Unsqueeze`, `Tile`, `Pad`, `Concat`, `Clip`):
//!   input 0's datatype. Ops that do not move elements across axes (`Identity`, `Clip`,
//!   `MaxPool`, `GlobalMaxPool`, `Pad`, nearest `Resize`) copy the whole spec, scale included;
//!   the others copy the scale only when it is per tensor;
//! - qonnx's channels-last wrappers (domain `qonnx.custom_op.channels_last`): input 0's datatype;
//! - any other op: keeps a datatype other than `FLOAT32` if its output has one, else `FLOAT32`.
//!
//! A spec the model declares for a tensor through node attributes (ACCESS, ZigZag) or QLinear
//! operands, as `absorb-quant` reads them, is kept: a derived datatype does not replace it.
//! A value no rule reached has no spec, and reads as `FLOAT32` (`FLOAT16` for f16 tensors), as
//! in qonnx. With `{scaled-int=false}` every `SCALEDINT` result becomes `FLOAT32`, which is
//! qonnx's default; qc's default keeps them, as `qonnx-inference-cost` does.
//!
//! Preconditions: element types known for QuantizeLinear outputs and DequantizeLinear inputs (run
//! `infer-shapes` first). Postconditions: ops and types unchanged; every op output has a spec.
//! Subgraphs are not visited.
//!
//! Statistics: `values-typed` (outputs whose spec changed), `rounds`, `annotations-read`.

use qc_ir::{AttrValue, DataType, Model, Op, QuantOrigin, QuantParam, QuantSpec, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError, PassWarning};
use crate::quant::{datatype_of, quantizer_spec, read_annotations};
use crate::registry::{PassInfo, PassOptions};
use crate::shape::channels_last::DOMAIN as CHANNELS_LAST;

pub const INFO: PassInfo = PassInfo {
    name: "infer-datatypes",
    summary: "give every value a QONNX datatype (INT<n>, SCALEDINT<n>, BIPOLAR, ...) by QONNX's rules",
    options: &[("scaled-int", "keep SCALEDINT results; false turns them into FLOAT32 (default true)")],
    build: |o: &mut PassOptions<'_>| Ok(Box::new(InferDatatypes { scaled_int: o.bool("scaled-int", true)? })),
};

/// Rounds after which the pass stops even if specs still change (they cannot oscillate, so this
/// is a guard against a bug, reported as a warning).
const MAX_ROUNDS: u64 = 1000;

/// The `infer-datatypes` pass.
pub struct InferDatatypes {
    pub scaled_int: bool,
}

impl Default for InferDatatypes {
    fn default() -> Self {
        InferDatatypes { scaled_int: true }
    }
}

const MAC_LIKE: [&str; 6] = ["MatMul", "Gemm", "Conv", "Add", "Sub", "Mul"];
const DATA_MOVEMENT: [&str; 20] = [
    "Reshape",
    "Transpose",
    "Flatten",
    "Slice",
    "Gather",
    "GatherElements",
    "GatherND",
    "Identity",
    "Expand",
    "MaxPool",
    "GlobalMaxPool",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Squeeze",
    "Unsqueeze",
    "Tile",
    "Pad",
    "Concat",
    "Clip",
];
/// Data-movement ops that keep every element on its axis, so a per-axis scale stays valid.
const AXIS_PRESERVING: [&str; 5] = ["Identity", "Clip", "MaxPool", "GlobalMaxPool", "Pad"];

impl Pass for InferDatatypes {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let mut changed = read_annotations(model, cx, INFO.name);
        let order: Vec<_> = model.graph.ops().map(|(id, _)| id).collect();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let mut round_changed = false;
            for &id in &order {
                let op = model.graph.op(id);
                let Some(out) = op.outputs().first().copied().flatten() else { continue };
                let specs = self.rule(model, op, out);
                for (v, spec) in specs {
                    let spec = self.finish(spec);
                    let slot = &mut model.graph.value_mut(v).quant;
                    // What the model declares for a tensor (ACCESS, ZigZag or QLinear operands)
                    // is not replaced by a derived datatype.
                    if spec.origin == QuantOrigin::Inferred
                        && slot.as_ref().is_some_and(|q| declared(q.origin))
                    {
                        continue;
                    }
                    if slot.as_ref() != Some(&spec) {
                        *slot = Some(spec);
                        cx.count("values-typed", 1);
                        round_changed = true;
                    }
                }
            }
            changed |= round_changed;
            if !round_changed {
                break;
            }
            if rounds >= MAX_ROUNDS {
                cx.warn(PassWarning {
                    pass: INFO.name,
                    code: "qc::datatypes::no_fixpoint".into(),
                    message: format!("datatypes still changed after {MAX_ROUNDS} rounds; stopped"),
                    help: Some("this is a bug in qc; please report it with the model".into()),
                });
                break;
            }
        }
        cx.count("rounds", rounds);
        Ok(Changed::from_bool(changed))
    }
}

impl InferDatatypes {
    fn finish(&self, spec: QuantSpec) -> QuantSpec {
        if !self.scaled_int && matches!(spec.dtype, DataType::ScaledInt { .. }) {
            QuantSpec::dtype_only(DataType::F32, spec.origin)
        } else {
            spec
        }
    }

    /// The specs the rules give the outputs of `op` (`out` is its first output).
    fn rule(&self, model: &Model, op: &Op, out: ValueId) -> Vec<(ValueId, QuantSpec)> {
        let inferred = |dt| QuantSpec::dtype_only(dt, QuantOrigin::Inferred);
        if let Some(spec) = quantizer_spec(model, op) {
            return vec![(out, spec)];
        }
        let ty = op.op_type();
        let input0 = op.inputs().first().copied().flatten();
        if op.domain() == CHANNELS_LAST {
            // qonnx's channels-last wrappers (Conv, MaxPool, BatchNormalization) pass input 0's
            // datatype through, Conv included.
            return input0.map(|v| vec![(out, inferred(datatype_of(model, v)))]).unwrap_or_default();
        }
        // Ops of QONNX's own domains that are not quantizers have no rule (qonnx raises).
        let standard = !is_qonnx_domain(op.domain());
        if standard && ty == "Sign" {
            return vec![(out, inferred(DataType::Bipolar))];
        }
        if standard && MAC_LIKE.contains(&ty) {
            let ins: Vec<DataType> = op.inputs().iter().flatten().map(|v| datatype_of(model, *v)).collect();
            return match mac_result(&ins, ty == "Sub") {
                Some(dt) => vec![(out, inferred(dt))],
                None => Vec::new(),
            };
        }
        let nearest = matches!(ty, "Resize" | "Upsample")
            && match op.attr("mode").map(|a| &a.value) {
                None => true,
                Some(AttrValue::String(s)) => s[..] == b"nearest"[..],
                Some(_) => false,
            };
        if standard && (nearest || DATA_MOVEMENT.contains(&ty)) {
            let Some(src) = input0 else { return Vec::new() };
            let spec = match &model.graph.value(src).quant {
                Some(q) => {
                    let keep_scale = nearest
                        || AXIS_PRESERVING.contains(&ty)
                        || !matches!(
                            (&q.scale, &q.zero_point),
                            (Some(QuantParam::PerAxis { .. } | QuantParam::Blocked { .. }), _)
                                | (_, Some(QuantParam::PerAxis { .. } | QuantParam::Blocked { .. }))
                        );
                    if keep_scale {
                        QuantSpec { origin: QuantOrigin::Inferred, ..q.clone() }
                    } else {
                        inferred(q.dtype)
                    }
                }
                None => inferred(datatype_of(model, src)),
            };
            return vec![(out, spec)];
        }
        if matches!(ty, "Resize" | "Upsample") && standard {
            return Vec::new();
        }
        // Any other op: keep what is not FLOAT32, else FLOAT32.
        op.outputs()
            .iter()
            .flatten()
            .filter(|v| model.graph.value(**v).quant.as_ref().is_none_or(|q| q.dtype == DataType::F32))
            .map(|v| (*v, model.graph.value(*v).quant.clone().unwrap_or_else(|| inferred(DataType::F32))))
            .collect()
    }
}

/// Origins of specs the model declares on a tensor, which inference leaves alone.
fn declared(o: QuantOrigin) -> bool {
    matches!(
        o,
        QuantOrigin::AccessAttributes
            | QuantOrigin::ZigZagAttributes
            | QuantOrigin::OnnxQLinear
            | QuantOrigin::OnnxDynamic
    )
}

fn is_qonnx_domain(d: &str) -> bool {
    qc_ir::op::QONNX_DOMAINS.contains(&d)
        || d.starts_with("qonnx.custom_op")
        || d.starts_with("finn.custom_op")
}

/// QONNX's `infer_mac_result_dtype`: the accumulator type of a MAC-like op over inputs `ins`.
/// `None`: no rule applies, the output keeps its datatype.
pub fn mac_result(ins: &[DataType], negation: bool) -> Option<DataType> {
    let signed = negation || ins.iter().any(DataType::signed);
    if ins.iter().all(DataType::is_integer) {
        Some(DataType::int(32, signed))
    } else if ins.iter().all(DataType::is_scaled_int) {
        Some(DataType::ScaledInt { bits: 32 })
    } else if ins.iter().any(DataType::is_float) {
        Some(DataType::F32)
    } else {
        None
    }
}
