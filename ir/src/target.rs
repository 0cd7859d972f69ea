//! DLA targets as data: which ops an accelerator runs, their limits, and its scale rules.
//!
//! A [`Target`] is what `spec/targets/<name>.yaml` describes (the format is `spec/targets.md`):
//! - `operators`: the op kinds the DLA runs, each with the ONNX op types it covers and its
//!   [`Limits`] (kernel sizes, strides, paddings, channels, feature-map sizes, ...); any other op
//!   falls back to the CPU;
//! - `tensors`: limits on the graph inputs, the feature maps, the weights and the biases
//!   (channels, spatial size, bit depths);
//! - `scales`: the scale formats of feature maps and weights, and the ops that may change scale;
//! - `absorbed`: ops that are not placed at all (quantizers describe the scales of the tensors
//!   they write);
//! - `deprecated_attributes`: node attributes the source document deprecates;
//! - `severity`: per-rule overrides of the default severities of [`Rule`].
//!
//! The types deserialize with serde (the YAML reader lives in `compiler`, since this crate does
//! no I/O). Every field is checked where it is read: unknown keys, ranges with `min > max`,
//! unknown rule names and empty lists are deserialization errors, so a reader that tracks
//! positions can point at the offending key.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::op::{Op, QONNX_DOMAINS, is_default_domain};

/// A DLA target description.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The name `--target` takes (`access-dla`).
    pub name: String,
    /// One line: the accelerator and the document the rules come from.
    pub title: String,
    /// Where the rules come from (a document and its version).
    #[serde(default)]
    pub source: Option<String>,
    pub tensors: TensorRules,
    pub scales: ScaleRules,
    /// Op types that are not placed on any unit (quantizers, constants).
    #[serde(default)]
    pub absorbed: Vec<String>,
    /// The op kinds the DLA runs; an op matches the first entry that covers it.
    #[serde(deserialize_with = "non_empty")]
    pub operators: Vec<OperatorRule>,
    /// Node attributes the source document deprecates, each with what to use instead.
    #[serde(default)]
    pub deprecated_attributes: BTreeMap<String, String>,
    /// Severities that differ from each rule's default.
    #[serde(default)]
    pub severity: BTreeMap<Rule, Severity>,
}

/// Limits on the tensors of the graph.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorRules {
    /// Graph inputs.
    #[serde(default)]
    pub input: TensorLimits,
    /// The 4-D activations that DLA ops read and write.
    #[serde(default)]
    pub feature_map: TensorLimits,
    /// Constant weight operands of DLA ops.
    #[serde(default)]
    pub weight: TensorLimits,
    /// Bias operands of DLA ops.
    #[serde(default)]
    pub bias: TensorLimits,
}

/// Limits on one kind of tensor. Channels and size apply to 4-D (N, C, H, W) tensors.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorLimits {
    /// The channel count (dim 1).
    #[serde(default)]
    pub channels: Option<Allowed>,
    /// Each spatial size (H and W).
    #[serde(default)]
    pub size: Option<Allowed>,
    /// The bit depth.
    #[serde(default)]
    pub bits: Option<Allowed>,
}

/// How scales must be written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRules {
    /// Feature maps (one scale per tensor).
    pub feature_map: ScaleFormat,
    /// Weights (one scale per output channel, or one for the tensor).
    pub weight: ScaleFormat,
    /// The largest `a` of a reciprocal dyadic scale `2^n / a`.
    #[serde(default = "default_max_denominator")]
    pub max_denominator: u32,
    /// Relative tolerance when matching a scale to its format.
    #[serde(default = "default_tolerance", deserialize_with = "tolerance")]
    pub tolerance: f64,
    /// Zero points must be 0 (the format has a scale only).
    #[serde(default = "yes")]
    pub zero_point_zero: bool,
    /// Op types whose output may have another scale than their inputs; every other DLA op must
    /// keep its input scale on its output.
    #[serde(default)]
    pub may_change: Vec<String>,
}

fn default_max_denominator() -> u32 {
    255
}

fn default_tolerance() -> f64 {
    1e-6
}

fn yes() -> bool {
    true
}

/// A scale format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleFormat {
    /// `2^n` with integer `n`.
    PowerOfTwo,
    /// `2^n / a` with integer `n` and integer `a` in `1..=max_denominator`.
    ReciprocalDyadic,
    /// Any positive finite scale.
    Any,
}

impl ScaleFormat {
    /// How the format reads in a report.
    pub fn describe(self, max_denominator: u32) -> String {
        match self {
            ScaleFormat::PowerOfTwo => "a power of two, 2^n".into(),
            ScaleFormat::ReciprocalDyadic => {
                format!("reciprocal dyadic, 2^n / a with integer a in 1..{max_denominator}")
            }
            ScaleFormat::Any => "any positive scale".into(),
        }
    }
}

