//! The verifier: checks that a model is a well-formed program and reports every problem at once.
//!
//! Checked, in every graph including the bodies of If/Loop/Scan, functions and training graphs:
//! - acyclic: the ops of each cycle are named;
//! - one producer per value (a graph input that also has an initializer is a default, not a
//!   second producer);
//! - every op input and graph output is defined (in this graph or an enclosing one);
//! - arity and attribute kinds of known ops ([`crate::SCHEMAS`]); every attribute has a value;
//! - constant tensors: dims not negative, element count fits in 64 bits, stored data matches;
//! - an initializer agrees with the type declared for the same value.
//!
//! It runs after import and, in tests and debug builds, after every pass.

use crate::attr::{AttrKind, AttrValue};
use crate::graph::{Const, Graph, OpId, ValueId};
use crate::model::Model;
use crate::tensor::Tensor;
use crate::types::{Dim, ValueType};

/// One problem the verifier found. `at` names the graph it is in (`""` for the main graph).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum VerifyError {
    #[error("{at}ops form a cycle: {ops}")]
    #[diagnostic(code(qc::verify::cycle), help("a graph must be acyclic; break the loop or use a Loop op"))]
    Cycle { at: String, ops: String },

    #[error("{at}value `{value}` is produced {count} times: {producers}")]
    #[diagnostic(
        code(qc::verify::duplicate_producer),
        help("every value must have exactly one producer; rename one of the outputs")
    )]
    DuplicateProducer { at: String, value: String, count: usize, producers: String },

    #[error("{at}input {slot} of op `{op}` reads `{value}`, which nothing provides")]
    #[diagnostic(
        code(qc::verify::undefined_input),
        help("add a graph input or initializer named `{value}`, or an op that produces it")
    )]
    UndefinedInput { at: String, op: String, slot: usize, value: String },

    #[error("{at}graph output `{value}` is never produced")]
    #[diagnostic(
        code(qc::verify::undefined_output),
        help("produce `{value}` with an op, or remove it from the graph outputs")
    )]
    UndefinedOutput { at: String, value: String },

    #[error("{at}op `{op}` ({op_type}) has {count} {what}, expected {expected}")]
    #[diagnostic(code(qc::verify::arity), help("see the operator's definition for the {what} it takes"))]
    Arity { at: String, op: String, op_type: String, what: &'static str, count: usize, expected: String },

    #[error("{at}attribute `{attr}` of op `{op}` ({op_type}) must be {expected}, found {found}")]
    #[diagnostic(code(qc::verify::attribute_type), help("write `{attr}` as {expected}"))]
    AttributeType { at: String, op: String, op_type: String, attr: String, expected: String, found: String },

    #[error("{at}attribute `{attr}` of op `{op}` has no value")]
    #[diagnostic(
        code(qc::verify::attribute_value),
        help(
            "only attributes inside a function body may refer to a function attribute instead of holding a value"
        )
    )]
    AttributeValue { at: String, op: String, attr: String },

    #[error("{at}tensor `{tensor}`: {problem}")]
    #[diagnostic(code(qc::verify::tensor), help("the tensor's dims, data type and stored data must agree"))]
    Tensor { at: String, tensor: String, problem: String },

    #[error("{at}value `{value}` {problem}")]
    #[diagnostic(
        code(qc::verify::initializer),
        help(
            "constant data belongs to an initializer (`init` in the textual IR), and every initializer holds its data"
        )
    )]
    Initializer { at: String, value: String, problem: &'static str },

    #[error("{at}graph input `{value}` declares dims {dims}, which hold more than 2^64 elements")]
    #[diagnostic(
        code(qc::verify::input_too_large),
        help(
            "no tensor can be that large; fix the input's declared shape, or give it with --overwrite-input-shape"
        )
    )]
    InputTooLarge { at: String, value: String, dims: String },

    #[error("{at}initializer `{value}` is {found}, but the graph declares it {declared}")]
    #[diagnostic(code(qc::verify::declared_type), help("make the declaration match the initializer"))]
    DeclaredType { at: String, value: String, declared: String, found: String },
}

/// Verifies the model and all graphs in it. An empty list means the model is well formed.
pub fn verify_model(m: &Model) -> Vec<VerifyError> {
    let mut errors = Vec::new();
    let none = Scope::default();
    verify_graph(&m.graph, &none, "", &mut errors);
    for f in &m.functions {
        let scope = Scope { names: &f.inputs, ..Scope::default() };
        let label = format!("function `{}`: ", f.name.as_deref().unwrap_or("?"));
        verify_graph(&f.body, &scope, &label, &mut errors);
        for out in &f.outputs {
            let produced = f.body.find(out).is_some_and(|v| f.body.value(v).producer().is_some());
            if !produced && !f.inputs.contains(out) {
                errors.push(VerifyError::UndefinedOutput { at: label.clone(), value: out.clone() });
            }
        }
    }
    let main_defined = m.graph.defined_values();
    let main = Scope { graph: Some((&m.graph, &main_defined)), ..Scope::default() };
    for (i, t) in m.training_info.iter().enumerate() {
        for (what, g) in [("initialization", &t.initialization), ("algorithm", &t.algorithm)] {
            if let Some(g) = g {
                verify_graph(g, &main, &format!("training_info[{i}].{what}: "), &mut errors);
            }
        }
    }
    errors
}

