//! The rules of `qc check`, one per file, each with a header that says what it checks, why (the
//! ACCESS DLA guide's limit, `../shared/reference/access-dla-fixed-point-onnx-guide.md` by
//! line), and an op that breaks it; `qc check --explain CODE` prints that header. `SOURCES`
//! lists every rule.
//!
//! An operator-limit rule is a function over one DLA op ([`OpCx`]): it pushes findings, or
//! names itself as unchecked when a dim it needs is unknown. [`OP_RULES`] runs them in the
//! order findings are reported. The other rules (`unsupported-op`, `unchecked`, the tensor and
//! scale rules) are called by the analyses in `limits.rs` and `scales.rs`, which hold what they
//! share (placement, scale propagation, the facts); each rule file holds the rule's decision
//! and its message.

pub(super) mod bit_depth;
mod channels;
pub(super) mod deprecated_attribute;
mod dilation;
mod feature_map_size;
mod input_count;
mod kernel_size;
pub(super) mod not_quantized;
mod padding;
mod predecessor;
mod rank;
pub(super) mod scale_mismatch;
pub(super) mod scale_missing;
pub(super) mod scale_not_per_tensor;
pub(super) mod scale_not_power_of_two;
pub(super) mod scale_not_reciprocal_dyadic;
mod stride;
pub(super) mod unchecked;
pub(super) mod unsupported_op;
pub(super) mod weight_scale_count;
pub(super) mod zero_point;

use qc_ir::target::{Allowed, Limits, Rule, ScaleFormat};
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

/// The weight scales of op `id`'s weight `w` that `bad` says break the target's weight format
/// `format`, as one finding of `rule` (`scale-not-power-of-two` or
/// `scale-not-reciprocal-dyadic`, whichever format the target asks for): how many, and the
/// first three (by channel when there are several).
pub(super) fn off_format_weight(
    f: &Facts<'_>,
    rule: Rule,
    format: ScaleFormat,
    id: OpId,
    w: ValueId,
    scales: &[f64],
    bad: impl Fn(f64) -> bool,
) -> Option<Finding> {
    let t = f.target;
    let off: Vec<(usize, f64)> = scales.iter().copied().enumerate().filter(|(_, s)| bad(*s)).collect();
    if off.is_empty() {
        return None;
    }
    let mut x = f.finding(rule, Some(id), Some(w));
    x.message = format!(
        "{} of {} scale(s) of weight `{}` are not {}",
        off.len(),
        scales.len(),
        f.name(w),
        format.describe(t.scales.max_denominator)
    );
    let observed = match off[..] {
        [(_, s)] if scales.len() == 1 => Quantity::Scale(s),
        _ => Quantity::ChannelScales(off),
    };
    x.observed = observed.render();
    x.observed_value = Some(observed);
    x.allowed = format.describe(t.scales.max_denominator);
    x.hint = format!(
        "round each scale to the nearest 2^n / a (a in 1..{}) and requantize the weights with it",
        t.scales.max_denominator
    );
    Some(x)
}

/// Every rule and its file's source, for its header, in the order of `Rule::ALL`.
const SOURCES: &[(Rule, &str)] = &[
    (Rule::UnsupportedOp, include_str!("unsupported_op.rs")),
    (Rule::KernelSize, include_str!("kernel_size.rs")),
    (Rule::Stride, include_str!("stride.rs")),
    (Rule::Padding, include_str!("padding.rs")),
    (Rule::Dilation, include_str!("dilation.rs")),
    (Rule::Channels, include_str!("channels.rs")),
    (Rule::FeatureMapSize, include_str!("feature_map_size.rs")),
    (Rule::Rank, include_str!("rank.rs")),
    (Rule::InputCount, include_str!("input_count.rs")),
    (Rule::Predecessor, include_str!("predecessor.rs")),
    (Rule::BitDepth, include_str!("bit_depth.rs")),
    (Rule::NotQuantized, include_str!("not_quantized.rs")),
    (Rule::ScaleMissing, include_str!("scale_missing.rs")),
    (Rule::ScaleNotPowerOfTwo, include_str!("scale_not_power_of_two.rs")),
    (Rule::ScaleNotReciprocalDyadic, include_str!("scale_not_reciprocal_dyadic.rs")),
    (Rule::ScaleNotPerTensor, include_str!("scale_not_per_tensor.rs")),
    (Rule::WeightScaleCount, include_str!("weight_scale_count.rs")),
    (Rule::ScaleMismatch, include_str!("scale_mismatch.rs")),
    (Rule::ZeroPoint, include_str!("zero_point.rs")),
    (Rule::DeprecatedAttribute, include_str!("deprecated_attribute.rs")),
    (Rule::Unchecked, include_str!("unchecked.rs")),
];

/// The rules that have a file of their own here: every rule.
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
    fn quantities_render_as_the_reports_show_them() {
        assert_eq!(Quantity::Int(4).render(), "4");
        assert_eq!(Quantity::Dims(vec![Some(9), None]).render(), "9x?");
        assert_eq!(Quantity::Named(vec![("top", 1), ("left", 0)]).render(), "top 1, left 0");
        let a = Allowed::range(1, 7);
        assert_eq!(Quantity::Allowed(a.clone()).render(), a.describe());
        assert_eq!(Quantity::Float(128.0).render(), "128");
        assert_eq!(Quantity::Floats(vec![0.0, 3.5]).render(), "0, 3.5");
        assert_eq!(Quantity::Scale(0.125).render(), "0.125 (2^-3)");
        assert_eq!(Quantity::Scale(1e-5).render(), "1e-5");
        assert_eq!(Quantity::Scales(vec![0.5, 0.1, 0.25]).render(), "3 scales from 0.1 to 0.5 (2^-1)");
        let by_channel = Quantity::ChannelScales(vec![(0, 0.1), (2, 0.3), (5, 0.2), (7, 0.4)]);
        assert_eq!(by_channel.render(), "channel 0: 0.1, channel 2: 0.3, channel 5: 0.2, ...");
        let io = Quantity::NamedScales(vec![("input", 0.1), ("output", 0.125)]);
        assert_eq!(io.to_string(), "input 0.1, output 0.125 (2^-3)");
    }

    #[test]
    fn every_rule_has_a_file_with_what_why_and_an_example() {
        for &rule in Rule::ALL {
            let doc = explain(rule).unwrap_or_else(|| panic!("{rule} has no file"));
            assert!(doc.starts_with(&format!("`{}`: ", rule.code())), "{rule}: {doc}");
            assert!(doc.contains("\nWhy: "), "{rule} says no why: {doc}");
            assert!(doc.contains("\nExample: "), "{rule} gives no example: {doc}");
        }
        // Each rule once, in the order of `Rule::ALL`; every operator-limit rule among them.
        assert_eq!(documented().collect::<Vec<_>>(), Rule::ALL);
        assert!(OP_RULES.iter().all(|(r, _)| documented().any(|d| d == *r)));
    }
}
