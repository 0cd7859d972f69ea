//! `qc::check::scale-not-power-of-two`: a scale that is not 2^n, on a target whose scales of
//! that kind (feature maps, or weights) are powers of two.
//!
//! Why: the DLA requantizes a feature map with a shift, so its scale is a power of two
//! (ACCESS DLA guide lines 137, 214, 224). The hint names the two nearest powers of two.
//!
//! Example: `QuantizeLinear(x, scale: 0.1)` between two convolutions: use 2^-4 = 0.0625 or
//! 2^-3 = 0.125, and retrain or recalibrate with power-of-two activation quantizers.

use qc_ir::target::{Rule, ScaleFormat};
use qc_ir::{OpId, ValueId};

use super::super::scales::{fits, is_pow2};
use super::super::{Facts, Finding, Quantity};

/// The finding for the one scale `s` of `what` (`feature map `x``) when it is not a power of
/// two.
pub(crate) fn feature_map(
    f: &Facts<'_>,
    what: &str,
    at: Option<OpId>,
    v: ValueId,
    s: f64,
    out: &mut Vec<Finding>,
) {
    let t = f.target;
    if is_pow2(s, t.scales.tolerance) {
        return;
    }
    let format = ScaleFormat::PowerOfTwo.describe(t.scales.max_denominator);
    let mut x = f.finding(Rule::ScaleNotPowerOfTwo, at, Some(v));
    x.message = format!("the scale of {what} is not {format}");
    let observed = Quantity::Scale(s);
    x.observed = observed.render();
    x.observed_value = Some(observed);
    x.allowed = format;
    x.hint = format!(
        "use {} (a power-of-two scale is a shift); retrain or recalibrate with power-of-two activation quantizers",
        nearest_pow2(s)
    );
    out.push(x);
}

/// The finding for the scales of weight `w` of op `id` that are not powers of two.
pub(crate) fn weight(f: &Facts<'_>, id: OpId, w: ValueId, scales: &[f64], out: &mut Vec<Finding>) {
    let t = f.target;
    let bad = |s: f64| !fits(ScaleFormat::PowerOfTwo, s, t);
    if let Some(x) =
        super::off_format_weight(f, Rule::ScaleNotPowerOfTwo, ScaleFormat::PowerOfTwo, id, w, scales, bad)
    {
        out.push(x);
    }
}

/// The powers of two around `x`, for hints.
fn nearest_pow2(x: f64) -> String {
    if !(x > 0.0 && x.is_finite()) {
        return "a positive power of two".into();
    }
    let lo = x.log2().floor() as i32;
    format!("2^{} = {} or 2^{} = {}", lo, 2f64.powi(lo), lo + 1, 2f64.powi(lo + 1))
}
