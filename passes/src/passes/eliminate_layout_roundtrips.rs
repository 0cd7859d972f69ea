//! `eliminate-layout-roundtrips`: a chain of Transposes and Reshapes that puts every element
//! back where it was, with only element-wise ops between them, is removed.
//!
//! What it does: attention blocks split heads and merge them back
//! (`Reshape [B,S,H,D] -> Transpose(0,2,1,3) -> ... -> Transpose(0,2,1,3) -> Reshape [B,S,H*D]`),
//! and exporters leave `Transpose -> Reshape -> Reshape -> Transpose` chains that cancel. Walking
//! back from each `Transpose`/`Reshape`/`Flatten`/`Squeeze`/`Unsqueeze`, the pass collects layout
//! ops and the element-wise ops between them, and asks whether the layout ops together are the
//! identity: the chain's first input and last output have the same dims, and moving a tensor
//! holding `0, 1, 2, ...` through the layout ops gives it back unchanged (reshapes keep the
//! row-major order; transposes permute it). When they are, the layout ops go and the element-wise
//! ops read the chain's input directly, in its layout. The last element-wise op writes the
//! chain's output (so its name and declared type stay); with none, readers of the output read the
//! chain's input.
//!
//! This is exact: an element-wise op whose other operands are one-element constants computes
//! each element from that element alone, so it commutes with any rearrangement of the elements.
//! Allowed between the layout ops: unary activations and math (`Relu`, `Sigmoid`, `Tanh`, `Erf`,
//! `Exp`, `Log`, `Sqrt`, `Abs`, `Neg`, `Reciprocal`, `Gelu`, `Mish`, `Swish`, `HardSwish`,
//! `HardSigmoid`, `LeakyRelu`, `Elu`, `Selu`, `Softplus`, `Ceil`, `Floor`, `Round`, `Sign`,
//! `Identity`, `Cast`) and `Add`/`Sub`/`Mul`/`Div`/`Pow`/`Max`/`Min`/`PRelu`/`Clip` whose other
//! operands are one-element constants of rank at most that of the chain's input and of the value
//! they meet.
//!
//! Preconditions: the main graph only. Every value inside the chain is read only by the next op
//! of the chain (not elsewhere, not a graph output, not by a body). The dims of the chain's input
//! and of every Reshape-like output are known (run `infer-shapes` first), with at most 2^22
//! elements.
//!
//! Postconditions: the model computes the same outputs; each round trip loses its 2 or more
//! layout ops.
//!
//! Statistics: `round-trips` (chains removed), `ops-removed` (layout ops removed),
//! `kept-graph-output` (a chain without element-wise ops from a graph input to a graph output),
//! `kept-too-large`.

use std::collections::HashSet;

