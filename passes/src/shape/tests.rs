//! Unit tests of the shape rules: broadcasting with symbolic dims, conv and pool output sizes,
//! Reshape's 0/-1/allowzero, data propagation through an exporter's shape chains (with known
//! and with symbolic dims), and the control-flow joins.

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
    let conv = |auto_pad: &str, k: i64, s: i64, pads: i64, ceil: bool, input: u64| {
        let w = qc_ir::Window::new(auto_pad, &[k], Some(&[s]), None, Some(&[pads, pads]), ceil).unwrap();
        w.resolve_axis(0, input).map(|r| r.output)
    };
    assert_eq!(conv("SAME_UPPER", 3, 2, 0, false, 5), Ok(3));
    assert_eq!(conv("SAME_LOWER", 3, 2, 0, false, 5), Ok(3));
    assert_eq!(conv("VALID", 3, 2, 0, false, 5), Ok(2));
    assert_eq!(conv("NOTSET", 3, 1, 1, false, 5), Ok(5));
    assert_eq!(conv("NOTSET", 3, 2, 0, false, 6), Ok(2));
    assert_eq!(conv("NOTSET", 3, 2, 0, true, 6), Ok(3));
    // ceil_mode never starts a window in the right padding.
    assert_eq!(conv("NOTSET", 1, 2, 0, true, 2), Ok(1));
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

// ---- symbolic dims through shape computations ----

fn k(n: u64) -> Dim {
    Dim::Known(n)
}

fn ints(v: &[i64]) -> TypeFact {
    TypeFact::new(ElemType::I64, vec![k(v.len() as u64)]).with_value(Values::Int(v.to_vec()))
}

fn scalar(v: i64) -> TypeFact {
    TypeFact::new(ElemType::I64, vec![]).with_value(Values::Int(vec![v]))
}

fn f32s(dims: Vec<Dim>) -> TypeFact {
    TypeFact::new(ElemType::F32, dims)
}

/// The first output fact of `op` on `ins`, at opset 13.
fn out1(op: Op, ins: &[TypeFact]) -> TypeFact {
    let ins: Vec<Option<TypeFact>> = ins.iter().cloned().map(Some).collect();
    run(&op, ins.len(), &ins, 13).remove(0).expect("an output fact")
}

fn concat0() -> Op {
    Op::new("Concat", None).with_attr("axis", AttrValue::Int(0))
}

fn sv(v: &[SymInt]) -> Values {
    Values::Sym(v.to_vec())
}

fn n() -> SymInt {
    SymInt::Sym("N".into())
}

#[test]
fn symbolic_batch_survives_the_reshape_chain() {
    // x: f32[N,3,4]; s = Shape(x); b = Gather(s, 0); c = Concat(Unsqueeze(b, [0]), [-1]);
    // y = Reshape(x, c) is f32[N,12].
    let x = f32s(vec![sym("N"), k(3), k(4)]);
    let s = out1(Op::new("Shape", None), std::slice::from_ref(&x));
    assert_eq!(s.value, Some(sv(&[n(), SymInt::Int(3), SymInt::Int(4)])));
    let b = out1(Op::new("Gather", None), &[s, scalar(0)]);
    assert_eq!((b.shape.clone(), b.value.clone()), (Some(vec![]), Some(sv(&[n()]))));
    let u = out1(Op::new("Unsqueeze", None), &[b, ints(&[0])]);
    assert_eq!((u.shape.clone(), u.value.clone()), (Some(vec![k(1)]), Some(sv(&[n()]))));
    let c = out1(concat0(), &[u, ints(&[-1])]);
    assert_eq!(c.value, Some(sv(&[n(), SymInt::Int(-1)])));
    let y = out1(Op::new("Reshape", None), &[x, c]);
    assert_eq!(y.shape, Some(vec![sym("N"), k(12)]));
    assert_eq!(y.elem, Some(ElemType::F32));
}

