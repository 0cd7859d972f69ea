//! Unit tests of the evaluator's trickiest semantics: broadcasting, QONNX `Quant` rounding and
//! narrow ranges, `QuantizeLinear` saturation and ties to even, `Conv` with groups, dilations and
//! padding, packed 4-bit storage, and bad input turning into errors.

use qc_ir::{AttrValue, ElemType, Op};

use super::*;

fn f32s(dims: &[usize], v: &[f32]) -> Array {
    Array::from_f32(dims.to_vec(), v.to_vec()).unwrap()
}

fn run(op: &Op, ins: &[&Array], opset: i64) -> Result<Vec<Array>, EvalError> {
    let v: Vec<Option<&Array>> = ins.iter().map(|a| Some(*a)).collect();
    eval_op(op, &v, opset)
}

fn vals(a: &Array) -> Vec<f64> {
    a.to_f64().unwrap()
}

#[test]
fn add_broadcasts_numpy_style() {
    let a = f32s(&[2, 1, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = f32s(&[2, 1], &[10., 20.]);
    let out = run(&Op::new("Add", None), &[&a, &b], 17).unwrap().remove(0);
    assert_eq!(out.dims, vec![2, 2, 3]);
    assert_eq!(vals(&out), vec![11., 12., 13., 21., 22., 23., 14., 15., 16., 24., 25., 26.]);
    let bad = f32s(&[4], &[0.; 4]);
    assert!(matches!(run(&Op::new("Add", None), &[&a, &bad], 17), Err(EvalError::Shape { .. })));
}

#[test]
fn integer_division_truncates_and_mod_follows_the_divisor() {
    let a = Array::from_i64(vec![3], vec![-7, 7, 5]).unwrap();
    let b = Array::from_i64(vec![3], vec![2, -2, 0]).unwrap();
    let d = run(&Op::new("Div", None), &[&a, &b], 17).unwrap().remove(0);
    assert_eq!(d.to_i64s().unwrap(), vec![-3, -3, 0]);
    let m = run(&Op::new("Mod", None), &[&a, &b], 17).unwrap().remove(0);
    assert_eq!(m.to_i64s().unwrap(), vec![1, -1, 0]);
}

fn quant(signed: i64, narrow: i64, mode: &str) -> Op {
    Op::new("Quant", Some("qonnx.custom_op.general".into()))
        .with_attr("signed", AttrValue::Int(signed))
        .with_attr("narrow", AttrValue::Int(narrow))
        .with_attr("rounding_mode", AttrValue::String(mode.as_bytes().to_vec().into()))
}

#[test]
fn qonnx_quant_rounding_modes_and_narrow_ranges() {
    let x = f32s(&[6], &[-2.5, -0.5, 0.5, 1.5, 2.5, 100.0]);
    let (s, z, b) = (Array::scalar_f32(1.0), Array::scalar_f32(0.0), Array::scalar_f32(4.0));
    let q = |op: Op| vals(&run(&op, &[&x, &s, &z, &b], 13).unwrap()[0]);
    assert_eq!(q(quant(1, 0, "ROUND")), vec![-2., -0., 0., 2., 2., 7.]);
    assert_eq!(q(quant(1, 0, "HALF_UP")), vec![-3., -1., 1., 2., 3., 7.]);
    assert_eq!(q(quant(1, 0, "HALF_DOWN")), vec![-2., -0., 0., 1., 2., 7.]);
    assert_eq!(q(quant(1, 0, "floor")), vec![-3., -1., 0., 1., 2., 7.]);
    assert_eq!(q(quant(1, 0, "UP")), vec![-3., -1., 1., 2., 3., 7.]);
    // Narrow signed: [-7, 7]; narrow unsigned drops the top value: [0, 14].
    let big = f32s(&[2], &[-100.0, 100.0]);
    let r = vals(&run(&quant(1, 1, "ROUND"), &[&big, &s, &z, &b], 13).unwrap()[0]);
    assert_eq!(r, vec![-7., 7.]);
    let r = vals(&run(&quant(0, 1, "ROUND"), &[&big, &s, &z, &b], 13).unwrap()[0]);
    assert_eq!(r, vec![0., 14.]);
    // One-bit signed acts as bipolar.
    let one = Array::scalar_f32(1.0);
    let r = vals(&run(&quant(1, 0, "ROUND"), &[&x, &s, &z, &one], 13).unwrap()[0]);
    assert_eq!(r, vec![-1., -1., 1., 1., 1., 1.]);
    let bad = run(&quant(1, 0, "ROUND_TO_ZERO"), &[&x, &s, &z, &b], 13);
    assert!(matches!(bad, Err(EvalError::Attribute { .. })));
}

#[test]
fn quantize_linear_rounds_half_to_even_and_saturates() {
    let x = f32s(&[6], &[0.5, 1.5, 2.5, -0.5, 1000.0, -1000.0]);
    let s = Array::scalar_f32(1.0);
    let zp = Array::new(ElemType::I8, vec![], Data::I8(vec![0])).unwrap();
    let out = run(&Op::new("QuantizeLinear", None), &[&x, &s, &zp], 13).unwrap().remove(0);
    assert_eq!(out.elem, ElemType::I8);
    assert_eq!(out.to_i64s().unwrap(), vec![0, 2, 2, 0, 127, -128]);
    let u4 = Array::new(ElemType::U4, vec![], Data::U8(vec![1])).unwrap();
    let out = run(&Op::new("QuantizeLinear", None), &[&x, &s, &u4], 21).unwrap().remove(0);
    assert_eq!(out.to_i64s().unwrap(), vec![1, 3, 3, 1, 15, 0]);
}

#[test]
fn conv_with_groups_dilations_and_padding() {
    // Two groups of one channel each, 3x3 input, 2x2 kernel dilated by 2, padding 1.
    let x = f32s(&[1, 2, 3, 3], &(0..18).map(|v| v as f32).collect::<Vec<_>>());
    let w = f32s(&[2, 1, 2, 2], &[1., 0., 0., 0., 0., 0., 0., 1.]);
    let op = Op::new("Conv", None)
        .with_attr("group", AttrValue::Int(2))
        .with_attr("dilations", AttrValue::Ints(vec![2, 2]))
        .with_attr("pads", AttrValue::Ints(vec![1, 1, 1, 1]));
    let out = run(&op, &[&x, &w], 17).unwrap().remove(0);
    assert_eq!(out.dims, vec![1, 2, 3, 3]);
    let v = vals(&out);
    // Channel 0 takes the top-left tap: input at (i-1, j-1).
    assert_eq!(&v[..9], &[0., 0., 0., 0., 0., 1., 0., 3., 4.]);
    // Channel 1 takes the bottom-right tap: input at (i+1, j+1) of channel 1.
    assert_eq!(&v[9..], &[13., 14., 0., 16., 17., 0., 0., 0., 0.]);
    let bad_w = f32s(&[2, 2, 2, 2], &[0.; 16]);
    assert!(run(&op, &[&x, &bad_w], 17).is_err());
}

#[test]
fn reshape_squeeze_and_unsqueeze_take_axes_from_inputs_at_opset_13() {
    let x = f32s(&[1, 3, 1], &[1., 2., 3.]);
    let axes = Array::from_i64(vec![1], vec![0]).unwrap();
    let out = run(&Op::new("Squeeze", None), &[&x, &axes], 13).unwrap().remove(0);
    assert_eq!(out.dims, vec![3, 1]);
    let op11 = Op::new("Squeeze", None).with_attr("axes", AttrValue::Ints(vec![2]));
    assert_eq!(run(&op11, &[&x], 11).unwrap()[0].dims, vec![1, 3]);
    let shape = Array::from_i64(vec![2], vec![-1, 0]).unwrap();
    assert_eq!(run(&Op::new("Reshape", None), &[&x, &shape], 14).unwrap()[0].dims, vec![1, 3]);
    let bad = Array::from_i64(vec![1], vec![7]).unwrap();
    assert!(run(&Op::new("Reshape", None), &[&x, &bad], 14).is_err());
}

#[test]
fn four_bit_values_pack_and_unpack() {
    let a = Array::new(ElemType::I4, vec![3], Data::I8(vec![-8, 7, -1])).unwrap();
    let t = a.to_tensor("t");
    assert_eq!(&t.raw_bytes(None).unwrap()[..], &[0x78, 0x0F]);
    let back = Array::from_tensor(&t, &qc_ir::Model::default()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let x = f32s(&[2, 2], &[1., 2., 3., 4.]);
    let idx = Array::from_i64(vec![1], vec![5]).unwrap();
    assert!(run(&Op::new("Gather", None), &[&x, &idx], 13).is_err());
    assert!(matches!(run(&Op::new("Add", None), &[&x], 13), Err(EvalError::Arity { .. })));
    let huge = Array::from_i64(vec![3], vec![i64::MAX, i64::MAX, 4]).unwrap();
    assert!(run(&Op::new("ConstantOfShape", None), &[&huge], 13).is_err());
    assert!(matches!(run(&Op::new("Frobnicate", None), &[&x], 13), Err(EvalError::UnsupportedOp { .. })));
}

#[test]
fn scatter_and_scan_ops_reject_bad_input_without_panicking() {
    let data = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let idx = Array::from_i64(vec![1, 1], vec![5]).unwrap();
    let upd = f32s(&[1, 3], &[7., 8., 9.]);
    let nd = run(&Op::new("ScatterND", None), &[&data, &idx, &upd], 18);
    assert!(matches!(nd, Err(EvalError::Shape { .. })), "{nd:?}");
    let ok_idx = Array::from_i64(vec![1, 1], vec![-1]).unwrap();
    let add = Op::new("ScatterND", None).with_attr("reduction", AttrValue::String("add".into()));
    let out = run(&add, &[&data, &ok_idx, &upd], 18).unwrap().remove(0);
    assert_eq!(vals(&out), vec![1., 2., 3., 11., 13., 15.]);
    let bad_axis = Array::from_i64(vec![], vec![2]).unwrap();
    assert!(run(&Op::new("CumSum", None), &[&data, &bad_axis], 14).is_err());
    let axis1 = Array::from_i64(vec![], vec![1]).unwrap();
    let ex = Op::new("CumSum", None)
        .with_attr("exclusive", AttrValue::Int(1))
        .with_attr("reverse", AttrValue::Int(1));
    let out = run(&ex, &[&data, &axis1], 14).unwrap().remove(0);
    assert_eq!(vals(&out), vec![5., 3., 0., 11., 6., 0.]);
    let signal = f32s(&[1, 4, 1], &[1., 0., -1., 0.]);
    let step = Array::from_i64(vec![], vec![0]).unwrap();
    assert!(run(&Op::new("STFT", None), &[&signal, &step], 17).is_err());
}

#[test]
fn dynamic_quantize_linear_widens_the_range_to_zero() {
    let x = f32s(&[4], &[1., 2., 3., 5.1]);
    let out = run(&Op::new("DynamicQuantizeLinear", None), &[&x], 11).unwrap();
    let scale = 5.1f32 / 255.0;
    assert_eq!(vals(&out[1]), vec![f64::from(scale)]);
    assert_eq!(out[2].elem, ElemType::U8);
    assert_eq!(vals(&out[2]), vec![0.]);
    assert_eq!(out[0].elem, ElemType::U8);
    assert_eq!(vals(&out[0]), vec![50., 100., 150., 255.]);
}
