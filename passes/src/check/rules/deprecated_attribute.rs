//! `qc::check::deprecated-attribute`: an op of the DLA carries an attribute the guide
//! deprecates; the target lists them (`deprecated_attributes`) with what to write instead.
//!
//! Why: the ACCESS DLA guide deprecates `weight_scale` (write `weight_ch_scales`, one scale per
//! output channel) and `bias_scale` (lines 218, 228); a DLA compiler may ignore them.
//!
//! Example: `Conv(x, w) {weight_scale = 0.0078125}`: write `weight_ch_scales` with one entry
//! per output channel instead.

use qc_ir::OpId;
use qc_ir::target::Rule;

use super::super::{Facts, Finding};

/// One finding per deprecated attribute op `id` has, in the target's order.
pub(crate) fn check(f: &Facts<'_>, id: OpId, out: &mut Vec<Finding>) {
    for (attr, instead) in &f.target.deprecated_attributes {
        if f.op(id).attr(attr).is_some() {
            let mut x = f.finding(Rule::DeprecatedAttribute, Some(id), None);
            x.message = format!("attribute `{attr}` is deprecated");
            x.observed = format!("`{attr}`");
            x.allowed = "the attributes the guide does not deprecate".into();
            x.hint = instead.clone();
            out.push(x);
        }
    }
}