use qc_ir::dims;
use qc_ir::{Graph, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::pattern::Pat;
use crate::registry::PassInfo;
use crate::rewrite::{Rewrite, input, is_onnx, new_value, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "eliminate-layout-roundtrips",
    summary: "remove Transpose/Reshape chains that compose to the identity, with element-wise ops between them",
    options: &[],
    build: |_| Ok(Box::new(EliminateLayoutRoundtrips)),
};

/// The `eliminate-layout-roundtrips` pass.
pub struct EliminateLayoutRoundtrips;

/// The most elements the identity check moves.
const MAX_ELEMENTS: u64 = 1 << 22;

fn is_layout(op: &Op) -> bool {
    matches!(
        op.kind(),
        OpKind::Transpose | OpKind::Reshape | OpKind::Flatten | OpKind::Squeeze | OpKind::Unsqueeze
    ) && is_onnx(op)
}

fn is_elementwise(op: &Op) -> bool {
    use OpKind::*;
    matches!(
        op.kind(),
        Relu | Sigmoid
            | Tanh
            | Erf
            | Exp
            | Log
            | Sqrt
            | Abs
            | Neg
            | Reciprocal
            | Gelu
            | Mish
            | Swish
            | HardSwish
            | HardSigmoid
            | LeakyRelu
            | Elu
            | Selu
            | Softplus
            | Ceil
            | Floor
            | Round
            | Sign
            | Identity
            | Cast
            | Add
            | Sub
            | Mul
            | Div
            | Pow
            | Max
            | Min
            | PRelu
            | Clip
    ) && is_onnx(op)
}

/// A chain found: its ops from first to last with, for each element-wise op, the slot the chain
/// enters it at; its input and output.
struct Chain {
    ops: Vec<(OpId, Option<usize>)>,
    x: ValueId,
    y: ValueId,
}

enum Walk {
    Found(Chain),
    TooLarge,
    None,
}

impl Pass for EliminateLayoutRoundtrips {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let p = Pat::new(model);
        let ends: Vec<OpId> = p.g.ops().filter(|(_, op)| is_layout(op)).map(|(id, _)| id).collect();
        let mut claimed: HashSet<OpId> = HashSet::new();
        let mut chains = Vec::new();
        let mut too_large = 0;
        // Later ends first: the longest chain through an op wins.
        for &end in ends.iter().rev() {
            if claimed.contains(&end) {
                continue;
            }
            match walk(&p, end) {
                Walk::Found(c) if c.ops.iter().all(|(o, _)| !claimed.contains(o)) => {
                    claimed.extend(c.ops.iter().map(|(o, _)| *o));
                    chains.push(c);
                }
                Walk::TooLarge => too_large += 1,
                _ => {}
            }
        }
        if too_large > 0 {
            cx.count("kept-too-large", too_large);
        }
        drop(p);
        let g = &mut model.graph;
        let mut rw = Rewrite::default();
        for c in chains {
            let middles: Vec<(OpId, usize)> = c.ops.iter().filter_map(|&(o, s)| s.map(|s| (o, s))).collect();
            if middles.is_empty() {
                if !rw.replace_uses(g, c.y, c.x) {
                    cx.count("kept-graph-output", 1);
                    continue;
                }
            } else {
                let mut cur = c.x;
                for (i, &(id, slot)) in middles.iter().enumerate() {
                    let op = g.op(id).clone();
                    let mut ins = op.inputs().to_vec();
                    ins[slot] = Some(cur);
                    let out = if i + 1 == middles.len() {
                        c.y
                    } else {
                        let old = sole_output(&op).map(|o| g.value(o).name.clone()).unwrap_or_default();
                        new_value(g, &old)
                    };
                    let mut outs = op.outputs().to_vec();
                    outs[0] = Some(out);
                    rw.set(id, vec![(op, ins, outs)]);
                    cur = out;
                }
            }
            let mut removed = 0;
            for &(id, s) in &c.ops {
                let op = g.op(id);
                rw.drop_if_unused(op.outputs().iter().flatten().copied().filter(|&v| v != c.y));
                if s.is_none() {
                    rw.drop_if_unused(op.inputs().iter().skip(1).flatten().copied());
                    rw.set(id, vec![]);
                    removed += 1;
                }
            }
            cx.count("round-trips", 1);
            cx.count("ops-removed", removed);
        }
        let changed = !rw.is_empty();
        rw.apply(g);
        Ok(Changed::from_bool(changed))
    }
}

/// Walks back from the layout op `end` to the first layout op at which the chain is the identity.
fn walk(p: &Pat, end: OpId) -> Walk {
    let g = p.g;
    let Some(y) = sole_output(g.op(end)) else { return Walk::None };
    let mut ops: Vec<(OpId, Option<usize>)> = vec![(end, None)];
    let mut layouts = 1;
    let mut next = end;
    let mut v = match input(g.op(end), 0) {
        Some(v) => v,
        None => return Walk::None,
    };
    for _ in 0..32 {
        let Some(id) = g.value(v).producer() else { return Walk::None };
        let op = g.op(id);
        if sole_output(op) != Some(v) || p.sole_reader(v).map(|(r, _)| r) != Some(next) {
            return Walk::None;
        }
        let Some((slot, into)) = chain_slot(p, op) else { return Walk::None };
        ops.insert(0, (id, slot));
        next = id;
        v = into;
        if slot.is_none() {
            layouts += 1;
            if layouts >= 2 {
                match identity(g, v, &ops) {
                    Some(true) => {
                        if middles_fit(p, v, &ops) {
                            return Walk::Found(Chain { ops, x: v, y });
                        }
                        return Walk::None;
                    }
                    Some(false) => {}
                    None => return Walk::TooLarge,
                }
            }
        }
    }
    Walk::None
}

