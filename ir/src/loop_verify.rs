//! The loop-nest verifier: checks that a [`Workload`] is well formed and reports every problem
//! at once, as [`crate::verify`] does for the graph IR.
//!
//! Checked, for each layer:
//! - loop dims (`qc::verify::loop_dim`): names upper case and unique; sizes >= 1 (no dims at all
//!   is one iteration, an element-wise op on scalars);
//!   the sizes multiply to at most 2^128 iterations (`qc::verify::loop_size`);
//! - operands (`qc::verify::loop_operand`): the output's role is `O`, the inputs' roles are
//!   upper case, unique and not `O`;
//! - index expressions (`qc::verify::loop_index`): every index of every operand is a declared
//!   loop dim (lower case) or a relation's name;
//! - relations (`qc::verify::loop_relation`): named in lower case, neither a loop dim nor
//!   defined twice; every term a declared loop dim; the offset is minus the low padding; the
//!   extent is >= 1 and the extent and padding fit in 64 bits; the index range fits in `i64`;
//! - precisions (`qc::verify::loop_precision`): operand bits at most 64 (0 is an operand
//!   without data, such as a pool's implicit weights), partial-sum bits at most 256;
//! - sources (`qc::verify::loop_source`): a layer source names another layer of the workload, a
//!   node source names a node that was not lowered (also for what those nodes read).
//!
//! It runs after `lower-to-loops` and after a ZigZag workload is read, and in tests after every
//! pass.

use std::collections::HashSet;

use crate::loops::{LoopNest, Operand, Relation, Source, Workload};

/// Bits an operand may have.
const MAX_OPERAND_BITS: u32 = 64;
/// Bits a partial sum may have (bit growth over up to 2^128 iterations of 64-bit products).
const MAX_PSUM_BITS: u32 = 256;

/// One problem the loop-nest verifier found, naming the layer it is in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum LoopError {
    #[error("layer `{layer}`: {problem}")]
    #[diagnostic(code(qc::verify::loop_dim), help("loop dim names are upper case and unique, sizes >= 1"))]
    Dim { layer: String, problem: String },

    #[error("layer `{layer}`: the loop sizes {sizes} multiply past 2^128 iterations")]
    #[diagnostic(
        code(qc::verify::loop_size),
        help(
            "a layer's loop sizes must multiply to a count qc can hold: check the model's or workload's dims"
        )
    )]
    Size { layer: String, sizes: String },

    #[error("layer `{layer}`: {problem}")]
    #[diagnostic(
        code(qc::verify::loop_operand),
        help("the output operand has role `O`; input roles are other upper-case letters, each used once")
    )]
    Operand { layer: String, problem: String },

    #[error("layer `{layer}`: index `{index}` of operand `{role}` is neither a loop dim nor a relation")]
    #[diagnostic(
        code(qc::verify::loop_index),
        help("declare the dim (upper case) in the layer's dims, or define `{index}` by a relation")
    )]
    Index { layer: String, role: String, index: String },

    #[error("layer `{layer}`: relation `{relation}`: {problem}")]
    #[diagnostic(
        code(qc::verify::loop_relation),
        help(
            "a relation `name = sum(coef * dim) - pad_low` defines a lower-case index over declared dims, once, with an extent >= 1"
        )
    )]
    Relation { layer: String, relation: String, problem: String },

    #[error("layer `{layer}`: {what} has {bits} bits")]
    #[diagnostic(
        code(qc::verify::loop_precision),
        help("operand precisions are at most 64 bits, partial sums at most 256 bits")
    )]
    Precision { layer: String, what: String, bits: u32 },

    #[error("{at}: {what} reads {source_kind} `{name}`, {problem}")]
    #[diagnostic(
        code(qc::verify::loop_source),
        help(
            "a layer source names another layer of the workload; a node source names a node that was not lowered"
        )
    )]
    Source { at: String, what: String, source_kind: &'static str, name: String, problem: &'static str },
}

/// Verifies every layer of `w` and the sources of its not-lowered nodes. An empty list means the
/// workload is well formed.
pub fn verify_workload(w: &Workload) -> Vec<LoopError> {
    let layers: HashSet<&str> = w.layers.iter().map(|l| l.name.as_str()).collect();
    let nodes: HashSet<&str> = w.not_lowered.iter().map(|n| n.node.as_str()).collect();
    let mut errors = Vec::new();
    for l in &w.layers {
        verify_nest(l, &mut errors);
        for o in &l.inputs {
            let what = format!("operand `{}`", o.role);
            check_source(&layer_at(&l.name), &what, &o.source, Some(&l.name), &layers, &nodes, &mut errors);
        }
    }
    for n in &w.not_lowered {
        for (i, s) in n.inputs.iter().enumerate() {
            let at = format!("node `{}` (not lowered)", n.node);
            check_source(&at, &format!("input {i}"), s, None, &layers, &nodes, &mut errors);
        }
    }
    errors
}

