//! `fuse-consecutive-slices`: two `Slice`s in a row on different axes become one.
//!
//! What it does: `Slice(Slice(x, s1, e1, a1, p1), s2, e2, a2, p2)` with constant starts, ends,
//! axes and steps and no axis in common takes each axis's range from the one Slice that names
//! it, so it equals `Slice(x, s1 ++ s2, e1 ++ e2, a1 ++ a2, p1 ++ p2)` (exporters write a
//! multi-axis slice such as `x[:, 1::2]` one axis at a time; onnxslim merges them too). The new
//! Slice writes the second's output and keeps its name; its parameters are new `i64`
//! initializers; the first Slice goes.
//!
//! Preconditions: the main graph only; the default-domain opset is at least 10 (parameters as
//! inputs). The first Slice's output is read only by the second, is not a graph output and is
//! not read by a subgraph; every parameter is a constant (absent axes are `0..n`, absent steps
//! 1); the axes, made non-negative with `x`'s rank, are disjoint (a negative axis needs the rank
//! known).
//!
//! Postconditions: the model computes the same outputs; one op fewer per fusion.
//!
//! Statistics: `fused`, `kept-shared`, `kept-same-axis` (the Slices share an axis).

use qc_ir::dims;
use qc_ir::{Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, add_ints, input, int_const, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-consecutive-slices",
    summary: "merge two Slices in a row on different axes into one",
    options: &[],
    build: |_| Ok(Box::new(FuseConsecutiveSlices)),
};

/// The `fuse-consecutive-slices` pass.
pub struct FuseConsecutiveSlices;

/// A Slice's constant parameters: starts, ends, axes (non-negative), steps.
struct Params([Vec<i64>; 4]);

struct Plan {
    first: OpId,
    second: OpId,
    x: ValueId,
    y: ValueId,
    merged: Params,
    old: Vec<ValueId>,
}

impl Pass for FuseConsecutiveSlices {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        if model.onnx_opset() < 10 {
            return Ok(Changed::No);
        }
        let readers = Readers::new(&model.graph);
        let mut plans = Vec::new();
        for (id, op) in model.graph.ops() {
            if op.kind() != OpKind::Slice || !is_onnx(op) {
                continue;
            }
            match plan(model, &readers, id, op) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(reason) => cx.count(reason, 1),
            }
        }
        let mut rw = Rewrite::default();
        let g = &mut model.graph;
        for p in plans {
            if rw.touches(p.first) || rw.touches(p.second) {
                continue;
            }
            let base = g.value(p.y).name.clone();
            let [s, e, a, st] = p.merged.0;
            let (Some(s), Some(e), Some(a), Some(st)) = (
                add_ints(g, &format!("{base}_starts"), s),
                add_ints(g, &format!("{base}_ends"), e),
                add_ints(g, &format!("{base}_axes"), a),
                add_ints(g, &format!("{base}_steps"), st),
            ) else {
                continue;
            };
            let second = g.op(p.second).clone();
            rw.set(p.first, vec![]);
            rw.set(
                p.second,
                vec![(second, vec![Some(p.x), Some(s), Some(e), Some(a), Some(st)], vec![Some(p.y)])],
            );
            rw.drop_if_unused(p.old);
            cx.count("fused", 1);
        }
        let changed = !rw.is_empty();
        rw.apply(g);
        Ok(Changed::from_bool(changed))
    }
}

/// The constant parameters of a Slice (opset 10 form) reading a value of rank `rank`.
fn params(model: &Model, op: &Op, rank: Option<usize>) -> Option<Params> {
    if op.inputs().len() < 3 {
        return None;
    }
    let starts = int_const(model, input(op, 1))?;
    let ends = int_const(model, input(op, 2))?;
    let n = starts.len();
    if ends.len() != n {
        return None;
    }
    let axes = match input(op, 3) {
        Some(a) => int_const(model, Some(a))?,
        None => (0..n as i64).collect(),
    };
    let steps = match input(op, 4) {
        Some(s) => int_const(model, Some(s))?,
        None => vec![1; n],
    };
    if axes.len() != n || steps.len() != n || steps.contains(&0) {
        return None;
    }
    let axes = axes
        .into_iter()
        .map(|a| match (a < 0, rank) {
            (false, _) => Some(a),
            (true, Some(r)) => Some(a + r as i64).filter(|a| *a >= 0),
            (true, None) => None,
        })
        .collect::<Option<Vec<i64>>>()?;
    Some(Params([starts, ends, axes, steps]))
}

fn plan(model: &Model, readers: &Readers, id: OpId, second: &Op) -> Result<Option<Plan>, &'static str> {
    let g = &model.graph;
    let Some(mid) = input(second, 0) else { return Ok(None) };
    let Some(first_id) = g.value(mid).producer() else { return Ok(None) };
    let first = g.op(first_id);
    if first.kind() != OpKind::Slice || !is_onnx(first) || sole_output(first) != Some(mid) {
        return Ok(None);
    }
    let (Some(x), Some(y)) = (input(first, 0), sole_output(second)) else { return Ok(None) };
    let rank = dims::rank(g, x);
    let (Some(p1), Some(p2)) = (params(model, first, rank), params(model, second, rank)) else {
        return Ok(None);
    };
    if readers.sole_reader(g, mid).is_none() {
        return Err("kept-shared");
    }
    if p1.0[2].iter().any(|a| p2.0[2].contains(a)) {
        return Err("kept-same-axis");
    }
    let mut old: Vec<ValueId> = first.inputs()[1..].iter().flatten().copied().collect();
    old.extend(second.inputs()[1..].iter().flatten().copied());
    old.push(mid);
    let [s1, e1, a1, st1] = p1.0;
    let [s2, e2, a2, st2] = p2.0;
    let cat = |mut a: Vec<i64>, b: Vec<i64>| {
        a.extend(b);
        a
    };
    let merged = Params([cat(s1, s2), cat(e1, e2), cat(a1, a2), cat(st1, st2)]);
    Ok(Some(Plan { first: first_id, second: id, x, y, merged, old }))
}