#[test]
fn flatten_like_reshape_keeps_batch() {
    // Reshape(x, Concat(Gather(Shape(x), [0]), [-1])), the index 1-D this time.
    let x = f32s(vec![sym("N"), k(3), k(4), k(5)]);
    let s = out1(Op::new("Shape", None), std::slice::from_ref(&x));
    let b = out1(Op::new("Gather", None), &[s, ints(&[0])]);
    let c = out1(concat0(), &[b, ints(&[-1])]);
    let y = out1(Op::new("Reshape", None), &[x, c]);
    assert_eq!(y.shape, Some(vec![sym("N"), k(60)]));
}

#[test]
fn shape_slice_chains_feed_reshape_expand_constant_of_shape_and_tile() {
    let x = f32s(vec![sym("N"), k(3), k(4)]);
    let s = out1(Op::new("Shape", None), std::slice::from_ref(&x));
    let head = out1(Op::new("Slice", None), &[s.clone(), ints(&[0]), ints(&[1])]);
    assert_eq!(head.value, Some(sv(&[n()])));
    let tail = out1(Op::new("Slice", None), &[s, ints(&[1]), ints(&[i64::MAX])]);
    assert_eq!(tail.value, Some(Values::Int(vec![3, 4])));

    let target = out1(concat0(), &[head.clone(), ints(&[12])]);
    let r = out1(Op::new("Reshape", None), &[x.clone(), target]);
    assert_eq!(r.shape, Some(vec![sym("N"), k(12)]));

    let eshape = out1(concat0(), &[head.clone(), tail.clone()]);
    let e = out1(Op::new("Expand", None), &[f32s(vec![k(1), k(3), k(1)]), eshape.clone()]);
    assert_eq!(e.shape, Some(vec![sym("N"), k(3), k(4)]));

    let z = out1(Op::new("ConstantOfShape", None), &[eshape]);
    assert_eq!((z.elem, z.shape, z.value), (Some(ElemType::F32), Some(vec![sym("N"), k(3), k(4)]), None));

    let reps = out1(concat0(), &[head, ints(&[2])]);
    let t = out1(Op::new("Tile", None), &[f32s(vec![k(1), k(4)]), reps]);
    assert_eq!(t.shape, Some(vec![sym("N"), k(8)]));
}

#[test]
fn squeeze_cast_and_identity_keep_symbolic_values() {
    let x = f32s(vec![sym("N"), k(3)]);
    let s = out1(Op::new("Shape", None), &[x]);
    let head = out1(Op::new("Slice", None), &[s, ints(&[0]), ints(&[1])]);
    let sq = out1(Op::new("Squeeze", None), &[head.clone(), ints(&[0])]);
    assert_eq!((sq.shape.clone(), sq.value.clone()), (Some(vec![]), Some(sv(&[n()]))));
    let cast = |to: i64, f: &TypeFact| {
        out1(Op::new("Cast", None).with_attr("to", AttrValue::Int(to)), std::slice::from_ref(f))
    };
    assert_eq!(cast(7, &sq).value, Some(sv(&[n()])), "to int64");
    assert_eq!(cast(6, &sq).value, Some(sv(&[n()])), "to int32");
    assert_eq!(cast(3, &sq).value, Some(sv(&[SymInt::Unknown])), "to int8 the size may not fit");
    assert_eq!(cast(1, &sq).value, None, "floats hold no names");
    let id = out1(Op::new("Identity", None), std::slice::from_ref(&head));
    assert_eq!(id.value, head.value);
}