/// Verifies one layer on its own (everything but its sources, which need the workload).
pub fn verify_nest(l: &LoopNest, errors: &mut Vec<LoopError>) {
    let layer = || l.name.clone();
    let dim = |problem: String| LoopError::Dim { layer: layer(), problem };

    // Dims and sizes.
    let mut seen = HashSet::new();
    for d in &l.dims {
        if d.name.is_empty() || d.name != d.name.to_uppercase() {
            errors.push(dim(format!("loop dim `{}` is not an upper-case name", d.name)));
        }
        if !seen.insert(d.name.as_str()) {
            errors.push(dim(format!("loop dim `{}` is declared twice", d.name)));
        }
        if d.size == 0 {
            errors.push(dim(format!("loop dim `{}` has size 0", d.name)));
        }
    }
    if crate::dims::product_u128(l.dims.iter().map(|d| d.size)).is_none() {
        let sizes: Vec<String> = l.dims.iter().map(|d| format!("{}={}", d.name, d.size)).collect();
        errors.push(LoopError::Size { layer: layer(), sizes: sizes.join(", ") });
    }
    let is_dim = |index: &str| index == index.to_lowercase() && l.size(&index.to_uppercase()).is_some();

    // Operands.
    let operand = |problem: String| LoopError::Operand { layer: layer(), problem };
    if l.output.role != "O" {
        errors.push(operand(format!("the output operand has role `{}`, not `O`", l.output.role)));
    }
    let mut roles = HashSet::new();
    for o in &l.inputs {
        if o.role.is_empty() || o.role != o.role.to_uppercase() || o.role == "O" {
            errors.push(operand(format!(
                "input operand role `{}` is not an upper-case role other than `O`",
                o.role
            )));
        } else if !roles.insert(o.role.as_str()) {
            errors.push(operand(format!("input operand role `{}` is used twice", o.role)));
        }
    }

    // Index expressions.
    for o in std::iter::once(&l.output).chain(&l.inputs) {
        for index in &o.index {
            if !is_dim(index) && l.relation(index).is_none() {
                errors.push(LoopError::Index { layer: layer(), role: o.role.clone(), index: index.clone() });
            }
        }
    }

    // Relations.
    let mut defined = HashSet::new();
    for r in &l.relations {
        for problem in relation_problems(l, r, &mut defined) {
            errors.push(LoopError::Relation { layer: layer(), relation: r.name.clone(), problem });
        }
    }

    // Precisions.
    let operands = std::iter::once(&l.output).chain(&l.inputs);
    for (o, bits) in operands.filter_map(|o: &Operand| Some((o, o.precision?))) {
        if bits > MAX_OPERAND_BITS {
            errors.push(LoopError::Precision { layer: layer(), what: format!("operand `{}`", o.role), bits });
        }
    }
    if let Some(bits) = l.psum_precision.filter(|&b| b > MAX_PSUM_BITS) {
        errors.push(LoopError::Precision { layer: layer(), what: "the partial sum".into(), bits });
    }
}

fn relation_problems<'a>(l: &LoopNest, r: &'a Relation, defined: &mut HashSet<&'a str>) -> Vec<String> {
    let mut problems = Vec::new();
    if r.name.is_empty() || r.name != r.name.to_lowercase() {
        problems.push("the name is not lower case".to_string());
    }
    if l.size(&r.name.to_uppercase()).is_some() {
        problems.push("the name is also a loop dim".to_string());
    }
    if !defined.insert(r.name.as_str()) {
        problems.push("it is defined twice".to_string());
    }
    // The range of the index, as i128 (terms and offset are i64, sizes u64), must fit in i64.
    let (mut low, mut high) = (i128::from(r.offset), i128::from(r.offset));
    for (coef, d) in &r.terms {
        let Some(size) = l.size(&d.to_uppercase()).filter(|_| *d == d.to_lowercase()) else {
            problems.push(format!("term `{coef}*{d}` is not over a loop dim"));
            continue;
        };
        let reach = i128::from(*coef).saturating_mul(i128::from(size.saturating_sub(1)));
        if reach < 0 {
            low = low.saturating_add(reach);
        } else {
            high = high.saturating_add(reach);
        }
    }
    if low < i128::from(i64::MIN) || high > i128::from(i64::MAX) {
        problems.push("its index range does not fit in 64 bits".to_string());
    }
    if i128::from(r.offset) != -i128::from(r.padding.0) {
        problems.push(format!("the offset {} is not minus the low padding {}", r.offset, r.padding.0));
    }
    if r.extent == 0 {
        problems.push("the extent is 0".to_string());
    }
    if r.extent.checked_add(r.padding.0).and_then(|e| e.checked_add(r.padding.1)).is_none() {
        problems.push(format!("the extent {} and padding {:?} overflow 64 bits", r.extent, r.padding));
    }
    problems
}

