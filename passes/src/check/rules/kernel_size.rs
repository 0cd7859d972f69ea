//! `qc::check::kernel-size`: a kernel outside the allowed sizes, or not square where the
//! target asks for square kernels.
//!
//! Why: the DLA's convolutions take 1x1 to 7x7 kernels, H and W may differ (ACCESS DLA guide
//! lines 76, 83); max pooling 2x2 or 3x3, average pooling 2x2 to 7x7 (lines 97-99). A global
//! pool is a window over the whole feature map, so a feature map larger than the pooling
//! kernels allow breaks it too.
//!
//! Example: `Conv(x: f32[1,16,32,32], w: f32[32,16,9,9])` has a 9x9 kernel: split it into
//! stacked smaller convolutions (two 3x3 see as far as one 5x5).

use qc_ir::OpKind;
use qc_ir::target::Rule;

use super::{OpCx, Out, dims, typed};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let (Some(k), l, win) = (&cx.limits.kernel, cx.limits, cx.win.as_ref()) else { return };
    match win.and_then(|w| w.kernel.clone()) {
        Some(kernel) if kernel.iter().all(Option::is_some) => {
            let ks: Vec<i64> = kernel.iter().flatten().copied().collect();
            let bad_size = ks.iter().any(|d| !k.contains(*d));
            let bad_square = l.square_kernel && ks.windows(2).any(|p| p[0] != p[1]);
            if bad_size || bad_square {
                let global = win.is_some_and(|w| w.global);
                let allowed = format!(
                    "{}{}",
                    k.describe_square(),
                    if l.square_kernel { ", square" } else { " (H and W may differ)" }
                );
                let hint = if global {
                    "pool in two steps: an average/max pool that brings the feature map within the kernel limit, then the global pool".to_string()
                } else if bad_size
                    && ks
                        .iter()
                        .any(|d| Some(*d) > k.max.or(k.values.as_ref().and_then(|v| v.iter().max().copied())))
                {
                    if matches!(cx.op.kind(), OpKind::Conv) {
                        "split the kernel: stacked smaller convolutions (two 3x3 see as far as one 5x5) fit the limit".to_string()
                    } else {
                        "cascade smaller pooling windows (two 3x3 stride-1 max pools cover 5x5)".to_string()
                    }
                } else if bad_square && !bad_size {
                    format!("use a square window ({})", k.describe_square())
                } else {
                    format!("use a {} kernel", k.describe_square())
                };
                let observed = dims(&kernel);
                let x = cx.push(
                    out,
                    Rule::KernelSize,
                    format!(
                        "{} {} is not supported by {}",
                        if global { "global pooling window" } else { "kernel" },
                        observed,
                        cx.what
                    ),
                    observed.render(),
                    allowed,
                    hint,
                );
                typed(x, observed, k);
            }
        }
        Some(_) | None if win.is_some() => out.unchecked.push("kernel-size"),
        _ => {}
    }
}