/// One op kind the DLA runs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRule {
    /// A short kebab-case id (`depthwise-conv`).
    pub name: String,
    /// How people call it (`Depth-wise convolution`).
    pub title: String,
    /// The ONNX op types it covers (`Conv`), or `domain::OpType` for other domains.
    #[serde(deserialize_with = "non_empty")]
    pub op_types: Vec<String>,
    /// A further condition on the op.
    #[serde(default)]
    pub when: Option<Condition>,
    /// It runs fused with the op that writes its input (a pipelined activation, a folded
    /// batch normalization): that input is not a feature map in memory, so tensor limits and
    /// scales are checked on this op's output instead.
    #[serde(default)]
    pub fused: bool,
    /// How the DLA runs it (shown in `qc targets show`).
    #[serde(default)]
    pub note: Option<String>,
    /// The section of the source document.
    #[serde(default)]
    pub guide: Option<String>,
    /// Input slots that hold weights (checked as weights when constant).
    #[serde(default)]
    pub weights: Vec<usize>,
    /// Input slots that hold biases.
    #[serde(default)]
    pub bias: Vec<usize>,
    #[serde(default)]
    pub limits: Limits,
}

/// A condition that selects among entries covering the same op type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// A convolution with `group = 1`.
    Standard,
    /// A convolution where each group reads one input channel (`group > 1`, weight dim 1 is 1).
    Depthwise,
}

impl Condition {
    pub fn describe(self) -> &'static str {
        match self {
            Condition::Standard => "group 1",
            Condition::Depthwise => "one input channel per group",
        }
    }
}

/// The limits of one op kind. Absent limits are not checked.
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The rank of input 0.
    #[serde(default)]
    pub rank: Option<Allowed>,
    /// Each kernel dim (H and W); for global pools, the input's spatial size.
    #[serde(default)]
    pub kernel: Option<Allowed>,
    /// The kernel must be square (H = W).
    #[serde(default)]
    pub square_kernel: bool,
    /// Each spatial dim of input 0.
    #[serde(default)]
    pub feature_map: Option<Allowed>,
    /// Input and output channels (features for fully connected layers).
    #[serde(default)]
    pub channels: Option<Allowed>,
    /// Each stride.
    #[serde(default)]
    pub stride: Option<Allowed>,
    /// Each side's padding.
    #[serde(default)]
    pub padding: Option<Allowed>,
    /// The sides that may be padded; padding elsewhere must be 0.
    #[serde(default)]
    pub pad_sides: Option<Vec<Side>>,
    /// The value padding fills in (documentation: ONNX convolutions pad with zeros).
    #[serde(default)]
    pub pad_value: Option<f64>,
    /// Each dilation.
    #[serde(default)]
    pub dilation: Option<Allowed>,
    /// The number of inputs given.
    #[serde(default)]
    pub inputs: Option<Allowed>,
    /// Op types that must produce input 0.
    #[serde(default)]
    pub follows: Option<Vec<String>>,
}

/// A side of a 2-D window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Top,
    Left,
    Bottom,
    Right,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Top => "top",
            Side::Left => "left",
            Side::Bottom => "bottom",
            Side::Right => "right",
        }
    }
}

/// Whether a finding stops the model from being deployed as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident $name:literal $code:literal $severity:ident; )*) => {
        /// A rule `qc check` applies; each finding names one. The code is
        /// `qc::check::<name>`, explained in `spec/diagnostics.md`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Rule {
            $( $(#[$doc])* $variant, )*
        }

        impl Rule {
            /// Every rule, in the order of `spec/diagnostics.md`.
            pub const ALL: &[Rule] = &[$( Rule::$variant, )*];

            /// The kebab-case name (`kernel-size`).
            pub fn name(self) -> &'static str {
                match self { $( Rule::$variant => $name, )* }
            }

            /// The stable diagnostic code (`qc::check::kernel-size`).
            pub fn code(self) -> &'static str {
                match self { $( Rule::$variant => $code, )* }
            }

            /// The severity when the target does not override it.
            pub fn default_severity(self) -> Severity {
                match self { $( Rule::$variant => Severity::$severity, )* }
            }
        }
    };
}

