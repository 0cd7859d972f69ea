//! `fuse-attention`: the scaled dot-product attention core written out in ops becomes one ONNX
//! `Attention` (opset 23).
//!
//! What it does: it recognises, from each `Softmax` over the last axis whose output only a
//! `MatMul` reads as its first operand (`P V`), the chain
//! `Softmax([Add(mask)] (scale (MatMul(Q', K'))))`, where the scale is any number of `Mul`s by,
//! or `Div`s by, a constant of one element, applied to the product, to `Q` (`Q' = Q * c`) or to
//! the transposed key (`K' = K^T * c`); `K'` is a `Transpose` (any permutation; it is composed
//! with the swap of the last two axes) or any value `[.., D, T]` (a `Transpose` is then added).
//! Where the default-domain opset is 23 or later, the chain and the `P V` product become
//! `Attention(Q, K, V, [mask])` with `scale` the product of the factors, writing the `P V`
//! product's output under the product's name. 4-D inputs `[B, H, S, D]` map to Attention's 4-D
//! form; 3-D inputs `[B, S, D]` (one head) to its 3-D form with `q_num_heads = kv_num_heads = 1`.
//!
//! Option `fuse=false` only recognises and counts the patterns (statistic `found`) and leaves the
//! model as it is: the form for targets that cost the two products separately (qc's lowering
//! costs an `Attention` as those two products either way). Not in the default pipeline: few
//! runtimes and DLA compilers take opset 23 yet.
//!
//! Preconditions: main graph only; ranks and dims known (`infer-shapes`): Q, K and V of rank 3 or
//! 4 with the same batch (and head) dims, a float element type; the mask of rank at most that and
//! not growing the scores, with the keys' length as its last dim (Attention pads a shorter mask
//! with `-inf` instead of broadcasting it; a 3-D chain's mask has rank 2 or less); every value
//! inside the chain read only by the next op of the chain (scales of `Q` and `K` read elsewhere
//! simply stay outside).
//!
//! Postconditions: the model computes the same outputs up to float rounding (the scale is applied
//! once to the sum, in `f32`'s `scale`, where the chain rounds after each op); per fusion the
//! chain's ops (up to 9) become one `Attention` (and a `Transpose` when `K` needs one).
//!
//! Statistics: `found` (patterns recognised), `fused`, `kept-opset` (found where the opset is
//! below 23), `kept-shared` (a value inside the chain has another reader or is a graph output),
//! `kept-shape` (ranks, dims, element types or a mask Attention cannot take), `kept-axis` (the
//! Softmax is not over the last axis).

