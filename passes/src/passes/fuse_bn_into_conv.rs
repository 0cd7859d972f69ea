//! `fuse-bn-into-conv`: folds an inference `BatchNormalization` into the Conv, ConvTranspose,
//! Gemm or MatMul (optionally followed by an Add of a constant bias) that writes its input.
//!
//! What it does: a `BatchNormalization` computes `y = a[c] * x + b[c]` per channel (axis 1) with
//! `a = scale / sqrt(var + epsilon)` and `b = B - mean * a`. When `x` is written by
//! - a `Conv` with a constant weight `W[M, C/g, k...]`: `W[m] *= a[m]`, bias `bias * a + b`
//!   (the bias input is created when absent);
//! - a `ConvTranspose` with a constant weight `W[C_in, M/g, k...]`: output channel
//!   `(ci / (C_in/g)) * (M/g) + j` scales `W[ci, j]`, bias as for Conv;
//! - a `Gemm` with a constant `B` (column `n` of `B`, or row `n` when `transB = 1`) and a constant
//!   or absent `C` broadcastable to `[N]` or `[M, N]`: `C' = beta * C * a + b`, `beta = 1`;
//! - a `MatMul` of a rank-2 input and a constant 2-D weight `[K, N]`: the weight's column `n`
//!   is scaled, and the bias goes into the `Add` of a constant that follows the MatMul, or into
//!   a new `Add` that takes the BatchNormalization's place;
//! - another inference `BatchNormalization` with constant parameters (`y = a * (a1 * x + b1) + b`):
//!   that one becomes `scale = a1 * a`, `B = b1 * a + b`, `mean = 0`, `var = 1`, `epsilon = 0`
//!   (a chain left where the first reads a Conv output that other ops read too);
//!
//! the BatchNormalization disappears and the fused op writes its output. Values are computed in
//! `f64` and stored in the weight's element type. New weights and biases are new initializers;
//! the old ones are dropped when nothing else reads them.
//!
//! Preconditions: the main graph only (not If/Loop/Scan bodies). The BatchNormalization has all
//! five inputs, its `scale`, `B`, `mean` and `var` are constants with one value per channel,
//! `training_mode` is 0, `spatial` (opset < 9) is 1, and it has one output. Every intermediate
//! value (the conv output, the MatMul output before its Add) has no other reader, is not a graph
//! output and is not read by a subgraph. MatMul needs its output's rank known to be 2 (run
//! `infer-shapes` first).
//!
//! Postconditions: the model computes the same outputs, up to float rounding of the folded
//! weights.
//!
//! Statistics: `conv`, `conv-transpose`, `gemm`, `matmul`, `batch-normalization`
//! (BatchNormalizations folded into each op kind), `kept-not-constant` (a parameter, weight or bias is not a constant),
//! `kept-shared` (an intermediate value has another reader), `kept-unsupported` (shapes,
//! attributes or element types the fold does not handle).

use qc_ir::dims;
use qc_ir::{AttrValue, ElemType, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, add_float, float_const, input, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-bn-into-conv",
    summary: "fold inference BatchNormalization into the Conv/ConvTranspose/Gemm/MatMul before it",
    options: &[],
    build: |_| Ok(Box::new(FuseBnIntoConv)),
};

/// The `fuse-bn-into-conv` pass.
pub struct FuseBnIntoConv;

impl Pass for FuseBnIntoConv {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let mut changed = false;
        // Each sweep folds every BatchNormalization it can; a chain (Conv, BN, BN) takes two.
        // Reasons for keeping are counted from the last sweep only, which sees the final graph.
        for _ in 0..=model.graph.op_count() {
            let (plans, kept) = find(model);
            if plans.is_empty() {
                for (k, n) in kept {
                    cx.count(k, n);
                }
                break;
            }
            let mut rw = Rewrite::default();
            for p in plans {
                if rw.touches(p.bn) || rw.touches(p.target) || p.add.is_some_and(|a| rw.touches(a)) {
                    continue;
                }
                if apply(model, &mut rw, p, cx).is_some() {
                    changed = true;
                }
            }
            if rw.is_empty() {
                break;
            }
            rw.apply(&mut model.graph);
        }
        Ok(Changed::from_bool(changed))
    }
}

