//! The operator-limit rules of `qc check`, one per file, each with a header that says what it
//! checks, why (the ACCESS DLA guide's limit, `../shared/reference/access-dla-fixed-point-onnx-guide.md`
//! by line), and an op that breaks it; `qc check --explain CODE` prints that header.
//!
//! A rule is a function over one DLA op ([`OpCx`]): it pushes findings, or names itself as
//! unchecked when a dim it needs is unknown. [`OP_RULES`] runs them in the order findings are
//! reported.

mod channels;
mod dilation;
mod feature_map_size;
mod input_count;
mod kernel_size;
mod padding;
mod predecessor;
mod rank;
mod stride;

use qc_ir::target::{Allowed, Limits, Rule};
use qc_ir::{Op, OpId, ValueId};

use super::limits::Window;
use super::{Facts, Finding, Quantity};

/// One DLA op and what its rules read.
pub(super) struct OpCx<'f, 'a> {
    pub f: &'f Facts<'a>,
    pub id: OpId,
    pub op: &'a Op,
    pub limits: &'a Limits,
    /// The operator entry's title, lower case (`convolution`).
    pub what: String,
    /// Input 0 and its dims.
    pub x: Option<ValueId>,
    pub xd: Option<Vec<Option<u64>>>,
    /// The op's window, for convolutions and pools.
    pub win: Option<Window>,
}

/// What the rules of one op report.
pub(super) struct Out<'o> {
    pub findings: &'o mut Vec<Finding>,
    /// The rules that needed an unknown dim, in order.
    pub unchecked: Vec<&'static str>,
}

impl OpCx<'_, '_> {
    /// A finding of `rule` about this op; a rule that measures sets the typed values on the
    /// finding returned.
    pub fn push<'o>(
        &self,
        out: &'o mut Out<'_>,
        rule: Rule,
        message: String,
        observed: String,
        allowed: String,
        hint: String,
    ) -> &'o mut Finding {
        let mut x = self.f.finding(rule, Some(self.id), None);
        x.message = message;
        x.observed = observed;
        x.allowed = allowed;
        x.hint = hint;
        out.findings.push(x);
        out.findings.last_mut().expect("just pushed")
    }
}

/// Per-axis values as [`Quantity::Dims`].
pub(super) fn dims(v: &[Option<i64>]) -> Quantity {
    Quantity::Dims(v.to_vec())
}

/// Typed values of a finding: what the model has, and the target's limit.
pub(super) fn typed(x: &mut Finding, observed: Quantity, allowed: &Allowed) {
    x.observed_value = Some(observed);
    x.allowed_value = Some(Quantity::Allowed(allowed.clone()));
}

type OpRule = fn(&OpCx<'_, '_>, &mut Out<'_>);

/// The operator-limit rules, in the order their findings are reported.
pub(super) const OP_RULES: &[(Rule, OpRule)] = &[
    (Rule::Rank, rank::check),
    (Rule::KernelSize, kernel_size::check),
    (Rule::Stride, stride::check),
    (Rule::Dilation, dilation::check),
    (Rule::Padding, padding::check),
    (Rule::FeatureMapSize, feature_map_size::check),
    (Rule::Channels, channels::check),
    (Rule::InputCount, input_count::check),
    (Rule::Predecessor, predecessor::check),
];

/// Each rule file's source, for its header.
const SOURCES: &[(Rule, &str)] = &[
    (Rule::Rank, include_str!("rank.rs")),
    (Rule::KernelSize, include_str!("kernel_size.rs")),
    (Rule::Stride, include_str!("stride.rs")),
    (Rule::Dilation, include_str!("dilation.rs")),
    (Rule::Padding, include_str!("padding.rs")),
    (Rule::FeatureMapSize, include_str!("feature_map_size.rs")),
    (Rule::Channels, include_str!("channels.rs")),
    (Rule::InputCount, include_str!("input_count.rs")),
    (Rule::Predecessor, include_str!("predecessor.rs")),
];

/// The rules that have a file of their own here.
pub fn documented() -> impl Iterator<Item = Rule> {
    SOURCES.iter().map(|(r, _)| *r)
}

/// A rule's documentation: the header of its file (what, why, example), as plain text.
pub fn explain(rule: Rule) -> Option<String> {
    let (_, src) = SOURCES.iter().find(|(r, _)| *r == rule)?;
    let lines: Vec<&str> = src
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.strip_prefix("//! ").unwrap_or(l.trim_start_matches("//!")))
        .collect();
    Some(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_file_has_what_why_and_an_example() {
        for (rule, _) in OP_RULES {
            let doc = explain(*rule).unwrap_or_else(|| panic!("{rule} has no file"));
            assert!(doc.starts_with(&format!("`{}`", rule.code())), "{rule}: {doc}");
            assert!(doc.contains("\nWhy:"), "{rule} says no why: {doc}");
            assert!(doc.contains("\nExample:"), "{rule} gives no example: {doc}");
        }
        assert_eq!(documented().count(), OP_RULES.len());
        assert_eq!(explain(Rule::ZeroPoint), None);
    }
}
