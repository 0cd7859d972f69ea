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
//! Symbolic dims propagate, through shape computations too (see [`crate::shape`]).
//!
//! Subgraphs (the bodies of If, Loop and Scan, and graph attributes of any other op) are
//! inferred in place, the same way, with the values of the enclosing graphs visible by name; an
//! op that reads such a value in its bodies is visited after the value's producer. If, Loop and
//! Scan pass their bodies what they receive (Loop the iteration number, the condition and the
//! loop-carried values; Scan the states and a slice of each scanned input), and their outputs
//! are typed from their bodies' outputs (see [`crate::shape::control`]): If's from both branches
//! (the dims they agree on kept, the others unknown), Loop's and Scan's with the iteration count
//! stacked on the scan outputs. Loop-carried values may change shape from one iteration to the
//! next: the body is first inferred on a scratch copy until the carried types settle (at most
//! four rounds, after which their shapes are forgotten), so the types written are true for every
//! iteration. A body that does not fit its op (`qc::shape::subgraph`) is still inferred from its
//! own declarations, and the op's outputs are left untyped. Function bodies and training graphs
//! are not visited.
//!
//! Preconditions: none; the pass never fails the model. In a graph with a cycle, ops are visited
//! in program order.
//!
//! Postconditions: ops and values are unchanged; declared types are only made more precise;
//! every value whose element type and shape (its rank at least) became known is declared (as an
//! output or in `value_info`, in the graph, or the body, that holds it). A value of which only
//! the element type or only the shape is known is typed in the IR but not declared, because
//! ONNX requires both of a declared tensor.
//!
//! Statistics: `values-inferred`, `values-refined`, `ops-unsupported`, `shape-errors`,
//! `shape-conflicts`, and `bodies-inferred` when the graph has subgraphs.

use qc_ir::tensor::SharedResolver;
use qc_ir::{
    AttrValue, Const, DataResolver, Dim, ElemType, Graph, Model, Op, OpId, Shape, TypeInfo, ValueId,
    ValueType,
};

use crate::pass::{Changed, Pass, PassContext, PassError, PassWarning};
use crate::registry::PassInfo;
use crate::rewrite::{subgraphs, visit_order};
use crate::shape::control::{self, BodyInputs};
use crate::shape::{ShapeError, TypeFact, infer_op};

pub const INFO: PassInfo = PassInfo {
    name: "infer-shapes",
    summary: "infer the element type and shape of every value",
    options: &[],
    build: |_| Ok(Box::new(InferShapes)),
};

/// Scratch inferences of a loop body before its loop-carried types are given up as unsettled.
const MAX_CARRIED_ROUNDS: usize = 4;

/// The `infer-shapes` pass.
pub struct InferShapes;

impl Pass for InferShapes {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let opset = model.onnx_opset();
        let mut run = Run::new(cx, opset, model.resolver.clone());
        let (changed, _) = run.graph(&mut model.graph, None, None, "");
        run.finish();
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

/// The values visible from the graphs enclosing the one being inferred, innermost first.
struct Scope<'s> {
    graph: &'s Graph,
    defined: &'s [bool],
    facts: &'s [Option<TypeFact>],
    parent: Option<&'s Scope<'s>>,
}

impl Scope<'_> {
    /// What is known about the value called `name` in the innermost graph that defines it.
    fn lookup(&self, name: &str) -> Option<TypeFact> {
        match self.graph.find(name) {
            Some(v) if self.defined[v.index()] => self.facts.get(v.index()).cloned().flatten(),
            _ => self.parent?.lookup(name),
        }
    }
}

/// What the walk over one graph knows: the facts by value, and which values the graph lists in
/// its inputs, outputs, initializers or `value_info`.
struct Known {
    facts: Vec<Option<TypeFact>>,
    listed: Vec<bool>,
}

/// One run of the pass: the context, and what is counted over all graphs.
struct Run<'c> {
    cx: &'c mut PassContext,
    opset: i64,
    resolver: Option<SharedResolver>,
    /// `domain:op_type` of the ops already reported as unsupported.
    unsupported: Vec<String>,
    inferred: u64,
    refined: u64,
    bodies_inferred: u64,
}