/// A new constant: element type, dims, values.
type NewConst = (ElemType, Vec<usize>, Vec<f64>);

/// A per-channel affine map `a * x + b`: the element type, `a` and `b`.
type Affine = (ElemType, Vec<f64>, Vec<f64>);

/// One fold, found on the unchanged graph.
struct Plan {
    bn: OpId,
    /// The op whose weight changes (Conv, ConvTranspose, Gemm, MatMul).
    target: OpId,
    /// The Add after a MatMul, when there is one.
    add: Option<OpId>,
    kind: &'static str,
    weight: NewConst,
    bias: NewConst,
    /// Slot of the weight and of the bias in the op that takes each.
    w_slot: usize,
    b_slot: usize,
    /// The BatchNormalization's output.
    y: ValueId,
    /// Values that may become unused.
    old: Vec<ValueId>,
    /// Gemm: set `beta = 1`.
    unit_beta: bool,
}

type Kept = Vec<(&'static str, u64)>;

fn find(model: &Model) -> (Vec<Plan>, Kept) {
    let g = &model.graph;
    let readers = Readers::new(g);
    let mut plans = Vec::new();
    let mut kept: Kept = Vec::new();
    for (id, op) in g.ops() {
        if op.kind() != OpKind::BatchNormalization || !is_onnx(op) {
            continue;
        }
        match plan(model, &readers, id, op) {
            Ok(p) => plans.push(p),
            Err(Some(reason)) => kept.push((reason, 1)),
            Err(None) => {}
        }
    }
    (plans, kept)
}

/// `Err(None)`: not a pattern this pass looks at; `Err(Some(reason))`: a pattern it keeps.
fn plan(model: &Model, readers: &Readers, bn_id: OpId, bn: &Op) -> Result<Plan, Option<&'static str>> {
    let g = &model.graph;
    let x = input(bn, 0).ok_or(None)?;
    let producer = g.value(x).producer().ok_or(None)?;
    let prod = g.op(producer);
    let kind = match prod.kind() {
        OpKind::Conv => "conv",
        OpKind::ConvTranspose => "conv-transpose",
        OpKind::Gemm => "gemm",
        OpKind::MatMul => "matmul",
        OpKind::Add => "add",
        OpKind::BatchNormalization => "batch-normalization",
        _ => return Err(None),
    };
    if !is_onnx(prod) || (kind == "add" && !prod.inputs().iter().flatten().any(|&v| is_matmul(g, v))) {
        return Err(None);
    }
    let unsupported = Some("kept-unsupported");
    let not_constant = Some("kept-not-constant");
    let y = sole_output(bn).ok_or(unsupported)?;
    let (_, a, b) = affine(model, bn)?;
    let c = a.len();
    let shared = Some("kept-shared");
    if readers.sole_reader(g, x).is_none() || sole_output(prod) != Some(x) {
        return Err(shared);
    }
    let mut old: Vec<ValueId> = bn.inputs()[1..].iter().flatten().copied().collect();
    old.push(x);
    let mut p = Plan {
        bn: bn_id,
        target: producer,
        add: None,
        kind,
        weight: (ElemType::F32, vec![], vec![]),
        bias: (ElemType::F32, vec![], vec![]),
        w_slot: 1,
        b_slot: 2,
        y,
        old,
        unit_beta: false,
    };
    match prod.kind() {
        OpKind::Conv | OpKind::ConvTranspose => {
            let w = input(prod, 1).ok_or(unsupported)?;
            let (elem, dims, mut wv) = float_const(model, Some(w)).ok_or(not_constant)?;
            if dims.len() < 3 {
                return Err(unsupported);
            }
            let group = usize::try_from(prod.attr_int("group", 1).map_err(|_| unsupported)?)
                .map_err(|_| unsupported)?;
            let inner: usize = dims[2..].iter().product();
            if prod.kind() == OpKind::Conv {
                if dims[0] != c {
                    return Err(unsupported);
                }
                let per = dims[1] * inner;
                for (i, v) in wv.iter_mut().enumerate() {
                    *v *= a[i / per.max(1)];
                }
            } else {
                let (cin, mg) = (dims[0], dims[1]);
                if group == 0 || cin % group != 0 || mg * group != c {
                    return Err(unsupported);
                }
                let cin_g = cin / group;
                for (i, v) in wv.iter_mut().enumerate() {
                    let ci = i / (mg * inner).max(1);
                    let j = (i / inner.max(1)) % mg;
                    *v *= a[(ci / cin_g) * mg + j];
                }
            }
            let bias = match input(prod, 2) {
                None => vec![0.0; c],
                Some(bv) => {
                    let (_, bd, vals) = float_const(model, Some(bv)).ok_or(not_constant)?;
                    if bd != [c] {
                        return Err(unsupported);
                    }
                    p.old.push(bv);
                    vals
                }
            };
            p.old.push(w);
            p.weight = (elem, dims, wv);
            p.bias = (elem, vec![c], (0..c).map(|i| bias[i] * a[i] + b[i]).collect());
        }
        OpKind::Gemm => {
            let attrs = prod.gemm().map_err(|_| unsupported)?;
            let w = input(prod, 1).ok_or(unsupported)?;
            let (elem, dims, mut wv) = float_const(model, Some(w)).ok_or(not_constant)?;
            if dims.len() != 2 {
                return Err(unsupported);
            }
            let n = if attrs.trans_b { dims[0] } else { dims[1] };
            if n != c {
                return Err(unsupported);
            }
            for (i, v) in wv.iter_mut().enumerate() {
                *v *= a[if attrs.trans_b { i / dims[1].max(1) } else { i % n.max(1) }];
            }
            let m = dims::known(g, x).ok().filter(|d| d.len() == 2).and_then(|d| usize::try_from(d[0]).ok());
            let (bdims, bias) = match input(prod, 2) {
                None => (vec![c], b.clone()),
                Some(cv) => {
                    let (_, cd, vals) = float_const(model, Some(cv)).ok_or(not_constant)?;
                    p.old.push(cv);
                    let beta = f64::from(attrs.beta);
                    fold_bias(&cd, &vals, m, &a, &b, beta).ok_or(unsupported)?
                }
            };
            p.old.push(w);
            p.weight = (elem, dims, wv);
            p.bias = (elem, bdims, bias);
            p.unit_beta = true;
        }
        OpKind::BatchNormalization => {
            // y = a * (a1 * x + b1) + b: one BatchNormalization with scale a1 * a, bias
            // b1 * a + b, mean 0, var 1 and epsilon 0.
            let (elem, a1, b1) = affine(model, prod)?;
            if a1.len() != c {
                return Err(unsupported);
            }
            p.old.extend(prod.inputs()[1..].iter().flatten().copied());
            p.weight = (elem, vec![c], (0..c).map(|i| a1[i] * a[i]).collect());
            p.bias = (elem, vec![c], (0..c).map(|i| b1[i] * a[i] + b[i]).collect());
        }
        OpKind::MatMul => {
            matmul_weight(model, &mut p, producer, &a, c)?;
            p.bias = (p.weight.0, vec![c], b.clone());
            p.b_slot = 1;
        }
        _ => {
            // Add(MatMul(A, W), bias), in either operand order.
            let (mm_slot, bias_v) = match (input(prod, 0), input(prod, 1)) {
                (Some(l), Some(r)) if is_matmul(g, l) => (0, r),
                (Some(l), Some(r)) if is_matmul(g, r) => (1, l),
                _ => return Err(None),
            };
            let mm_out = input(prod, mm_slot).ok_or(None)?;
            let mm = g.value(mm_out).producer().ok_or(None)?;
            if readers.sole_reader(g, mm_out).is_none() || sole_output(g.op(mm)) != Some(mm_out) {
                return Err(shared);
            }
            if dims::rank(g, x) != Some(2) {
                return Err(unsupported);
            }
            let (_, bd, vals) = float_const(model, Some(bias_v)).ok_or(not_constant)?;
            let m = dims::known(g, x).ok().and_then(|d| usize::try_from(d[0]).ok());
            p.kind = "matmul";
            p.add = Some(producer);
            p.target = mm;
            matmul_weight(model, &mut p, mm, &a, c)?;
            let (bdims, bias) = fold_bias(&bd, &vals, m, &a, &b, 1.0).ok_or(unsupported)?;
            p.bias = (p.weight.0, bdims, bias);
            p.b_slot = 1 - mm_slot;
            p.old.push(bias_v);
        }
    }
    Ok(p)
}

