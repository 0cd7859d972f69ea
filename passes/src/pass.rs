//! The `Pass` trait, what a pass reports, and the context it runs in.
//!
//! A pass transforms or analyses a [`Model`] in place. It counts what it did in named
//! statistics (shown by `--time-passes` and in snapshot tests), reports problems that do not stop
//! it as warnings, and says whether it changed the model, so fixpoint groups know when to stop.
//! `report_kept` is how a conversion pass reports the nodes it left as they were, by reason.

use std::sync::Arc;

use indexmap::IndexMap;
use qc_ir::target::Target;
use qc_ir::{Model, Workload};

/// A transformation or analysis over the IR.
pub trait Pass {
    /// The kebab-case name the pass is registered under (`infer-shapes`).
    fn name(&self) -> &'static str;

    /// Runs the pass on `model`. Returns whether the model changed.
    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError>;
}

/// Whether a pass changed the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    Yes,
    No,
}

impl Changed {
    pub fn from_bool(b: bool) -> Changed {
        if b { Changed::Yes } else { Changed::No }
    }
}

/// What a pass may use and record while it runs.
#[derive(Debug, Default)]
pub struct PassContext {
    /// Named counters, in the order they were first touched (`nodes-folded: 12`).
    pub stats: IndexMap<String, u64>,
    /// Problems that did not stop the pass, for the user.
    pub warnings: Vec<PassWarning>,
    /// The DLA target the pipeline checks against (`check-scales`, `check-target`), if any.
    pub target: Option<Arc<Target>>,
    /// The loop nests an analysis produced (`lower-to-loops`); the manager hands the last one
    /// to the caller in `RunReport::workload`.
    pub workload: Option<Workload>,
}

impl PassContext {
    /// Adds `n` to the counter `name`.
    pub fn count(&mut self, name: &str, n: u64) {
        *self.stats.entry(name.to_string()).or_default() += n;
    }

    /// Records a warning, once per distinct `(code, message)`.
    pub fn warn(&mut self, w: PassWarning) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }
}

/// A problem a pass met that did not stop it (an op it cannot analyse, a value it cannot fold).
/// It renders as a miette warning with its code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pass}: {message}")]
pub struct PassWarning {
    pub pass: &'static str,
    /// Stable code, `qc::<pass area>::<name>`.
    pub code: String,
    pub message: String,
    pub help: Option<String>,
}

// By hand, because the code is a runtime value (miette's derive takes only literal codes).
impl miette::Diagnostic for PassWarning {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Warning)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

/// Why a pass could not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum PassError {
    #[error("{pass}: {message}")]
    #[diagnostic(code(qc::pass::failed), help("{help}"))]
    Failed { pass: &'static str, message: String, help: String },
}

/// Counts the nodes a conversion kept, one statistic per reason (`stat`), and warns once per
/// reason with the nodes (the first 8) and a hint.
#[allow(clippy::too_many_arguments)]
pub(crate) fn report_kept<K: Copy + Ord>(
    cx: &mut PassContext,
    pass: &'static str,
    code: &str,
    what: &str,
    kept: &mut [(K, String, String)],
    stat: impl Fn(K) -> &'static str,
    rule: impl Fn(K) -> &'static str,
    help: impl Fn(K) -> &'static str,
) {
    kept.sort_by_key(|a| a.0);
    let mut by_reason: std::collections::BTreeMap<K, Vec<String>> = std::collections::BTreeMap::new();
    for (k, node, detail) in kept.iter() {
        cx.count(stat(*k), 1);
        by_reason.entry(*k).or_default().push(format!("`{node}` ({detail})"));
    }
    for (k, nodes) in by_reason {
        let more = nodes.len().saturating_sub(8);
        let mut list = nodes.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        cx.warn(PassWarning {
            pass,
            code: code.to_string(),
            message: format!("{} {what} kept: {}: {list}", nodes.len(), rule(k)),
            help: Some(help(k).to_string()),
        });
    }
}
