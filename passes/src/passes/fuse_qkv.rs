//! `fuse-qkv`: several matrix products of one activation by constant weights become one product
//! by the concatenated weights and a `Split` (Kneron's `fuse_qkv`, on by default there as here).
//!
//! What it does: the `MatMul`s (or the `Gemm`s) that read the same activation `x` as their first
//! operand, each with a constant 2-D weight `[K, N_i]` (a `Gemm` with `transB = 1`: `[N_i, K]`),
//! are replaced, when at least `min` of them (default 3: the Q, K and V projections of an
//! attention block) agree on `K`, the weight's element type and, for Gemm, `alpha`, `beta`,
//! `transA` and whether `C` is given, by one product of `x` by the weights concatenated along `N`
//! (in program order), followed by a `Split` along the last axis into the original outputs:
//!
//! - `MatMul`: each output optionally read only by an `Add` of a constant bias that broadcasts
//!   along the last axis (`[N_i]`, `[1, .., 1, N_i]`, one value; not of higher rank than the
//!   product). When every member has one, the biases are concatenated into one `Add` before the
//!   `Split` and the `Add`s go; otherwise the `Add`s stay, reading the `Split`'s outputs.
//! - `Gemm`: `C` of dims `[]`, `[1]`, `[N_i]`, `[1, N_i]` or `[1, 1]`, concatenated after being
//!   broadcast to `[N_i]`. When every member has `transB = 1` the weights are concatenated as
//!   `[sum N_i, K]` and `transB = 1` is kept; otherwise `B` is `[K, sum N_i]` with `transB = 0`.
//! - A weight behind a `DequantizeLinear` of a constant: fused when the members' quantizers
//!   agree (per-tensor scale and zero point of equal type and value, equal attributes); the
//!   integer weights are concatenated behind one `DequantizeLinear` with that scale and zero
//!   point. Per-axis and blocked quantizers, and members that disagree, are kept.
//!
//! Every element of every output is computed by the same products and sums in the same order as
//! before, so the rewrite is exact. The fused product takes the name of the first member with a
//! `_qkv` suffix; the new weight, bias and split sizes are new initializers. The old weights,
//! biases and quantizers go when nothing else reads them.
//!
//! Preconditions: the main graph only; default-domain ops; opset 2 or later (the `Split` takes
//! its sizes as an attribute before opset 13 and as an input from 13); the activation's rank
//! known (`infer-shapes`) for opsets before 11, where `Split` takes no negative axis.
//!
//! Postconditions: the model computes the same outputs; per fused group of `n` products, `n - 1`
//! fewer products (and `n - 1` fewer `Add`s when the biases fuse), one `Split` more.
//!
//! Statistics: `fused` (groups), `products-fused`, `biases-fused`, and per product that reads a
//! shared activation with at least `min` such readers but stays: `kept-not-constant` (the weight
//! or `C` is not a constant), `kept-quant` (a quantized weight this pass does not concatenate:
//! per-axis, blocked, or not read through a per-tensor `DequantizeLinear` of constants),
//! `kept-shape` (a weight that is not 2-D, a `C` or rank this pass cannot split), `kept-too-few`
//! (fewer than `min` products agree on `K`, element type, quantization and attributes),
//! `kept-over-limit` (the fused product would have more than `max-n` output features: a group
//! that `opt-matmul` split to fit a target, which `qc optimize --opt-matmul` sets `max-n` for).

use std::collections::{HashMap, HashSet};

use qc_ir::{AttrValue, ElemType, Graph, Model, Op, OpId, OpKind, ValueId};

use crate::eval::Array;
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::quant::const_array;
use crate::registry::{OptionError, PassInfo, PassOptions};
use crate::rewrite::{NewOp, Readers, Rewrite, add_const, add_ints, input, is_onnx, new_value, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-qkv",
    summary: "fuse the products of one activation by constant weights into one product and a Split",
    options: &[
        ("min", "the fewest products that fuse into one (at least 2; default 3: Q, K and V)"),
        ("max-n", "the most output features (N) of the fused product (default 0: no limit)"),
    ],
    build,
};

fn build(opts: &mut PassOptions<'_>) -> Result<Box<dyn crate::pass::Pass>, OptionError> {
    let min = opts.u64("min", 3)?;
    if min < 2 {
        return Err(opts.invalid("min", &min.to_string(), "a whole number of at least 2"));
    }
    let max_n = usize::try_from(opts.u64("max-n", 0)?).unwrap_or(usize::MAX);
    Ok(Box::new(FuseQkv { min: min as usize, max_n }))
}

