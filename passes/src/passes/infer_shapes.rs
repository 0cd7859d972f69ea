//! `infer-shapes`: infers the element type and shape of every value it can.
//!
//! What it does: walks the main graph in topological order and applies the rules of
//! [`crate::shape`] to each op, starting from the declared types of the graph inputs, the
//! initializers (whose small integer and float values are also read, for data propagation), and
//! any value already declared. It fills `Value.ty` for every value it can infer, refines declared
//! types whose dimensions it can make more precise, and adds each newly typed value that is not
//! a graph input, output or initializer to `graph.value_info`, as
//! `onnx.shape_inference.infer_shapes` does. An op without a rule leaves its outputs unknown and
//! gives one warning per op type (`qc::shape::unsupported_op`); an op whose inputs are wrong
//! gives a warning with the error's code (`qc::shape::rank`, ...), and an inferred type that
//! contradicts a declared one is reported (`qc::shape::conflict`) and the declaration kept.
//! Subgraphs are not visited.
//!
//! Preconditions: none; the pass never fails the model. In a graph with a cycle, ops are visited
//! in program order.
//!
//! Postconditions: ops and values are unchanged; declared types are only made more precise;
//! every value whose type became known is declared (as an output or in `value_info`).
//!
//! Statistics: `values-inferred`, `values-refined`, `ops-unsupported`, `shape-errors`,
//! `shape-conflicts`.

use qc_ir::{Const, Dim, ElemType, Graph, Model, OpId, Shape, TypeInfo, ValueId, ValueType};

use crate::pass::{Changed, Pass, PassContext, PassError, PassWarning};
use crate::registry::PassInfo;
use crate::shape::{ShapeError, TypeFact, infer_op};

pub const INFO: PassInfo = PassInfo {
    name: "infer-shapes",
    summary: "infer the element type and shape of every value",
    options: &[],
    build: |_| Ok(Box::new(InferShapes)),
};

/// The opset assumed when the model imports none for the default domain.
const DEFAULT_OPSET: i64 = 22;

/// The `infer-shapes` pass.
pub struct InferShapes;

impl Pass for InferShapes {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let opset = model.opset_version("").unwrap_or(DEFAULT_OPSET);
        let facts = initial_facts(model);
        let changed = infer_graph(&mut model.graph, facts, opset, cx);
        Ok(Changed::from_bool(changed))
    }
}

/// The fact a declared type gives.
fn fact_of_type(t: &TypeInfo) -> Option<TypeFact> {
    match &t.ty {
        Some(ValueType::Tensor { elem, shape }) => Some(TypeFact {
            elem: elem.filter(|e| *e != ElemType::Undefined),
            shape: shape.as_ref().map(|s| s.dims.clone()),
            value: None,
        }),
        _ => None,
    }
}

fn initial_facts(model: &Model) -> Vec<Option<TypeFact>> {
    let g = &model.graph;
    let mut facts = vec![None; g.value_count()];
    for (id, v) in g.values() {
        if let Some(Const::Dense(t)) = &v.init {
            let small = t.element_count().is_ok_and(|n| n as usize <= crate::shape::MAX_VALUES);
            let bytes = if small { model.tensor_bytes(t).ok() } else { None };
            facts[id.index()] = Some(TypeFact::from_tensor(t, bytes.as_deref()));
        } else if let Some(t) = &v.ty {
            facts[id.index()] = fact_of_type(t);
        }
    }
    facts
}

/// How an inferred fact fits a declared one.
enum Merge {
    /// The declaration says as much or more.
    Same,
    /// The declaration is made more precise.
    Refined(TypeFact),
    Conflict(String),
}

fn merge(declared: &TypeFact, inferred: &TypeFact) -> Merge {
    let mut out = declared.clone();
    let mut refined = false;
    match (declared.elem, inferred.elem) {
        (Some(a), Some(b)) if a != b => {
            return Merge::Conflict(format!("element type {b} is declared as {a}"));
        }
        (None, Some(b)) => {
            out.elem = Some(b);
            refined = true;
        }
        _ => {}
    }
    match (&declared.shape, &inferred.shape) {
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                return Merge::Conflict(format!("rank {} is declared as rank {}", b.len(), a.len()));
            }
            let mut dims = a.clone();
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                match (x, y) {
                    (Dim::Known(p), Dim::Known(q)) if p != q => {
                        return Merge::Conflict(format!("dimension {i} is {q} but declared as {p}"));
                    }
                    (Dim::Known(_), _) => {}
                    (_, Dim::Known(q)) => {
                        dims[i] = Dim::Known(*q);
                        refined = true;
                    }
                    (Dim::Unknown, Dim::Sym(s)) => {
                        dims[i] = Dim::Sym(s.clone());
                        refined = true;
                    }
                    _ => {}
                }
            }
            out.shape = Some(dims);
        }
        (None, Some(b)) => {
            out.shape = Some(b.clone());
            refined = true;
        }
        _ => {}
    }
    out.value = inferred.value.clone();
    if refined { Merge::Refined(out) } else { Merge::Same }
}