/// An inference BatchNormalization as `y = a * x + b` per channel: the element type of its
/// scale, `a = scale / sqrt(var + epsilon)` and `b = B - mean * a`.
fn affine(model: &Model, bn: &Op) -> Result<Affine, Option<&'static str>> {
    let unsupported = Some("kept-unsupported");
    if bn.attr_int("training_mode", 0).map_err(|_| unsupported)? != 0
        || bn.attr_int("spatial", 1).map_err(|_| unsupported)? != 1
        || bn.inputs().len() != 5
        || sole_output(bn).is_none()
    {
        return Err(unsupported);
    }
    let eps = f64::from(bn.attr_float("epsilon", 1e-5).map_err(|_| unsupported)?);
    let mut params = Vec::new();
    let mut elem = ElemType::F32;
    for i in 1..5 {
        let (e, dims, vals) = float_const(model, input(bn, i)).ok_or(Some("kept-not-constant"))?;
        if dims.len() != 1 {
            return Err(unsupported);
        }
        if i == 1 {
            elem = e;
        }
        params.push(vals);
    }
    let c = params[0].len();
    if params.iter().any(|p| p.len() != c) {
        return Err(unsupported);
    }
    let a: Vec<f64> = (0..c).map(|i| params[0][i] / (params[3][i] + eps).sqrt()).collect();
    let b: Vec<f64> = (0..c).map(|i| params[1][i] - params[2][i] * a[i]).collect();
    if a.iter().chain(&b).any(|v| !v.is_finite()) {
        return Err(unsupported);
    }
    Ok((elem, a, b))
}

