//! `fold-reshape-own-dims`: a Reshape whose target shape is assembled at run time from its own
//! input's dims gets a constant target that copies those dims with `0`.
//!
//! What it does: exporters write "keep the batch, flatten the rest" as
//! `Reshape(x, Concat(Slice(Shape(x), [0], [1]), [-1]))`, which no constant folding can remove
//! when the batch dim is symbolic. ONNX's Reshape (with `allowzero = 0`) already says "copy this
//! dim of the input" with a `0` at the same position, so the target becomes the constant
//! `[0, -1]` and the Shape, Slice and Concat go when nothing else reads them (onnxslim does the
//! same). The target may be a `Concat` (axis 0) of 1-D pieces or a single piece; each piece is
//! either an integer constant (kept as it is) or a run of `x`'s own dims `[a, b)` taken by
//! `Shape(x)` (with its `start`/`end`), `Slice(Shape(x), ...)` (constant starts and ends, axis 0,
//! step 1; inputs or opset-1 attributes) or `Gather(Shape(x), [i])`, possibly through `Cast`s
//! between `int32` and `int64`, written at positions `[a, b)` of the target, which become `0`s.
//!
//! Preconditions: the main graph only. The Reshape takes its shape as an input (opset 5 or
//! later) and has `allowzero = 0`; `x`'s rank is known; every piece is one of the above and the
//! pieces' lengths add up to the target's. The Casts through `int32` are exact for dims below
//! 2^31, which every dim a tensor can hold in memory is.
//!
//! Postconditions: the model computes the same outputs; the target shape is a constant.
//!
//! Statistics: `folded`, `kept-position` (a run of `x`'s dims written at another position,
//! which `0` cannot express).

use qc_ir::dims;
use qc_ir::{ElemType, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Rewrite, add_ints, input, int_const, is_onnx};

pub const INFO: PassInfo = PassInfo {
    name: "fold-reshape-own-dims",
    summary: "give a Reshape whose target copies its input's own dims a constant target with 0s",
    options: &[],
    build: |_| Ok(Box::new(FoldReshapeOwnDims)),
};

/// The `fold-reshape-own-dims` pass.
pub struct FoldReshapeOwnDims;

impl Pass for FoldReshapeOwnDims {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        if model.onnx_opset() < 5 {
            return Ok(Changed::No);
        }
        let mut plans: Vec<(OpId, Vec<i64>)> = Vec::new();
        for (id, op) in model.graph.ops() {
            if op.kind() != OpKind::Reshape || !is_onnx(op) || op.attr_int("allowzero", 0) != Ok(0) {
                continue;
            }
            match target(model, op) {
                Ok(Some(t)) => plans.push((id, t)),
                Ok(None) => {}
                Err(reason) => cx.count(reason, 1),
            }
        }
        let mut rw = Rewrite::default();
        let g = &mut model.graph;
        for (id, t) in plans {
            let op = g.op(id).clone();
            let Some(old) = input(&op, 1) else { continue };
            let name = g.value(old).name.clone();
            let Some(k) = add_ints(g, &name, t) else { continue };
            let mut ins = op.inputs().to_vec();
            ins[1] = Some(k);
            let outs = op.outputs().to_vec();
            rw.set(id, vec![(op, ins, outs)]);
            rw.drop_if_unused([old]);
            cx.count("folded", 1);
        }
        let changed = !rw.is_empty();
        rw.apply(g);
        Ok(Changed::from_bool(changed))
    }
}

/// The constant target of `reshape`, when its shape input is built from constants and runs of
/// its own input's dims at their own positions.
fn target(model: &Model, reshape: &Op) -> Result<Option<Vec<i64>>, &'static str> {
    let g = &model.graph;
    let (Some(x), Some(s)) = (input(reshape, 0), input(reshape, 1)) else { return Ok(None) };
    if int_const(model, Some(s)).is_some() {
        return Ok(None);
    }
    let Some(rank) = dims::rank(g, x) else { return Ok(None) };
    let pieces: Vec<ValueId> = match g.value(s).producer().map(|p| g.op(p)) {
        Some(c) if c.kind() == OpKind::Concat && is_onnx(c) => {
            if !matches!(c.attr_int("axis", 0), Ok(0 | -1)) {
                return Ok(None);
            }
            match c.inputs().iter().copied().collect::<Option<Vec<_>>>() {
                Some(v) => v,
                None => return Ok(None),
            }
        }
        _ => vec![s],
    };
    let mut out = Vec::new();
    let mut copied = false;
    for piece in pieces {
        if let Some(vals) = int_const(model, Some(piece)) {
            if dims::rank(g, piece) != Some(1) {
                return Ok(None);
            }
            out.extend(vals);
            continue;
        }
        let Some((a, b)) = own_dims(model, piece, x, rank) else { return Ok(None) };
        if a != out.len() {
            return Err("kept-position");
        }
        out.extend(std::iter::repeat_n(0, b - a));
        copied = true;
    }
    Ok(copied.then_some(out))
}

