//! `fuse-scale-bias-into-conv`: a per-channel `Add` or `Mul` of a constant after a `Conv` is
//! folded into the Conv's bias and weight.
//!
//! What it does: with `y = Conv(x, W, B)` (`W[M, C/g, k...]`, `B[M]` or absent) read only by
//! - `Add(y, k)` (either operand order), `k` one value per output channel: the bias becomes
//!   `B + k` (created when absent);
//! - `Mul(y, s)` (either order), `s` one value per output channel: `W[m] *= s[m]` and the bias
//!   `B * s`.
//!
//! The Conv then writes the Add's or Mul's output and keeps its own name. A per-channel constant
//! is one that varies only along axis 1 of the Conv's output (`[M, 1, 1]`, `[1, M, 1, 1]`, or a
//! single value) and has at most the output's rank, so it does not broadcast the output to a
//! bigger shape. Values are computed in `f64` and stored in the weight's element type. This is
//! the rule onnx-simplifier and onnxslim apply to a Conv followed by an Add of a constant (a bias
//! written as its own node by exporters that fold a normalization late); `fuse-bn-into-conv`
//! covers a BatchNormalization and `fuse-mul-add-into-bn` a Mul and Add together.
//!
//! Preconditions: the main graph only. The Conv is in the default domain with a constant float
//! weight of rank 3 or more and a constant or absent bias; its output is read only by the Add or
//! Mul, is not a graph output and is not read by a subgraph; the constant has the weight's
//! element type.
//!
//! Postconditions: the model computes the same outputs, up to float rounding of the folded
//! weights and bias; one op fewer per fold. A chain (Conv, Add, Mul) folds over two runs (the
//! default pipeline's fixpoint runs it again).
//!
//! Statistics: `add`, `mul` (folds of each kind), `kept-shared` (the Conv's output has another
//! reader), `kept-not-per-channel` (the constant varies along another axis or would grow the
//! output), `kept-not-constant` (the Conv's weight or bias is not a constant).

use qc_ir::{Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, add_float, float_const, input, is_onnx, per_channel, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-scale-bias-into-conv",
    summary: "fold a per-channel Add or Mul of a constant after a Conv into its bias and weight",
    options: &[],
    build: |_| Ok(Box::new(FuseScaleBiasIntoConv)),
};

/// The `fuse-scale-bias-into-conv` pass.
pub struct FuseScaleBiasIntoConv;

/// One fold, found on the unchanged graph.
struct Plan {
    conv: OpId,
    /// The Add or Mul that disappears.
    op: OpId,
    kind: &'static str,
    /// The new weight (`None`: unchanged) and bias.
    weight: Option<Vec<f64>>,
    bias: Vec<f64>,
    /// The Add's or Mul's output, which the Conv now writes.
    y: ValueId,
    old: Vec<ValueId>,
}

impl Pass for FuseScaleBiasIntoConv {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let readers = Readers::new(&model.graph);
        let mut plans = Vec::new();
        for (id, op) in model.graph.ops() {
            if !matches!(op.kind(), OpKind::Add | OpKind::Mul) || !is_onnx(op) || op.inputs().len() != 2 {
                continue;
            }
            match plan(model, &readers, id, op) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(reason) => cx.count(reason, 1),
            }
        }
        let mut rw = Rewrite::default();
        for p in plans {
            if rw.touches(p.conv) || rw.touches(p.op) {
                continue;
            }
            let g = &mut model.graph;
            let conv = g.op(p.conv).clone();
            let Some(w) = input(&conv, 1) else { continue };
            let Some((elem, wdims, _)) = float_const(model, Some(w)) else { continue };
            let g = &mut model.graph;
            let yname = g.value(p.y).name.clone();
            let mut ins = conv.inputs().to_vec();
            if let Some(wv) = p.weight {
                let wname = g.value(w).name.clone();
                let Some(nw) = add_float(g, &format!("{wname}_{}", p.kind), elem, wdims.clone(), wv) else {
                    continue;
                };
                ins[1] = Some(nw);
            }
            let Some(nb) = add_float(g, &format!("{yname}_bias"), elem, vec![wdims[0]], p.bias) else {
                continue;
            };
            ins.resize(ins.len().max(3), None);
            ins[2] = Some(nb);
            rw.set(p.conv, vec![(conv, ins, vec![Some(p.y)])]);
            rw.set(p.op, vec![]);
            rw.drop_if_unused(p.old);
            cx.count(p.kind, 1);
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}

/// `Ok(None)`: not a pattern this pass looks at; `Err(reason)`: a pattern it keeps.
fn plan(model: &Model, readers: &Readers, id: OpId, op: &Op) -> Result<Option<Plan>, &'static str> {
    let g = &model.graph;
    let (Some(a), Some(b)) = (input(op, 0), input(op, 1)) else { return Ok(None) };
    let is_conv = |v: ValueId| {
        g.value(v).producer().is_some_and(|p| g.op(p).kind() == OpKind::Conv && is_onnx(g.op(p)))
    };
    let (x, k) = match (is_conv(a), is_conv(b)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return Ok(None),
    };
    if float_const(model, Some(k)).is_none() {
        return Ok(None);
    }
    let Some(y) = sole_output(op) else { return Ok(None) };
    let Some(conv_id) = g.value(x).producer() else { return Ok(None) };
    let conv = g.op(conv_id);
    if readers.sole_reader(g, x).is_none() || sole_output(conv) != Some(x) {
        return Err("kept-shared");
    }
    let Some(w) = input(conv, 1) else { return Ok(None) };
    let (elem, wdims, wv) = float_const(model, Some(w)).ok_or("kept-not-constant")?;
    if wdims.len() < 3 {
        return Ok(None);
    }
    let m = wdims[0];
    let mut old = vec![x, k];
    let bias = match input(conv, 2) {
        None => vec![0.0; m],
        Some(bv) => {
            let (be, bd, vals) = float_const(model, Some(bv)).ok_or("kept-not-constant")?;
            if be != elem || bd != [m] {
                return Ok(None);
            }
            old.push(bv);
            vals
        }
    };
    let c = per_channel(model, k, wdims.len(), m, elem).ok_or("kept-not-per-channel")?;
    let folded: Vec<f64>;
    let (kind, weight) = if op.kind() == OpKind::Add {
        folded = bias.iter().zip(&c).map(|(b, k)| b + k).collect();
        ("add", None)
    } else {
        folded = bias.iter().zip(&c).map(|(b, s)| b * s).collect();
        let per = wv.len() / m.max(1);
        let scaled = wv.iter().enumerate().map(|(i, v)| v * c[i / per.max(1)]).collect();
        old.push(w);
        ("mul", Some(scaled))
    };
    if folded.iter().chain(weight.iter().flatten()).any(|v| !v.is_finite()) {
        return Ok(None);
    }
    Ok(Some(Plan { conv: conv_id, op: id, kind, weight, bias: folded, y, old }))
}