fn is_matmul(g: &qc_ir::Graph, v: ValueId) -> bool {
    g.value(v).producer().is_some_and(|p| g.op(p).kind() == OpKind::MatMul && is_onnx(g.op(p)))
}

/// Scales the columns of a MatMul's constant `[K, N]` weight; the MatMul's output must be 2-D.
fn matmul_weight(
    model: &Model,
    p: &mut Plan,
    mm: OpId,
    a: &[f64],
    c: usize,
) -> Result<(), Option<&'static str>> {
    let g = &model.graph;
    let op = g.op(mm);
    let unsupported = Some("kept-unsupported");
    let out = sole_output(op).ok_or(unsupported)?;
    if dims::rank(g, out) != Some(2) || input(op, 0).is_none() {
        return Err(unsupported);
    }
    let w = input(op, 1).ok_or(unsupported)?;
    let (elem, dims, mut wv) = float_const(model, Some(w)).ok_or(Some("kept-not-constant"))?;
    if dims.len() != 2 || dims[1] != c {
        return Err(unsupported);
    }
    for (i, v) in wv.iter_mut().enumerate() {
        *v *= a[i % c.max(1)];
    }
    p.old.push(w);
    p.weight = (elem, dims, wv);
    Ok(())
}

/// `beta * bias * a + b` for a bias broadcast to a 2-D `[M, N]` output (`m`: M when known):
/// dims `[N]`, or `[M, N]` when the bias varies along rows. `None` when the bias does not
/// broadcast to the output without growing it.
fn fold_bias(
    dims: &[usize],
    vals: &[f64],
    m: Option<usize>,
    a: &[f64],
    b: &[f64],
    beta: f64,
) -> Option<(Vec<usize>, Vec<f64>)> {
    let n = a.len();
    let (d0, d1) = match dims {
        [] => (1, 1),
        [d1] => (1, *d1),
        [d0, d1] => (*d0, *d1),
        _ => return None,
    };
    if d1 != 1 && d1 != n {
        return None;
    }
    let rows = if d0 == 1 {
        1
    } else if Some(d0) == m {
        d0
    } else {
        return None;
    };
    let mut out = Vec::with_capacity(rows * n);
    for r in 0..rows {
        for (j, (aj, bj)) in a.iter().zip(b).enumerate() {
            let v = vals[r * d1 + if d1 == 1 { 0 } else { j }];
            out.push(beta * v * aj + bj);
        }
    }
    let dims = if rows == 1 { vec![n] } else { vec![rows, n] };
    Some((dims, out))
}