/// The `fuse-qkv` pass.
pub struct FuseQkv {
    /// The fewest products that fuse.
    pub min: usize,
    /// The most output features of the fused product (0: no limit).
    pub max_n: usize,
}

/// A product's constant weight, oriented as the op reads it.
struct Weight {
    /// The float weight, or the integer weight behind a `DequantizeLinear`.
    data: Array,
    /// The `DequantizeLinear` it is read through: the op, its scale and zero point.
    dq: Option<Dequant>,
    /// The value the product reads.
    value: ValueId,
}

struct Dequant {
    op: OpId,
    scale: Array,
    zero_point: Option<Array>,
}

/// One product that may fuse.
struct Member {
    op: OpId,
    /// The product's output.
    out: ValueId,
    n: usize,
    weight: Weight,
    /// `Gemm` with `transB = 1`: the weight is `[N, K]`.
    trans_b: bool,
    /// A `Gemm`'s `C`, broadcast to `[N]`.
    c: Option<(Array, ValueId)>,
    /// A `MatMul`'s bias `Add`: the op, its output, its bias value and the bias as `[N]`.
    bias: Option<(OpId, ValueId, ValueId, Array)>,
    /// What the members of one group agree on.
    key: String,
}

impl Pass for FuseQkv {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let opset = model.onnx_opset();
        if opset < 2 {
            return Ok(Changed::No);
        }
        let g = &model.graph;
        let readers = Readers::new(g);
        let position: HashMap<OpId, usize> = g.ops().enumerate().map(|(i, (id, _))| (id, i)).collect();
        let mut groups: Vec<(ValueId, Vec<Member>, i64)> = Vec::new();
        let mut seen: HashSet<ValueId> = HashSet::new();
        for (_, op) in g.ops() {
            for x in op.inputs().iter().flatten().copied() {
                if !seen.insert(x) {
                    continue;
                }
                let mut candidates: Vec<OpId> = g
                    .value(x)
                    .uses()
                    .iter()
                    .filter(|&&(r, slot)| {
                        let r = g.op(r);
                        slot == 0 && is_onnx(r) && matches!(r.kind(), OpKind::MatMul | OpKind::Gemm)
                    })
                    .map(|&(r, _)| r)
                    .collect();
                candidates.sort_by_key(|r| position.get(r).copied());
                candidates.dedup();
                for kind in [OpKind::MatMul, OpKind::Gemm] {
                    let of_kind: Vec<OpId> =
                        candidates.iter().copied().filter(|&r| g.op(r).kind() == kind).collect();
                    if of_kind.len() < self.min {
                        continue;
                    }
                    let axis = split_axis(g, x, kind, opset);
                    let mut eligible = Vec::new();
                    for r in of_kind {
                        match member(model, &readers, r, axis.is_some()) {
                            Ok(m) => eligible.push(m),
                            Err(reason) => cx.count(reason, 1),
                        }
                    }
                    let mut by_key: Vec<(String, Vec<Member>)> = Vec::new();
                    for m in eligible {
                        match by_key.iter_mut().find(|(k, _)| *k == m.key) {
                            Some((_, list)) => list.push(m),
                            None => by_key.push((m.key.clone(), vec![m])),
                        }
                    }
                    for (_, list) in by_key {
                        let n: usize = list.iter().map(|m| m.n).sum();
                        match axis {
                            Some(_) if list.len() >= self.min && self.max_n > 0 && n > self.max_n => {
                                cx.count("kept-over-limit", list.len() as u64)
                            }
                            Some(axis) if list.len() >= self.min => groups.push((x, list, axis)),
                            _ => cx.count("kept-too-few", list.len() as u64),
                        }
                    }
                }
            }
        }
        if groups.is_empty() {
            return Ok(Changed::No);
        }
        let mut rw = Rewrite::default();
        for (x, members, axis) in groups {
            if members.iter().any(|m| rw.touches(m.op)) {
                continue;
            }
            let Some(new) = fuse(model, &readers, &mut rw, x, &members, axis, opset) else { continue };
            rw.set(members[0].op, new);
            for m in &members[1..] {
                rw.set(m.op, vec![]);
            }
            cx.count("fused", 1);
            cx.count("products-fused", members.len() as u64);
            if members.iter().all(|m| m.bias.is_some()) {
                cx.count("biases-fused", members.len() as u64);
            }
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}

/// The axis the `Split` takes: the last axis of the product's output (`None`: the rank is unknown
/// and the opset takes no negative axis).
fn split_axis(g: &Graph, x: ValueId, kind: OpKind, opset: i64) -> Option<i64> {
    if kind == OpKind::Gemm {
        return Some(1);
    }
    match qc_ir::dims::rank(g, x) {
        Some(0) => None,
        Some(1) => Some(0),
        Some(r) => Some(r as i64 - 1),
        None if opset >= 11 => Some(-1),
        None => None,
    }
}

fn is_float(e: ElemType) -> bool {
    matches!(e, ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16)
}

/// The constant weight `v`, plain or behind a per-tensor `DequantizeLinear` of constants.
fn weight(model: &Model, v: ValueId) -> Result<(Weight, String), &'static str> {
    let g = &model.graph;
    if let Some(a) = const_array(model, v) {
        if !is_float(a.elem) {
            return Err("kept-not-constant");
        }
        let key = format!("{:?}", a.elem);
        return Ok((Weight { data: a, dq: None, value: v }, key));
    }
    let Some(p) = g.value(v).producer() else { return Err("kept-not-constant") };
    let dq = g.op(p);
    if dq.kind() == OpKind::Quant || (dq.kind() == OpKind::DequantizeLinear && !is_onnx(dq)) {
        return Err("kept-quant");
    }
    if dq.kind() != OpKind::DequantizeLinear {
        return Err("kept-not-constant");
    }
    let (Some(q), Some(s)) = (input(dq, 0), input(dq, 1)) else { return Err("kept-quant") };
    let (Some(q), Some(scale)) = (const_array(model, q), const_array(model, s)) else {
        return Err("kept-not-constant");
    };
    let zero_point = match input(dq, 2) {
        None => None,
        Some(z) => Some(const_array(model, z).ok_or("kept-not-constant")?),
    };
    let per_tensor = |a: &Array| a.len() == 1 && a.rank() <= 1;
    if !per_tensor(&scale) || !zero_point.as_ref().is_none_or(per_tensor) || !is_float(scale.elem) {
        return Err("kept-quant");
    }
    if !matches!(dq.attr_int("block_size", 0), Ok(0)) || sole_output(dq) != Some(v) {
        return Err("kept-quant");
    }
    let mut attrs: Vec<String> =
        dq.attrs.iter().filter(|a| a.name != "axis").map(|a| format!("{}={:?}", a.name, a.value)).collect();
    attrs.sort();
    let zp = zero_point.as_ref().map(|z| (z.elem, z.to_f64().ok(), z.rank()));
    let key = format!(
        "dq {:?} {:?} {:?} {} {:?} {:?}",
        q.elem,
        scale.elem,
        scale.to_f64().ok().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()),
        scale.rank(),
        zp,
        attrs
    );
    Ok((Weight { data: q, dq: Some(Dequant { op: p, scale, zero_point }), value: v }, key))
}

