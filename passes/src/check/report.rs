//! How the check passes (`check-target`, `check-scales`) report: the target they need, and
//! findings turned into pass warnings. It lives with the analyses because both passes share it,
//! and `qc check` reads the same findings directly.

use super::Finding;
use crate::pass::{PassContext, PassError, PassWarning};

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