fn layer_at(name: &str) -> String {
    format!("layer `{name}`")
}

fn check_source(
    at: &str,
    what: &str,
    s: &Source,
    own: Option<&str>,
    layers: &HashSet<&str>,
    nodes: &HashSet<&str>,
    errors: &mut Vec<LoopError>,
) {
    let bad = |source_kind, name: &String, problem| LoopError::Source {
        at: at.to_string(),
        what: what.to_string(),
        source_kind,
        name: name.clone(),
        problem,
    };
    const MISSING: &str = "which the workload does not have";
    match s {
        Source::Layer(n) if own == Some(n.as_str()) => errors.push(bad(
            "layer",
            n,
            "its own layer (an operand that is the layer's output has source `Other`)",
        )),
        Source::Layer(n) if !layers.contains(n.as_str()) => errors.push(bad("layer", n, MISSING)),
        Source::Node(n) if !nodes.contains(n.as_str()) => errors.push(bad("node", n, MISSING)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loops::{Compute, LoopDim, NotLowered, PsumRule};

    fn operand(role: &str, index: &[&str], source: Source) -> Operand {
        Operand {
            role: role.into(),
            index: index.iter().map(|s| s.to_string()).collect(),
            precision: Some(8),
            quant: None,
            source,
            value: format!("{role}_value"),
        }
    }

    /// A 3x3 convolution over a 8x8 input with padding 1, reading layer `first`.
    fn conv(name: &str, input: Source) -> LoopNest {
        let dims = [("K", 4), ("C", 2), ("OY", 8), ("OX", 8), ("FY", 3), ("FX", 3)];
        let rel = |name: &str, o: &str, f: &str| Relation {
            name: name.into(),
            terms: vec![(1, o.into()), (1, f.into())],
            offset: -1,
            extent: 8,
            padding: (1, 1),
        };
        LoopNest {
            name: name.into(),
            id: 0,
            op_type: "Conv".into(),
            compute: Compute::Mac,
            dims: dims.iter().map(|(n, s)| LoopDim { name: n.to_string(), size: *s }).collect(),
            output: operand("O", &["k", "oy", "ox"], Source::Other),
            inputs: vec![
                operand("W", &["k", "c", "fy", "fx"], Source::Constant),
                operand("I", &["c", "iy", "ix"], input),
            ],
            relations: vec![rel("iy", "oy", "fy"), rel("ix", "ox", "fx")],
            psum_precision: Some(24),
            psum_rule: PsumRule::BitGrowth,
        }
    }

    fn workload(second: LoopNest) -> Workload {
        Workload {
            layers: vec![conv("first", Source::GraphInput("x".into())), second],
            not_lowered: vec![NotLowered {
                node: "relu".into(),
                op_type: "Relu".into(),
                reason: "not a compute op".into(),
                elements: None,
                inputs: vec![Source::Layer("first".into())],
            }],
        }
    }

    fn codes(w: &Workload) -> Vec<String> {
        use miette::Diagnostic;
        verify_workload(w).iter().map(|e| e.code().map(|c| c.to_string()).unwrap_or_default()).collect()
    }

    #[test]
    fn a_well_formed_workload_has_no_errors() {
        let w = workload(conv("second", Source::Node("relu".into())));
        assert_eq!(verify_workload(&w), vec![]);
    }

    #[test]
    fn dims_are_named_unique_and_not_empty() {
        let mut l = conv("second", Source::Layer("first".into()));
        l.dims[1].size = 0;
        l.dims.push(LoopDim { name: "K".into(), size: 1 });
        l.dims.push(LoopDim { name: "g".into(), size: 1 });
        let errors = verify_workload(&workload(l));
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "layer `second`: loop dim `C` has size 0",
                "layer `second`: loop dim `K` is declared twice",
                "layer `second`: loop dim `g` is not an upper-case name",
            ]
        );
        // A scalar layer (an element-wise op on rank-0 values) loops over nothing: one iteration.
        let mut l = conv("second", Source::Layer("first".into()));
        l.dims.clear();
        l.output.index.clear();
        l.inputs.truncate(1);
        l.inputs[0].index.clear();
        l.relations.clear();
        l.psum_precision = None;
        assert_eq!(verify_workload(&workload(l)), vec![]);
    }

    #[test]
    fn sizes_past_2_128_iterations() {
        let mut l = conv("second", Source::Layer("first".into()));
        for d in &mut l.dims[..3] {
            d.size = 1 << 62;
        }
        l.relations.clear();
        l.inputs[1].index = vec!["c".into()];
        let errors = verify_workload(&workload(l));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].to_string().contains("multiply past 2^128"), "{}", errors[0]);
        assert_eq!(codes(&Workload { layers: vec![], not_lowered: vec![] }), Vec::<String>::new());
    }

    #[test]
    fn operand_roles() {
        let mut l = conv("second", Source::Layer("first".into()));
        l.output.role = "Y".into();
        l.inputs[1].role = "W".into();
        l.inputs.push(operand("O", &["k"], Source::Constant));
        assert_eq!(codes(&workload(l)), ["qc::verify::loop_operand"; 3]);
    }

    #[test]
    fn indices_reference_declared_dims_or_relations() {
        let mut l = conv("second", Source::Layer("first".into()));
        l.inputs[0].index[0] = "K".into();
        l.output.index.push("b".into());
        let errors = verify_workload(&workload(l));
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "layer `second`: index `b` of operand `O` is neither a loop dim nor a relation",
                "layer `second`: index `K` of operand `W` is neither a loop dim nor a relation",
            ]
        );
    }

    #[test]
    fn relations_are_consistent() {
        let mut l = conv("second", Source::Layer("first".into()));
        l.relations[0].offset = 0;
        l.relations[0].terms.push((2, "b".into()));
        l.relations[1].extent = 0;
        l.relations.push(Relation {
            name: "oy".into(),
            terms: vec![],
            offset: 0,
            extent: 1,
            padding: (0, 0),
        });
        l.relations.push(Relation {
            name: "iz".into(),
            terms: vec![(i64::MAX, "oy".into())],
            offset: 0,
            extent: u64::MAX,
            padding: (0, 1),
        });
        let errors = verify_workload(&workload(l));
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "layer `second`: relation `iy`: term `2*b` is not over a loop dim",
                "layer `second`: relation `iy`: the offset 0 is not minus the low padding 1",
                "layer `second`: relation `ix`: the extent is 0",
                "layer `second`: relation `oy`: the name is also a loop dim",
                "layer `second`: relation `iz`: its index range does not fit in 64 bits",
                "layer `second`: relation `iz`: the extent 18446744073709551615 and padding (0, 1) overflow 64 bits",
            ]
        );
        let mut l = conv("second", Source::Layer("first".into()));
        l.relations.push(l.relations[0].clone());
        l.relations[1].name = "IX".into();
        assert_eq!(codes(&workload(l)).len(), 3, "ix undefined for I, IX not lower case, iy twice");
    }

    #[test]
    fn precisions_are_sane() {
        let mut l = conv("second", Source::Layer("first".into()));
        l.inputs[0].precision = Some(0);
        l.inputs[1].precision = Some(64);
        l.output.precision = Some(65);
        l.psum_precision = Some(300);
        let errors = verify_workload(&workload(l));
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            ["layer `second`: operand `O` has 65 bits", "layer `second`: the partial sum has 300 bits",]
        );
    }

    #[test]
    fn sources_name_layers_and_nodes_of_the_workload() {
        let mut w = workload(conv("second", Source::Layer("third".into())));
        w.layers[0].inputs[0].source = Source::Layer("first".into());
        w.not_lowered[0].inputs.push(Source::Node("gone".into()));
        let errors = verify_workload(&w);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "layer `first`: operand `W` reads layer `first`, its own layer (an operand that is the layer's output has source `Other`)",
                "layer `second`: operand `I` reads layer `third`, which the workload does not have",
                "node `relu` (not lowered): input 1 reads node `gone`, which the workload does not have",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut l = conv("second", Source::Node("nowhere".into()));
        l.dims[0].size = 0;
        l.output.role = "Z".into();
        l.inputs[0].index.push("q".into());
        l.relations[1].extent = 0;
        l.inputs[1].precision = Some(99);
        assert_eq!(
            codes(&workload(l)),
            [
                "qc::verify::loop_dim",
                "qc::verify::loop_operand",
                "qc::verify::loop_index",
                "qc::verify::loop_relation",
                "qc::verify::loop_precision",
                "qc::verify::loop_source",
            ]
        );
    }
}