/// `a` (dims `[]`, `[1]`, `[n]` or `[1, .., 1, n]`, at most `max_rank` of them) as `[n]`.
fn as_row(a: &Array, n: usize, max_rank: usize) -> Option<Array> {
    if a.rank() > max_rank {
        return None;
    }
    let (last, lead) = a.dims.split_last().map_or((1, &[][..]), |(l, lead)| (*l, lead));
    if lead.iter().any(|&d| d != 1) {
        return None;
    }
    if last == n {
        a.reshaped(vec![n]).ok()
    } else if last == 1 {
        a.splat(0, vec![n]).ok()
    } else {
        None
    }
}

/// The product `r` as a member of a group, or why it stays.
fn member(model: &Model, readers: &Readers, r: OpId, splittable: bool) -> Result<Member, &'static str> {
    let g = &model.graph;
    let op = g.op(r);
    let (Some(out), Some(w)) = (sole_output(op), input(op, 1)) else { return Err("kept-shape") };
    if !splittable {
        return Err("kept-shape");
    }
    let (weight, wkey) = weight(model, w)?;
    if weight.data.rank() != 2 {
        return Err("kept-shape");
    }
    let out_elem = match &weight.dq {
        Some(d) => d.scale.elem,
        None => weight.data.elem,
    };
    if op.kind() == OpKind::Gemm {
        let attrs = op.gemm().map_err(|_| "kept-shape")?;
        let (k, n) = if attrs.trans_b {
            (weight.data.dims[1], weight.data.dims[0])
        } else {
            (weight.data.dims[0], weight.data.dims[1])
        };
        let c = match input(op, 2) {
            None => None,
            Some(cv) => {
                let a = const_array(model, cv).ok_or("kept-not-constant")?;
                if a.elem != out_elem {
                    return Err("kept-shape");
                }
                Some((as_row(&a, n, 2).ok_or("kept-shape")?, cv))
            }
        };
        if op.inputs().len() > 3 {
            return Err("kept-shape");
        }
        let beta = if c.is_some() { attrs.beta.to_bits() } else { 0 };
        let key = format!(
            "gemm {k} {wkey} a{} b{} tA{} c{}",
            attrs.alpha.to_bits(),
            beta,
            attrs.trans_a,
            c.is_some()
        );
        return Ok(Member { op: r, out, n, weight, trans_b: attrs.trans_b, c, bias: None, key });
    }
    if op.inputs().len() != 2 {
        return Err("kept-shape");
    }
    let (k, n) = (weight.data.dims[0], weight.data.dims[1]);
    let bias = matmul_bias(model, readers, out, n, out_elem);
    Ok(Member { op: r, out, n, weight, trans_b: false, c: None, bias, key: format!("matmul {k} {wkey}") })
}

