//! `qc::check::stride`: a stride outside the allowed values.
//!
//! Why: the DLA's convolutions and pools step by 1 or 2 in each direction (ACCESS DLA guide
//! lines 79, 86, 100). Global pools have no stride and are not checked.
//!
//! Example: `MaxPool(x) {kernel_shape = [3, 3], strides = [3, 3]}`: use stride 2, and
//! downsample further with another stride-2 layer or a pooling.

use qc_ir::target::Rule;

use super::{OpCx, Out, dims, typed};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let (Some(w), Some(s)) = (&cx.win, &cx.limits.stride) else { return };
    if w.global || w.strides.iter().all(|x| s.contains(*x)) {
        return;
    }
    let shown: Vec<Option<i64>> = w.strides.iter().map(|x| Some(*x)).collect();
    let observed = dims(&shown);
    let x = cx.push(
        out,
        Rule::Stride,
        format!("stride {observed} is not supported by {}", cx.what),
        observed.render(),
        format!("{} in each direction", s.describe()),
        format!("use stride {}; downsample further with another stride-2 layer or a pooling", s.describe()),
    );
    typed(x, observed, s);
}
