//! `qc::check::weight-scale-count`: per-channel weight scales that are not one per output
//! channel, or that vary along another axis than the output channels. Blocked scales are not
//! per channel either. A single scale for the whole weight is fine.
//!
//! Why: the DLA scales each output channel of a layer by its own weight scale; "the length of
//! the list is equal to the number of output channels" (ACCESS DLA guide line 222).
//!
//! Example: `Conv(x, w: f32[32,16,3,3]) {weight_ch_scales = [0.5, 0.25]}` gives 2 scales for 32
//! output channels: write one scale per output channel.

use qc_ir::target::Rule;
use qc_ir::{OpId, OpKind, QuantParam, ValueId};

use super::super::{Facts, Finding, Quantity};

/// The finding for weight `w` of op `id` whose `scale` is not one per output channel.
pub(crate) fn check(f: &Facts<'_>, id: OpId, w: ValueId, scale: &QuantParam, out: &mut Vec<Finding>) {
    let count = |n: usize| Quantity::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let problem = match scale {
        QuantParam::PerTensor(_) => None,
        QuantParam::PerAxis { axis, values } => match out_channels(f, id, w) {
            Some((want_axis, n)) => {
                let rank = f.dims(w).map_or(0, |d| d.len()) as i64;
                let axis = if *axis < 0 { axis + rank } else { *axis };
                if values.len() as u64 != n {
                    let (has, needs) =
                        (count(values.len()), Quantity::Int(i64::try_from(n).unwrap_or(i64::MAX)));
                    Some((
                        format!("{has} scales"),
                        format!("{needs} scales, one per output channel"),
                        has,
                        Some(needs),
                    ))
                } else if axis != want_axis as i64 && values.len() > 1 {
                    Some((
                        format!("{} scales along axis {axis}", values.len()),
                        format!("one per output channel, along axis {want_axis}"),
                        Quantity::Named(vec![("scales", values.len() as i64), ("axis", axis)]),
                        Some(Quantity::Named(vec![("axis", want_axis as i64)])),
                    ))
                } else {
                    None
                }
            }
            None => None,
        },
        QuantParam::Blocked { values, .. } => {
            let has = count(values.len());
            Some((format!("{has} blocked scales"), "one scale per output channel".into(), has, None))
        }
    };
    if let Some((observed, allowed, observed_value, allowed_value)) = problem {
        let mut x = f.finding(Rule::WeightScaleCount, Some(id), Some(w));
        x.message = format!("weight `{}` does not have one scale per output channel", f.name(w));
        x.observed = observed;
        x.allowed = allowed;
        x.observed_value = Some(observed_value);
        x.allowed_value = allowed_value;
        x.hint = "write one scale per output channel (weight_ch_scales has as many entries as the layer has output channels)".into();
        out.push(x);
    }
}

/// The axis of a weight that holds output channels, and their count.
fn out_channels(f: &Facts<'_>, id: OpId, w: ValueId) -> Option<(usize, u64)> {
    let d = f.dims(w)?;
    let op = f.op(id);
    let axis = match op.kind() {
        OpKind::Gemm => {
            if op.gemm().ok()?.trans_b {
                0
            } else {
                1
            }
        }
        OpKind::MatMul => d.len().checked_sub(1)?,
        _ => 0,
    };
    Some((axis, (*d.get(axis)?)?))
}
