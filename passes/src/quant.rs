//! Quantization specs read from the ops of every dialect: QONNX `Quant`/`IntQuant`,
//! `BipolarQuant`, `Trunc`, `FloatQuant` and `MultiThreshold`, ONNX `QuantizeLinear`,
//! `DequantizeLinear` and `DynamicQuantizeLinear` (uint8 at a run-time scale), and the integer ops `QLinearConv`, `QLinearMatMul`, `ConvInteger`,
//! `MatMulInteger`.
//!
//! The datatypes follow QONNX's rules (research/qonnx.md 1(a), 1(b)) exactly, because `qc cost`
//! must agree with `qonnx-inference-cost`: a `Quant` with unit scale and zero zero-point is
//! `INT<b>`/`UINT<b>` (`BIPOLAR`/`BINARY` for one bit), with any other scale `SCALEDINT<b>`, and
//! `FLOAT32` when its parameters are not constants or its zero point is not zero; `BipolarQuant`
//! is `BIPOLAR` with unit scale, else `FLOAT32`; `Trunc` is `FLOAT32`; `FloatQuant` is
//! `FLOAT<e,m,bias>` with unit scale, else `FLOAT32`. Where QONNX fails (sub-byte and float8 QDQ,
//! which its `extract_elem_type` does not know), qc gives the type the ONNX element type names.
//!
//! The quantization facts several passes share live here too, rather than in one of them: the
//! integer range of a QONNX quantizer (`int_range`, for both QCDQ conversions) and reading
//! `finn_datatype` annotations (`read_annotations`, for `infer-datatypes` and `absorb-quant`).

use qc_ir::{
    AttrValue, Const, DataType, ElemType, Model, Op, OpKind, QuantOrigin, QuantParam, QuantSpec, Rounding,
    ValueId, ValueType,
};

use crate::eval::Array;
use crate::pass::{PassContext, PassWarning};

/// A constant: an initializer, or the output of a default-domain `Constant` op (its `value`
/// tensor, or `value_float(s)`/`value_int(s)`), as QONNX's own QCDQ export writes parameters.
pub fn const_array(model: &Model, v: ValueId) -> Option<Array> {
    let g = &model.graph;
    let val = g.value(v);
    if let Some(t) = val.tensor() {
        return Array::from_tensor(t, model).ok();
    }
    let op = g.op(val.producer()?);
    if op.kind() != OpKind::Constant {
        return None;
    }
    match &op.attrs.first()?.value {
        AttrValue::Tensor(t) => Array::from_tensor(t, model).ok(),
        AttrValue::Float(f) => Some(Array::scalar_f32(*f)),
        AttrValue::Floats(f) => Array::from_f32(vec![f.len()], f.clone()).ok(),
        AttrValue::Int(i) => Array::from_i64(vec![], vec![*i]).ok(),
        AttrValue::Ints(i) => Array::from_i64(vec![i.len()], i.clone()).ok(),
        _ => None,
    }
}

/// `[min_int, max_int]` of a QONNX integer quantizer.
pub(crate) fn int_range(signed: bool, narrow: bool, bits: u32) -> (i64, i64) {
    let b = i64::from(bits);
    let min = match (signed, narrow) {
        (true, true) => -(1 << (b - 1)) + 1,
        (true, false) => -(1 << (b - 1)),
        (false, _) => 0,
    };
    let max = match (signed, narrow) {
        (false, false) => (1 << b) - 1,
        (false, true) => (1 << b) - 2,
        (true, _) => (1 << (b - 1)) - 1,
    };
    (min, max)
}

/// A constant's dims and values as `f64` (see [`const_array`]).
pub fn const_values(model: &Model, v: Option<ValueId>) -> Option<(Vec<usize>, Vec<f64>)> {
    let a = const_array(model, v?)?;
    let vals = a.to_f64().ok()?;
    Some((a.dims, vals))
}

/// A constant scalar (or one-element tensor), with its rank.
fn const_scalar(model: &Model, v: Option<ValueId>) -> Option<(usize, f64)> {
    let (dims, vals) = const_values(model, v)?;
    (vals.len() == 1).then(|| (dims.len(), vals[0]))
}