/// `v` with the Casts between int32 and int64 that write it looked through.
fn through_casts(model: &Model, mut v: ValueId) -> ValueId {
    let g = &model.graph;
    while let Some(op) = g.value(v).producer().map(|p| g.op(p)) {
        // 6: int32, 7: int64.
        let to = op.attr_int("to", 0);
        let Some(src) = input(op, 0) else { break };
        if op.kind() != OpKind::Cast
            || !is_onnx(op)
            || !matches!(to, Ok(6 | 7))
            || !matches!(crate::rewrite::elem_in(g, src), Some(ElemType::I32 | ElemType::I64))
        {
            break;
        }
        v = src;
    }
    v
}

/// The `Shape` op that writes `v`, through int Casts.
fn shape_of(model: &Model, v: ValueId) -> Option<&Op> {
    let g = &model.graph;
    let op = g.op(g.value(through_casts(model, v)).producer()?);
    (op.kind() == OpKind::Shape && is_onnx(op)).then_some(op)
}

/// The run `[a, b)` of `x`'s dims that `v` holds, looking through Casts between int32 and int64.
fn own_dims(model: &Model, v: ValueId, x: ValueId, rank: usize) -> Option<(usize, usize)> {
    let g = &model.graph;
    let op = g.op(g.value(through_casts(model, v)).producer()?);
    if !is_onnx(op) {
        return None;
    }
    match op.kind() {
        OpKind::Shape => shape_run(op, x, rank),
        OpKind::Slice => {
            let shape = shape_of(model, input(op, 0)?)?;
            let (a0, b0) = shape_run(shape, x, rank)?;
            let n = b0 - a0;
            let (starts, ends, axes, steps) = if op.inputs().len() >= 3 {
                (
                    int_const(model, input(op, 1))?,
                    int_const(model, input(op, 2))?,
                    match input(op, 3) {
                        Some(a) => Some(int_const(model, Some(a))?),
                        None => None,
                    },
                    match input(op, 4) {
                        Some(s) => Some(int_const(model, Some(s))?),
                        None => None,
                    },
                )
            } else {
                (
                    op.attr_ints("starts").ok()??.to_vec(),
                    op.attr_ints("ends").ok()??.to_vec(),
                    op.attr_ints("axes").ok()?.map(<[i64]>::to_vec),
                    None,
                )
            };
            if starts.len() != 1
                || ends.len() != 1
                || axes.is_some_and(|a| a != [0] && a != [-1])
                || steps.is_some_and(|s| s != [1])
            {
                return None;
            }
            let clamp = |i: i64| -> usize {
                let n = n as i64;
                (if i < 0 { i + n } else { i }).clamp(0, n) as usize
            };
            let (a, b) = (clamp(starts[0]), clamp(ends[0]));
            (a < b).then_some((a0 + a, a0 + b))
        }
        OpKind::Gather => {
            let shape = shape_of(model, input(op, 0)?)?;
            if op.attr_int("axis", 0).ok()? != 0 {
                return None;
            }
            let (a0, b0) = shape_run(shape, x, rank)?;
            let idx = input(op, 1)?;
            if dims::rank(g, idx) != Some(1) {
                return None;
            }
            let i = match int_const(model, Some(idx))?.as_slice() {
                &[i] => i,
                _ => return None,
            };
            let n = (b0 - a0) as i64;
            let i = if i < 0 { i + n } else { i };
            (0..n).contains(&i).then_some((a0 + i as usize, a0 + i as usize + 1))
        }
        _ => None,
    }
}

/// The run of dims `Shape(x)` holds (`start`/`end` attributes, opset 15), when it reads `x`.
fn shape_run(shape: &Op, x: ValueId, rank: usize) -> Option<(usize, usize)> {
    if input(shape, 0)? != x {
        return None;
    }
    let r = rank as i64;
    let clamp = |i: i64| (if i < 0 { i + r } else { i }).clamp(0, r) as usize;
    let a = clamp(shape.attr_int("start", 0).ok()?);
    let b = clamp(shape.attr_int("end", r).ok()?);
    (a < b).then_some((a, b))
}