rules! {
    /// An op the target does not run: it falls back to the CPU.
    UnsupportedOp "unsupported-op" "qc::check::unsupported-op" Warning;
    /// A kernel outside the allowed sizes.
    KernelSize "kernel-size" "qc::check::kernel-size" Error;
    /// A stride outside the allowed values.
    Stride "stride" "qc::check::stride" Error;
    /// Padding too large, or on a side the op may not pad.
    Padding "padding" "qc::check::padding" Error;
    /// A dilation outside the allowed values.
    Dilation "dilation" "qc::check::dilation" Error;
    /// Too few or too many channels (or features).
    Channels "channels" "qc::check::channels" Error;
    /// A spatial size outside the allowed range.
    FeatureMapSize "feature-map-size" "qc::check::feature-map-size" Error;
    /// An input of a rank the op does not take.
    Rank "rank" "qc::check::rank" Error;
    /// Too many or too few inputs.
    InputCount "input-count" "qc::check::input-count" Error;
    /// An op that must follow another kind of op does not.
    Predecessor "predecessor" "qc::check::predecessor" Error;
    /// A tensor of a bit depth the DLA does not have.
    BitDepth "bit-depth" "qc::check::bit-depth" Error;
    /// The model describes no quantization at all.
    NotQuantized "not-quantized" "qc::check::not-quantized" Error;
    /// A tensor the DLA reads or writes has no scale.
    ScaleMissing "scale-missing" "qc::check::scale-missing" Error;
    /// A feature-map scale that is not a power of two.
    ScaleNotPowerOfTwo "scale-not-power-of-two" "qc::check::scale-not-power-of-two" Error;
    /// A weight scale that is not reciprocal dyadic.
    ScaleNotReciprocalDyadic "scale-not-reciprocal-dyadic" "qc::check::scale-not-reciprocal-dyadic" Error;
    /// A feature map with more than one scale.
    ScaleNotPerTensor "scale-not-per-tensor" "qc::check::scale-not-per-tensor" Error;
    /// Per-channel weight scales that are not one per output channel.
    WeightScaleCount "weight-scale-count" "qc::check::weight-scale-count" Error;
    /// Two scales that must be equal differ.
    ScaleMismatch "scale-mismatch" "qc::check::scale-mismatch" Error;
    /// A nonzero zero point.
    ZeroPoint "zero-point" "qc::check::zero-point" Error;
    /// An attribute the guide deprecates.
    DeprecatedAttribute "deprecated-attribute" "qc::check::deprecated-attribute" Warning;
    /// A limit that could not be checked (an unknown shape).
    Unchecked "unchecked" "qc::check::unchecked" Warning;
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Target {
    /// The severity of `rule` on this target.
    pub fn severity(&self, rule: Rule) -> Severity {
        self.severity.get(&rule).copied().unwrap_or_else(|| rule.default_severity())
    }

    /// Whether `op` is one of the absorbed op types.
    pub fn is_absorbed(&self, op: &Op) -> bool {
        self.absorbed.iter().any(|t| names_op(t, op))
    }

    /// Whether `op` may give its output another scale than its inputs.
    pub fn may_change_scale(&self, op: &Op) -> bool {
        self.scales.may_change.iter().any(|t| names_op(t, op))
    }

    /// The entries that list `op`'s type (before their conditions are checked).
    pub fn entries_for(&self, op: &Op) -> Vec<&OperatorRule> {
        self.operators.iter().filter(|r| r.op_types.iter().any(|t| names_op(t, op))).collect()
    }
}

/// Whether `name` (`Conv`, or `domain::OpType`) names `op`. A plain name matches ops of the
/// default domain and of QONNX's domains.
pub fn names_op(name: &str, op: &Op) -> bool {
    match name.rsplit_once("::") {
        Some((domain, ty)) => ty == op.op_type() && domain == op.domain(),
        None => {
            name == op.op_type() && (is_default_domain(op.domain()) || QONNX_DOMAINS.contains(&op.domain()))
        }
    }
}

/// A set of allowed integers: a range (`min`, `max`, `multiple_of`) or a list (`values`).
/// In YAML: `8`, `[1, 2]`, or `{min: 1, max: 7}`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Allowed {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub multiple_of: Option<i64>,
    pub values: Option<Vec<i64>>,
}

impl Allowed {
    /// A range.
    pub fn range(min: i64, max: i64) -> Allowed {
        Allowed { min: Some(min), max: Some(max), ..Default::default() }
    }

    /// A list of values.
    pub fn values(values: &[i64]) -> Allowed {
        Allowed { values: Some(values.to_vec()), ..Default::default() }
    }

    pub fn contains(&self, x: i64) -> bool {
        self.min.is_none_or(|m| x >= m)
            && self.max.is_none_or(|m| x <= m)
            && self.multiple_of.is_none_or(|m| x % m == 0)
            && self.values.as_ref().is_none_or(|v| v.contains(&x))
    }

    /// `1 to 7`, `1 or 2`, `up to 2048`, `16 to 2048, a multiple of 16`.
    pub fn describe(&self) -> String {
        self.describe_with(|x| x.to_string())
    }

