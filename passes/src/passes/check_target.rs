//! `check-target`: a DLA target's operator and tensor limits, and where each op runs, as
//! warnings of the pipeline.
//!
//! What it does (`crate::check::limits::check`, the analysis `qc check` runs): each op that is
//! not absorbed (a quantizer the target lists, or an op of constants) either matches an operator
//! entry of the target and is checked against its limits (rank, kernel size, feature-map size,
//! channels, stride, padding and its sides, dilation, inputs, predecessor), or falls back to the
//! CPU (`unsupported-op`). Then the channels and sizes of the 4-D graph inputs and feature maps
//! the DLA reads and writes. Each finding becomes a warning with its code `qc::check::<rule>`.
//!
//! Preconditions: a target (`qc check --target`, or `PassManager::with_target`); shapes inferred
//! (`infer-shapes`). Postconditions: the model is unchanged.
//!
//! Statistics: `dla`, `cpu`, `absorbed` (ops per placement), `errors`, `warnings`.

use qc_ir::Model;

use crate::check::report::{needs_target, report};
use crate::check::{Facts, Unit, limits};
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "check-target",
    summary: "check operator and tensor limits against the DLA target, and place each op on the DLA or CPU",
    options: &[],
    build: |_| Ok(Box::new(CheckTarget)),
};

/// The `check-target` pass.
pub struct CheckTarget;

impl Pass for CheckTarget {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let target = needs_target(cx, INFO.name)?;
        let facts = Facts::new(model, &target);
        let (findings, placement) = limits::check(&facts);
        let dla = placement.iter().filter(|p| p.unit == Unit::Dla).count() as u64;
        cx.count("dla", dla);
        cx.count("cpu", placement.len() as u64 - dla);
        cx.count("absorbed", facts.absorbed.len() as u64);
        report(cx, INFO.name, &findings);
        Ok(Changed::No)
    }
}
