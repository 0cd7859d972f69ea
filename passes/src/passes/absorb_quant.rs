//! `absorb-quant`: reads the quantization of every dialect into the values' `QuantSpec`s.
//!
//! What it does, in this order (a value keeps the first spec it gets; a later source that says
//! something different is counted in `conflicts` and reported once per value with
//! `qc::quant::conflict`):
//!
//! 1. `finn_datatype` entries of the graph's `quantization_annotation` (origin `annotation`);
//! 2. quantizer ops, on their output: QONNX `Quant`/`IntQuant`, `BipolarQuant`, `Trunc`,
//!    `FloatQuant`, `MultiThreshold` (in the domains `qonnx.custom_op.general`,
//!    `onnx.brevitas`, `finn.custom_op.general`, `finn` and the empty one), and ONNX
//!    `QuantizeLinear`/`DequantizeLinear` (per tensor, per axis, blocked), and
//!    `DynamicQuantizeLinear` (uint8 at a run-time scale, origin `onnx_dynamic`);
//! 3. the integer ops `QLinearConv`, `QLinearMatMul`, `ConvInteger`, `MatMulInteger`, on their
//!    quantized inputs and their output (origin `onnx_qlinear`);
//! 4. ACCESS DLA node attributes (`../shared/reference/access-dla-fixed-point-onnx-guide.md`):
//!    `input_scale`/`input_bitdepth` and `A_scale`/`A_bitdepth` on input 0, `weight_bitdepth`
//!    with `weight_ch_scales` (per output channel) or the deprecated `weight_scale`, and
//!    `B_scale`/`B_bitdepth`, on input 1, `bias_bitdepth`/`bias_scale` on input 2,
//!    `output_scale`/`output_bitdepth` on output 0, and the export script's `weight_bit` (input 1
//!    of ops with weights) and `activation_bit` (input 0 and output 0);
//! 5. ZigZag node attributes: `weight_size` on input 1, `act_size` on input 0 and output 0.
//!    `output_size` (the partial-sum precision) has no value to sit on; it stays on the op, where
//!    lowering to loop nests reads it, and is counted in `zigzag-psum`.
//!
//! Attribute dialects give `INT<bits>` with unit scale and `SCALEDINT<bits>` with any other
//! scale, as QONNX names a scaled integer. Run `infer-datatypes` afterwards to carry datatypes
//! through the rest of the graph.
//!
//! Preconditions: element types known for the integer ops and QDQ (run `infer-shapes` first).
//! Postconditions: ops, values and types unchanged; specs added. Subgraphs are not visited.
//!
//! Statistics: `annotations-read`, `from-quantizers`, `from-integer-ops`, `from-access`,
//! `from-zigzag`, `zigzag-psum`, `conflicts`.

use std::collections::HashSet;

use qc_ir::{AttrValue, DataType, Model, Op, OpKind, QuantOrigin, QuantParam, QuantSpec, Rounding, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError, PassWarning};
use crate::quant::{integer_op_specs, quantizer_spec, read_annotations};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "absorb-quant",
    summary: "read QONNX, QDQ, QLinear, ACCESS and ZigZag quantization into the values' specs",
    options: &[],
    build: |_| Ok(Box::new(AbsorbQuant)),
};

/// The `absorb-quant` pass.
pub struct AbsorbQuant;

impl Pass for AbsorbQuant {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let mut changed = read_annotations(model, cx, INFO.name);
        let mut found: Vec<(ValueId, QuantSpec, &'static str)> = Vec::new();
        let mut psum = 0;
        for (_, op) in model.graph.ops() {
            if let Some(spec) = quantizer_spec(model, op) {
                if let Some(out) = op.outputs().first().copied().flatten() {
                    found.push((out, spec, "from-quantizers"));
                }
                continue;
            }
            for (v, spec) in integer_op_specs(model, op) {
                found.push((v, spec, "from-integer-ops"));
            }
            for (v, spec) in access_specs(op) {
                found.push((v, spec, "from-access"));
            }
            let (zz, has_psum) = zigzag_specs(op);
            psum += u64::from(has_psum);
            for (v, spec) in zz {
                found.push((v, spec, "from-zigzag"));
            }
        }
        if psum > 0 {
            cx.count("zigzag-psum", psum);
        }
        let mut reported = HashSet::new();
        for (v, spec, counter) in found {
            let value = model.graph.value_mut(v);
            match value.quant.clone() {
                None => {
                    value.quant = Some(spec);
                    cx.count(counter, 1);
                    changed = true;
                }
                Some(q) if q.origin == QuantOrigin::Inferred => {
                    value.quant = Some(spec);
                    cx.count(counter, 1);
                    changed = true;
                }
                Some(q) if q == spec || (q.dtype == spec.dtype && q.scale == spec.scale) => {}
                Some(q) => {
                    cx.count("conflicts", 1);
                    if reported.insert(v) {
                        cx.warn(PassWarning {
                            pass: INFO.name,
                            code: "qc::quant::conflict".into(),
                            message: format!(
                                "`{}` is {} by one source and {} by another; the first is kept",
                                value.name, q.dtype, spec.dtype
                            ),
                            help: Some(
                                "two quantization descriptions disagree about this tensor; fix the exporter's \
                                 attributes or annotations"
                                    .into(),
                            ),
                        });
                    }
                }
            }
        }
        Ok(Changed::from_bool(changed))
    }
}