fn type_of_fact(f: &TypeFact, old: Option<&TypeInfo>) -> TypeInfo {
    let denotations = match old.and_then(|t| t.ty.as_ref()) {
        Some(ValueType::Tensor { shape: Some(s), .. }) => s.denotations.clone(),
        _ => Vec::new(),
    };
    TypeInfo {
        ty: Some(ValueType::Tensor {
            elem: f.elem,
            shape: f.shape.as_ref().map(|d| Shape { dims: d.clone(), denotations }),
        }),
        denotation: old.and_then(|t| t.denotation.clone()),
    }
}

fn warn(cx: &mut PassContext, code: &str, message: String, help: Option<String>) {
    cx.warn(PassWarning { pass: INFO.name, code: code.to_string(), message, help });
}

/// Infers the types of `g`'s values from `facts` (indexed by value). Returns whether any
/// declaration changed.
fn infer_graph(g: &mut Graph, mut facts: Vec<Option<TypeFact>>, opset: i64, cx: &mut PassContext) -> bool {
    let order: Vec<OpId> = g.topo_order().unwrap_or_else(|_| g.ops().map(|(id, _)| id).collect());
    let mut unsupported: Vec<String> = Vec::new();
    let mut changed = false;
    let mut inferred = 0u64;
    let mut refined = 0u64;
    for id in order {
        let op = g.op(id);
        let ins: Vec<Option<TypeFact>> =
            op.inputs().iter().map(|v| v.and_then(|v| facts.get(v.index()).cloned().flatten())).collect();
        let outs = match infer_op(op, &ins, opset) {
            Ok(o) => o,
            Err(e @ ShapeError::Unsupported { .. }) => {
                cx.count("ops-unsupported", 1);
                let key = format!("{}:{}", op.domain(), op.op_type());
                if !unsupported.contains(&key) {
                    unsupported.push(key);
                    let domain = if op.domain().is_empty() {
                        String::new()
                    } else {
                        format!(" (domain {})", op.domain())
                    };
                    warn(
                        cx,
                        e.code(),
                        format!(
                            "no shape inference rule for {}{domain}; e.g. {}",
                            op.op_type(),
                            g.op_label(id)
                        ),
                        Some("the outputs of these ops are left untyped".into()),
                    );
                }
                continue;
            }
            Err(e) => {
                cx.count("shape-errors", 1);
                let e = e.with_node(&g.op_label(id));
                warn(cx, e.code(), e.to_string(), Some("the op's outputs are left untyped".into()));
                continue;
            }
        };
        let outputs: Vec<Option<ValueId>> = op.outputs().to_vec();
        for (slot, v) in outputs.iter().enumerate() {
            let (Some(v), Some(Some(f))) = (v, outs.get(slot)) else { continue };
            if f.elem.is_none() && f.shape.is_none() {
                continue;
            }
            let declared = g.value(*v).ty.as_ref().and_then(fact_of_type);
            let new_fact = match &declared {
                None => {
                    inferred += 1;
                    let old = g.value(*v).ty.clone();
                    g.value_mut(*v).ty = Some(type_of_fact(f, old.as_ref()));
                    let is_decl = g.inputs.contains(v)
                        || g.outputs.contains(v)
                        || g.initializers.contains(v)
                        || g.value_info.contains(v);
                    if !is_decl {
                        g.value_info.push(*v);
                    }
                    changed = true;
                    f.clone()
                }
                Some(d) => match merge(d, f) {
                    Merge::Same => TypeFact { value: f.value.clone(), ..d.clone() },
                    Merge::Refined(m) => {
                        refined += 1;
                        let old = g.value(*v).ty.clone();
                        g.value_mut(*v).ty = Some(type_of_fact(&m, old.as_ref()));
                        changed = true;
                        m
                    }
                    Merge::Conflict(why) => {
                        cx.count("shape-conflicts", 1);
                        warn(
                            cx,
                            "qc::shape::conflict",
                            format!("{}: output `{}`: {why}", g.op_label(id), g.value(*v).name),
                            Some("the declared type is kept; check the model's value_info".into()),
                        );
                        d.clone()
                    }
                },
            };
            if let Some(slot) = facts.get_mut(v.index()) {
                *slot = Some(new_fact);
            }
        }
    }
    cx.count("values-inferred", inferred);
    cx.count("values-refined", refined);
    changed
}