/// The names visible from enclosing graphs: a chain of graphs (with which of their values are
/// defined) and plain name lists (function inputs), searched only when a name is not local.
#[derive(Default)]
struct Scope<'a> {
    names: &'a [String],
    graph: Option<(&'a Graph, &'a [bool])>,
    parent: Option<&'a Scope<'a>>,
}

impl Scope<'_> {
    fn defines(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
            || self.graph.is_some_and(|(g, defined)| g.find(name).is_some_and(|v| defined[v.index()]))
            || self.parent.is_some_and(|p| p.defines(name))
    }
}

/// Verifies one graph and the graphs nested in it.
fn verify_graph(g: &Graph, outer: &Scope<'_>, at: &str, errors: &mut Vec<VerifyError>) {
    let at_s = at.to_string();
    // Program positions by op index, so labels cost nothing until an error needs one.
    let mut positions = vec![0usize; g.petgraph().node_indices().map(|i| i.index() + 1).max().unwrap_or(0)];
    for (pos, (id, _)) in g.ops().enumerate() {
        positions[id.index()] = pos;
    }
    let label = |id: OpId| g.op(id).display_name(positions[id.index()]);

    // A graph input no tensor can fill: the product of its known, non-zero dims is past 2^64
    // (initializers are checked with their data below).
    for &v in &g.inputs {
        if g.initializers.contains(&v) || g.sparse_initializers.contains(&v) {
            continue;
        }
        let Some(dims) = crate::dims::of(g, v) else { continue };
        let mut known = dims.iter().filter_map(|d| match d {
            Dim::Known(n) if *n != 0 => Some(*n),
            _ => None,
        });
        if known.try_fold(1u64, |p, n| p.checked_mul(n)).is_none() {
            let shape = crate::types::Shape { dims, denotations: Vec::new() };
            errors.push(VerifyError::InputTooLarge {
                at: at_s.clone(),
                value: g.value(v).name.clone(),
                dims: shape.to_string(),
            });
        }
    }

    // How many things define each value (initializers and op outputs; graph inputs apart).
    let mut defs = vec![0u32; g.value_count()];
    let mut is_input = vec![false; g.value_count()];
    for &v in &g.inputs {
        is_input[v.index()] = true;
    }
    for &v in g.initializers.iter().chain(&g.sparse_initializers) {
        defs[v.index()] += 1;
    }
    let mut op_defs = vec![0u32; g.value_count()];
    for (_, op) in g.ops() {
        for v in op.outputs().iter().flatten() {
            defs[v.index()] += 1;
            op_defs[v.index()] += 1;
        }
    }
    for i in 0..defs.len() {
        let dup = defs[i] > 1 || (op_defs[i] > 0 && is_input[i]);
        if !dup {
            continue;
        }
        let v = ValueId::from_index(i);
        let mut producers = Vec::new();
        if is_input[i] {
            producers.push("graph input".to_string());
        }
        let inits = g.initializers.iter().chain(&g.sparse_initializers).filter(|x| **x == v).count();
        producers.extend(std::iter::repeat_n("initializer".to_string(), inits));
        for (id, op) in g.ops() {
            for _ in op.outputs().iter().filter(|o| **o == Some(v)) {
                producers.push(format!("op `{}`", label(id)));
            }
        }
        errors.push(VerifyError::DuplicateProducer {
            at: at_s.clone(),
            value: g.value(v).name.clone(),
            count: producers.len(),
            producers: producers.join(", "),
        });
    }
    let defined = |v: ValueId| defs[v.index()] > 0 || is_input[v.index()] || outer.defines(&g.value(v).name);

    // The scope nested graphs see: everything defined here and outside.
    let local: Vec<bool> = (0..g.value_count()).map(|i| defs[i] > 0 || is_input[i]).collect();
    let scope = Scope { names: &[], graph: Some((g, &local)), parent: Some(outer) };

    for (id, op) in g.ops() {
        for (slot, v) in op.inputs().iter().enumerate() {
            if let Some(v) = v
                && !defined(*v)
            {
                errors.push(VerifyError::UndefinedInput {
                    at: at_s.clone(),
                    op: label(id),
                    slot,
                    value: g.value(*v).name.clone(),
                });
            }
        }
        check_op(g, id, &label(id), &at_s, errors);
        for a in &op.attrs {
            let graphs: Vec<&Graph> = match &a.value {
                AttrValue::Graph(sub) => vec![sub],
                AttrValue::Graphs(subs) => subs.iter().collect(),
                _ => continue,
            };
            for (i, sub) in graphs.iter().enumerate() {
                let suffix = if graphs.len() > 1 { format!("[{i}]") } else { String::new() };
                let sub_at = format!("{at}subgraph `{}{suffix}` of op `{}`: ", a.name, label(id));
                verify_graph(sub, &scope, &sub_at, errors);
            }
        }
    }

    for &v in &g.outputs {
        if !defined(v) {
            errors.push(VerifyError::UndefinedOutput { at: at_s.clone(), value: g.value(v).name.clone() });
        }
    }

    if let Err(cycle) = g.topo_order() {
        let mut names: Vec<String> = cycle.iter().map(|&id| format!("`{}`", label(id))).collect();
        names.sort();
        errors.push(VerifyError::Cycle { at: at_s.clone(), ops: names.join(", ") });
    }

    let initializer =
        |value: &str, problem| VerifyError::Initializer { at: at_s.clone(), value: value.into(), problem };
    let mut listed = vec![false; g.value_count()];
    for &v in &g.initializers {
        listed[v.index()] = true;
        let value = g.value(v);
        match &value.init {
            Some(Const::Dense(t)) => {
                check_tensor(t, &value.name, &at_s, errors);
                check_declared(g, v, t, &at_s, errors);
            }
            _ => errors.push(initializer(&value.name, "is a dense initializer without dense data")),
        }
    }
    for &v in &g.sparse_initializers {
        listed[v.index()] = true;
        let value = g.value(v);
        match &value.init {
            Some(Const::Sparse(s)) => {
                for t in [&s.values, &s.indices].into_iter().flatten() {
                    check_tensor(t, &value.name, &at_s, errors);
                }
            }
            _ => errors.push(initializer(&value.name, "is a sparse initializer without sparse data")),
        }
    }
    // Data on a value that is not an initializer would be read as a constant by some passes and
    // dropped by the export.
    for (v, value) in g.values() {
        if value.init.is_some() && !listed[v.index()] {
            errors.push(initializer(&value.name, "has constant data but is not an initializer"));
        }
    }
}

