//! Quantization: `QuantizeLinear`, `DequantizeLinear`, and the QONNX ops `Quant`,
//! `BipolarQuant`, `Trunc`, `FloatQuant`, `MultiThreshold` (`QLinearConv`, `ConvInteger`,
//! `QLinearMatMul` and `MatMulInteger` share the rules of `conv` and `matmul`).
//!
//! The QONNX ops keep the shape of their first input and produce float32, as QONNX's own
//! shape inference does.

use qc_ir::{ElemType, OpKind};

use super::{Cx, R, TypeFact, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::QuantizeLinear => quantize(cx),
        OpKind::DequantizeLinear => dequantize(cx),
        _ => return None,
    })
}

/// The QONNX custom ops (in their domains, or the empty domain of older exporters: the op's kind
/// says which).
pub(crate) fn infer_qonnx(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::Quant
        | OpKind::IntQuant
        | OpKind::BipolarQuant
        | OpKind::Trunc
        | OpKind::FloatQuant
        | OpKind::MultiThreshold => {
            let elem = match cx.elem_opt(0) {
                Some(e @ (ElemType::F32 | ElemType::F16 | ElemType::F64 | ElemType::BF16)) => e,
                _ => ElemType::F32,
            };
            cx.dims(0).and_then(|d| one(TypeFact::new(elem, d.to_vec())))
        }
        _ => return None,
    })
}

fn quantize(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let elem = if cx.has(2) {
        cx.elem_opt(2)
    } else {
        let od = if cx.opset >= 21 { cx.attr_int("output_dtype", 0)? } else { 0 };
        Some(if od != 0 { ElemType::from_code(od as i32) } else { ElemType::U8 })
    };
    one(TypeFact { elem, shape: Some(cx.dims(0)?.to_vec()), value: None })
}

fn dequantize(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let od = if cx.opset >= 23 { cx.attr_int("output_dtype", 0)? } else { 0 };
    let elem = if od != 0 {
        Some(ElemType::from_code(od as i32))
    } else if cx.opset >= 19 {
        cx.elem_opt(1)
    } else {
        Some(ElemType::F32)
    };
    one(TypeFact { elem, shape: Some(cx.dims(0)?.to_vec()), value: None })
}