#[test]
fn arithmetic_on_symbolic_elements() {
    let x = f32s(vec![sym("N")]);
    let nn = out1(Op::new("Shape", None), &[x]);
    let op = |t: &str, a: &TypeFact, b: &TypeFact| out1(Op::new(t, None), &[a.clone(), b.clone()]).value;
    let u = SymInt::Unknown;
    assert_eq!(op("Mul", &nn, &ints(&[1])), Some(sv(&[n()])));
    assert_eq!(op("Mul", &ints(&[1]), &nn), Some(sv(&[n()])));
    assert_eq!(op("Div", &nn, &ints(&[1])), Some(sv(&[n()])));
    assert_eq!(op("Add", &nn, &ints(&[0])), Some(sv(&[n()])));
    assert_eq!(op("Sub", &nn, &ints(&[0])), Some(sv(&[n()])));
    assert_eq!(op("Mul", &nn, &ints(&[2])), Some(sv(std::slice::from_ref(&u))));
    assert_eq!(op("Add", &nn, &ints(&[1])), Some(sv(std::slice::from_ref(&u))));
    assert_eq!(op("Div", &nn, &ints(&[2])), Some(sv(std::slice::from_ref(&u))));
    assert_eq!(op("Sub", &ints(&[0]), &nn), Some(sv(&[u])));
    assert_eq!(op("Mul", &nn, &ints(&[0])), Some(Values::Int(vec![0])));
    assert_eq!(op("Sub", &nn, &nn), Some(Values::Int(vec![0])));
    // A size is never negative.
    assert_eq!(op("Equal", &nn, &ints(&[-1])), Some(Values::Int(vec![0])));
    assert_eq!(op("Equal", &nn, &ints(&[3])), Some(sv(&[SymInt::Unknown])));
    // Max and Min fold too (what CenterCropPad's expansion computes its pads with).
    assert_eq!(op("Max", &ints(&[20, 10, 3]), &ints(&[10, 7, 3])), Some(Values::Int(vec![20, 10, 3])));
    assert_eq!(op("Max", &nn, &ints(&[0])), Some(sv(&[n()])));
    assert_eq!(op("Max", &nn, &ints(&[3])), Some(sv(&[SymInt::Unknown])));
    assert_eq!(op("Min", &nn, &ints(&[-1])), Some(Values::Int(vec![-1])));
    assert_eq!(op("Sum", &nn, &ints(&[0])), Some(sv(&[n()])));
    // Elementwise over a whole shape: [N, 3, 4] * [1, 2, 1].
    let s = out1(Op::new("Shape", None), &[f32s(vec![sym("N"), k(3), k(4)])]);
    assert_eq!(op("Mul", &s, &ints(&[1, 2, 1])), Some(sv(&[n(), SymInt::Int(6), SymInt::Int(4)])));
}

#[test]
fn where_selects_symbolic_elements() {
    // The pattern torch writes for `x.expand(n, -1, -1)`: -1 entries replaced by 1.
    let x = f32s(vec![sym("N"), k(3)]);
    let head = out1(Op::new("Slice", None), &[out1(Op::new("Shape", None), &[x]), ints(&[0]), ints(&[1])]);
    let shape = out1(concat0(), &[head, ints(&[-1, -1])]);
    let minus = out1(Op::new("Equal", None), &[shape.clone(), ints(&[-1])]);
    assert_eq!(minus.value, Some(Values::Int(vec![0, 1, 1])));
    let fixed = out1(Op::new("Where", None), &[minus, ints(&[1]), shape]);
    assert_eq!(fixed.value, Some(sv(&[n(), SymInt::Int(1), SymInt::Int(1)])));
    let e = out1(Op::new("Expand", None), &[f32s(vec![k(1), k(3), k(4)]), fixed]);
    assert_eq!(e.shape, Some(vec![sym("N"), k(3), k(4)]));
}

