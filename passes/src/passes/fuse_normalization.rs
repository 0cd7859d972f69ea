//! `fuse-normalization`: layer and RMS normalization written out as small ops become one
//! `LayerNormalization` (opset 17) or `RMSNormalization` (opset 23).
//!
//! What it does: over the trailing axes `A` of `x` (the last `k` axes; both means over the same
//! ones, `keepdims = 1`),
//!
//! - layer normalization: `m = ReduceMean(x, A)`, `d = Sub(x, m)`, `v = ReduceMean(d * d, A)`
//!   (the square as `Pow(d, 2)` or `Mul(d, d)`), `n = d / Sqrt(v + eps)` (as `Div`, or `Mul` by a
//!   `Reciprocal`), then optionally `Mul` by a constant `gamma` and `Add` of a constant `beta`
//!   (either operand order everywhere) becomes `LayerNormalization(x, gamma, beta)` with
//!   `axis = -k` and `epsilon = eps`;
//! - RMS normalization: the same without the mean (`v = ReduceMean(x * x, A)`,
//!   `n = x / Sqrt(v + eps)`, optionally times `gamma`) becomes `RMSNormalization(x, gamma)`.
//!
//! `gamma` and `beta` may be one value or vary along the normalized axes only (dims 1 or the
//! input's there, 1 before them); they are written out as new constants of the normalized dims in
//! `x`'s type (absent `gamma` is ones). The new op writes the last op's output and keeps its name.
//! The fused op computes in one pass what the written-out ops round after each step, so outputs
//! agree up to float rounding (the evaluator computes both in f64 and rounds per op).
//!
//! A target without these ops keeps the written-out form by leaving this pass out of the
//! pipeline; the opset is never raised: below 17 (layer) or 23 (RMS) the pattern is kept.
//!
//! Preconditions: the main graph only. Every value of the pattern but the result is read only
//! inside it (not by another op, a graph output or a body); `x` is a float tensor of known rank
//! whose normalized dims are known (run `infer-shapes` first); `eps` is a constant with one
//! element; the axes are constants.
//!
//! Postconditions: the model computes the same outputs up to float rounding; 6 to 9 ops become
//! one per fusion.
//!
//! Statistics: `layer-norm`, `rms-norm`, `kept-opset` (the opset lacks the op), `kept-shared` (a
//! value of the pattern is read outside it), `kept-shape` (gamma or beta varies along other axes,
//! or the normalized dims are not known), `kept-type` (not a float tensor).

use std::collections::HashSet;

use qc_ir::dims;
use qc_ir::{AttrValue, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::pattern::Pat;
use crate::registry::PassInfo;
use crate::rewrite::{
    Rewrite, add_float, drop_unused_constants, float_const, input, int_const, is_onnx, sole_output,
};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-normalization",
    summary: "fuse layer normalization (opset 17) and RMS normalization (opset 23) written out as small ops",
    options: &[],
    build: |_| Ok(Box::new(FuseNormalization)),
};

/// The `fuse-normalization` pass.
pub struct FuseNormalization;

struct Found {
    rms: bool,
    x: ValueId,
    k: usize,
    eps: f64,
    gamma: Option<ValueId>,
    beta: Option<ValueId>,
    /// Every op of the pattern; the last writes `out`.
    ops: Vec<OpId>,
    last: OpId,
    out: ValueId,
}