fn check_op(g: &Graph, id: OpId, label: &str, at: &str, errors: &mut Vec<VerifyError>) {
    let op = g.op(id);
    for a in &op.attrs {
        let scalar = matches!(a.kind(), AttrKind::Int | AttrKind::Float | AttrKind::String);
        if matches!(a.value, AttrValue::None) && !scalar && a.ref_attr_name.is_none() {
            errors.push(VerifyError::AttributeValue {
                at: at.into(),
                op: label.to_string(),
                attr: a.name.clone(),
            });
        }
        match &a.value {
            AttrValue::Tensor(t) => check_tensor(t, &format!("{label}.{}", a.name), at, errors),
            AttrValue::Tensors(ts) => {
                for t in ts {
                    check_tensor(t, &format!("{label}.{}", a.name), at, errors);
                }
            }
            _ => {}
        }
    }
    let Some(schema) = op.schema() else { return };
    let range = |min: usize, max: usize| {
        if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        }
    };
    let counts = [
        ("inputs", op.inputs().len(), schema.min_inputs, schema.max_inputs),
        ("outputs", op.outputs().len(), schema.min_outputs, schema.max_outputs),
    ];
    for (what, count, min, max) in counts {
        if count < min || count > max {
            errors.push(VerifyError::Arity {
                at: at.into(),
                op: label.to_string(),
                op_type: op.op_type().into(),
                what,
                count,
                expected: range(min, max),
            });
        }
    }
    for a in &op.attrs {
        if a.ref_attr_name.is_some() {
            continue;
        }
        if let Some(kinds) = schema.attr_kinds(&a.name)
            && !kinds.contains(&a.kind())
        {
            {
                let expected: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                errors.push(VerifyError::AttributeType {
                    at: at.into(),
                    op: label.to_string(),
                    op_type: op.op_type().into(),
                    attr: a.name.clone(),
                    expected: expected.join(" or "),
                    found: a.kind().name().into(),
                });
            }
        }
    }
}

fn check_tensor(t: &Tensor, name: &str, at: &str, errors: &mut Vec<VerifyError>) {
    if let Err(e) = t.check() {
        errors.push(VerifyError::Tensor { at: at.into(), tensor: name.into(), problem: e.to_string() });
    }
}

