//! qonnx's channels-last wrappers (domain `qonnx.custom_op.channels_last`): `Conv`, `MaxPool`
//! and `BatchNormalization` on NHWC (or NWC) data, with the standard op's attributes and
//! weights. The rule moves input 0's channel dim to position 1, applies the standard rule, and
//! moves output 0's channel dim back to the end.

use super::{Cx, R, TypeFact};

/// The wrapper domain.
pub const DOMAIN: &str = "qonnx.custom_op.channels_last";

/// NHWC dims to NCHW.
fn to_first<T: Clone>(d: &[T]) -> Vec<T> {
    let mut v = vec![d[0].clone(), d[d.len() - 1].clone()];
    v.extend_from_slice(&d[1..d.len() - 1]);
    v
}

/// NCHW dims to NHWC.
fn to_last<T: Clone>(d: &[T]) -> Vec<T> {
    let mut v = vec![d[0].clone()];
    v.extend_from_slice(&d[2..]);
    v.push(d[1].clone());
    v
}

pub(super) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    if cx.op.domain() != DOMAIN || !matches!(cx.op.op_type(), "Conv" | "MaxPool" | "BatchNormalization") {
        return None;
    }
    let op = cx.op.in_domain(None);
    let mut ins = cx.ins.to_vec();
    if let Some(Some(f)) = ins.first_mut() {
        f.value = None;
        if let Some(s) = f.shape.as_mut().filter(|s| s.len() >= 3) {
            *s = to_first(s);
        }
    }
    let inner = Cx { op: &op, ins: &ins, opset: cx.opset };
    let out = super::dispatch(&inner)?;
    Some(out.map(|mut outs| {
        if let Some(Some(f)) = outs.first_mut()
            && let Some(s) = f.shape.as_mut().filter(|s| s.len() >= 3)
        {
            *s = to_last(s);
        }
        outs
    }))
}