#[test]
fn reshape_minus_one_with_symbolic_dims() {
    let i = SymInt::Int;
    let (u, m) = (SymInt::Unknown, SymInt::Sym("M".into()));
    let nck = [sym("N"), k(3), k(4)];
    let r = |input: &[Dim], t: &[SymInt]| reshape_dims_sym(input, t, false);
    assert_eq!(r(&nck, &[n(), i(-1)]).unwrap(), vec![sym("N"), k(12)]);
    assert_eq!(r(&nck, &[i(-1), i(12)]).unwrap(), vec![sym("N"), k(12)]);
    assert_eq!(r(&nck, &[i(3), i(-1), i(4)]).unwrap(), vec![k(3), sym("N"), k(4)]);
    assert_eq!(r(&nck, &[i(-1), i(6)]).unwrap(), vec![Dim::Unknown, k(6)], "2N is no dim");
    assert_eq!(r(&nck, &[n(), m.clone(), i(-1)]).unwrap(), vec![sym("N"), sym("M"), Dim::Unknown]);
    assert_eq!(r(&nck, &[n(), n(), i(-1)]).unwrap(), vec![sym("N"), sym("N"), Dim::Unknown]);
    let nm4 = [sym("N"), sym("M"), k(4)];
    assert_eq!(r(&nm4, &[i(0), i(-1)]).unwrap(), vec![sym("N"), Dim::Unknown]);
    assert_eq!(r(&nm4, &[i(0), i(0), i(-1)]).unwrap(), vec![sym("N"), sym("M"), k(4)]);
    assert_eq!(r(&nm4, &[m.clone(), i(-1)]).unwrap(), vec![sym("M"), Dim::Unknown]);
    assert_eq!(r(&nm4, &[m, n(), i(-1)]).unwrap(), vec![sym("M"), sym("N"), k(4)]);
    // An unknown dim is copied by a 0 but never cancels an unknown target entry.
    let q34 = [Dim::Unknown, k(3), k(4)];
    assert_eq!(r(&q34, &[i(0), i(-1)]).unwrap(), vec![Dim::Unknown, k(12)]);
    assert_eq!(r(&q34, &[u.clone(), i(-1)]).unwrap(), vec![Dim::Unknown, Dim::Unknown]);
    assert_eq!(r(&nck, &[u, i(-1)]).unwrap(), vec![Dim::Unknown, Dim::Unknown]);
    // Zero elements: -1 is 0 whatever N is.
    assert_eq!(r(&[sym("N"), k(0), k(4)], &[i(-1), i(4)]).unwrap(), vec![k(0), k(4)]);
    // Known sizes are still checked.
    assert!(r(&[k(2), k(3)], &[i(4), i(-1)]).is_err());
    assert!(r(&nck, &[i(-1), i(-1)]).is_err());
    assert!(r(&nck, &[i(-2), i(3)]).is_err());
}

#[test]
fn reshape_keeps_the_rank_when_the_target_is_unknown() {
    let x = f32s(vec![sym("N"), k(3), k(4)]);
    let target = TypeFact::new(ElemType::I64, vec![k(2)]);
    let y = out1(Op::new("Reshape", None), &[x.clone(), target]);
    assert_eq!(y.shape, Some(vec![Dim::Unknown, Dim::Unknown]));
    // An unknown element stays unknown, the known ones are kept.
    let t = TypeFact::new(ElemType::I64, vec![k(3)]).with_value(sv(&[
        SymInt::Unknown,
        SymInt::Int(2),
        SymInt::Int(-1),
    ]));
    let y = out1(Op::new("Reshape", None), &[x, t]);
    assert_eq!(y.shape, Some(vec![Dim::Unknown, k(2), Dim::Unknown]));
}

#[test]
fn symbolic_values_are_never_taken_for_numbers() {
    let v = sv(&[n(), SymInt::Int(3)]);
    assert_eq!(v.as_i64(), None);
    assert_eq!(v.as_f64(), None);
    assert!(!v.is_concrete());
    assert_eq!(Values::from_sym(vec![SymInt::Int(2), SymInt::Int(3)]), Values::Int(vec![2, 3]));
    let x = f32s(vec![sym("N"), k(3)]);
    let s = out1(Op::new("Shape", None), std::slice::from_ref(&x));
    // Pads, axes and split sizes must be numbers: a symbolic operand leaves the output unknown.
    let pads = out1(concat0(), &[s.clone(), s.clone()]);
    let ins = [Some(x.clone()), Some(pads)];
    assert_eq!(run(&Op::new("Pad", None), 2, &ins, 13), vec![None]);
    let ins = [Some(x.clone()), Some(s.clone())];
    assert_eq!(run(&Op::new("Split", None), 2, &ins, 13), vec![None]);
    // Range(0, N, 1) has N elements, Range(1, N, 1) an unknown number.
    let first = out1(Op::new("Gather", None), &[s, scalar(0)]);
    let range = |start: i64| out1(Op::new("Range", None), &[scalar(start), first.clone(), scalar(1)]);
    assert_eq!(range(0).shape, Some(vec![sym("N")]));
    assert_eq!(range(0).value, None);
    assert_eq!(range(1).shape, Some(vec![Dim::Unknown]));
    // Size of f32[N,1] is N; of f32[N,3] unknown.
    assert_eq!(out1(Op::new("Size", None), &[f32s(vec![sym("N"), k(1)])]).value, Some(sv(&[n()])));
    assert_eq!(out1(Op::new("Size", None), &[x]).value, None);
}