    /// Like [`Allowed::describe`] for a square window: `1x1 to 7x7`, `2x2 or 3x3`.
    pub fn describe_square(&self) -> String {
        self.describe_with(|x| format!("{x}x{x}"))
    }

    fn describe_with(&self, f: impl Fn(i64) -> String) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.values {
            let items: Vec<String> = v.iter().map(|x| f(*x)).collect();
            parts.push(match items.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => items.join(""),
            });
        }
        match (self.min, self.max) {
            (Some(a), Some(b)) if a == b => parts.push(f(a)),
            (Some(a), Some(b)) => parts.push(format!("{} to {}", f(a), f(b))),
            (Some(a), None) => parts.push(format!("at least {}", f(a))),
            (None, Some(b)) => parts.push(format!("up to {}", f(b))),
            (None, None) => {}
        }
        if let Some(m) = self.multiple_of {
            parts.push(format!("a multiple of {m}"));
        }
        if parts.is_empty() { "any".into() } else { parts.join(", ") }
    }
}

impl<'de> Deserialize<'de> for Allowed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Allowed, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Allowed;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer, a list of integers, or {min, max, multiple_of, values}")
            }

            fn visit_i64<E: de::Error>(self, x: i64) -> Result<Allowed, E> {
                Ok(Allowed::values(&[x]))
            }

            fn visit_u64<E: de::Error>(self, x: u64) -> Result<Allowed, E> {
                let x = i64::try_from(x).map_err(|_| E::custom("integer too large"))?;
                Ok(Allowed::values(&[x]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Allowed, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<i64>()? {
                    v.push(x);
                }
                if v.is_empty() {
                    return Err(de::Error::custom("the list of allowed values is empty"));
                }
                Ok(Allowed::values(&v))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Allowed, A::Error> {
                let mut a = Allowed::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "min" => a.min = Some(map.next_value()?),
                        "max" => a.max = Some(map.next_value()?),
                        "multiple_of" => {
                            let m: i64 = map.next_value()?;
                            if m < 1 {
                                return Err(de::Error::custom("`multiple_of` must be at least 1"));
                            }
                            a.multiple_of = Some(m);
                        }
                        "values" => {
                            let v: Vec<i64> = map.next_value()?;
                            if v.is_empty() {
                                return Err(de::Error::custom("`values` is empty"));
                            }
                            a.values = Some(v);
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["min", "max", "multiple_of", "values"],
                            ));
                        }
                    }
                }
                if a == Allowed::default() {
                    return Err(de::Error::custom("give at least one of min, max, multiple_of, values"));
                }
                if let (Some(lo), Some(hi)) = (a.min, a.max)
                    && lo > hi
                {
                    return Err(de::Error::custom(format!("`min` ({lo}) is larger than `max` ({hi})")));
                }
                Ok(a)
            }
        }
        d.deserialize_any(V)
    }
}

fn tolerance<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let t = f64::deserialize(d)?;
    if !(t.is_finite() && (0.0..1.0).contains(&t)) {
        return Err(de::Error::custom(format!("the tolerance must be in [0, 1), not {t}")));
    }
    Ok(t)
}

fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    if v.is_empty() {
        return Err(de::Error::custom("the list is empty"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_sets_read_and_describe() {
        assert_eq!(Allowed::range(1, 7).describe(), "1 to 7");
        assert_eq!(Allowed::range(1, 7).describe_square(), "1x1 to 7x7");
        assert_eq!(Allowed::values(&[1, 2]).describe(), "1 or 2");
        assert_eq!(Allowed::values(&[8]).describe(), "8");
        assert_eq!(Allowed::values(&[2, 3]).describe_square(), "2x2 or 3x3");
        let fm = Allowed { min: Some(16), max: Some(2048), multiple_of: Some(16), values: None };
        assert_eq!(fm.describe(), "16 to 2048, a multiple of 16");
        assert!(fm.contains(32) && !fm.contains(24) && !fm.contains(4096) && !fm.contains(0));
        assert_eq!(Allowed { max: Some(2048), ..Default::default() }.describe(), "up to 2048");
    }

    #[test]
    fn rules_have_kebab_names_and_matching_codes() {
        for r in Rule::ALL {
            assert_eq!(r.code(), ["qc", "check", r.name()].join("::"));
            assert!(r.name().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    #[test]
    fn op_names_match_domains() {
        let conv = Op::new("Conv", None);
        assert!(names_op("Conv", &conv));
        assert!(!names_op("Relu", &conv));
        let quant = Op::new("Quant", Some("qonnx.custom_op.general".into()));
        assert!(names_op("Quant", &quant));
        let custom = Op::new("Conv", Some("qonnx.custom_op.channels_last".into()));
        assert!(!names_op("Conv", &custom));
        assert!(names_op("qonnx.custom_op.channels_last::Conv", &custom));
    }
}
