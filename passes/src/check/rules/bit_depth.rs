//! `qc::check::bit-depth`: a tensor of a bit depth the DLA does not have. A narrower integer
//! type than the target's (a 4-bit feature map on an 8-bit DLA) is a warning: its values fit,
//! and the DLA runs it at its own width.
//!
//! Why: the DLA computes on 8-bit graph inputs, feature maps and weights and 16-bit biases
//! (ACCESS DLA guide lines 70, 81, 88, and "Integer in [8]", "[16]" in section III.B); a float
//! tensor, or an integer wider than the DLA's, has no fixed-point form on it.
//!
//! Example: `QuantizeLinear(x, scale, zero_point: int16)` writes a 16-bit feature map, and
//! `Conv(x, w: f32[32,16,3,3])` with a float weight: requantize the first to 8 bits, quantize
//! the second to 8 bits.

use qc_ir::target::{Allowed, Rule, Severity};
use qc_ir::{DataType, OpId, ValueId};

use super::super::{Facts, Finding, Quantity};

/// A bit-depth finding about `what` (`feature map `x``), or `None` when `dtype` is allowed.
pub(crate) fn check(
    f: &Facts<'_>,
    allowed: &Option<Allowed>,
    dtype: DataType,
    what: String,
    at: Option<OpId>,
    v: ValueId,
) -> Option<Finding> {
    let a = allowed.as_ref()?;
    let bits = i64::from(dtype.bitwidth());
    if dtype.is_scaled_int() && a.contains(bits) {
        return None;
    }
    let mut x = f.finding(Rule::BitDepth, at, Some(v));
    let widest = a.values.as_ref().and_then(|v| v.iter().max().copied()).or(a.max);
    let narrower = dtype.is_scaled_int() && widest.is_some_and(|w| bits < w);
    if narrower {
        x.severity = Severity::Warning.max(f.target.severity(Rule::BitDepth));
        x.message = format!("{what} is {dtype}, narrower than the DLA's {} bits", a.describe());
        x.hint = format!(
            "its values fit in {} bits, so the DLA runs it at {} bits; re-export it with that bit depth to say so",
            a.describe(),
            a.describe()
        );
    } else {
        x.message = format!("{what} is {dtype}; the DLA has {} bits", a.describe());
        x.hint = if dtype.is_float() {
            format!("quantize it to {} bits", a.describe())
        } else {
            format!("requantize it to {} bits", a.describe())
        };
    }
    let (observed, allowed) = (Quantity::Int(bits), Quantity::Allowed(a.clone()));
    x.observed = if dtype.is_float() {
        format!("{dtype} (not an integer type)")
    } else {
        format!("{dtype} ({observed} bits)")
    };
    x.allowed = format!("{allowed} bits");
    x.observed_value = Some(observed);
    x.allowed_value = Some(allowed);
    Some(x)
}
