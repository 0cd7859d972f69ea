//! `fuse-pad-into-conv`: a zero `Pad` of the spatial dims before a `Conv` or an `AveragePool`
//! (with `count_include_pad = 1`) becomes part of the op's own `pads`.
//!
//! What it does: `Conv(Pad(x))` with a constant-mode Pad of value 0 that pads only the spatial
//! dims (dims 2 and up; the N and C pads are 0) and pads no dim by a negative amount equals
//! `Conv(x)` with the Pad's amounts added to the Conv's `pads`, because a Conv pads with zeros.
//! The same holds for an `AveragePool` that counts the padding (`count_include_pad = 1`) and
//! does not use `ceil_mode`. The Pad goes, and its parameters are dropped when nothing else
//! reads them. The Pad is read as its opset defines it: `pads`/`value` attributes before opset
//! 11, inputs from 11 (a Pad with an `axes` input, opset 18, is kept).
//!
//! MaxPool is never fused: it pads with `-inf`, so a zero Pad changes the maximum of windows
//! whose values are all negative.
//!
//! Preconditions: the main graph only. The Pad's output is read only by input 0 of the op, is
//! not a graph output and is not read by a subgraph; the pads and the value are constants; the
//! op's `auto_pad` is `NOTSET`.
//!
//! Postconditions: the model computes the same outputs; one op fewer per fusion.
//!
//! Statistics: `conv`, `average-pool` (Pads fused into each), `kept-not-zero` (another mode or
//! value, or N/C or negative pads), `kept-not-constant`, `kept-shared`, `kept-unsupported`
//! (`auto_pad`, `ceil_mode`, `count_include_pad = 0`, an `axes` input, a rank mismatch).

use qc_ir::{AttrValue, Graph, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, drop_unused, float_const, input, int_const, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-pad-into-conv",
    summary: "fold a zero spatial Pad into the pads of the Conv or AveragePool after it",
    options: &[],
    build: |_| Ok(Box::new(FusePadIntoConv)),
};

/// The `fuse-pad-into-conv` pass.
pub struct FusePadIntoConv;

struct Plan {
    pad: OpId,
    op: OpId,
    x: ValueId,
    pads: Vec<i64>,
    kind: &'static str,
}

impl Pass for FusePadIntoConv {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let readers = Readers::new(&model.graph);
        let opset = model.onnx_opset();
        let mut plans = Vec::new();
        for (id, op) in model.graph.ops() {
            if op.kind() != OpKind::Pad || !is_onnx(op) {
                continue;
            }
            match plan(model, &readers, opset, id, op) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(reason) => cx.count(reason, 1),
            }
        }
        let changed = !plans.is_empty();
        let g = &mut model.graph;
        for p in plans {
            let pad = g.op(p.pad);
            let old: Vec<ValueId> = pad.inputs().iter().chain(pad.outputs()).flatten().copied().collect();
            g.set_input(p.op, 0, Some(p.x));
            g.op_mut(p.op).set_attr("pads", AttrValue::Ints(p.pads));
            g.remove_op(p.pad);
            drop_unused(g, &old);
            cx.count(p.kind, 1);
        }
        Ok(Changed::from_bool(changed))
    }
}

/// The Pad's amounts, if it is a zero constant-mode Pad whose parameters are constants.
fn zero_pads(model: &Model, opset: i64, pad: &Op) -> Result<Vec<i64>, &'static str> {
    if pad.attr_str("mode", "constant").map_err(|_| "kept-unsupported")? != "constant" {
        return Err("kept-not-zero");
    }
    if opset < 11 {
        if pad.attr_float("value", 0.0).map_err(|_| "kept-unsupported")? != 0.0 {
            return Err("kept-not-zero");
        }
        let pads = pad.attr_ints("pads").map_err(|_| "kept-unsupported")?.ok_or("kept-unsupported")?;
        return Ok(pads.to_vec());
    }
    if input(pad, 3).is_some() {
        return Err("kept-unsupported");
    }
    let pads = int_const(model, input(pad, 1)).ok_or("kept-not-constant")?;
    if let Some(v) = input(pad, 2) {
        let (_, _, vals) = float_const(model, Some(v)).ok_or("kept-not-constant")?;
        if vals.len() != 1 || vals[0] != 0.0 {
            return Err("kept-not-zero");
        }
    }
    Ok(pads)
}

fn plan(
    model: &Model,
    readers: &Readers,
    opset: i64,
    pad_id: OpId,
    pad: &Op,
) -> Result<Option<Plan>, &'static str> {
    let g: &Graph = &model.graph;
    let (Some(x), Some(out)) = (input(pad, 0), sole_output(pad)) else { return Ok(None) };
    let Some(&(op_id, slot)) = g.value(out).uses().first() else { return Ok(None) };
    let op = g.op(op_id);
    let kind = match op.kind() {
        OpKind::Conv => "conv",
        OpKind::AveragePool => "average-pool",
        _ => return Ok(None),
    };
    if !is_onnx(op) || slot != 0 {
        return Ok(None);
    }
    if readers.sole_reader(g, out).is_none() {
        return Err("kept-shared");
    }
    let pads = zero_pads(model, opset, pad)?;
    let r = pads.len() / 2;
    if pads.len() % 2 != 0 || r < 3 {
        return Err("kept-unsupported");
    }
    if pads.iter().any(|&p| p < 0) || pads[0] != 0 || pads[1] != 0 || pads[r] != 0 || pads[r + 1] != 0 {
        return Err("kept-not-zero");
    }
    let unsupported = |_| "kept-unsupported";
    if op.attr_str("auto_pad", "NOTSET").map_err(unsupported)? != "NOTSET" {
        return Err("kept-unsupported");
    }
    if kind == "average-pool"
        && (op.attr_int("count_include_pad", 0).map_err(unsupported)? != 1
            || op.attr_int("ceil_mode", 0).map_err(unsupported)? != 0)
    {
        return Err("kept-unsupported");
    }
    let s = r - 2;
    let mut new = match op.attr_ints("pads").map_err(unsupported)? {
        Some(p) if p.len() == 2 * s => p.to_vec(),
        Some(_) => return Err("kept-unsupported"),
        None => vec![0; 2 * s],
    };
    for i in 0..s {
        new[i] = new[i].checked_add(pads[2 + i]).ok_or("kept-unsupported")?;
        new[s + i] = new[s + i].checked_add(pads[r + 2 + i]).ok_or("kept-unsupported")?;
    }
    Ok(Some(Plan { pad: pad_id, op: op_id, x, pads: new, kind }))
}