/// The `Add` of a constant bias along the last axis that alone reads a MatMul's output `mid`.
fn matmul_bias(
    model: &Model,
    readers: &Readers,
    mid: ValueId,
    n: usize,
    elem: ElemType,
) -> Option<(OpId, ValueId, ValueId, Array)> {
    let g = &model.graph;
    let (add_id, slot) = readers.sole_reader(g, mid)?;
    let add = g.op(add_id);
    if add.kind() != OpKind::Add || !is_onnx(add) || add.inputs().len() != 2 || slot > 1 {
        return None;
    }
    let b = input(add, 1 - slot)?;
    let out = sole_output(add)?;
    if b == mid {
        return None;
    }
    let a = const_array(model, b)?;
    if a.elem != elem {
        return None;
    }
    let max_rank = qc_ir::dims::rank(g, mid).unwrap_or(1).max(1);
    Some((add_id, out, b, as_row(&a, n, max_rank)?))
}

/// `a` (2-D) transposed.
fn transposed(a: &Array) -> Option<Array> {
    let (r, c) = (a.dims[0], a.dims[1]);
    let idx: Vec<usize> = (0..c).flat_map(|j| (0..r).map(move |i| i * c + j)).collect();
    a.gather_flat(vec![c, r], &idx).ok()
}

/// 2-D arrays with the same row count joined along their columns.
fn concat_columns(parts: &[&Array]) -> Option<Array> {
    let rows = parts.first()?.dims[0];
    let widths: Vec<usize> = parts.iter().map(|p| p.dims[1]).collect();
    let total: usize = widths.iter().sum();
    let flat = Array::concat_data(parts[0].elem, vec![rows * total], parts).ok()?;
    let mut idx = Vec::with_capacity(rows * total);
    for i in 0..rows {
        let mut offset = 0;
        for &w in &widths {
            idx.extend((0..w).map(|j| offset + i * w + j));
            offset += rows * w;
        }
    }
    flat.gather_flat(vec![rows, total], &idx).ok()
}