fn attr_f64(op: &Op, name: &str) -> Option<f64> {
    match &op.attr(name)?.value {
        // The decimal the exporter wrote (0.01), not the f32's binary expansion.
        AttrValue::Float(x) => x.to_string().parse().ok(),
        AttrValue::Int(x) => Some(*x as f64),
        _ => None,
    }
}

fn attr_bits(op: &Op, name: &str) -> Option<u32> {
    match &op.attr(name)?.value {
        AttrValue::Int(x) if (1..=64).contains(x) => Some(*x as u32),
        AttrValue::Float(x) if x.fract() == 0.0 && (1.0..=64.0).contains(x) => Some(*x as u32),
        _ => None,
    }
}

/// A spec for `bits` with scale `scale`: `INT<bits>` with unit scale or none, else
/// `SCALEDINT<bits>`.
fn scaled(bits: u32, scale: Option<QuantParam>, origin: QuantOrigin) -> QuantSpec {
    let unit = scale.as_ref().is_none_or(|s| s.all_eq(1.0));
    QuantSpec {
        dtype: if unit { DataType::int(bits, true) } else { DataType::ScaledInt { bits } },
        scale,
        zero_point: None,
        narrow: false,
        rounding: Rounding::HalfEven,
        origin,
    }
}

/// Specs from ACCESS DLA node attributes.
fn access_specs(op: &Op) -> Vec<(ValueId, QuantSpec)> {
    let origin = QuantOrigin::AccessAttributes;
    let input = |i: usize| op.inputs().get(i).copied().flatten();
    let output = op.outputs().first().copied().flatten();
    let per_tensor = |name| attr_f64(op, name).map(QuantParam::PerTensor);
    let mut out = Vec::new();
    let mut put = |v: Option<ValueId>, bits: Option<u32>, scale: Option<QuantParam>| {
        if let (Some(v), Some(bits)) = (v, bits) {
            out.push((v, scaled(bits, scale, origin)));
        }
    };
    put(input(0), attr_bits(op, "input_bitdepth"), per_tensor("input_scale"));
    put(input(0), attr_bits(op, "A_bitdepth"), per_tensor("A_scale"));
    let weight_scale = match op.attr("weight_ch_scales").map(|a| &a.value) {
        Some(AttrValue::Floats(v)) => Some(QuantParam::PerAxis {
            axis: 0,
            values: v.iter().filter_map(|x| x.to_string().parse().ok()).collect(),
        }),
        _ => per_tensor("weight_scale"),
    };
    put(input(1), attr_bits(op, "weight_bitdepth"), weight_scale);
    put(input(1), attr_bits(op, "B_bitdepth"), per_tensor("B_scale"));
    put(input(2), attr_bits(op, "bias_bitdepth"), per_tensor("bias_scale"));
    put(output, attr_bits(op, "output_bitdepth"), per_tensor("output_scale"));
    // The export script's blanket attributes: bit widths only.
    let has_weights =
        matches!(op.kind(), OpKind::Conv | OpKind::Gemm | OpKind::MatMul | OpKind::ConvTranspose);
    if has_weights {
        put(input(1), attr_bits(op, "weight_bit"), None);
    }
    if let Some(bits) = attr_bits(op, "activation_bit") {
        put(input(0), Some(bits), None);
        put(output, Some(bits), None);
    }
    out
}

/// Specs from ZigZag's `weight_size` and `act_size` attributes, and whether the op carries
/// `output_size`.
fn zigzag_specs(op: &Op) -> (Vec<(ValueId, QuantSpec)>, bool) {
    let origin = QuantOrigin::ZigZagAttributes;
    let input = |i: usize| op.inputs().get(i).copied().flatten();
    let mut out = Vec::new();
    if let (Some(v), Some(bits)) = (input(1), attr_bits(op, "weight_size")) {
        out.push((v, scaled(bits, None, origin)));
    }
    if let Some(bits) = attr_bits(op, "act_size") {
        for v in [input(0), op.outputs().first().copied().flatten()].into_iter().flatten() {
            out.push((v, scaled(bits, None, origin)));
        }
    }
    (out, attr_bits(op, "output_size").is_some())
}
