//! `qc::check::scale-not-reciprocal-dyadic`: a scale that is not 2^n / a with an integer a in
//! 1..=255 (the target's `max_denominator`), within the target's relative tolerance (1e-6), on a
//! target whose scales of that kind are reciprocal dyadic. A target whose format is `any` reports
//! a scale that is not a positive finite number under this code too. For weights, the observed
//! value lists the first offending channels.
//!
//! Why: the DLA multiplies by a weight scale as an 8-bit integer reciprocal and a shift, so
//! each weight scale is "a floating number in reciprocal dyadic format" (ACCESS DLA guide lines
//! 129, 222).
//!
//! Example: `Conv(x, w) {weight_ch_scales = [0.75, 0.5]}`: 0.75 = 3/4 is not 2^n / a (a would be
//! 4/3); round each scale to the nearest 2^n / a and requantize the weights with it.

use qc_ir::target::Rule;
use qc_ir::{OpId, ValueId};

use super::super::scales::fits;
use super::super::{Facts, Finding, Quantity};

/// The finding for the one scale `s` of `what` (`feature map `x``) when it does not have the
/// target's feature-map format (reciprocal dyadic, or any positive number).
pub(crate) fn feature_map(
    f: &Facts<'_>,
    what: &str,
    at: Option<OpId>,
    v: ValueId,
    s: f64,
    out: &mut Vec<Finding>,
) {
    let t = f.target;
    let format = t.scales.feature_map;
    if fits(format, s, t) {
        return;
    }
    let mut x = f.finding(Rule::ScaleNotReciprocalDyadic, at, Some(v));
    x.message = format!("the scale of {what} is not {}", format.describe(t.scales.max_denominator));
    let observed = Quantity::Scale(s);
    x.observed = observed.render();
    x.observed_value = Some(observed);
    x.allowed = format.describe(t.scales.max_denominator);
    x.hint = "requantize with a scale of the target's format".into();
    out.push(x);
}

/// The finding for the scales of weight `w` of op `id` that do not have the target's weight
/// format (reciprocal dyadic, or any positive number).
pub(crate) fn weight(f: &Facts<'_>, id: OpId, w: ValueId, scales: &[f64], out: &mut Vec<Finding>) {
    let t = f.target;
    let format = t.scales.weight;
    let bad = |s: f64| !fits(format, s, t);
    if let Some(x) = super::off_format_weight(f, Rule::ScaleNotReciprocalDyadic, format, id, w, scales, bad) {
        out.push(x);
    }
}
