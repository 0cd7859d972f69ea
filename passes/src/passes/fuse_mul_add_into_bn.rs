//! `fuse-mul-add-into-bn`: `Add(Mul(x, s), b)` with per-channel constants `s` and `b` becomes
//! one `BatchNormalization(x, s, b, mean = 0, var = 1)` with `epsilon = 0`.
//!
//! What it does: a BatchNormalization computes `(x - mean) / sqrt(var + epsilon) * scale + B`
//! per channel (axis 1); with mean 0, var 1 and epsilon 0 that is exactly `x * scale + B`. So a
//! `Mul` of `x` (rank 2 or more, channel count `C` known) by a constant that varies only along
//! axis 1 (`[C, 1, 1]`, `[1, C, 1, 1]`, or all ones), followed by an `Add` (either operand
//! order) of such a constant, becomes one BatchNormalization that writes the Add's output and
//! keeps the Add's name. Scale, bias, mean and var are new `[C]` initializers of `x`'s element
//! type.
//!
//! Preconditions: the main graph only. The Mul's output is read only by the Add, is not a graph
//! output and is not read by a subgraph; `x`, `s` and `b` have the same float element type; the
//! constants have at most `x`'s rank, so they do not broadcast `x` to a bigger shape; the
//! default-domain opset is at least 9.
//!
//! Postconditions: the model computes the same outputs; one op fewer per fusion.
//!
//! Statistics: `fused`, `kept-shared`, `kept-not-per-channel` (a constant that varies along
//! another axis, or an unknown channel count).

use qc_ir::dims;
use qc_ir::{AttrValue, Dim, ElemType, Graph, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::quant::value_elem;
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, add_float, float_const, input, is_onnx, per_channel, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-mul-add-into-bn",
    summary: "rewrite a per-channel Mul then Add of constants into a BatchNormalization",
    options: &[],
    build: |_| Ok(Box::new(FuseMulAddIntoBn)),
};

/// The `fuse-mul-add-into-bn` pass.
pub struct FuseMulAddIntoBn;

struct Plan {
    mul: OpId,
    add: OpId,
    x: ValueId,
    y: ValueId,
    elem: ElemType,
    scale: Vec<f64>,
    bias: Vec<f64>,
    old: Vec<ValueId>,
}

impl Pass for FuseMulAddIntoBn {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        if model.onnx_opset() < 9 {
            return Ok(Changed::No);
        }
        let readers = Readers::new(&model.graph);
        let mut plans = Vec::new();
        for (id, op) in model.graph.ops() {
            if op.kind() != OpKind::Mul || !is_onnx(op) {
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
            let c = p.scale.len();
            let base = g.value(p.y).name.clone();
            let (Some(s), Some(b), Some(m), Some(v)) = (
                add_float(g, &format!("{base}_scale"), p.elem, vec![c], p.scale),
                add_float(g, &format!("{base}_bias"), p.elem, vec![c], p.bias),
                add_float(g, &format!("{base}_mean"), p.elem, vec![c], vec![0.0; c]),
                add_float(g, &format!("{base}_var"), p.elem, vec![c], vec![1.0; c]),
            ) else {
                continue;
            };
            let add = g.op(p.add);
            let mut bn = Op::new("BatchNormalization", add.domain_raw().map(String::from))
                .with_attr("epsilon", AttrValue::Float(0.0));
            bn.name = add.name.clone();
            rw.set(p.mul, vec![]);
            rw.set(p.add, vec![(bn, vec![Some(p.x), Some(s), Some(b), Some(m), Some(v)], vec![Some(p.y)])]);
            rw.drop_if_unused(p.old);
            cx.count("fused", 1);
        }
        let changed = !rw.is_empty();
        rw.apply(g);
        Ok(Changed::from_bool(changed))
    }
}

/// The non-constant operand and the constant one of a binary op, when exactly one is constant.
fn split(model: &Model, op: &Op) -> Option<(usize, ValueId, ValueId)> {
    let (a, b) = (input(op, 0)?, input(op, 1)?);
    match (float_const(model, Some(a)).is_some(), float_const(model, Some(b)).is_some()) {
        (false, true) => Some((0, a, b)),
        (true, false) => Some((1, b, a)),
        _ => None,
    }
}

fn plan(model: &Model, readers: &Readers, mul_id: OpId, mul: &Op) -> Result<Option<Plan>, &'static str> {
    let g: &Graph = &model.graph;
    let Some(mid) = sole_output(mul) else { return Ok(None) };
    let Some((_, x, s)) = split(model, mul) else { return Ok(None) };
    let Some(&(add_id, _)) = g.value(mid).uses().first() else { return Ok(None) };
    let add = g.op(add_id);
    if add.kind() != OpKind::Add || !is_onnx(add) || add.inputs().len() != 2 {
        return Ok(None);
    }
    let Some((_, m2, b)) = split(model, add) else { return Ok(None) };
    let Some(y) = sole_output(add) else { return Ok(None) };
    if m2 != mid {
        return Ok(None);
    }
    if readers.sole_reader(g, mid).is_none() {
        return Err("kept-shared");
    }
    let Some(elem) =
        value_elem(model, x).filter(|e| matches!(e, ElemType::F32 | ElemType::F64 | ElemType::F16))
    else {
        return Ok(None);
    };
    let dims = dims::of(g, x).ok_or("kept-not-per-channel")?;
    let c = match dims.get(1) {
        Some(Dim::Known(c)) if dims.len() >= 2 => usize::try_from(*c).map_err(|_| "kept-not-per-channel")?,
        _ => return Err("kept-not-per-channel"),
    };
    let r = dims.len();
    let scale = per_channel(model, s, r, c, elem).ok_or("kept-not-per-channel")?;
    let bias = per_channel(model, b, r, c, elem).ok_or("kept-not-per-channel")?;
    Ok(Some(Plan { mul: mul_id, add: add_id, x, y, elem, scale, bias, old: vec![s, b, mid] }))
}
