//! qonnx's channels-last wrappers (domain `qonnx.custom_op.channels_last`): `Conv`, `MaxPool`
//! and `BatchNormalization` on NHWC (or NWC) data, with the standard op's attributes. A `Conv`'s
//! weight is channels-last too (`O, kH, kW, I/group`: qonnx transposes inputs 0 and 1 of a Conv
//! to channels-first before running the standard op). The rule moves the channel dim of input 0
//! (and of a Conv's input 1) to position 1, applies the standard rule, and moves output 0's
//! channel dim back to the end.

use qc_ir::OpKind;

use super::{Cx, R, TypeFact};

/// The wrapper domain.
pub const DOMAIN: &str = qc_ir::op::CHANNELS_LAST_DOMAIN;

/// NHWC dims to NCHW.
pub(crate) fn to_first<T: Clone>(d: &[T]) -> Vec<T> {
    let mut v = vec![d[0].clone(), d[d.len() - 1].clone()];
    v.extend_from_slice(&d[1..d.len() - 1]);
    v
}

/// NCHW dims to NHWC.
pub(crate) fn to_last<T: Clone>(d: &[T]) -> Vec<T> {
    let mut v = vec![d[0].clone()];
    v.extend_from_slice(&d[2..]);
    v.push(d[1].clone());
    v
}

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    let moved = match cx.op.kind() {
        OpKind::ChannelsLastConv => 2,
        OpKind::ChannelsLastMaxPool | OpKind::ChannelsLastBatchNormalization => 1,
        _ => return None,
    };
    let op = cx.op.in_domain(None);
    let mut ins = cx.ins.to_vec();
    for f in ins.iter_mut().take(moved).flatten() {
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
