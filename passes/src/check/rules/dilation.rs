//! `qc::check::dilation`: a dilation outside the allowed values.
//!
//! Why: the ACCESS DLA guide does not limit dilation, but a target file can (`dilation: 1`)
//! for a DLA whose convolution engine reads contiguous windows only.
//!
//! Example: `Conv(x, w) {dilations = [2, 2]}` on a target with `dilation: 1`: use an undilated
//! kernel (a dilated 3x3 sees as far as a 5x5, which fits).

use qc_ir::target::Rule;

use super::{OpCx, Out, dims, typed};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let (Some(w), Some(d)) = (&cx.win, &cx.limits.dilation) else { return };
    if w.dilations.iter().all(|x| d.contains(*x)) {
        return;
    }
    let shown: Vec<Option<i64>> = w.dilations.iter().map(|x| Some(*x)).collect();
    let observed = dims(&shown);
    let x = cx.push(
        out,
        Rule::Dilation,
        format!("dilation {observed} is not supported by {}", cx.what),
        observed.render(),
        d.describe(),
        "use an undilated kernel (a dilated 3x3 sees as far as a 5x5, which fits)".into(),
    );
    typed(x, observed, d);
}
