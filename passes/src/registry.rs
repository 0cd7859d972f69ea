//! The registry: every pass by its kebab-case name, with its options and a constructor. It is
//! the one table a pipeline's names are looked up in, and `qc optimize --list-passes` prints it.

use crate::pass::Pass;
use crate::passes;

/// What the registry knows about a pass.
pub struct PassInfo {
    pub name: &'static str,
    /// One line: what the pass does.
    pub summary: &'static str,
    /// `(option, meaning)` pairs the pass accepts in `{key=value}`.
    pub options: &'static [(&'static str, &'static str)],
    /// Builds the pass from its options.
    pub build: fn(&mut PassOptions<'_>) -> Result<Box<dyn Pass>, OptionError>,
}

/// The pipeline `qc optimize` runs when `--passes` is not given.
///
/// `remove-static-inputs` first: initializers that old exporters list among the graph inputs
/// become constants, as onnx-simplifier and Kneron's optimizer treat them, so that their
/// BatchNormalizations fold. Shape inference next (the shape-based eliminations and fusions need
/// declared shapes), then
/// a fixpoint of folding, eliminations and fusions, ending with `eliminate-dead` and
/// `infer-shapes` so that every value of the output carries its inferred type. Fusions that
/// produce a BatchNormalization (`fuse-mul-add-into-bn`) run before the one that folds it away
/// (`fuse-bn-into-conv`), and `fuse-matmul-add-into-gemm` before both, so no rewrite undoes
/// another; `fuse-scale-bias-into-conv` then takes a lone per-channel Add or Mul after a Conv. The transformer fusions (`eliminate-layout-roundtrips`, `fuse-normalization`,
/// `fuse-activations`) run before `fuse-mul-add-into-bn`, which would otherwise take a rank-2
/// layer normalization's `Mul` by gamma and `Add` of beta for a BatchNormalization; they never
/// raise the opset. `fuse-qkv` (Kneron's `fuse_qkv`, on by default there too; `--skip-fuse-qkv`
/// drops it) runs after the fusions that fold a BatchNormalization into a MatMul's weight, whose
/// output it would otherwise split. Quantizers stay unless `--fold-quant-weights`.
pub const DEFAULT_PIPELINE: &str = "remove-static-inputs,infer-shapes,fixpoint(fold-constants,fold-reshape-own-dims,eliminate-identity,\
eliminate-common-subexpressions,fuse-consecutive-transposes,fuse-consecutive-reshapes,fuse-consecutive-slices,\
eliminate-layout-roundtrips,fuse-transpose-into-gemm,fuse-matmul-add-into-gemm,fuse-normalization,\
fuse-activations,fuse-mul-add-into-bn,fuse-bn-into-conv,fuse-scale-bias-into-conv,fuse-pad-into-conv,fuse-qkv,eliminate-dead,\
infer-shapes){max=20}";

/// Every pass qc has, in alphabetical order.
pub static REGISTRY: &[PassInfo] = &[
    passes::absorb_quant::INFO,
    passes::check_scales::INFO,
    passes::check_target::INFO,
    passes::clear_descriptions::INFO,
    passes::clear_shapes::INFO,
    passes::convert_f16::INFO,
    passes::defuse_gaps::INFO,
    passes::duplicate_shared_weights::INFO,
    passes::eliminate_cse::INFO,
    passes::eliminate_dead::INFO,
    passes::eliminate_identity::INFO,
    passes::eliminate_layout_roundtrips::INFO,
    passes::fold_constants::INFO,
    passes::fold_reshape_own_dims::INFO,
    passes::fuse_activations::INFO,
    passes::fuse_attention::INFO,
    passes::fuse_bn_into_conv::INFO,
    passes::fuse_consecutive_reshapes::INFO,
    passes::fuse_consecutive_slices::INFO,
    passes::fuse_consecutive_transposes::INFO,
    passes::fuse_matmul_add_into_gemm::INFO,
    passes::fuse_mul_add_into_bn::INFO,
    passes::fuse_normalization::INFO,
    passes::fuse_pad_into_conv::INFO,
    passes::fuse_qkv::INFO,
    passes::fuse_scale_bias_into_conv::INFO,
    passes::fuse_transpose_into_gemm::INFO,
    passes::infer_datatypes::INFO,
    passes::infer_shapes::INFO,
    passes::lower_to_loops::INFO,
    passes::opt_matmul::INFO,
    passes::propagate_scales::INFO,
    passes::qcdq_to_quant::INFO,
    passes::quant_to_qcdq::INFO,
    passes::remove_static_inputs::INFO,
    passes::replace_avgpool_with_conv::INFO,
    passes::replace_dilated_conv::INFO,
    passes::to_channels_last::INFO,
];

/// The pass called `name`.
pub fn lookup(name: &str) -> Option<&'static PassInfo> {
    REGISTRY.iter().find(|p| p.name == name)
}