impl Pass for FuseNormalization {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let opset = model.onnx_opset();
        let p = Pat::new(model);
        let mut found = Vec::new();
        let mut claimed: HashSet<OpId> = HashSet::new();
        for (_, op) in p.g.ops() {
            if op.kind() != OpKind::ReduceMean || !is_onnx(op) {
                continue;
            }
            let Some(f) = find(&p, op) else { continue };
            let reason = if f.rms && opset < 23 || !f.rms && opset < 17 {
                Some("kept-opset")
            } else if !p.closed(&f.ops, f.out) {
                Some("kept-shared")
            } else if p.float_elem(f.x).is_none() {
                Some("kept-type")
            } else {
                None
            };
            if let Some(r) = reason {
                cx.count(r, 1);
                continue;
            }
            if f.ops.iter().any(|o| claimed.contains(o)) {
                continue;
            }
            claimed.extend(f.ops.iter().copied());
            found.push(f);
        }
        // The constants, read while the graph is not borrowed mutably.
        let mut plans = Vec::new();
        for f in found {
            let Some(elem) = p.float_elem(f.x) else { continue };
            let Some(nd) = normalized_dims(&p, f.x, f.k) else {
                cx.count("kept-shape", 1);
                continue;
            };
            let count: usize = nd.iter().product();
            let gamma = match f.gamma {
                None => Some(vec![1.0; count]),
                Some(v) => spread(&p, v, f.x, &nd),
            };
            let beta = match f.beta {
                None => Some(None),
                Some(v) => spread(&p, v, f.x, &nd).map(Some),
            };
            let (Some(gamma), Some(beta)) = (gamma, beta) else {
                cx.count("kept-shape", 1);
                continue;
            };
            plans.push((f, elem, nd, gamma, beta));
        }
        drop(p);
        let g = &mut model.graph;
        let mut rw = Rewrite::default();
        let mut old = Vec::new();
        for (f, elem, nd, gamma, beta) in plans {
            let last = g.op(f.last);
            let domain = last.domain_raw().map(String::from);
            let name = last.name.clone();
            let base = g.value(f.out).name.clone();
            let Some(gv) = add_float(g, &format!("{base}_scale"), elem, nd.clone(), gamma) else { continue };
            let bv = match beta {
                None => None,
                Some(b) => match add_float(g, &format!("{base}_bias"), elem, nd.clone(), b) {
                    Some(v) => Some(v),
                    None => continue,
                },
            };
            let mut op = Op::new(if f.rms { "RMSNormalization" } else { "LayerNormalization" }, domain);
            op.name = name;
            op.set_attr("axis", AttrValue::Int(-(f.k as i64)));
            op.set_attr("epsilon", AttrValue::Float(f.eps as f32));
            let mut ins = vec![Some(f.x), Some(gv)];
            if bv.is_some() {
                ins.push(bv);
            }
            for &id in &f.ops {
                let o = g.op(id);
                old.extend(o.inputs().iter().flatten().copied().filter(|&v| v != f.x));
                old.extend(o.outputs().iter().flatten().copied().filter(|&v| v != f.out));
                if id != f.last {
                    rw.set(id, vec![]);
                }
            }
            rw.set(f.last, vec![(op, ins, vec![Some(f.out)])]);
            cx.count(if f.rms { "rms-norm" } else { "layer-norm" }, 1);
        }
        rw.drop_if_unused(old.iter().copied());
        let changed = !rw.is_empty();
        rw.apply(g);
        drop_unused_constants(g, &old);
        Ok(Changed::from_bool(changed))
    }
}

/// The trailing axis count a `ReduceMean` with `keepdims = 1` reduces over, on an input of rank
/// `rank` (when known): its axes must be the last `k`.
fn trailing(p: &Pat, op: &Op, rank: Option<usize>) -> Option<usize> {
    if op.attr_int("keepdims", 1).ok()? != 1 {
        return None;
    }
    let axes: Vec<i64> = match (op.attr_ints("axes").ok()?, input(op, 1)) {
        (Some(a), None) => a.to_vec(),
        (None, Some(v)) => int_const(p.model, Some(v))?,
        (None, None) => {
            // All axes, unless `noop_with_empty_axes`.
            if op.attr_int("noop_with_empty_axes", 0).ok()? != 0 {
                return None;
            }
            let r = rank?;
            return (r > 0).then_some(r);
        }
        _ => return None,
    };
    if axes.is_empty() {
        return None;
    }
    let mut norm: Vec<i64> = match rank {
        Some(r) => {
            let r = i64::try_from(r).ok()?;
            axes.iter().map(|&a| if a < 0 { a } else { a - r }).collect()
        }
        None => axes.clone(),
    };
    if norm.iter().any(|&a| a >= 0 || rank.is_some_and(|r| a < -(r as i64))) {
        return None;
    }
    norm.sort_unstable();
    norm.dedup();
    let k = norm.len();
    (norm.len() == axes.len() && norm.iter().enumerate().all(|(i, &a)| a == i as i64 - k as i64)).then_some(k)
}

/// The op of `kind` that alone reads `v`, with the slot it reads it at.
fn next<'a>(p: &Pat<'a>, v: ValueId, kind: OpKind) -> Option<(OpId, &'a Op, usize)> {
    let (id, slot) = p.sole_reader(v)?;
    let op = p.g.op(id);
    (op.kind() == kind && is_onnx(op) && sole_output(op).is_some()).then_some((id, op, slot))
}

/// The other operand of a binary `op` whose operand `slot` is known.
fn other(op: &Op, slot: usize) -> Option<ValueId> {
    (op.inputs().len() == 2 && slot < 2).then(|| input(op, 1 - slot)).flatten()
}