use qc_ir::{AttrValue, Dim, ElemType, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::{OptionError, PassInfo, PassOptions};
use crate::rewrite::{NewOp, Readers, Rewrite, constant, elem_in, input, is_onnx, new_value, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-attention",
    summary: "fuse the scaled dot-product attention core into one Attention (opset 23)",
    options: &[("fuse", "true: rewrite where the opset is 23 or later; false: only count the patterns")],
    build,
};

fn build(opts: &mut PassOptions<'_>) -> Result<Box<dyn Pass>, OptionError> {
    Ok(Box::new(FuseAttention { fuse: opts.bool("fuse", true)? }))
}

/// The `fuse-attention` pass.
pub struct FuseAttention {
    /// Rewrite the patterns (else only count them).
    pub fuse: bool,
}

/// Where Attention's `K` comes from.
enum Key {
    /// This value is `K` as Attention reads it.
    Direct(ValueId),
    /// `Transpose(from, perm)` is.
    Transposed { from: ValueId, perm: Vec<i64> },
}

struct Plan {
    /// The `P V` product, which the Attention replaces.
    pv: OpId,
    /// The other ops of the chain, removed.
    chain: Vec<OpId>,
    q: ValueId,
    key: Key,
    v: ValueId,
    mask: Option<ValueId>,
    y: ValueId,
    scale: f64,
    rank: usize,
    /// Values the chain reads or writes that may be left unused.
    dropped: Vec<ValueId>,
}

impl Pass for FuseAttention {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let g = &model.graph;
        let readers = Readers::new(g);
        let opset = model.onnx_opset();
        let mut plans = Vec::new();
        for (id, op) in g.ops() {
            if op.kind() != OpKind::Softmax || !is_onnx(op) {
                continue;
            }
            match plan(model, &readers, id, opset) {
                Ok(None) => {}
                Ok(Some(p)) => {
                    cx.count("found", 1);
                    if !self.fuse {
                        continue;
                    }
                    if opset < 23 {
                        cx.count("kept-opset", 1);
                        continue;
                    }
                    plans.push(p);
                }
                Err(reason) => {
                    cx.count("found", 1);
                    cx.count(reason, 1);
                }
            }
        }
        let mut rw = Rewrite::default();
        for p in plans {
            if rw.touches(p.pv) || p.chain.iter().any(|&o| rw.touches(o)) {
                continue;
            }
            let Some(new) = attention_ops(model, &p) else { continue };
            rw.set(p.pv, new);
            for &o in &p.chain {
                rw.set(o, vec![]);
            }
            rw.drop_if_unused(p.dropped.iter().copied());
            cx.count("fused", 1);
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}

/// The factor a `Mul` by, or a `Div` by, a one-element float constant applies to its other
/// operand: `(other operand, factor)`.
fn scale_op(model: &Model, op: &Op) -> Option<(ValueId, f64)> {
    if !is_onnx(op) || op.inputs().len() != 2 {
        return None;
    }
    let (a, b) = (input(op, 0)?, input(op, 1)?);
    let one = |v: ValueId| {
        let (dims, vals, elem) = constant(model, v)?;
        let float = matches!(elem, ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16);
        (float && vals.len() == 1 && dims.len() <= 1 && vals[0] != 0.0 && vals[0].is_finite())
            .then_some(vals[0])
    };
    match op.kind() {
        OpKind::Mul => match (one(a), one(b)) {
            (None, Some(c)) => Some((a, c)),
            (Some(c), None) => Some((b, c)),
            _ => None,
        },
        OpKind::Div => one(b).map(|c| (a, 1.0 / c)),
        _ => None,
    }
}

/// Strips the scale ops that write `v` and that only the chain reads: `(value, factor, ops)`.
/// With `strict`, a scale op whose output has another reader is an error (it is inside the
/// chain); otherwise stripping stops there.
fn strip_scales(
    model: &Model,
    readers: &Readers,
    mut v: ValueId,
    strict: bool,
) -> Result<(ValueId, f64, Vec<OpId>), &'static str> {
    let g = &model.graph;
    let (mut factor, mut ops) = (1.0, Vec::new());
    while let Some(p) = g.value(v).producer() {
        let Some((from, c)) = scale_op(model, g.op(p)) else { break };
        if readers.sole_reader(g, v).is_none() {
            if strict {
                return Err("kept-shared");
            }
            break;
        }
        factor *= c;
        ops.push(p);
        v = from;
    }
    Ok((v, factor, ops))
}

/// The product `Q' K'` behind the scores value `v`, through scale ops.
fn product_behind(model: &Model, v: ValueId) -> Option<OpId> {
    let g = &model.graph;
    let mut v = v;
    for _ in 0..8 {
        let p = g.value(v).producer()?;
        let op = g.op(p);
        if op.kind() == OpKind::MatMul && is_onnx(op) {
            return Some(p);
        }
        v = scale_op(model, op)?.0;
    }
    None
}

/// Whether two dims are the same known size or the same name.
fn same(a: &Dim, b: &Dim) -> bool {
    a == b && *a != Dim::Unknown
}

/// The pattern that ends in Softmax `sm`: `Ok(None)` when there is none, `Err(reason)` when it
/// is there but cannot be fused.
fn plan(model: &Model, readers: &Readers, sm: OpId, opset: i64) -> Result<Option<Plan>, &'static str> {
    let g = &model.graph;
    let smo = g.op(sm);
    let (Some(z), Some(p)) = (input(smo, 0), sole_output(smo)) else { return Ok(None) };
    // The P V product.
    let Some(&(pv, 0)) = g.value(p).uses().iter().find(|&&(r, slot)| {
        let r = g.op(r);
        slot == 0 && r.kind() == OpKind::MatMul && is_onnx(r)
    }) else {
        return Ok(None);
    };
    let pvo = g.op(pv);
    let (Some(v), Some(y)) = (input(pvo, 1), sole_output(pvo)) else { return Ok(None) };
    // The mask Add, on either side of which the scaled product is.
    let (scores, mask, add) = match g.value(z).producer().map(|a| (a, g.op(a))) {
        Some((a, op)) if op.kind() == OpKind::Add && is_onnx(op) && op.inputs().len() == 2 => {
            let (x0, x1) = (input(op, 0), input(op, 1));
            let (Some(x0), Some(x1)) = (x0, x1) else { return Ok(None) };
            if product_behind(model, x0).is_some() {
                (x0, Some(x1), Some(a))
            } else if product_behind(model, x1).is_some() {
                (x1, Some(x0), Some(a))
            } else {
                return Ok(None);
            }
        }
        _ => (z, None, None),
    };
    let Some(qk) = product_behind(model, scores) else { return Ok(None) };
    // From here on the pattern is there: what keeps it is a reason.
    if readers.sole_reader(g, p).is_none() || readers.sole_reader(g, z).is_none() {
        return Err("kept-shared");
    }
    if mask.is_some() && readers.sole_reader(g, scores).is_none() {
        return Err("kept-shared");
    }
    let (mm_out, post, post_ops) = strip_scales(model, readers, scores, true)?;
    let qko = g.op(qk);
    if sole_output(qko) != Some(mm_out) || readers.sole_reader(g, mm_out).is_none() {
        return Err("kept-shared");
    }
    let (Some(qs), Some(kts)) = (input(qko, 0), input(qko, 1)) else { return Err("kept-shape") };
    let (q, qf, q_ops) = strip_scales(model, readers, qs, false)?;
    let (kt, kf, k_ops) = strip_scales(model, readers, kts, false)?;

    // Ranks, dims and types.
    let dims = |v: ValueId| qc_ir::dims::of(g, v).ok_or("kept-shape");
    let (qd, ktd, vd, sd) = (dims(q)?, dims(kt)?, dims(v)?, dims(scores)?);
    let rank = qd.len();
    if !(3..=4).contains(&rank) || ktd.len() != rank || vd.len() != rank || sd.len() != rank {
        return Err("kept-shape");
    }
    let batch = rank - 2;
    if !(0..batch).all(|i| same(&qd[i], &ktd[i]) && same(&qd[i], &vd[i])) {
        return Err("kept-shape");
    }
    if !same(&qd[rank - 1], &ktd[rank - 2]) || !same(&ktd[rank - 1], &vd[rank - 2]) {
        return Err("kept-shape");
    }
    let elem = elem_in(g, q).ok_or("kept-shape")?;
    let float = matches!(elem, ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16);
    if !float || [kt, v, y].iter().any(|&x| elem_in(g, x) != Some(elem)) {
        return Err("kept-shape");
    }
    if let Some(m) = mask {
        let md = dims(m)?;
        let zd = dims(z)?;
        let grows = zd.len() != rank || !(0..rank).all(|i| same(&zd[i], &sd[i]));
        // Attention broadcasts the mask to [B, heads, S, T]: a 3-D chain's mask of rank 3 would
        // meet the heads axis with its batch axis.
        let fits_3d = rank == 4 || md.len() <= 2;
        // Attention pads a mask shorter than the keys with -inf rather than broadcasting it.
        let full_keys = md.last().is_some_and(|t| same(t, &sd[rank - 1]));
        if md.len() > rank || grows || !fits_3d || !full_keys || elem_in(g, m) != Some(elem) {
            return Err("kept-shape");
        }
    }
    // The Softmax normalises each row of the scores (before opset 13 it flattens from `axis`,
    // which is the same only for the last axis).
    let axis = smo.attr_int("axis", if opset >= 13 { -1 } else { 1 }).map_err(|_| "kept-axis")?;
    if axis != -1 && axis != rank as i64 - 1 {
        return Err("kept-axis");
    }

    // K as Attention reads it: [.., T, D].
    let mut chain: Vec<OpId> =
        [sm, qk].into_iter().chain(add).chain(post_ops).chain(q_ops).chain(k_ops).collect();
    let swap: Vec<i64> = if rank == 4 { vec![0, 1, 3, 2] } else { vec![0, 2, 1] };
    let key = match g.value(kt).producer().map(|t| (t, g.op(t))) {
        Some((t, op))
            if op.kind() == OpKind::Transpose && is_onnx(op) && readers.sole_reader(g, kt).is_some() =>
        {
            let from = input(op, 0).ok_or("kept-shape")?;
            let perm: Vec<i64> = match op.attr_ints("perm").map_err(|_| "kept-shape")? {
                Some(p) => p.to_vec(),
                None => (0..rank as i64).rev().collect(),
            };
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted != (0..rank as i64).collect::<Vec<_>>() {
                return Err("kept-shape");
            }
            chain.push(t);
            let composed: Vec<i64> = swap.iter().map(|&i| perm[i as usize]).collect();
            if composed.iter().enumerate().all(|(i, &p)| p == i as i64) {
                Key::Direct(from)
            } else {
                Key::Transposed { from, perm: composed }
            }
        }
        _ => Key::Transposed { from: kt, perm: swap },
    };
    let mut dropped = vec![z, p, scores, mm_out, qs, kts, kt];
    for &o in &chain {
        dropped.extend(g.op(o).inputs().iter().flatten().copied());
        dropped.extend(g.op(o).outputs().iter().flatten().copied());
    }
    dropped.retain(|&x| x != y);
    Ok(Some(Plan { pv, chain, q, key, v, mask, y, scale: post * qf * kf, rank, dropped }))
}