fn apply(model: &mut Model, rw: &mut Rewrite, p: Plan, cx: &mut PassContext) -> Option<()> {
    let g = &mut model.graph;
    let target = g.op(p.target).clone();
    let wname = input(&target, 1).map(|v| g.value(v).name.clone()).unwrap_or_default();
    let (we, wd, wv) = p.weight;
    let (be, bd, bv) = p.bias;
    let bv_len = bv.len();
    let w = add_float(g, &format!("{wname}_bn"), we, wd, wv)?;
    let bias = add_float(g, &format!("{}_bias", g.value(p.y).name.clone()), be, bd, bv)?;
    let mut ins = target.inputs().to_vec();
    ins[p.w_slot] = Some(w);
    match p.kind {
        "matmul" => {
            let mm_out = sole_output(&target)?;
            rw.set(p.target, vec![(target.clone(), ins, vec![Some(mm_out)])]);
            let mut add_ins = vec![Some(mm_out); 2];
            add_ins[p.b_slot] = Some(bias);
            match p.add {
                Some(add) => {
                    let add_op = g.op(add).clone();
                    rw.set(add, vec![(add_op, add_ins, vec![Some(p.y)])]);
                    rw.set(p.bn, vec![]);
                }
                None => {
                    let bn = g.op(p.bn);
                    let mut op = Op::new("Add", bn.domain_raw().map(String::from));
                    op.name = bn.name.clone();
                    rw.set(p.bn, vec![(op, add_ins, vec![Some(p.y)])]);
                }
            }
        }
        _ => {
            if ins.len() <= p.b_slot {
                ins.resize(p.b_slot + 1, None);
            }
            ins[p.b_slot] = Some(bias);
            let mut op = target;
            if p.kind == "batch-normalization" {
                let (c, base) = (bv_len, g.value(p.y).name.clone());
                ins[3] = Some(add_float(g, &format!("{base}_mean"), be, vec![c], vec![0.0; c])?);
                ins[4] = Some(add_float(g, &format!("{base}_var"), be, vec![c], vec![1.0; c])?);
                op.set_attr("epsilon", AttrValue::Float(0.0));
            }
            if p.unit_beta {
                op.set_attr("beta", AttrValue::Float(1.0));
            }
            rw.set(p.target, vec![(op, ins, vec![Some(p.y)])]);
            rw.set(p.bn, vec![]);
        }
    }
    rw.drop_if_unused(p.old);
    cx.count(p.kind, 1);
    Some(())
}