/// A scale or zero point as a [`QuantParam`]: per tensor for one value; per axis when exactly
/// one dim is not 1 (QONNX's `[C,1,1,1]` form, ONNX's 1-D form with `axis`); `None` otherwise.
/// `onnx_axis`: the `axis` attribute of QuantizeLinear/DequantizeLinear, which places a 1-D
/// parameter on the data's axis.
pub fn param_from(dims: &[usize], values: Vec<f64>, onnx_axis: Option<i64>) -> Option<QuantParam> {
    if values.len() == 1 {
        return Some(QuantParam::PerTensor(values[0]));
    }
    if let (Some(axis), 1) = (onnx_axis, dims.len()) {
        return Some(QuantParam::PerAxis { axis, values });
    }
    let mut big = dims.iter().enumerate().filter(|(_, d)| **d != 1);
    let (axis, _) = big.next()?;
    if big.next().is_some() {
        return None;
    }
    Some(QuantParam::PerAxis { axis: axis as i64, values })
}

/// The QONNX datatype an ONNX integer or float8 element type stores.
pub fn elem_datatype(e: ElemType) -> Option<DataType> {
    use ElemType::*;
    Some(match e {
        I8 => DataType::int(8, true),
        U8 => DataType::int(8, false),
        I16 => DataType::int(16, true),
        U16 => DataType::int(16, false),
        I32 => DataType::int(32, true),
        U32 => DataType::int(32, false),
        I64 => DataType::int(64, true),
        U64 => DataType::int(64, false),
        I4 => DataType::int(4, true),
        U4 => DataType::int(4, false),
        I2 => DataType::int(2, true),
        U2 => DataType::int(2, false),
        Bool => DataType::Binary,
        F8E4M3FN => DataType::Float { e: 4, m: 3, bias: 7 },
        F8E4M3FNUZ => DataType::Float { e: 4, m: 3, bias: 8 },
        F8E5M2 => DataType::Float { e: 5, m: 2, bias: 15 },
        F8E5M2FNUZ => DataType::Float { e: 5, m: 2, bias: 16 },
        F4E2M1 => DataType::Float { e: 2, m: 1, bias: 1 },
        F16 => DataType::F16,
        F32 => DataType::F32,
        _ => return None,
    })
}

/// The element type of a value, from its declared or inferred type.
pub fn value_elem(model: &Model, v: ValueId) -> Option<ElemType> {
    let val = model.graph.value(v);
    if let Some(Const::Dense(t)) = &val.init {
        return Some(t.elem_type());
    }
    match val.ty.as_ref()?.ty.as_ref()? {
        ValueType::Tensor { elem, .. } => *elem,
        _ => None,
    }
}

/// The datatype QONNX gives a value without an annotation: `FLOAT16` for f16 tensors,
/// `FLOAT32` for everything else (integer tensors included, as qonnx does).
pub fn default_datatype(model: &Model, v: ValueId) -> DataType {
    if value_elem(model, v) == Some(ElemType::F16) { DataType::F16 } else { DataType::F32 }
}

/// The datatype of a value: its spec's, else the default.
pub fn datatype_of(model: &Model, v: ValueId) -> DataType {
    model.graph.value(v).quant.as_ref().map_or_else(|| default_datatype(model, v), |q| q.dtype)
}

/// Whether `op` is one of QONNX's quantizers (in any domain QONNX accepts, and the empty one).
pub fn is_qonnx_quantizer(op: &Op) -> bool {
    matches!(
        op.kind(),
        OpKind::Quant | OpKind::IntQuant | OpKind::BipolarQuant | OpKind::Trunc | OpKind::FloatQuant
    ) || op.kind() == OpKind::MultiThreshold
}

