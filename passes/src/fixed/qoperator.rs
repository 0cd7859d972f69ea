//! QOperator layers written out as QDQ: `QLinearConv` as `DequantizeLinear -> Conv ->
//! QuantizeLinear` and `QLinearMatMul` as `DequantizeLinear -> MatMul -> QuantizeLinear`, the
//! weights (and QLinearConv's 32-bit bias, at scale `x_scale * w_scale`) read through
//! `DequantizeLinear`s of constants. The result computes what the QOperator form computes up to
//! the rounding of the accumulator, which QLinearConv does once and the QDQ form also does once
//! (in its QuantizeLinear).

use qc_ir::{AttrValue, ElemType, Model, Op, OpId, OpKind, ValueId};

use super::FixedError;
use crate::eval::Array;
use crate::quant::const_array;
use crate::rewrite::{NewOp, Rewrite, add_const, new_value};

fn input(op: &Op, i: usize) -> Option<ValueId> {
    op.inputs().get(i).copied().flatten()
}

/// A DequantizeLinear at `scale`, on `axis` when the scale has more than one value.
fn dq(m: &Model, scale: ValueId, axis: i64, name: String) -> Op {
    let per_axis = const_array(m, scale).is_some_and(|a| a.len() > 1);
    let op = Op::new("DequantizeLinear", None).with_name(name);
    if per_axis { op.with_attr("axis", AttrValue::Int(axis)) } else { op }
}

/// Expands every QOperator layer of `m`; returns how many.
pub(crate) fn expand(m: &mut Model) -> Result<usize, FixedError> {
    let ids: Vec<OpId> = m
        .graph
        .ops()
        .filter(|(_, op)| matches!(op.kind(), OpKind::QLinearConv | OpKind::QLinearMatMul))
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let mut rw = Rewrite::default();
    for &id in &ids {
        let op = m.graph.op(id).clone();
        let label = m.graph.op_label(id);
        let need = |i: usize| {
            input(&op, i).ok_or_else(|| FixedError::Unsupported {
                node: label.clone(),
                reason: format!("input {i} is missing"),
            })
        };
        let Some(y) = op.outputs().first().copied().flatten() else { continue };
        let (x, xs, xz, w, ws, wz, ys, yz) =
            (need(0)?, need(1)?, input(&op, 2), need(3)?, need(4)?, input(&op, 5), need(6)?, input(&op, 7));
        let conv = op.kind() == OpKind::QLinearConv;
        let xf = new_value(&mut m.graph, &format!("{label}_x"));
        let wf = new_value(&mut m.graph, &format!("{label}_w"));
        let yf = new_value(&mut m.graph, &format!("{label}_acc"));
        let mut new: Vec<NewOp> = Vec::new();
        new.push((dq(m, xs, 1, format!("{label}_dq_x")), vec![Some(x), Some(xs), xz], vec![Some(xf)]));
        let w_axis = if conv { 0 } else { 1 };
        new.push((dq(m, ws, w_axis, format!("{label}_dq_w")), vec![Some(w), Some(ws), wz], vec![Some(wf)]));
        let mut layer_ins = vec![Some(xf), Some(wf)];
        if conv && let Some(b) = input(&op, 8) {
            // The int32 bias at scale x_scale * w_scale, read through a DequantizeLinear.
            let (Some(sx), Some(sw)) = (const_array(m, xs), const_array(m, ws)) else {
                return Err(FixedError::Unsupported {
                    node: label,
                    reason: "its scales are not constants".into(),
                });
            };
            let sx = sx.to_f64()?.first().copied().unwrap_or(1.0);
            let sb: Vec<f64> = sw.to_f64()?.iter().map(|s| s * sx).collect();
            let n = sb.len();
            let scale = Array::from_f64s(ElemType::F32, if n > 1 { vec![n] } else { vec![] }, sb)?;
            let sv = add_const(&mut m.graph, &format!("{label}_bias_scale"), &scale);
            let bf = new_value(&mut m.graph, &format!("{label}_b"));
            let d = Op::new("DequantizeLinear", None).with_name(format!("{label}_dq_b"));
            let d = if n > 1 { d.with_attr("axis", AttrValue::Int(0)) } else { d };
            new.push((d, vec![Some(b), Some(sv)], vec![Some(bf)]));
            layer_ins.push(Some(bf));
        }
        let mut layer = Op::new(if conv { "Conv" } else { "MatMul" }, None).with_name(label.clone());
        layer.attrs = op.attrs.clone();
        new.push((layer, layer_ins, vec![Some(yf)]));
        new.push((
            Op::new("QuantizeLinear", None).with_name(format!("{label}_q")),
            vec![Some(yf), Some(ys), yz],
            vec![Some(y)],
        ));
        rw.set(id, new);
    }
    rw.apply(&mut m.graph);
    Ok(ids.len())
}