fn check_declared(g: &Graph, v: ValueId, t: &Tensor, at: &str, errors: &mut Vec<VerifyError>) {
    let Some(ValueType::Tensor { elem, shape }) = g.value(v).ty.as_ref().and_then(|i| i.ty.as_ref()) else {
        return;
    };
    let elem_ok = elem.is_none_or(|e| Some(e) == t.elem);
    let shape_ok = shape.as_ref().is_none_or(|s| {
        s.dims.len() == t.dims.len()
            && s.dims.iter().zip(&t.dims).all(|(d, &n)| match d {
                Dim::Known(k) => *k as i64 == n,
                _ => true,
            })
    });
    if !(elem_ok && shape_ok) {
        let declared = g.value(v).ty.as_ref().map(|t| t.to_string()).unwrap_or_default();
        let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
        errors.push(VerifyError::DeclaredType {
            at: at.into(),
            value: g.value(v).name.clone(),
            declared,
            found: format!("{}[{}]", t.elem_type(), dims.join(",")),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;
    use crate::types::{ElemType, TypeInfo};

    fn model(g: Graph) -> Model {
        Model { graph: g, ..Default::default() }
    }

    #[test]
    fn a_clean_graph_verifies() {
        let mut g = Graph::new();
        let x = g.value_named("x");
        let y = g.value_named("y");
        g.inputs.push(x);
        g.outputs.push(y);
        g.add_op(Op::new("Relu", None), vec![Some(x)], vec![Some(y)]);
        assert_eq!(verify_model(&model(g)), vec![]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut g = Graph::new();
        let x = g.value_named("x");
        let y = g.value_named("y");
        let missing = g.value_named("missing");
        let out = g.value_named("out");
        g.inputs.push(x);
        g.outputs.push(out);
        g.add_op(Op::new("Relu", None).with_name("r1"), vec![Some(x)], vec![Some(y)]);
        g.add_op(Op::new("Relu", None).with_name("r2"), vec![Some(x)], vec![Some(y)]);
        g.add_op(Op::new("Add", None).with_name("add"), vec![Some(y), Some(missing)], vec![Some(x)]);
        g.add_op(
            Op::new("Conv", None).with_name("conv").with_attr("group", AttrValue::Float(1.0)),
            vec![Some(x)],
            vec![None],
        );
        let errors = verify_model(&model(g));
        let codes: Vec<String> =
            errors.iter().map(|e| miette::Diagnostic::code(e).unwrap().to_string()).collect();
        assert!(codes.contains(&"qc::verify::duplicate_producer".to_string()), "{errors:?}");
        assert!(codes.contains(&"qc::verify::undefined_input".to_string()));
        assert!(codes.contains(&"qc::verify::undefined_output".to_string()));
        assert!(codes.contains(&"qc::verify::arity".to_string()));
        assert!(codes.contains(&"qc::verify::attribute_type".to_string()));
        assert!(codes.contains(&"qc::verify::cycle".to_string()));
        let dup =
            errors.iter().find(|e| matches!(e, VerifyError::DuplicateProducer { value, .. } if value == "x"));
        assert!(dup.is_some(), "graph input `x` also written by `add`: {errors:?}");
    }

    #[test]
    fn input_with_default_initializer_is_not_a_duplicate_but_mismatch_is_reported() {
        let mut g = Graph::new();
        let w = g.value_named("w");
        g.inputs.push(w);
        g.initializers.push(w);
        g.value_mut(w).ty = Some(TypeInfo::tensor(ElemType::F32, Some(crate::Shape::known(&[2]))));
        g.value_mut(w).init = Some(Const::Dense(Box::new(Tensor {
            name: Some("w".into()),
            elem: Some(ElemType::F32),
            dims: vec![3],
            data: crate::TensorData::Floats(vec![0.0; 3]),
            segment: None,
            doc_string: None,
            metadata: vec![],
            explicit_default_location: false,
        })));
        let errors = verify_model(&model(g));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(matches!(&errors[0], VerifyError::DeclaredType { value, .. } if value == "w"));
    }

    #[test]
    fn data_outside_the_initializer_lists_is_reported() {
        // `%i = f32[1] ...` on a graph input in the textual IR: data, but no initializer.
        let mut g = Graph::new();
        let (i, e) = (g.value_named("i"), g.value_named("e"));
        g.inputs.push(i);
        g.value_mut(i).init = Some(Const::Dense(Box::new(Tensor {
            name: Some("i".into()),
            elem: Some(ElemType::F32),
            dims: vec![1],
            data: crate::TensorData::Floats(vec![0.0]),
            segment: None,
            doc_string: None,
            metadata: vec![],
            explicit_default_location: false,
        })));
        // And an initializer without data.
        g.initializers.push(e);
        let errors = verify_model(&model(g));
        let problems: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| match e {
                VerifyError::Initializer { value, problem, .. } => (value.as_str(), *problem),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            problems,
            [
                ("e", "is a dense initializer without dense data"),
                ("i", "has constant data but is not an initializer")
            ]
        );
    }
}
