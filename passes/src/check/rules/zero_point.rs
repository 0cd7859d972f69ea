//! `qc::check::zero-point`: a feature map, weight or bias with a nonzero zero point, on a
//! target whose scales say `zero_point_zero`.
//!
//! Why: the DLA's fixed-point format is an integer and a scale, with no offset (ACCESS DLA
//! guide line 125), so a tensor must be quantized symmetrically.
//!
//! Example: `QuantizeLinear(x, scale: 0.0625, zero_point: uint8 128)` quantizes `x`
//! asymmetrically: quantize it to signed 8-bit integers with zero point 0.

use qc_ir::target::Rule;
use qc_ir::{OpId, QuantSpec, ValueId};

use super::super::{Facts, Finding, Quantity};

/// The finding for `what` (`weight `w``) when `spec` has a nonzero zero point.
pub(crate) fn check(
    f: &Facts<'_>,
    spec: &QuantSpec,
    what: String,
    at: Option<OpId>,
    v: ValueId,
    out: &mut Vec<Finding>,
) {
    if !f.target.scales.zero_point_zero {
        return;
    }
    let Some(zp) = &spec.zero_point else { return };
    let nonzero: Vec<f64> = zp.values().iter().copied().filter(|z| *z != 0.0).collect();
    if nonzero.is_empty() {
        return;
    }
    let mut x = f.finding(Rule::ZeroPoint, at, Some(v));
    x.message = format!("{what} has a nonzero zero point");
    let first = Quantity::Float(nonzero[0]);
    x.observed = if zp.values().len() == 1 {
        format!("zero point {first}")
    } else {
        format!("{} of {} zero points nonzero, first {first}", nonzero.len(), zp.values().len())
    };
    x.observed_value = Some(match zp.values() {
        [_] => first,
        all => Quantity::Floats(all.to_vec()),
    });
    x.allowed = "zero point 0 (symmetric, scale only)".into();
    x.allowed_value = Some(Quantity::Int(0));
    x.hint = "quantize symmetrically: signed integers with zero point 0".into();
    out.push(x);
}
