//! Shape-inference errors that are contradictions in the model stop the model-reading commands.
//!
//! `infer-shapes` reports an op whose inputs or attributes cannot hold together (a Conv weight of
//! rank 2 for a rank-4 input, an axis out of range, dims that do not broadcast) as a warning with
//! the error's code and leaves the op's outputs untyped. A model like that is not one qc can
//! write or analyse as if it were fine: `optimize`, `convert`, `lower`, `evaluate`, `cost` and
//! `check` fail with exit 2 and write nothing, unless `--allow-shape-errors` is given (then the
//! errors stay warnings). An op qc has no rule for (`qc::shape::unsupported_op`) is not a
//! contradiction and never stops a command, and neither is a finding inside an If, Loop or Scan
//! body: a branch that does not run for the model's inputs need not fit them (onnxruntime runs
//! such models). `qc inspect` lists contradictions in its summary.

use qc_passes::PassWarning;

/// Codes of the shape-inference findings that are contradictions in the model: every
/// `ShapeError` kind but `unsupported_op`.
pub const CONTRADICTIONS: [&str; 5] = [
    "qc::shape::rank",
    "qc::shape::attribute",
    "qc::shape::axis",
    "qc::shape::incompatible",
    "qc::shape::subgraph",
];

/// The `--allow-shape-errors` flag of the commands that infer shapes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShapeErrorArgs {
    /// Go on although shape inference found contradictions in the model (ops whose inputs or
    /// attributes cannot hold together); they are then warnings, and outputs are written.
    #[arg(long)]
    pub allow_shape_errors: bool,
}

/// One contradiction, as an error with the code `infer-shapes` gave it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Contradiction {
    code: String,
    message: String,
}

impl miette::Diagnostic for Contradiction {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }
}

/// The model's contradictions, each naming its node.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("shape inference found {count} contradiction(s) in the model: {first}")]
#[diagnostic(
    code(qc::shape::contradiction),
    help(
        "fix the model (each problem below names its node), or pass --allow-shape-errors to go on with the ops' outputs untyped"
    )
)]
pub struct ShapeErrors {
    count: usize,
    first: String,
    #[related]
    problems: Vec<Contradiction>,
}

/// The warnings that are contradictions: of the main graph (`infer-shapes` starts the message
/// of a finding inside a body with the body's path, ``subgraph `...` of op `...`: ``).
pub fn contradictions(warnings: &[PassWarning]) -> Vec<&PassWarning> {
    warnings
        .iter()
        .filter(|w| CONTRADICTIONS.contains(&w.code.as_str()) && !w.message.starts_with("subgraph `"))
        .collect()
}

impl ShapeErrorArgs {
    /// An error when `warnings` hold contradictions and `--allow-shape-errors` was not given.
    pub fn refuse(&self, warnings: &[PassWarning]) -> Result<(), ShapeErrors> {
        let found = contradictions(warnings);
        if self.allow_shape_errors || found.is_empty() {
            return Ok(());
        }
        Err(ShapeErrors {
            count: found.len(),
            first: found[0].message.clone(),
            problems: found
                .into_iter()
                .map(|w| Contradiction { code: w.code.clone(), message: w.message.clone() })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(code: &str, message: &str) -> PassWarning {
        PassWarning { pass: "infer-shapes", code: code.into(), message: message.into(), help: None }
    }

    #[test]
    fn contradictions_stop_unless_allowed_and_unsupported_ops_never_do() {
        let unsupported = warning("qc::shape::unsupported_op", "no shape inference rule for Foo");
        let rank = warning("qc::shape::rank", "conv: the weight has rank 2, the input rank 4");
        let strict = ShapeErrorArgs::default();
        assert!(strict.refuse(std::slice::from_ref(&unsupported)).is_ok());
        let e = strict.refuse(&[unsupported.clone(), rank.clone()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape inference found 1 contradiction(s) in the model: conv: the weight has rank 2, the input rank 4"
        );
        assert_eq!(e.problems[0].code, "qc::shape::rank");
        let in_a_branch = warning(
            "qc::shape::incompatible",
            "subgraph `else_branch` of op `if0`: squeeze: cannot squeeze axis 2 of size 2",
        );
        assert!(strict.refuse(std::slice::from_ref(&in_a_branch)).is_ok());
        let lenient = ShapeErrorArgs { allow_shape_errors: true };
        assert!(lenient.refuse(&[unsupported, rank]).is_ok());
    }
}
