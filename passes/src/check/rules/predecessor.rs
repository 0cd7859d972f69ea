//! `qc::check::predecessor`: an op that must come right after another kind of op does not.
//!
//! Why: the DLA runs a batch normalization only fused into the convolution or matrix
//! multiplication right before it (ACCESS DLA guide line 113). Absorbed quantizers between the
//! two (`Conv -> QuantizeLinear -> DequantizeLinear -> BatchNormalization`) do not count.
//!
//! Example: `BatchNormalization(x, ...)` reading a graph input, or a `Relu`'s output: fold it
//! into the convolution before it, or move it right after one.

use qc_ir::target::{Rule, names_op};

use super::{OpCx, Out};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let (Some(follows), f, x) = (&cx.limits.follows, cx.f, cx.x) else { return };
    // Through absorbed quantizers: `Conv -> QuantizeLinear -> DequantizeLinear -> BN`.
    let producer = x.and_then(|v| f.model.graph.value(f.canonical(v)).producer());
    if producer.is_some_and(|p| follows.iter().any(|t| names_op(t, f.op(p)))) {
        return;
    }
    let observed = match (producer, x) {
        (Some(p), _) => format!("after `{}` ({})", f.label(p), f.op(p).op_type()),
        (None, Some(v)) => format!("reads `{}`, which no op writes", f.name(v)),
        (None, None) => "no input".into(),
    };
    let list = or_list(follows);
    cx.push(
        out,
        Rule::Predecessor,
        format!("{} must come right after {list}", cx.what),
        observed,
        format!("right after {list}"),
        "fold it into the convolution or matrix multiplication before it, or move it right after one".into(),
    );
}

/// `A, B or C`.
fn or_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => items.join(""),
    }
}