impl<'c> Run<'c> {
    fn new(cx: &'c mut PassContext, opset: i64, resolver: Option<SharedResolver>) -> Run<'c> {
        Run { cx, opset, resolver, unsupported: Vec::new(), inferred: 0, refined: 0, bodies_inferred: 0 }
    }

    fn finish(self) {
        self.cx.count("values-inferred", self.inferred);
        self.cx.count("values-refined", self.refined);
        if self.bodies_inferred > 0 {
            self.cx.count("bodies-inferred", self.bodies_inferred);
        }
    }

    fn warn(&mut self, code: &str, message: String, help: &str) {
        self.cx.warn(PassWarning {
            pass: INFO.name,
            code: code.to_string(),
            message,
            help: Some(help.into()),
        });
    }

    /// The starting facts of `g`'s values: initializers (with their values when small), values
    /// of enclosing graphs that `g` reads, and declared types.
    fn initial_facts(&self, g: &Graph, defined: &[bool], scope: Option<&Scope>) -> Vec<Option<TypeFact>> {
        let resolver = self.resolver.as_deref().map(|r| r as &dyn DataResolver);
        let mut facts = vec![None; g.value_count()];
        for (id, v) in g.values() {
            facts[id.index()] = if let Some(Const::Dense(t)) = &v.init {
                let small = t.element_count().is_ok_and(|n| n as usize <= crate::shape::MAX_VALUES);
                let bytes = if small { t.raw_bytes(resolver).ok() } else { None };
                Some(TypeFact::from_tensor(t, bytes.as_deref()))
            } else if let Some(f) = scope.filter(|_| !defined[id.index()]).and_then(|s| s.lookup(&v.name)) {
                Some(f)
            } else {
                v.ty.as_ref().and_then(fact_of_type)
            };
        }
        facts
    }

    /// Infers the types of `g`'s values; `provided` are facts for `g`'s inputs (a body's, from
    /// its op). Returns whether any declaration changed, and the final facts by value.
    fn graph(
        &mut self,
        g: &mut Graph,
        provided: Option<&[Option<TypeFact>]>,
        scope: Option<&Scope>,
        at: &str,
    ) -> (bool, Vec<Option<TypeFact>>) {
        let defined = g.defined_values();
        let mut known =
            Known { facts: self.initial_facts(g, &defined, scope), listed: vec![false; g.value_count()] };
        for &v in g.inputs.iter().chain(&g.outputs).chain(&g.initializers).chain(&g.value_info) {
            known.listed[v.index()] = true;
        }
        let mut changed = false;
        if let Some(provided) = provided {
            let inputs = g.inputs.clone();
            for (v, f) in inputs.into_iter().zip(provided) {
                if let Some(f) = f {
                    changed |= self.record(g, v, f, &mut known, at, None);
                }
            }
        }
        // Program positions by op index, so that labels cost nothing until a message needs one.
        let mut positions =
            vec![0usize; g.petgraph().node_indices().map(|i| i.index() + 1).max().unwrap_or(0)];
        for (pos, (id, _)) in g.ops().enumerate() {
            positions[id.index()] = pos;
        }
        for id in visit_order(g) {
            let pos = positions[id.index()];
            let op = g.op(id);
            let ins: Vec<Option<TypeFact>> = op
                .inputs()
                .iter()
                .map(|v| v.and_then(|v| known.facts.get(v.index()).cloned().flatten()))
                .collect();
            let outs = if subgraphs(op).next().is_some() {
                let label = op.display_name(pos);
                let (ch, outs) = self.nested(g, id, &ins, &known.facts, &defined, scope, &label, at);
                changed |= ch;
                outs
            } else {
                self.rule(op, &ins, &|| op.display_name(pos), at)
            };
            let Some(outs) = outs else { continue };
            let outputs: Vec<Option<ValueId>> = g.op(id).outputs().to_vec();
            for (slot, v) in outputs.iter().enumerate() {
                let (Some(v), Some(Some(f))) = (v, outs.get(slot)) else { continue };
                if f.elem.is_none() && f.shape.is_none() {
                    continue;
                }
                changed |= self.record(g, *v, f, &mut known, at, Some((id, pos)));
            }
        }
        (changed, known.facts)
    }

    /// Applies the op's rule; reports an op without a rule (once per op type) or with wrong
    /// inputs, and then gives `None`.
    fn rule(
        &mut self,
        op: &Op,
        ins: &[Option<TypeFact>],
        label: &dyn Fn() -> String,
        at: &str,
    ) -> Option<Vec<Option<TypeFact>>> {
        match infer_op(op, ins, self.opset) {
            Ok(o) => Some(o),
            Err(e) => {
                self.report(op, e, &label(), at);
                None
            }
        }
    }

    fn report(&mut self, op: &Op, e: ShapeError, label: &str, at: &str) {
        if let ShapeError::Unsupported { .. } = e {
            self.cx.count("ops-unsupported", 1);
            let key = format!("{}:{}", op.domain(), op.op_type());
            if !self.unsupported.contains(&key) {
                self.unsupported.push(key);
                let domain =
                    if op.domain().is_empty() { String::new() } else { format!(" (domain {})", op.domain()) };
                self.warn(
                    e.code(),
                    format!("no shape inference rule for {}{domain}; e.g. {at}{label}", op.op_type()),
                    "the outputs of these ops are left untyped",
                );
            }
        } else {
            self.cx.count("shape-errors", 1);
            let e = e.with_node(label);
            self.warn(e.code(), format!("{at}{e}"), "the op's outputs are left untyped");
        }
    }

    /// Records the fact `f` inferred for `v`, an output of op `origin` (with its program
    /// position) or else a graph input: declares the type if `v` had none, refines the
    /// declaration, or reports a conflict with it. Returns whether the declaration changed.
    fn record(
        &mut self,
        g: &mut Graph,
        v: ValueId,
        f: &TypeFact,
        known: &mut Known,
        at: &str,
        origin: Option<(OpId, usize)>,
    ) -> bool {
        let declared = g.value(v).ty.as_ref().and_then(fact_of_type);
        let mut changed = false;
        let new_fact = match &declared {
            None => {
                self.inferred += 1;
                let old = g.value(v).ty.clone();
                g.value_mut(v).ty = Some(type_of_fact(f, old.as_ref()));
                // ONNX requires an element type and a shape of every declared tensor
                // (onnx.checker refuses a `value_info` without a shape, onnxruntime one of
                // element type 0): a partial fact types the value here but is not declared.
                if !known.listed[v.index()] && f.elem.is_some() && f.shape.is_some() {
                    known.listed[v.index()] = true;
                    g.value_info.push(v);
                }
                changed = true;
                f.clone()
            }
            Some(d) => match merge(d, f) {
                Merge::Same => TypeFact { value: f.value.clone(), ..d.clone() },
                Merge::Refined(m) => {
                    self.refined += 1;
                    let old = g.value(v).ty.clone();
                    g.value_mut(v).ty = Some(type_of_fact(&m, old.as_ref()));
                    changed = true;
                    m
                }
                Merge::Conflict(why) => {
                    self.cx.count("shape-conflicts", 1);
                    let what = match origin {
                        Some((id, pos)) => format!("{}: output", g.op(id).display_name(pos)),
                        None => "graph input".into(),
                    };
                    self.warn(
                        "qc::shape::conflict",
                        format!("{at}{what} `{}`: {why}", g.value(v).name),
                        "the declared type is kept; check the model's value_info",
                    );
                    d.clone()
                }
            },
        };
        if let Some(slot) = known.facts.get_mut(v.index()) {
            *slot = Some(new_fact);
        }
        changed
    }

    /// Infers the subgraphs of op `id` of `g` and, for If, Loop and Scan, the op's outputs from
    /// them; other ops with subgraphs get their outputs from their own rule.
    #[allow(clippy::too_many_arguments)]
    fn nested(
        &mut self,
        g: &mut Graph,
        id: OpId,
        ins: &[Option<TypeFact>],
        facts: &[Option<TypeFact>],
        defined: &[bool],
        scope: Option<&Scope>,
        label: &str,
        at: &str,
    ) -> (bool, Option<Vec<Option<TypeFact>>>) {
        // The bodies leave the op while they are inferred, so that `g` can be read meanwhile.
        let mut bodies: Vec<(usize, AttrValue)> = Vec::new();
        for (i, a) in g.op_mut(id).attrs.iter_mut().enumerate() {
            if matches!(a.value, AttrValue::Graph(_) | AttrValue::Graphs(_)) {
                bodies.push((i, std::mem::replace(&mut a.value, AttrValue::None)));
            }
        }
        let result = {
            let g: &Graph = g;
            let inner = Scope { graph: g, defined, facts, parent: scope };
            self.bodies(g.op(id), &mut bodies, ins, &inner, label, at)
        };
        let op = g.op_mut(id);
        for (i, value) in bodies {
            op.attrs[i].value = value;
        }
        result
    }

    fn bodies(
        &mut self,
        op: &Op,
        bodies: &mut [(usize, AttrValue)],
        ins: &[Option<TypeFact>],
        scope: &Scope,
        label: &str,
        at: &str,
    ) -> (bool, Option<Vec<Option<TypeFact>>>) {
        let named = control::body_attrs(op).unwrap_or(&[]);
        let mut changed = false;
        let mut body_in: Vec<Vec<Option<TypeFact>>> = Vec::new();
        let mut body_out: Vec<Vec<Option<TypeFact>>> = Vec::new();
        let mut fits = true;
        for name in named {
            let body = bodies.iter_mut().find(|(i, _)| op.attrs[*i].name == *name);
            let Some((_, AttrValue::Graph(body))) = body else {
                fits = false;
                self.report(
                    op,
                    ShapeError::Attribute {
                        node: label.into(),
                        message: format!("`{name}` is missing or is not one graph"),
                    },
                    label,
                    at,
                );
                continue;
            };
            let sub_at = format!("{at}subgraph `{name}` of op `{label}`: ");
            self.bodies_inferred += 1;
            let n_out = body.outputs.len();
            match control::body_inputs(op, name, ins, body.inputs.len(), n_out, self.opset) {
                Ok(b) => {
                    let (ch, used, outs) = self.body(body, b, scope, &sub_at);
                    changed |= ch;
                    body_in.push(used);
                    body_out.push(outs);
                }
                Err(e) => {
                    fits = false;
                    self.report(op, e, label, at);
                    changed |= self.graph(body, None, Some(scope), &sub_at).0;
                }
            }
        }
        // Any other graph attributes are inferred on their own.
        for (i, value) in bodies.iter_mut() {
            let name = &op.attrs[*i].name;
            if named.contains(&name.as_str()) {
                continue;
            }
            let subs: &mut [Graph] = match value {
                AttrValue::Graph(g) => std::slice::from_mut(g.as_mut()),
                AttrValue::Graphs(gs) => gs.as_mut_slice(),
                _ => &mut [],
            };
            let many = subs.len() > 1;
            for (k, sub) in subs.iter_mut().enumerate() {
                let suffix = if many { format!("[{k}]") } else { String::new() };
                self.bodies_inferred += 1;
                let sub_at = format!("{at}subgraph `{name}{suffix}` of op `{label}`: ");
                changed |= self.graph(sub, None, Some(scope), &sub_at).0;
            }
        }
        if named.is_empty() {
            return (changed, self.rule(op, ins, &|| label.to_string(), at));
        }
        if !fits {
            return (changed, None);
        }
        let body_in: Vec<&[Option<TypeFact>]> = body_in.iter().map(Vec::as_slice).collect();
        let body_out: Vec<&[Option<TypeFact>]> = body_out.iter().map(Vec::as_slice).collect();
        match control::outputs(op, ins, &body_in, &body_out, self.opset) {
            Ok(o) => (changed, Some(o)),
            Err(e) => {
                self.report(op, e, label, at);
                (changed, None)
            }
        }
    }

    /// Infers one body of an If, Loop or Scan from the facts its op gives its inputs, settling
    /// loop-carried types first. Returns whether a declaration changed, the input facts used,
    /// and the facts of the body's outputs.
    fn body(
        &mut self,
        body: &mut Graph,
        given: BodyInputs,
        scope: &Scope,
        at: &str,
    ) -> (bool, Vec<Option<TypeFact>>, Vec<Option<TypeFact>>) {
        let mut inputs = given.facts;
        if let Some(c) = given.carried.filter(|c| c.count > 0) {
            let mut settled = false;
            for _ in 0..MAX_CARRIED_ROUNDS {
                let mut scratch = body.clone();
                let mut scratch_cx = PassContext::default();
                let mut dry = Run::new(&mut scratch_cx, self.opset, self.resolver.clone());
                let (_, facts) = dry.graph(&mut scratch, Some(&inputs), Some(scope), at);
                let outs = output_facts(&scratch, &facts);
                if !control::relax_carried(&mut inputs, &outs, &c) {
                    settled = true;
                    break;
                }
            }
            if !settled {
                control::forget_carried_shapes(&mut inputs, &c);
            }
        }
        let (changed, facts) = self.graph(body, Some(&inputs), Some(scope), at);
        let outs = output_facts(body, &facts);
        (changed, inputs, outs)
    }
}

/// The facts of `g`'s outputs.
fn output_facts(g: &Graph, facts: &[Option<TypeFact>]) -> Vec<Option<TypeFact>> {
    g.outputs.iter().map(|v| facts.get(v.index()).cloned().flatten()).collect()
}

#[cfg(test)]
mod tests {
    use qc_ir::text::parse_model;