/// The options written after a pass's name, as its constructor reads them.
pub struct PassOptions<'a> {
    pass: &'static str,
    given: &'a [(String, String)],
    used: Vec<bool>,
}

/// An option a pass does not accept, or a value it cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum OptionError {
    #[error("pass `{pass}` has no option `{option}`")]
    #[diagnostic(code(qc::pipeline::unknown_option), help("{pass} accepts: {accepted}"))]
    Unknown { pass: &'static str, option: String, accepted: String },

    #[error("option `{option}` of pass `{pass}` cannot be `{value}`: {expected}")]
    #[diagnostic(code(qc::pipeline::bad_option))]
    BadValue { pass: &'static str, option: String, value: String, expected: &'static str },
}

impl<'a> PassOptions<'a> {
    pub fn new(pass: &'static str, given: &'a [(String, String)]) -> PassOptions<'a> {
        PassOptions { pass, given, used: vec![false; given.len()] }
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let i = self.given.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(&self.given[i].1)
    }

    /// A `true`/`false` option.
    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool, OptionError> {
        match self.take(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(self.bad(key, v, "true or false")),
        }
    }

    /// An option whose value is one of `choices`; returns its index.
    pub fn choice(
        &mut self,
        key: &str,
        default: usize,
        choices: &'static [&'static str],
    ) -> Result<usize, OptionError> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => choices
                .iter()
                .position(|c| *c == v)
                .ok_or_else(|| self.bad(key, v, "one of the values --list-passes shows")),
        }
    }

    /// A text option, as given.
    pub fn text(&mut self, key: &str) -> Option<&'a str> {
        self.take(key)
    }

    /// The error for a text option whose value the pass cannot use.
    pub fn invalid(&self, key: &str, value: &str, expected: &'static str) -> OptionError {
        self.bad(key, value, expected)
    }

    /// A whole-number option.
    pub fn u64(&mut self, key: &str, default: u64) -> Result<u64, OptionError> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.bad(key, v, "a whole number")),
        }
    }

    fn bad(&self, key: &str, value: &str, expected: &'static str) -> OptionError {
        OptionError::BadValue { pass: self.pass, option: key.into(), value: value.into(), expected }
    }

    /// Fails on any option the constructor did not read.
    pub fn finish(self, info: &PassInfo) -> Result<(), OptionError> {
        match self.used.iter().position(|u| !u) {
            None => Ok(()),
            Some(i) => {
                let accepted: Vec<&str> = info.options.iter().map(|(k, _)| *k).collect();
                Err(OptionError::Unknown {
                    pass: self.pass,
                    option: self.given[i].0.clone(),
                    accepted: if accepted.is_empty() { "no options".into() } else { accepted.join(", ") },
                })
            }
        }
    }
}

/// Builds the pass `name` with `options`.
pub fn build(info: &PassInfo, options: &[(String, String)]) -> Result<Box<dyn Pass>, OptionError> {
    let mut opts = PassOptions::new(info.name, options);
    let pass = (info.build)(&mut opts)?;
    opts.finish(info)?;
    Ok(pass)
}

/// The registered name closest to `name`, for "did you mean" hints.
pub fn closest(name: &str) -> Option<&'static str> {
    REGISTRY
        .iter()
        .map(|p| (edit_distance(name, p.name), p.name))
        .filter(|(d, n)| *d <= n.len() / 3 + 1)
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_sorted_and_kebab_case() {
        let names: Vec<&str> = REGISTRY.iter().map(|p| p.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        for n in names {
            let first = n.chars().next().is_some_and(|c| c.is_ascii_lowercase());
            assert!(
                first && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
        }
    }

    #[test]
    fn unknown_options_are_rejected_and_close_names_suggested() {
        let info = lookup("eliminate-dead").unwrap();
        let e = build(info, &[("speed".into(), "3".into())]).err().unwrap();
        assert!(matches!(e, OptionError::Unknown { .. }));
        assert_eq!(closest("eliminate-ded"), Some("eliminate-dead"));
        assert_eq!(closest("xyz"), None);
    }
}
