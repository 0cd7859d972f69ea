//! `fuse-consecutive-transposes`: `Transpose(Transpose(x, p1), p2)` becomes one
//! `Transpose(x, p)` with `p[i] = p1[p2[i]]`, or nothing when `p` is the identity.
//!
//! What it does: for each Transpose whose input is written by another Transpose that nothing
//! else reads, writes one Transpose with the composed permutation in the second one's place (it
//! keeps the second one's name and output). When the composed permutation is the identity, the
//! readers of the output read `x` directly and both ops go; if the output is a graph output (or
//! a subgraph reads it), an identity Transpose stays for `eliminate-identity`. Chains of any
//! length collapse in one run. A missing `perm` (reverse the dims) needs the input's rank.
//!
//! Preconditions: the main graph only. The first Transpose's output has no other reader, is
//! not a graph output and is not read by a subgraph.
//!
//! Postconditions: the model computes the same outputs; no Transpose reads a Transpose output
//! that nothing else reads.
//!
//! Statistics: `fused` (pairs merged), `identity-removed` (pairs that cancelled out),
//! `kept-shared`, `kept-unknown-perm` (no `perm` and unknown rank, or a malformed `perm`).

use qc_ir::dims;
use qc_ir::{AttrValue, Graph, Model, Op, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, input, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-consecutive-transposes",
    summary: "merge Transpose pairs into one Transpose with the composed permutation",
    options: &[],
    build: |_| Ok(Box::new(FuseConsecutiveTransposes)),
};

/// The `fuse-consecutive-transposes` pass.
pub struct FuseConsecutiveTransposes;

impl Pass for FuseConsecutiveTransposes {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let mut changed = false;
        for _ in 0..=model.graph.op_count() {
            let last = !sweep(&mut model.graph, cx, false);
            if last {
                sweep(&mut model.graph, cx, true);
                break;
            }
            changed = true;
        }
        Ok(Changed::from_bool(changed))
    }
}

/// The permutation of a Transpose whose input is `x`.
fn perm_of(g: &Graph, op: &Op, x: ValueId) -> Option<Vec<usize>> {
    let p: Vec<usize> = match op.attr_ints("perm").ok()? {
        Some(p) => p.iter().map(|&i| usize::try_from(i).ok()).collect::<Option<_>>()?,
        None => (0..dims::rank(g, x)?).rev().collect(),
    };
    let mut seen = vec![false; p.len()];
    for &i in &p {
        if i >= p.len() || std::mem::replace(&mut seen[i], true) {
            return None;
        }
    }
    Some(p)
}

fn is_transpose(op: &Op) -> bool {
    op.kind() == OpKind::Transpose && is_onnx(op)
}

/// One sweep over the graph: merges every pair it can (each op in at most one pair). With
/// `count_kept`, only counts the pairs it keeps. Returns whether it changed the graph.
fn sweep(g: &mut Graph, cx: &mut PassContext, count_kept: bool) -> bool {
    let readers = Readers::new(g);
    let mut rw = Rewrite::default();
    let mut rewire: Vec<(ValueId, ValueId)> = Vec::new();
    let mut stats = (0, 0);
    for (id2, t2) in g.ops() {
        if !is_transpose(t2) {
            continue;
        }
        let (Some(mid), Some(out)) = (input(t2, 0), sole_output(t2)) else { continue };
        let Some(id1) = g.value(mid).producer() else { continue };
        let t1 = g.op(id1);
        if !is_transpose(t1) || sole_output(t1) != Some(mid) {
            continue;
        }
        let Some(x) = input(t1, 0) else { continue };
        if readers.sole_reader(g, mid).is_none() {
            if count_kept {
                cx.count("kept-shared", 1);
            }
            continue;
        }
        let (Some(p1), Some(p2)) = (perm_of(g, t1, x), perm_of(g, t2, mid)) else {
            if count_kept {
                cx.count("kept-unknown-perm", 1);
            }
            continue;
        };
        if count_kept
            || p1.len() != p2.len()
            || rw.touches(id1)
            || rw.touches(id2)
            || rewire.iter().any(|(o, _)| *o == x)
        {
            continue;
        }
        let p: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
        let identity = p.iter().enumerate().all(|(i, &j)| i == j);
        rw.drop_if_unused([mid]);
        let readers_free = g.value(out).uses().iter().all(|(r, _)| !rw.touches(*r));
        if identity && readers_free && can_rewire(g, &readers, out) {
            rw.set(id1, vec![]);
            rw.set(id2, vec![]);
            rewire.push((out, x));
            rw.drop_if_unused([out]);
            stats.1 += 1;
        } else {
            let mut op = t2.clone();
            op.set_attr("perm", AttrValue::Ints(p.iter().map(|&i| i as i64).collect()));
            rw.set(id1, vec![]);
            rw.set(id2, vec![(op, vec![Some(x)], vec![Some(out)])]);
            stats.0 += 1;
        }
    }
    if rw.is_empty() {
        return false;
    }
    // Readers of a cancelled pair's output read its input instead.
    for (out, x) in rewire {
        for (op, slot) in g.value(out).uses().to_vec() {
            g.set_input(op, slot as usize, Some(x));
        }
    }
    rw.apply(g);
    cx.count("fused", stats.0);
    cx.count("identity-removed", stats.1);
    true
}

/// Whether every reader of `v` can be made to read another value: `v` is not a graph output
/// and no subgraph reads it.
fn can_rewire(g: &Graph, readers: &Readers, v: ValueId) -> bool {
    !g.outputs.contains(&v) && !readers.captured(g, v)
}