/// The spec of output 0 of a quantizer op (QONNX family, QuantizeLinear, DequantizeLinear), or
/// `None` when `op` is not one.
pub fn quantizer_spec(model: &Model, op: &Op) -> Option<QuantSpec> {
    let input = |i: usize| op.inputs().get(i).copied().flatten();
    let f32_spec = |origin| QuantSpec::dtype_only(DataType::F32, origin);
    match op.kind() {
        // uint8 at a scale and zero point computed at run time (outputs 1 and 2).
        OpKind::DynamicQuantizeLinear => Some(QuantSpec {
            dtype: DataType::int(8, false),
            scale: None,
            zero_point: None,
            narrow: false,
            rounding: Rounding::HalfEven,
            origin: QuantOrigin::OnnxDynamic,
        }),
        OpKind::Quant | OpKind::IntQuant => {
            let attrs = op.qonnx_quant().ok()?;
            let rounding = Rounding::from_qonnx(&attrs.rounding_mode).unwrap_or(Rounding::HalfEven);
            let origin = QuantOrigin::QonnxQuant;
            let (Some((sd, sv)), Some((zd, zv)), Some((brank, bits))) =
                (const_values(model, input(1)), const_values(model, input(2)), const_scalar(model, input(3)))
            else {
                return Some(f32_spec(origin));
            };
            if brank != 0
                || bits.fract() != 0.0
                || !(1.0..=64.0).contains(&bits)
                || zv.iter().any(|z| *z != 0.0)
            {
                return Some(f32_spec(origin));
            }
            let bits = bits as u32;
            let unit = sv.iter().all(|s| *s == 1.0);
            let dtype = match (unit, bits, attrs.signed) {
                (true, 1, true) => DataType::Bipolar,
                (true, _, signed) => DataType::int(bits, signed),
                (false, _, _) => DataType::ScaledInt { bits },
            };
            Some(QuantSpec {
                dtype,
                scale: param_from(&sd, sv, None),
                zero_point: param_from(&zd, zv, None),
                narrow: attrs.narrow,
                rounding,
                origin,
            })
        }
        OpKind::BipolarQuant => {
            let origin = QuantOrigin::QonnxBipolarQuant;
            let Some((sd, sv)) = const_values(model, input(1)) else { return Some(f32_spec(origin)) };
            if sv.iter().all(|s| *s == 1.0) {
                Some(QuantSpec {
                    scale: param_from(&sd, sv, None),
                    ..QuantSpec::dtype_only(DataType::Bipolar, origin)
                })
            } else {
                Some(f32_spec(origin))
            }
        }
        OpKind::Trunc => Some(f32_spec(QuantOrigin::QonnxTrunc)),
        OpKind::FloatQuant => {
            let origin = QuantOrigin::QonnxFloatQuant;
            let scalar_int = |i| const_scalar(model, input(i)).filter(|(r, x)| *r == 0 && x.fract() == 0.0);
            let (Some((_, sv)), Some((_, e)), Some((_, m)), Some((_, bias)), Some(_)) = (
                const_values(model, input(1)),
                scalar_int(2),
                scalar_int(3),
                scalar_int(4),
                const_scalar(model, input(5)).filter(|(r, _)| *r == 0),
            ) else {
                return Some(f32_spec(origin));
            };
            if !sv.iter().all(|s| *s == 1.0) || !(1.0..=30.0).contains(&e) || !(0.0..=60.0).contains(&m) {
                return Some(f32_spec(origin));
            }
            Some(QuantSpec::dtype_only(
                DataType::Float { e: e as u32, m: m as u32, bias: bias as i32 },
                origin,
            ))
        }
        OpKind::MultiThreshold => {
            let origin = QuantOrigin::QonnxMultiThreshold;
            let frac = |name| op.attr_float(name, 0.0).map(|x| x.fract() != 0.0).unwrap_or(false);
            if frac("out_scale") || frac("out_bias") {
                return Some(f32_spec(origin));
            }
            let dt = op.attr_str("out_dtype", "").ok().and_then(|s| DataType::parse(&s))?;
            Some(QuantSpec::dtype_only(dt, origin))
        }
        OpKind::QuantizeLinear | OpKind::DequantizeLinear => {
            let quantize = op.kind() == OpKind::QuantizeLinear;
            let stored = if quantize {
                op.outputs()
                    .first()
                    .copied()
                    .flatten()
                    .and_then(|v| value_elem(model, v))
                    .or_else(|| input(2).and_then(|z| value_elem(model, z)).or(Some(ElemType::U8)))
            } else {
                input(0).and_then(|v| value_elem(model, v))
            };
            let stored = elem_datatype(stored?)?;
            let dtype = match (quantize, stored) {
                (true, d) => d,
                (false, d) if d.is_integer() => DataType::ScaledInt { bits: d.bitwidth() },
                (false, _) => DataType::F32,
            };
            let axis = op.attr_int("axis", 1).ok();
            let block = op.attr_int("block_size", 0).unwrap_or(0);
            let param = |i| {
                const_values(model, input(i)).and_then(|(d, v)| {
                    if block > 0 && d.len() > 1 {
                        Some(QuantParam::Blocked {
                            axis: axis.unwrap_or(1),
                            block_size: block,
                            dims: d.iter().map(|&x| x as i64).collect(),
                            values: v,
                        })
                    } else {
                        param_from(&d, v, axis)
                    }
                })
            };
            Some(QuantSpec {
                dtype,
                scale: param(1),
                zero_point: param(2),
                narrow: false,
                rounding: Rounding::HalfEven,
                origin: QuantOrigin::OnnxQdq,
            })
        }
        _ => None,
    }
}