#[test]
fn slice_to_a_symbolic_end() {
    // x[0:N] of a dim N is N; x[0:N] of a dim 8 is unknown (min(N, 8)).
    let s = out1(Op::new("Shape", None), &[f32s(vec![sym("N")])]);
    let x = f32s(vec![sym("N"), k(8)]);
    let y = out1(Op::new("Slice", None), &[x, ints(&[0]), s.clone(), ints(&[0])]);
    assert_eq!(y.shape, Some(vec![sym("N"), k(8)]));
    let x = f32s(vec![k(8), k(8)]);
    let y = out1(Op::new("Slice", None), &[x, ints(&[0]), s, ints(&[1])]);
    assert_eq!(y.shape, Some(vec![k(8), Dim::Unknown]));
}

// ---- control flow ----

#[test]
fn joins_keep_what_both_sides_agree_on() {
    let a = f32s(vec![sym("N"), k(12)]);
    let b = f32s(vec![sym("N"), k(24)]);
    assert_eq!(control::join(&a, &b), f32s(vec![sym("N"), Dim::Unknown]));
    assert_eq!(control::join(&a, &f32s(vec![sym("M"), k(12)])), f32s(vec![Dim::Unknown, k(12)]));
    assert_eq!(control::join(&a, &f32s(vec![k(1)])).shape, None);
    let c = TypeFact::new(ElemType::I64, vec![sym("N"), k(12)]);
    assert_eq!(control::join(&a, &c).elem, None);
    assert_eq!(control::join(&scalar(3), &scalar(3)).value, Some(Values::Int(vec![3])));
    assert_eq!(control::join(&scalar(3), &scalar(4)).value, None);
}

fn op_with(op_type: &str, n_in: usize, n_out: usize) -> (qc_ir::Graph, qc_ir::OpId) {
    let mut g = qc_ir::Graph::new();
    let ins = (0..n_in).map(|i| Some(g.value_named(&format!("i{i}")))).collect();
    let outs = (0..n_out).map(|i| Some(g.value_named(&format!("o{i}")))).collect();
    let id = g.add_op(Op::new(op_type, None), ins, outs);
    (g, id)
}

#[test]
fn if_takes_the_known_branch_or_joins_both() {
    let (g, id) = op_with("If", 1, 1);
    let then_out = [Some(f32s(vec![sym("N"), k(12)]))];
    let else_out = [Some(f32s(vec![sym("N"), k(24)]))];
    let outs =
        |cond: TypeFact| control::outputs(g.op(id), &[Some(cond)], &[&[], &[]], &[&then_out, &else_out], 13);
    let unknown = TypeFact::new(ElemType::Bool, vec![]);
    assert_eq!(outs(unknown).unwrap(), vec![Some(f32s(vec![sym("N"), Dim::Unknown]))]);
    let known = TypeFact::new(ElemType::Bool, vec![]).with_value(Values::Int(vec![0]));
    assert_eq!(outs(known).unwrap(), else_out.to_vec());
    let e = control::outputs(g.op(id), &[None], &[&[], &[]], &[&then_out, &[]], 13).unwrap_err();
    assert_eq!(e.code(), "qc::shape::subgraph");
    let e = control::body_inputs(g.op(id), "then_branch", &[None], 1, 1, 13).unwrap_err();
    assert_eq!(e.code(), "qc::shape::subgraph");
}

