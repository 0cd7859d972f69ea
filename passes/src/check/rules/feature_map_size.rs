//! `qc::check::feature-map-size`: an op's input feature map has a spatial size outside what
//! the op reads.
//!
//! Why: a standard convolution reads 1x1 to 512x512, a depth-wise one 4x4 to 512x512 (ACCESS
//! DLA guide lines 77, 84). The sizes of the feature maps themselves (graph inputs up to
//! 512x512, feature maps up to 256x256, guide line 69) are the tensor limits, checked per
//! feature map in `limits.rs` under the same code.
//!
//! Example: a depth-wise `Conv(x: f32[1,32,2,2], w: f32[32,1,3,3]) {group = 32}` reads a 2x2
//! feature map: downsample later, or use a standard convolution there.

use qc_ir::target::Rule;

use super::{OpCx, Out, dims, typed};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let (Some(fm), l, what) = (&cx.limits.feature_map, cx.limits, &cx.what) else { return };
    match cx.xd.as_ref().filter(|d| d.len() > 2) {
        Some(d) => {
            let sp: Vec<Option<i64>> = d[2..].iter().map(|s| s.map(|s| s as i64)).collect();
            if sp.iter().any(Option::is_none) {
                out.unchecked.push("feature-map-size");
            } else if sp.iter().flatten().any(|s| !fm.contains(*s)) {
                let too_small = fm.min.is_some_and(|m| sp.iter().flatten().any(|s| *s < m));
                let observed = dims(&sp);
                let x = cx.push(
                    out,
                    Rule::FeatureMapSize,
                    format!("input feature map {observed} is outside what {what} reads"),
                    observed.render(),
                    fm.describe_square(),
                    if too_small {
                        format!(
                            "{what} needs at least {0}x{0}: downsample later, or use a standard convolution here",
                            fm.min.unwrap_or(1)
                        )
                    } else {
                        "downsample earlier (a stride-2 layer or a pooling) or tile the input".into()
                    },
                );
                typed(x, observed, fm);
            }
        }
        None if l.rank.is_none() || cx.xd.is_none() => out.unchecked.push("feature-map-size"),
        None => {}
    }
}