/// The pattern whose variance (or mean square) `ReduceMean` is `vop`.
fn find(p: &Pat, vop: &Op) -> Option<Found> {
    let sq = input(vop, 0)?;
    let v = sole_output(vop)?;
    let vid = p.g.value(v).producer()?;
    let r = p.rank(sq);
    let k = trailing(p, vop, r)?;
    let prod = p.product(sq, r.unwrap_or(0));
    if prod.k != 1.0 || prod.leaves.len() != 2 || prod.leaves[0] != prod.leaves[1] || prod.ops.len() != 1 {
        return None;
    }
    let t = prod.leaves[0];
    let mut ops = vec![vid];
    ops.extend(&prod.ops);
    // v + eps, its square root, and t divided by it.
    let (add, add_op, slot) = next(p, v, OpKind::Add)?;
    let eps = p.scalar(other(add_op, slot)?, r.unwrap_or(0))?;
    let ve = sole_output(add_op)?;
    let (sqrt, sqrt_op, _) = next(p, ve, OpKind::Sqrt)?;
    let s = sole_output(sqrt_op)?;
    ops.extend([add, sqrt]);
    let (nid, n) = match p.sole_reader(s) {
        Some((d, 1)) if p.g.op(d).kind() == OpKind::Div && input(p.g.op(d), 0) == Some(t) => {
            (d, sole_output(p.g.op(d))?)
        }
        _ => {
            let (rec, rec_op, _) = next(p, s, OpKind::Reciprocal)?;
            let rv = sole_output(rec_op)?;
            let (mul, mul_op, slot) = next(p, rv, OpKind::Mul)?;
            if other(mul_op, slot)? != t {
                return None;
            }
            ops.push(rec);
            (mul, sole_output(mul_op)?)
        }
    };
    if !is_onnx(p.g.op(nid)) {
        return None;
    }
    ops.push(nid);
    // Layer normalization: t = x - ReduceMean(x) over the same axes.
    let mut x = t;
    let mut rms = true;
    if let Some((sub, sub_op)) = p.producer(t, OpKind::Sub)
        && let (Some(x0), Some(m)) = (input(sub_op, 0), input(sub_op, 1))
        && let Some((mid, mop)) = p.producer(m, OpKind::ReduceMean)
        && input(mop, 0) == Some(x0)
        && trailing(p, mop, p.rank(x0)) == Some(k)
    {
        x = x0;
        rms = false;
        ops.extend([sub, mid]);
    }
    // Optional gamma (and beta for layer normalization), constants.
    let (mut last, mut out) = (nid, n);
    let affine = |v: ValueId, kind: OpKind| -> Option<(OpId, ValueId, ValueId)> {
        let (id, op, slot) = next(p, v, kind)?;
        let c = other(op, slot)?;
        float_const(p.model, Some(c))?;
        Some((id, c, sole_output(op)?))
    };
    let mut gamma = None;
    if let Some((id, c, o)) = affine(out, OpKind::Mul) {
        gamma = Some(c);
        ops.push(id);
        (last, out) = (id, o);
    }
    let mut beta = None;
    if !rms && let Some((id, c, o)) = affine(out, OpKind::Add) {
        beta = Some(c);
        ops.push(id);
        (last, out) = (id, o);
    }
    Some(Found { rms, x, k, eps, gamma, beta, ops, last, out })
}

/// The last `k` dims of `x`, when its rank and those dims are known.
fn normalized_dims(p: &Pat, x: ValueId, k: usize) -> Option<Vec<usize>> {
    let d = dims::partial(p.g, x)?;
    let start = d.len().checked_sub(k)?;
    d[start..].iter().map(|s| s.and_then(|s| usize::try_from(s).ok()).filter(|&s| s > 0)).collect()
}

/// The constant `c`'s values laid out over the normalized dims `nd`, when `c` varies only along
/// them (dims 1 or equal there, 1 before them) and its rank is at most `x`'s.
fn spread(p: &Pat, c: ValueId, x: ValueId, nd: &[usize]) -> Option<Vec<f64>> {
    let (_, cd, vals) = float_const(p.model, Some(c))?;
    let r = p.rank(x)?;
    if cd.len() > r {
        return None;
    }
    // Right-align c's dims to x's rank; the leading r - k must be 1.
    let k = nd.len();
    let mut aligned = vec![1usize; r - cd.len()];
    aligned.extend(&cd);
    if aligned[..r - k].iter().any(|&d| d != 1) {
        return None;
    }
    let tail = &aligned[r - k..];
    if tail.iter().zip(nd).any(|(&c, &n)| c != 1 && c != n) {
        return None;
    }
    // Strides of c over the normalized dims (0 where it broadcasts).
    let mut strides = vec![0usize; k];
    let mut s = 1;
    for i in (0..k).rev() {
        strides[i] = if tail[i] == 1 { 0 } else { s };
        s *= tail[i];
    }
    let count: usize = nd.iter().product();
    let mut out = Vec::with_capacity(count);
    let mut idx = vec![0usize; k];
    for _ in 0..count {
        out.push(vals[idx.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        for j in (0..k).rev() {
            idx[j] += 1;
            if idx[j] < nd[j] {
                break;
            }
            idx[j] = 0;
        }
    }
    Some(out)
}
