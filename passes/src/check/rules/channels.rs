//! `qc::check::channels`: too many or too few channels (features, for a fully connected layer
//! or a matrix multiplication) at an op.
//!
//! Why: the DLA's convolutions and fully connected layers take at most 2048 input and output
//! channels (ACCESS DLA guide lines 78, 85, 105). The limits of the feature maps themselves
//! (16 to 2048, a multiple of 16, guide line 68; graph inputs 1 to 512) are the tensor limits,
//! checked per feature map in `limits.rs` under the same code.
//!
//! Example: `Conv(x: f32[1,16,8,8], w: f32[4096,16,1,1])` writes 4096 channels: split it into
//! parts of at most 2048 output channels, joined by a Concat.

use qc_ir::target::Rule;
use qc_ir::{OpId, OpKind};

use super::super::Facts;
use super::super::Quantity;
use super::{OpCx, Out, typed};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let Some(c) = &cx.limits.channels else { return };
    let (cin, cout) = channels(cx.f, cx.id);
    if cin.is_none() || cout.is_none() {
        out.unchecked.push("channels");
    }
    let bad: Vec<String> = [("input", cin), ("output", cout)]
        .iter()
        .filter_map(|(side, n)| n.filter(|n| !c.contains(*n)).map(|n| format!("{n} {side}")))
        .collect();
    let named: Vec<(&'static str, i64)> = [("input", cin), ("output", cout)]
        .iter()
        .filter_map(|(side, n)| n.filter(|n| !c.contains(*n)).map(|n| (*side, n)))
        .collect();
    if !bad.is_empty() {
        let unit =
            if matches!(cx.op.kind(), OpKind::Gemm | OpKind::MatMul) { "features" } else { "channels" };
        let x = cx.push(
            out,
            Rule::Channels,
            format!("{} {unit} are more than {} supports", bad.join(" and "), cx.what),
            format!("{} {unit}", bad.join(", ")),
            format!("{} {unit}", c.describe()),
            format!(
                "split the layer into parts of {} {unit} (several ops joined by a Concat, or summed)",
                c.describe()
            ),
        );
        typed(x, Quantity::Named(named), c);
    }
}

/// Input and output channels (features for Gemm and MatMul) of a DLA op.
fn channels(f: &Facts<'_>, id: OpId) -> (Option<i64>, Option<i64>) {
    let op = f.op(id);
    let d = |slot: usize| f.input(id, slot).and_then(|v| f.dims(v));
    let dim = |dims: &Option<Vec<Option<u64>>>, i: isize| -> Option<i64> {
        let dims = dims.as_ref()?;
        let i = if i < 0 { dims.len() as isize + i } else { i };
        dims.get(usize::try_from(i).ok()?).copied().flatten().and_then(|x| i64::try_from(x).ok())
    };
    let y = f.output(id).and_then(|v| f.dims(v));
    match op.kind() {
        OpKind::Gemm => {
            let a = op.gemm().ok();
            let (ta, tb) = a.map_or((false, false), |a| (a.trans_a, a.trans_b));
            let k = dim(&d(0), if ta { 0 } else { 1 });
            let n = dim(&d(1), if tb { 0 } else { 1 }).or_else(|| dim(&y, 1));
            (k, n)
        }
        OpKind::MatMul => (dim(&d(0), -1), dim(&d(1), -1).or_else(|| dim(&y, -1))),
        OpKind::Conv => {
            let cin = dim(&d(0), 1);
            let cout = dim(&d(1), 0).or_else(|| dim(&y, 1));
            (cin, cout)
        }
        _ => (dim(&d(0), 1), dim(&y, 1)),
    }
}