/// The `Transpose` (when `K` needs one) and the `Attention` that replace the `P V` product.
fn attention_ops(model: &mut Model, p: &Plan) -> Option<Vec<NewOp>> {
    let g = &mut model.graph;
    let pvo = g.op(p.pv);
    let name = pvo.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| g.value(p.y).name.clone());
    let domain = pvo.domain_raw().map(String::from);
    let mut ops = Vec::new();
    let k = match &p.key {
        Key::Direct(k) => *k,
        Key::Transposed { from, perm } => {
            let k = new_value(g, &format!("{name}_key"));
            let t = Op::new("Transpose", domain.clone())
                .with_name(format!("{name}_key_transpose"))
                .with_attr("perm", AttrValue::Ints(perm.clone()));
            ops.push((t, vec![Some(*from)], vec![Some(k)]));
            k
        }
    };
    let scale = p.scale as f32;
    if !scale.is_finite() || scale == 0.0 {
        return None;
    }
    let mut att = Op::new("Attention", domain).with_attr("scale", AttrValue::Float(scale));
    att.name = Some(name);
    if p.rank == 3 {
        att.set_attr("q_num_heads", AttrValue::Int(1));
        att.set_attr("kv_num_heads", AttrValue::Int(1));
    }
    let mut ins = vec![Some(p.q), Some(k), Some(p.v)];
    ins.extend(p.mask.map(Some));
    ops.push((att, ins, vec![Some(p.y)]));
    Some(ops)
}
