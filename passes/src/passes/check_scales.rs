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

use crate::check::{Facts, Finding, scales};
use crate::pass::{Changed, Pass, PassContext, PassError, PassWarning};
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

/// The pipeline's target, or the error that says how to give one.
pub(crate) fn needs_target(
    cx: &PassContext,
    pass: &'static str,
) -> Result<std::sync::Arc<qc_ir::target::Target>, PassError> {
    cx.target.clone().ok_or_else(|| PassError::Failed {
        pass,
        message: "this pass checks a model against a DLA target, and none was given".into(),
        help: "run it through `qc check MODEL --target NAME|PATH`".into(),
    })
}

/// Turns findings into warnings and counts them.
pub(crate) fn report(cx: &mut PassContext, pass: &'static str, findings: &[Finding]) {
    for f in findings {
        cx.count(if f.severity == qc_ir::target::Severity::Error { "errors" } else { "warnings" }, 1);
        let at = match (&f.node, &f.op_type) {
            (Some(n), Some(t)) => format!("`{n}` ({t}): "),
            _ => String::new(),
        };
        cx.warn(PassWarning {
            pass,
            code: f.rule.code().to_string(),
            message: format!(
                "{}: {at}{} [observed {}; allowed {}]",
                f.severity.name(),
                f.message,
                f.observed,
                f.allowed
            ),
            help: Some(f.hint.clone()),
        });
    }
}