/// For a layout op: `(None, its data input)`; for an element-wise op with exactly one
/// non-constant operand: `(Some(slot), that operand)`.
fn chain_slot(p: &Pat, op: &Op) -> Option<(Option<usize>, ValueId)> {
    if is_layout(op) {
        return Some((None, input(op, 0)?));
    }
    if !is_elementwise(op) {
        return None;
    }
    let mut found = None;
    for (i, v) in op.inputs().iter().enumerate() {
        let Some(v) = *v else { continue };
        if p.scalar(v, usize::MAX).is_some() {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some((Some(i), v));
    }
    found
}

/// Whether every constant operand of the element-wise ops has a rank at most that of `x` and of
/// the value it meets (so no op broadcasts to more dims, before or after the rewrite).
fn middles_fit(p: &Pat, x: ValueId, ops: &[(OpId, Option<usize>)]) -> bool {
    let Some(rx) = p.rank(x) else { return false };
    ops.iter().all(|&(id, slot)| {
        let Some(slot) = slot else { return true };
        let op = p.g.op(id);
        let Some(rv) = input(op, slot).and_then(|v| p.rank(v)) else { return false };
        op.inputs()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != slot)
            .all(|(_, v)| v.is_none_or(|v| p.scalar(v, rx.min(rv)).is_some()))
    })
}

/// Whether the layout ops of `ops`, applied to `x`, are the identity: `Some(false)` when they
/// are not or a dim is unknown, `None` when the check would move too many elements.
fn identity(g: &Graph, x: ValueId, ops: &[(OpId, Option<usize>)]) -> Option<bool> {
    let Ok(start) = dims::known(g, x) else { return Some(false) };
    let Some(count) = dims::product(&start) else { return Some(false) };
    if count > MAX_ELEMENTS {
        return None;
    }
    let mut cur: Vec<u64> = start.clone();
    let mut idx: Vec<u32> = (0..count as u32).collect();
    for &(id, slot) in ops {
        if slot.is_some() {
            continue;
        }
        let op = g.op(id);
        if op.kind() == OpKind::Transpose {
            let perm: Vec<usize> = match op.attr_ints("perm") {
                Ok(Some(p)) => match p.iter().map(|&i| usize::try_from(i).ok()).collect::<Option<_>>() {
                    Some(p) => p,
                    None => return Some(false),
                },
                Ok(None) => (0..cur.len()).rev().collect(),
                Err(_) => return Some(false),
            };
            let Some(next) = transpose(&idx, &cur, &perm) else { return Some(false) };
            cur = perm.iter().map(|&i| cur[i]).collect();
            idx = next;
        } else {
            let Some(out) = sole_output(op) else { return Some(false) };
            let Ok(d) = dims::known(g, out) else { return Some(false) };
            if dims::product(&d) != Some(count) {
                return Some(false);
            }
            cur = d;
        }
    }
    Some(cur == start && idx.iter().enumerate().all(|(i, &j)| i as u32 == j))
}

/// `a` (dims `d`, row-major) transposed by `perm`, when `perm` is a permutation of `d`'s axes.
fn transpose(a: &[u32], d: &[u64], perm: &[usize]) -> Option<Vec<u32>> {
    let r = d.len();
    let mut seen = vec![false; r];
    if perm.len() != r || perm.iter().any(|&i| i >= r || std::mem::replace(&mut seen[i], true)) {
        return None;
    }
    let d: Vec<usize> = d.iter().map(|&x| x as usize).collect();
    let mut strides = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * d[i + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&i| d[i]).collect();
    let out_strides: Vec<usize> = perm.iter().map(|&i| strides[i]).collect();
    let mut out = Vec::with_capacity(a.len());
    let mut pos = vec![0usize; r];
    let mut src = 0usize;
    for _ in 0..a.len() {
        out.push(a[src]);
        for k in (0..r).rev() {
            pos[k] += 1;
            src += out_strides[k];
            if pos[k] < out_dims[k] {
                break;
            }
            src -= out_strides[k] * pos[k];
            pos[k] = 0;
        }
    }
    Some(out)
}