    use super::*;

    fn infer(text: &str) -> (Model, PassContext) {
        let mut m = parse_model(text).unwrap_or_else(|e| panic!("{e:?}"));
        let mut cx = PassContext::default();
        InferShapes.run(&mut m, &mut cx).unwrap();
        (m, cx)
    }

    /// The declared type of the value called `name` in `g`, as text (`f32[N,12]`).
    fn ty(g: &Graph, name: &str) -> String {
        let v = g.find(name).unwrap_or_else(|| panic!("no value `{name}`"));
        match g.value(v).ty.as_ref().and_then(|t| t.ty.as_ref()) {
            Some(ValueType::Tensor { elem, shape }) => format!(
                "{}{}",
                elem.map_or("?".into(), |e| e.name()),
                shape.as_ref().map_or("[*]".into(), |s| format!(
                    "[{}]",
                    s.dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                ))
            ),
            _ => "untyped".into(),
        }
    }

    fn body<'g>(g: &'g Graph, op_output: &str, attr: &str) -> &'g Graph {
        let v = g.find(op_output).unwrap();
        let op = g.op(g.value(v).producer().unwrap());
        match &op.attr(attr).unwrap().value {
            AttrValue::Graph(b) => b,
            _ => panic!("`{attr}` is not a graph"),
        }
    }

    #[test]
    fn nested_bodies_see_every_enclosing_graph() {
        // A Loop body holds an If whose branches read the main graph's %x and the body's %h.
        let (m, cx) = infer(
            r#"
opset_import "" 13
graph @g(%x: f32[N,3,4], %c: bool[]) -> (%hs: ?, %ys: ?) {
  init %m = i64[] int64s [2]
  init %first = i64[1] int64s [0]
  init %minus1 = i64[1] int64s [-1]
  %hs, %ys = ""::Loop(%m, _, %x) {
    body = graph @body(%i: i64[], %cond: bool[], %h: ?) -> (%cond_out: ?, %h_out: ?, %y: ?) {
      %cond_out = ""::Identity(%cond)
      %h_out = ""::Relu(%h)
      %y = ""::If(%c) {
        else_branch = graph @else() -> (%e: ?) {
          %e = ""::Flatten(%h) {axis = 1}
        },
        then_branch = graph @then() -> (%t: ?) {
          %s = ""::Shape(%x)
          %n = ""::Gather(%s, %first) {axis = 0}
          %shape = ""::Concat(%n, %minus1) {axis = 0}
          %t = ""::Reshape(%x, %shape)
        }
      }
    }
  }
}
"#,
        );
        assert!(cx.warnings.is_empty(), "{:?}", cx.warnings);
        let g = &m.graph;
        assert_eq!(ty(g, "hs"), "f32[N,3,4]");
        assert_eq!(ty(g, "ys"), "f32[2,N,12]");
        let b = body(g, "hs", "body");
        assert_eq!(ty(b, "h"), "f32[N,3,4]");
        assert_eq!(ty(b, "y"), "f32[N,12]");
        let then = body(b, "y", "then_branch");
        assert_eq!(ty(then, "s"), "i64[3]");
        assert_eq!(ty(then, "shape"), "i64[2]");
        assert_eq!(ty(then, "t"), "f32[N,12]");
        assert_eq!(ty(body(b, "y", "else_branch"), "e"), "f32[N,12]");
        assert_eq!(cx.stats.get("bodies-inferred"), Some(&3));
        // Values read from outside are not declared in the body.
        assert!(then.value_info.iter().all(|v| then.value(*v).name != "x"));
    }

    #[test]
    fn an_op_is_visited_after_the_values_its_bodies_read() {
        // The If comes first in program order but reads %a, produced by the op after it.
        let (m, cx) = infer(
            r#"
opset_import "" 13
graph @g(%x: f32[N,8], %c: bool[]) -> (%y: ?) {
  %y = ""::If(%c) {
    else_branch = graph @else() -> (%a: ?) {
    },
    then_branch = graph @then() -> (%t: ?) {
      %t = ""::Neg(%a)
    }
  }
  %a = ""::Relu(%x)
}
"#,
        );
        assert!(cx.warnings.is_empty(), "{:?}", cx.warnings);
        assert_eq!(ty(&m.graph, "a"), "f32[N,8]");
        assert_eq!(ty(body(&m.graph, "y", "then_branch"), "t"), "f32[N,8]");
        assert_eq!(ty(&m.graph, "y"), "f32[N,8]");
    }

    #[test]
    fn loop_carried_types_hold_for_every_iteration() {
        // %v doubles its length on every iteration: its shape is only known to be 1-D.
        let (m, _) = infer(
            r#"
opset_import "" 13
graph @g(%v0: f32[2]) -> (%v: ?) {
  init %m = i64[] int64s [3]
  %v = ""::Loop(%m, _, %v0) {
    body = graph @body(%i: i64[], %cond: bool[], %w: ?) -> (%cond_out: ?, %w_out: ?) {
      %cond_out = ""::Identity(%cond)
      %w_out = ""::Concat(%w, %w) {axis = 0}
    }
  }
}
"#,
        );
        assert_eq!(ty(&m.graph, "v"), "f32[?]");
        let b = body(&m.graph, "v", "body");
        assert_eq!(ty(b, "w"), "f32[?]");
        assert_eq!(ty(b, "w_out"), "f32[?]");
    }

    #[test]
    fn malformed_bodies_are_warnings_not_panics() {
        let (m, cx) = infer(
            r#"
opset_import "" 13
graph @g(%x: f32[2], %c: bool[]) -> (%a: ?, %b: ?, %d: ?, %e: ?, %f: ?) {
  init %m = i64[] int64s [2]
  %a = ""::If(%c) {
    then_branch = graph @then() -> (%t: ?) {
      %t = ""::Neg(%x)
    }
  }
  %b = ""::If(%c) {
    else_branch = graph @else() -> (%e1: ?, %e2: ?) {
      %e1 = ""::Neg(%x)
      %e2 = ""::Neg(%x)
    },
    then_branch = graph @then() -> (%t1: ?) {
      %t1 = ""::Neg(%x)
    }
  }
  %d = ""::Loop(%m, _, %x) {
    body = graph @body(%i: i64[], %cond: bool[], %w: ?) -> () {
    }
  }
  %e = ""::Scan(%x) {
    body = graph @body(%s: ?) -> (%s_out: ?) {
      %s_out = ""::Neg(%s)
    },
    num_scan_inputs = 4
  }
  %f = ""::If(%c) {
    else_branch = 3,
    then_branch = graph @then() -> (%t3: ?) {
      %t3 = ""::Neg(%nowhere)
    }
  }
}
"#,
        );
        let codes: Vec<&str> = cx.warnings.iter().map(|w| w.code.as_str()).collect();
        assert!(codes.contains(&"qc::shape::subgraph"), "{codes:?}");
        assert!(codes.contains(&"qc::shape::attribute"), "{codes:?}");
        for out in ["a", "b", "d", "e", "f"] {
            assert_eq!(ty(&m.graph, out), "untyped", "{out}");
        }
        // The bodies are still typed from what they hold.
        assert_eq!(ty(body(&m.graph, "a", "then_branch"), "t"), "f32[2]");
        assert_eq!(ty(body(&m.graph, "e", "body"), "s_out"), "untyped");
        assert_eq!(ty(body(&m.graph, "f", "then_branch"), "t3"), "untyped");
    }

    #[test]
    fn graph_attributes_of_other_ops_are_inferred_too() {
        let (m, cx) = infer(
            r#"
opset_import "" 13
graph @g(%x: f32[N,2]) -> (%y: ?) {
  %y = custom::Mystery(%x) {
    g = graph @inner() -> (%z: ?) {
      %z = ""::Relu(%x)
    }
  }
}
"#,
        );
        assert_eq!(ty(body(&m.graph, "y", "g"), "z"), "f32[N,2]");
        assert_eq!(ty(&m.graph, "y"), "untyped");
        assert_eq!(cx.warnings.len(), 1);
        assert_eq!(cx.warnings[0].code, "qc::shape::unsupported_op");
    }
}