#[test]
fn loop_bodies_and_outputs() {
    // Loop(M = N, no cond, v0: f32[N,4]); body (i, cond, v) -> (cond, v', y).
    let (g, id) = op_with("Loop", 3, 2);
    let op = g.op(id);
    let m =
        out1(Op::new("Gather", None), &[out1(Op::new("Shape", None), &[f32s(vec![sym("N")])]), scalar(0)]);
    let v0 = f32s(vec![sym("N"), k(4)]);
    let mut g2 = g.clone();
    g2.set_input(id, 1, None);
    let op_no_cond = g2.op(id);
    let ins = [Some(m), None, Some(v0.clone())];
    let b = control::body_inputs(op_no_cond, "body", &ins, 3, 3, 13).unwrap();
    assert_eq!(b.facts[0], Some(TypeFact::new(ElemType::I64, vec![])));
    assert_eq!(b.facts[1], Some(TypeFact::new(ElemType::Bool, vec![])));
    assert_eq!(b.facts[2], Some(v0.clone()));
    let c = b.carried.unwrap();
    // The condition and v are carried.
    assert_eq!((c.inputs, c.outputs, c.count), (1, 0, 2));
    // The carried value grows on the first dim: relaxing makes it unknown there.
    let mut facts = b.facts.clone();
    let grown = [Some(TypeFact::new(ElemType::Bool, vec![])), Some(f32s(vec![Dim::Unknown, k(4)]))];
    assert!(control::relax_carried(&mut facts, &grown, &c));
    assert_eq!(facts[2], Some(f32s(vec![Dim::Unknown, k(4)])));
    assert!(!control::relax_carried(&mut facts, &grown, &c));
    let body_out = [Some(TypeFact::new(ElemType::Bool, vec![])), Some(v0.clone()), Some(f32s(vec![k(2)]))];
    let outs = control::outputs(op_no_cond, &ins, &[&b.facts], &[&body_out], 13).unwrap();
    assert_eq!(outs, vec![Some(v0.clone()), Some(f32s(vec![sym("N"), k(2)]))], "N iterations of f32[2]");
    // With a condition input the loop may stop early.
    let outs = control::outputs(op, &ins, &[&b.facts], &[&body_out], 13).unwrap();
    assert_eq!(outs[1], Some(f32s(vec![Dim::Unknown, k(2)])));
    // Unless it is true and the body keeps it true (its value survived the carried join).
    let yes = Some(TypeFact::new(ElemType::Bool, vec![]).with_value(Values::Int(vec![1])));
    let ins_true = [ins[0].clone(), yes.clone(), Some(v0.clone())];
    let kept = control::body_inputs(op, "body", &ins_true, 3, 3, 13).unwrap().facts;
    assert_eq!(kept[1], yes);
    let outs = control::outputs(op, &ins_true, &[&kept], &[&body_out], 13).unwrap();
    assert_eq!(outs[1], Some(f32s(vec![sym("N"), k(2)])));
    let outs = control::outputs(op, &ins_true, &[&b.facts], &[&body_out], 13).unwrap();
    assert_eq!(outs[1], Some(f32s(vec![Dim::Unknown, k(2)])), "the body may turn it false");
    // A body that takes too few inputs.
    let e = control::body_inputs(op, "body", &ins, 2, 3, 13).unwrap_err();
    assert_eq!(e.code(), "qc::shape::subgraph");
}

#[test]
fn scan_slices_and_stacks() {
    let (mut g, id) = op_with("Scan", 2, 2);
    g.op_mut(id).set_attr("num_scan_inputs", AttrValue::Int(1));
    g.op_mut(id).set_attr("scan_output_axes", AttrValue::Ints(vec![-1]));
    let op = g.op(id);
    let ins = [Some(f32s(vec![k(4)])), Some(f32s(vec![sym("T"), k(4)]))];
    let b = control::body_inputs(op, "body", &ins, 2, 2, 13).unwrap();
    assert_eq!(b.facts, vec![Some(f32s(vec![k(4)])), Some(f32s(vec![k(4)]))]);
    let body_out = [Some(f32s(vec![k(4)])), Some(f32s(vec![k(2)]))];
    let outs = control::outputs(op, &ins, &[&b.facts], &[&body_out], 13).unwrap();
    assert_eq!(outs, vec![Some(f32s(vec![k(4)])), Some(f32s(vec![k(2), sym("T")]))]);
    // num_scan_inputs larger than the inputs is an attribute error, not a panic.
    g.op_mut(id).set_attr("num_scan_inputs", AttrValue::Int(3));
    let e = control::body_inputs(g.op(id), "body", &ins, 2, 2, 13).unwrap_err();
    assert_eq!(e.code(), "qc::shape::attribute");
}
