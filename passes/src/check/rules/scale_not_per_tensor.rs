//! `qc::check::scale-not-per-tensor`: a feature map with more than one scale (per channel or
//! per block).
//!
//! Why: a feature map's scale is "identical across the entire tensor" (ACCESS DLA guide line
//! 137): the DLA requantizes a layer's output with one shift, whatever the channel.
//!
//! Example: `QuantizeLinear(x: f32[1,16,8,8], scale: f32[16]) {axis = 1}` quantizes a feature
//! map per channel: quantize feature maps per tensor; per-channel scales are for weights.

use qc_ir::target::Rule;
use qc_ir::{OpId, ValueId};

use super::super::scales::close;
use super::super::{Facts, Finding, Quantity};

/// The finding for `what` (`feature map `x``) when its scale `values` differ; returns whether
/// they do (then the scale format is not checked: there is no one scale).
pub(crate) fn check(
    f: &Facts<'_>,
    what: &str,
    at: Option<OpId>,
    v: ValueId,
    values: &[f64],
    out: &mut Vec<Finding>,
) -> bool {
    if values.windows(2).all(|p| close(p[0], p[1], f.target.scales.tolerance)) {
        return false;
    }
    let mut x = f.finding(Rule::ScaleNotPerTensor, at, Some(v));
    x.message = format!("{what} has {} scales, one per slice", values.len());
    let observed = Quantity::Scales(values.to_vec());
    x.observed = observed.render();
    x.observed_value = Some(observed);
    x.allowed = "one scale for the whole tensor".into();
    x.hint = "quantize feature maps per tensor; per-channel scales are for weights".into();
    out.push(x);
    true
}
