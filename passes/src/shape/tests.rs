//! Unit tests of the shape rules: broadcasting with symbolic dims, conv and pool output sizes,
//! Reshape's 0/-1/allowzero, and data propagation through an exporter's shape chain.

use qc_ir::{AttrValue, Dim, ElemType, Op};

use super::*;

fn sym(s: &str) -> Dim {
    Dim::Sym(s.into())
}

#[test]
fn broadcasting_with_symbolic_dims() {
    let k = Dim::Known;
    assert_eq!(broadcast(&[sym("N"), k(3), k(1)], &[k(1), k(4)]).unwrap(), vec![sym("N"), k(3), k(4)]);
    assert_eq!(broadcast(&[sym("N")], &[sym("N")]).unwrap(), vec![sym("N")]);
    assert_eq!(broadcast(&[sym("N")], &[sym("M")]).unwrap(), vec![Dim::Unknown]);
    assert_eq!(broadcast(&[sym("N")], &[k(1)]).unwrap(), vec![sym("N")]);
    assert!(broadcast(&[k(3)], &[k(4)]).is_err());
}

#[test]
fn conv_and_pool_output_sizes() {
    let w = |k, s, pb, pe| Window { kernel: k, stride: s, dilation: 1, pad_begin: pb, pad_end: pe };
    assert_eq!(output_size(5, &w(3, 2, 0, 0), "SAME_UPPER", false), Ok(3));
    assert_eq!(output_size(5, &w(3, 2, 0, 0), "SAME_LOWER", false), Ok(3));
    assert_eq!(output_size(5, &w(3, 2, 0, 0), "VALID", false), Ok(2));
    assert_eq!(output_size(5, &w(3, 1, 1, 1), "NOTSET", false), Ok(5));
    assert_eq!(output_size(6, &w(3, 2, 0, 0), "NOTSET", false), Ok(2));
    assert_eq!(output_size(6, &w(3, 2, 0, 0), "NOTSET", true), Ok(3));
    // ceil_mode never starts a window in the right padding.
    assert_eq!(output_size(2, &w(1, 2, 0, 0), "NOTSET", true), Ok(1));
}

#[test]
fn reshape_zero_minus_one_and_allowzero() {
    let k = Dim::Known;
    assert_eq!(reshape_dims(&[k(2), k(3), k(4)], &[0, -1], false).unwrap(), vec![k(2), k(12)]);
    assert_eq!(reshape_dims(&[sym("N"), k(3), k(4)], &[0, -1], false).unwrap(), vec![sym("N"), k(12)]);
    assert_eq!(reshape_dims(&[k(0), k(3)], &[3, 0], true).unwrap(), vec![k(3), k(0)]);
    assert!(reshape_dims(&[k(2), k(3)], &[4, -1], false).is_err());
    assert!(reshape_dims(&[k(2), k(3)], &[-1, -1], false).is_err());
}

fn run(op: &Op, n_in: usize, ins: &[Option<TypeFact>], opset: i64) -> Vec<Option<TypeFact>> {
    let mut g = qc_ir::Graph::new();
    let ins_v: Vec<_> = (0..n_in).map(|i| Some(g.value_named(&format!("i{i}")))).collect();
    let out = Some(g.value_named("o"));
    let id = g.add_op(op.clone(), ins_v, vec![out]);
    infer_op(g.op(id), ins, opset).unwrap()
}

#[test]
fn data_propagates_through_a_shape_chain() {
    let x = TypeFact::new(ElemType::F32, vec![Dim::Known(2), Dim::Known(3), Dim::Known(4)]);
    let shape = run(&Op::new("Shape", None), 1, &[Some(x.clone())], 13).remove(0).unwrap();
    assert_eq!(shape.value, Some(Values::Int(vec![2, 3, 4])));
    let idx = TypeFact::new(ElemType::I64, vec![]).with_value(Values::Int(vec![0]));
    let gathered = run(&Op::new("Gather", None), 2, &[Some(shape), Some(idx)], 13).remove(0).unwrap();
    assert_eq!(gathered.shape, Some(vec![]));
    let axes = TypeFact::new(ElemType::I64, vec![Dim::Known(1)]).with_value(Values::Int(vec![0]));
    let unsq = run(&Op::new("Unsqueeze", None), 2, &[Some(gathered), Some(axes)], 13).remove(0).unwrap();
    assert_eq!(unsq.value, Some(Values::Int(vec![2])));
    let minus = TypeFact::new(ElemType::I64, vec![Dim::Known(1)]).with_value(Values::Int(vec![-1]));
    let concat = Op::new("Concat", None).with_attr("axis", AttrValue::Int(0));
    let target = run(&concat, 2, &[Some(unsq), Some(minus)], 13).remove(0).unwrap();
    assert_eq!(target.value, Some(Values::Int(vec![2, -1])));
    let out = run(&Op::new("Reshape", None), 2, &[Some(x), Some(target)], 13).remove(0).unwrap();
    assert_eq!(out.shape, Some(vec![Dim::Known(2), Dim::Known(12)]));
}

#[test]
fn bad_axes_are_errors_not_panics() {
    let x = TypeFact::new(ElemType::F32, vec![Dim::Known(2)]);
    let op = Op::new("Softmax", None);
    let mut g = qc_ir::Graph::new();
    let i = g.value_named("i");
    let o = g.value_named("o");
    let gather = Op::new("Gather", None).with_attr("axis", AttrValue::Int(5));
    let id = g.add_op(gather, vec![Some(i), Some(i)], vec![Some(o)]);
    let e = infer_op(g.op(id), &[Some(x.clone()), Some(x.clone())], 13).unwrap_err();
    assert_eq!(e.code(), "qc::shape::axis");
    assert!(is_supported(&op));
}