/// The ops that replace the first member: [DequantizeLinear,] product, [Add,] Split. Records the
/// removal of the bias `Add`s and of the quantizers nothing else reads.
#[allow(clippy::too_many_arguments)]
fn fuse(
    model: &mut Model,
    readers: &Readers,
    rw: &mut Rewrite,
    x: ValueId,
    members: &[Member],
    axis: i64,
    opset: i64,
) -> Option<Vec<NewOp>> {
    let first = model.graph.op(members[0].op);
    let kind = first.kind();
    let domain = first.domain_raw().map(String::from);
    let base = match first.name.as_deref() {
        Some(n) if !n.is_empty() => format!("{n}_qkv"),
        _ => format!("{}_qkv", model.graph.value(members[0].out).name),
    };
    let first_attrs = first.attrs.clone();
    let keep_trans_b = kind == OpKind::Gemm && members.iter().all(|m| m.trans_b);
    // The weights as `[K, N_i]` (or `[N_i, K]` when every Gemm reads them transposed).
    let oriented: Vec<Array> = members
        .iter()
        .map(|m| {
            if m.trans_b && !keep_trans_b { transposed(&m.weight.data) } else { Some(m.weight.data.clone()) }
        })
        .collect::<Option<_>>()?;
    let joined = if keep_trans_b {
        let rows: usize = oriented.iter().map(|a| a.dims[0]).sum();
        let refs: Vec<&Array> = oriented.iter().collect();
        Array::concat_data(oriented[0].elem, vec![rows, oriented[0].dims[1]], &refs).ok()?
    } else {
        concat_columns(&oriented.iter().collect::<Vec<_>>())?
    };
    let biases: Option<Vec<&Array>> = if kind == OpKind::Gemm {
        members.iter().map(|m| m.c.as_ref().map(|(a, _)| a)).collect()
    } else {
        members.iter().map(|m| m.bias.as_ref().map(|b| &b.3)).collect()
    };
    let total: usize = members.iter().map(|m| m.n).sum();
    let joined_bias = match &biases {
        Some(parts) => Some(Array::concat_data(parts[0].elem, vec![total], parts).ok()?),
        None => None,
    };

    let g = &mut model.graph;
    let mut ops: Vec<NewOp> = Vec::new();
    let mut dropped: Vec<ValueId> = Vec::new();
    // Ops to remove, recorded in `rw` only once nothing can fail.
    let mut removed: Vec<OpId> = Vec::new();
    let w_value = match &members[0].weight.dq {
        None => add_const(g, &format!("{base}_weight"), &joined),
        Some(d) => {
            let q = add_const(g, &format!("{base}_weight_quantized"), &joined);
            let scale = add_const(g, &format!("{base}_weight_scale"), &d.scale);
            let zp = d.zero_point.as_ref().map(|z| add_const(g, &format!("{base}_weight_zero_point"), z));
            let w = new_value(g, &format!("{base}_weight"));
            let mut op = Op::new("DequantizeLinear", domain.clone()).with_name(format!("{base}_dequantize"));
            op.attrs = g.op(d.op).attrs.iter().filter(|a| a.name != "axis").cloned().collect();
            let mut ins = vec![Some(q), Some(scale)];
            ins.extend(zp.map(Some));
            ops.push((op, ins, vec![Some(w)]));
            w
        }
    };
    for m in members {
        dropped.push(m.weight.value);
        if let Some(d) = &m.weight.dq
            && readers.sole_reader(g, m.weight.value).is_some()
        {
            dropped.extend(g.op(d.op).inputs().iter().flatten().copied());
            removed.push(d.op);
        }
    }
    let mut product = Op::new(first_op_type(kind), domain.clone()).with_name(base.clone());
    let mut ins = vec![Some(x), Some(w_value)];
    if kind == OpKind::Gemm {
        product.attrs = first_attrs;
        product.set_attr("transB", AttrValue::Int(i64::from(keep_trans_b)));
        if let Some(b) = &joined_bias {
            ins.push(Some(add_const(g, &format!("{base}_bias"), b)));
        }
        for m in members {
            dropped.extend(m.c.as_ref().map(|c| c.1));
        }
    }
    let mut whole = new_value(g, &format!("{base}_out"));
    ops.push((product, ins, vec![Some(whole)]));
    let mut outs: Vec<Option<ValueId>> = members.iter().map(|m| Some(m.out)).collect();
    if kind == OpKind::MatMul
        && let Some(b) = &joined_bias
    {
        let bias = add_const(g, &format!("{base}_bias"), b);
        let sum = new_value(g, &format!("{base}_biased"));
        let add = Op::new("Add", domain.clone()).with_name(format!("{base}_add"));
        ops.push((add, vec![Some(whole), Some(bias)], vec![Some(sum)]));
        whole = sum;
        outs.clear();
        for m in members {
            let (add_id, add_out, b, _) = m.bias.as_ref().expect("every member has a bias");
            removed.push(*add_id);
            dropped.extend([*b, m.out]);
            outs.push(Some(*add_out));
        }
    }
    let sizes: Vec<i64> = members.iter().map(|m| m.n as i64).collect();
    let mut split = Op::new("Split", domain).with_name(format!("{base}_split"));
    split.set_attr("axis", AttrValue::Int(axis));
    let mut split_ins = vec![Some(whole)];
    if opset >= 13 {
        split_ins.push(Some(add_ints(g, &format!("{base}_sizes"), sizes)?));
    } else {
        split.set_attr("split", AttrValue::Ints(sizes));
    }
    ops.push((split, split_ins, outs));
    for o in removed {
        rw.set(o, vec![]);
    }
    rw.drop_if_unused(dropped);
    Some(ops)
}

fn first_op_type(kind: OpKind) -> &'static str {
    if kind == OpKind::Gemm { "Gemm" } else { "MatMul" }
}