/// Specs for the operands of the integer ops: `(value, spec)` for each quantized input and the
/// output, read from the op's scale and zero-point inputs.
pub fn integer_op_specs(model: &Model, op: &Op) -> Vec<(ValueId, QuantSpec)> {
    let input = |i: usize| op.inputs().get(i).copied().flatten();
    let mut out = Vec::new();
    let mut push = |data: Option<ValueId>, scale: Option<usize>, zp: Option<usize>, axis: Option<i64>| {
        let Some(v) = data else { return };
        let Some(dtype) = value_elem(model, v).and_then(elem_datatype) else { return };
        let param = |i: Option<usize>| {
            i.and_then(|i| const_values(model, input(i))).and_then(|(d, vals)| param_from(&d, vals, axis))
        };
        out.push((
            v,
            QuantSpec {
                dtype,
                scale: param(scale),
                zero_point: param(zp),
                narrow: false,
                rounding: Rounding::HalfEven,
                origin: QuantOrigin::OnnxQLinear,
            },
        ));
    };
    let output = op.outputs().first().copied().flatten();
    match op.kind() {
        // x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [B]
        OpKind::QLinearConv => {
            push(input(0), Some(1), Some(2), None);
            push(input(3), Some(4), Some(5), Some(0));
            push(output, Some(6), Some(7), Some(1));
        }
        // a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
        OpKind::QLinearMatMul => {
            push(input(0), Some(1), Some(2), None);
            push(input(3), Some(4), Some(5), Some(-1));
            push(output, Some(6), Some(7), Some(-1));
        }
        // x, w, x_zp, w_zp -> i32
        OpKind::ConvInteger => {
            push(input(0), None, Some(2), None);
            push(input(1), None, Some(3), Some(0));
            push(output, None, None, None);
        }
        OpKind::MatMulInteger => {
            push(input(0), None, Some(2), None);
            push(input(1), None, Some(3), Some(-1));
            push(output, None, None, None);
        }
        _ => {}
    }
    out
}

/// Turns the graph's `finn_datatype` annotations into specs (origin `annotation`) of the tensors
/// that have none yet, counting `annotations-read`; an annotation that is not a QONNX datatype is
/// a warning of `pass`. Returns whether any spec was set.
pub(crate) fn read_annotations(model: &mut Model, cx: &mut PassContext, pass: &'static str) -> bool {
    let mut found = Vec::new();
    for a in &model.graph.quantization_annotations {
        let Some(name) = &a.tensor_name else { continue };
        let Some(e) = a.entries.iter().find(|e| e.key == "finn_datatype") else { continue };
        let Some(v) = model.graph.find(name) else { continue };
        match DataType::parse(&e.value) {
            Some(dt) => found.push((v, dt)),
            None => cx.warn(PassWarning {
                pass,
                code: "qc::datatypes::bad_annotation".into(),
                message: format!("tensor `{name}` is annotated with `{}`, which is not a QONNX datatype", e.value),
                help: Some("QONNX datatypes are INT<n>, UINT<n>, BIPOLAR, TERNARY, BINARY, FIXED<w,i>, SCALEDINT<n>, FLOAT<e,m,bias>, FLOAT32, FLOAT16".into()),
            }),
        }
    }
    let mut changed = false;
    for (v, dt) in found {
        let slot = &mut model.graph.value_mut(v).quant;
        if slot.is_none() {
            *slot = Some(QuantSpec::dtype_only(dt, QuantOrigin::Annotation));
            cx.count("annotations-read", 1);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ranges_follow_qonnx() {
        assert_eq!(int_range(true, false, 8), (-128, 127));
        assert_eq!(int_range(true, true, 8), (-127, 127));
        assert_eq!(int_range(false, false, 8), (0, 255));
        assert_eq!(int_range(false, true, 8), (0, 254));
        assert_eq!(int_range(true, true, 4), (-7, 7));
        assert_eq!(int_range(false, true, 2), (0, 2));
    }
}
