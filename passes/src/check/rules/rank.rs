//! `qc::check::rank`: the op's input has a rank the DLA does not take.
//!
//! Why: the DLA's convolutions and pools are 2-D, their filters HxW over (N, C, H, W) feature
//! maps (ACCESS DLA guide line 76); the target's `rank` limit says which ranks an operator
//! entry takes.
//!
//! Example: a 1-D convolution, `Conv(x: f32[1,16,100], w: f32[32,16,3])`, on a target whose
//! convolution takes rank 4. Express it as a 2-D one: reshape the input to (N, C, 1, L) and use
//! a 1xK kernel.

use qc_ir::target::Rule;

use super::super::Quantity;
use super::{OpCx, Out, typed};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let Some(r) = &cx.limits.rank else { return };
    match &cx.xd {
        Some(d) if !r.contains(d.len() as i64) => {
            let observed = Quantity::Int(d.len() as i64);
            let x = cx.push(
                out,
                Rule::Rank,
                format!("input rank {observed} is not supported by {}", cx.what),
                format!("rank {observed}"),
                format!("rank {}{}", r.describe(), if r.contains(4) { " (N, C, H, W)" } else { "" }),
                "express it as a 2-D op: reshape the input to (N, C, 1, L) and use a 1xK kernel".into(),
            );
            typed(x, observed, r);
        }
        Some(_) => {}
        None => out.unchecked.push("rank"),
    }
}
