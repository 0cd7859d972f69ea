//! `check-scales`: the fixed-point scale rules of a DLA target, as warnings of the pipeline.
//!
//! What it does (`crate::check::scales::check`, the analysis `qc check` runs): for every
//! feature map, weight and bias of the ops the target runs, it checks the bit depth, the scale
//! format (feature maps a power of two, weights reciprocal dyadic `2^n / a`), one scale per
//! feature map, one weight scale per output channel, zero points of 0 and deprecated attributes;
//! then that every op that may not change scale keeps its input's scale, and that all the ops
//! that declare a feature map's scale agree. A model that describes no quantization at all gets
//! one `not-quantized` finding instead. Each finding becomes a warning with its code
//! `qc::check::<rule>`; its message starts with the finding's severity.
//!
//! Preconditions: a target (`qc check --target`, or `PassManager::with_target`); the pipeline
//! `crate::check::PIPELINE` ran. Postconditions: the model is unchanged.
//!
//! Statistics: `errors`, `warnings`.

use qc_ir::Model;

use crate::check::report::{needs_target, report};
use crate::check::{Facts, scales};
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "check-scales",
    summary: "check bit depths, scale formats and scale coherence against the DLA target",
    options: &[],
    build: |_| Ok(Box::new(CheckScales)),
};

/// The `check-scales` pass.
pub struct CheckScales;

impl Pass for CheckScales {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let target = needs_target(cx, INFO.name)?;
        let facts = Facts::new(model, &target);
        report(cx, INFO.name, &scales::check(&facts));
        Ok(Changed::No)
    }
}
