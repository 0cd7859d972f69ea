//! The rewrite kit: what every pass that changes a graph needs, in one place.
//!
//! A pass reads the graph with the queries here, collects its changes in a [`Rewrite`] and
//! applies them at once, so that program order is kept and def-use chains are rebuilt once:
//!
//! - **new values and constants**: [`new_value`] (a fresh name after a base name),
//!   [`add_const`], [`add_float`], [`add_ints`], [`add_typed_value`];
//! - **queries**: [`Readers`] (who reads a value, and which names bodies capture),
//!   [`captured_names`], [`outer_names`], [`subgraphs`], [`is_onnx`], [`input`],
//!   [`sole_output`], [`elem_in`];
//! - **constants**: [`constant`], [`float_const`], [`int_const`] (initializers and `Constant`
//!   ops alike, through [`crate::quant::const_array`]);
//! - **order**: [`stable_order`] (program order when it is topological), [`visit_order`]
//!   (topological counting the names bodies capture);
//! - **changes**: a [`Rewrite`] batches op replacements ([`NewOp`]), use replacements (graph
//!   outputs keep their names; bodies that read a replaced value by name read its replacement)
//!   and values to drop when nothing uses them any more; [`rebuild`], [`drop_unused`] and
//!   [`drop_unused_constants`] are its steps, for passes that drive them directly;
//!
//! The opset upgrader and IR-version rules are in [`crate::opset`]. Every pass imports its
//! helpers from here (and from `ir` and the analysis modules), never from another pass.

use std::collections::{BinaryHeap, HashMap, HashSet};

use qc_ir::{
    AttrValue, Const, Dim, ElemType, Graph, Model, Op, OpId, OpKind, Shape, TypeInfo, ValueId, ValueType,
};

use crate::eval::Array;
use crate::quant::const_array;

/// An op to put in the graph, with its inputs and outputs.
pub(crate) type NewOp = (Op, Vec<Option<ValueId>>, Vec<Option<ValueId>>);

// ---------------------------------------------------------------------------------------------
// New values and constants

/// A value named `base` (else `base_1`, `base_2`, ...) that nothing uses: a new one, or one that
/// an earlier rewrite left behind without producer, readers, data or declaration.
pub(crate) fn new_value(g: &mut Graph, base: &str) -> ValueId {
    let reusable = |g: &Graph, v: ValueId| {
        let val = g.value(v);
        val.producer().is_none()
            && val.uses().is_empty()
            && val.init.is_none()
            && val.ty.is_none()
            && ![&g.inputs, &g.outputs, &g.value_info, &g.initializers, &g.sparse_initializers]
                .iter()
                .any(|list| list.contains(&v))
    };
    let mut name = base.to_string();
    for k in 1.. {
        match g.find(&name) {
            None => break,
            Some(v) if reusable(g, v) => return v,
            Some(_) => name = format!("{base}_{k}"),
        }
    }
    g.add_value(&name)
}

/// Adds `a` as a new initializer named after `base`.
pub(crate) fn add_const(g: &mut Graph, base: &str, a: &Array) -> ValueId {
    let v = new_value(g, base);
    let name = g.value(v).name.clone();
    g.value_mut(v).init = Some(Const::Dense(Box::new(a.to_tensor(&name))));
    g.initializers.push(v);
    v
}

/// Adds a new initializer holding `values` as `elem`, named after `base` (`None`: the values do
/// not fit `dims` or `elem`).
pub(crate) fn add_float(
    g: &mut Graph,
    base: &str,
    elem: ElemType,
    dims: Vec<usize>,
    values: Vec<f64>,
) -> Option<ValueId> {
    let a = Array::from_f64s(elem, dims, values).ok()?;
    Some(add_const(g, base, &a))
}

/// Adds a new 1-D `i64` initializer, named after `base`.
pub(crate) fn add_ints(g: &mut Graph, base: &str, values: Vec<i64>) -> Option<ValueId> {
    let a = Array::from_i64(vec![values.len()], values).ok()?;
    Some(add_const(g, base, &a))
}

/// Adds a new value declared as a tensor of `elem` and `shape`, listed in `value_info`.
pub(crate) fn add_typed_value(g: &mut Graph, base: &str, elem: ElemType, shape: Option<Vec<Dim>>) -> ValueId {
    let v = new_value(g, base);
    let shape = shape.map(|dims| Shape { dims, denotations: Vec::new() });
    g.value_mut(v).ty = Some(TypeInfo::tensor(elem, shape));
    g.value_info.push(v);
    v
}

// ---------------------------------------------------------------------------------------------
// Queries

/// Whether `op` is in the default ONNX domain.
pub(crate) fn is_onnx(op: &Op) -> bool {
    qc_ir::op::is_default_domain(op.domain())
}

/// Input `i` of `op`, when present.
pub(crate) fn input(op: &Op, i: usize) -> Option<ValueId> {
    op.inputs().get(i).copied().flatten()
}

/// The only output of `op`: output 0, with every other output absent.
pub(crate) fn sole_output(op: &Op) -> Option<ValueId> {
    let outs = op.outputs();
    if outs.iter().skip(1).any(Option::is_some) {
        return None;
    }
    outs.first().copied().flatten()
}

/// The `c` per-channel values of constant `k` broadcast against a rank-`r` tensor with `c`
/// channels (axis 1), if `k` has element type `elem`, varies only along axis 1 and does not grow
/// the tensor (a single value is repeated `c` times).
pub(crate) fn per_channel(model: &Model, k: ValueId, r: usize, c: usize, elem: ElemType) -> Option<Vec<f64>> {
    let (e, dims, vals) = float_const(model, Some(k))?;
    if e != elem || dims.len() > r {
        return None;
    }
    let off = r - dims.len();
    for (i, &d) in dims.iter().enumerate() {
        if d != 1 && !(i + off == 1 && d == c) {
            return None;
        }
    }
    Some(if vals.len() == 1 { vec![vals[0]; c] } else { vals })
}

/// A value's element type, from its constant or declared type.
pub(crate) fn elem_in(g: &Graph, v: ValueId) -> Option<ElemType> {
    let val = g.value(v);
    if let Some(t) = val.tensor() {
        return t.elem;
    }
    match val.ty.as_ref()?.ty.as_ref()? {
        ValueType::Tensor { elem, .. } => *elem,
        _ => None,
    }
}

/// The graphs an op holds in its attributes (If's branches, Loop's and Scan's bodies, ...).
pub(crate) fn subgraphs(op: &Op) -> impl Iterator<Item = &Graph> {
    op.attrs.iter().flat_map(|a| match &a.value {
        AttrValue::Graph(g) => std::slice::from_ref(g.as_ref()),
        AttrValue::Graphs(gs) => gs.as_slice(),
        _ => &[],
    })
}

/// Calls `f` on every graph `op` holds in its attributes, mutably.
fn subgraphs_mut(op: &mut Op, f: &mut dyn FnMut(&mut Graph)) {
    for a in &mut op.attrs {
        match &mut a.value {
            AttrValue::Graph(g) => f(g),
            AttrValue::Graphs(gs) => gs.iter_mut().for_each(&mut *f),
            _ => {}
        }
    }
}

/// The names `g` reads from the graphs that enclose it: inputs of its ops (and of the ops of
/// graphs nested in it) and outputs that `g` does not define. `g` is a body; a name a nested
/// body reads that `g` defines is `g`'s own.
pub(crate) fn outer_names(g: &Graph) -> HashSet<String> {
    let mut out = HashSet::new();
    add_outer_names(g, &mut out);
    out
}

fn add_outer_names(g: &Graph, out: &mut HashSet<String>) {
    let defined = g.defined_values();
    let outer = |name: &str| g.find(name).is_none_or(|v| !defined[v.index()]);
    let mut inner = HashSet::new();
    for (_, op) in g.ops() {
        for v in op.inputs().iter().flatten() {
            if !defined[v.index()] {
                out.insert(g.value(*v).name.clone());
            }
        }
        for sub in subgraphs(op) {
            add_outer_names(sub, &mut inner);
        }
    }
    out.extend(inner.into_iter().filter(|n| outer(n)));
    for &v in &g.outputs {
        if !defined[v.index()] {
            out.insert(g.value(v).name.clone());
        }
    }
}

/// The names the bodies of `g`'s ops read from an enclosing scope (from `g`, or from a graph
/// around it). A value of `g` with such a name must keep it.
pub(crate) fn captured_names(g: &Graph) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, op) in g.ops() {
        for sub in subgraphs(op) {
            add_outer_names(sub, &mut out);
        }
    }
    out
}

/// What a rewrite needs to know about who reads the values of the main graph: op inputs, graph
/// outputs and the names its bodies capture.
pub(crate) struct Readers {
    captured: HashSet<String>,
}

impl Readers {
    pub(crate) fn new(g: &Graph) -> Readers {
        Readers { captured: captured_names(g) }
    }

    /// Whether a body reads `v` by name.
    pub(crate) fn captured(&self, g: &Graph, v: ValueId) -> bool {
        self.captured.contains(&g.value(v).name)
    }

    /// The one op input that reads `v`, when nothing else does: `v` is not a graph output and
    /// no body reads it.
    pub(crate) fn sole_reader(&self, g: &Graph, v: ValueId) -> Option<(OpId, usize)> {
        let val = g.value(v);
        if g.outputs.contains(&v) || self.captured.contains(&val.name) || val.uses().len() != 1 {
            return None;
        }
        let (op, slot) = val.uses()[0];
        Some((op, slot as usize))
    }
}

// ---------------------------------------------------------------------------------------------
// Constants

/// A constant's dims, values as `f64` and element type (see [`crate::quant::const_array`]).
pub(crate) fn constant(model: &Model, v: ValueId) -> Option<(Vec<usize>, Vec<f64>, ElemType)> {
    let a = const_array(model, v)?;
    let vals = a.to_f64().ok()?;
    Some((a.dims, vals, a.elem))
}

/// A float constant's element type, dims and values as `f64`.
pub(crate) fn float_const(model: &Model, v: Option<ValueId>) -> Option<(ElemType, Vec<usize>, Vec<f64>)> {
    let a: Array = const_array(model, v?)?;
    if !matches!(a.elem, ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16) {
        return None;
    }
    let vals = a.to_f64().ok()?;
    (vals.len() == a.dims.iter().product::<usize>()).then_some((a.elem, a.dims, vals))
}

/// An integer constant's values.
pub(crate) fn int_const(model: &Model, v: Option<ValueId>) -> Option<Vec<i64>> {
    const_array(model, v?)?.to_i64s().ok()
}

// ---------------------------------------------------------------------------------------------
// Order

/// The ops in program order when that order is topological (it is in every valid model), else
/// in some topological order; `None` for a cyclic graph.
pub(crate) fn stable_order(g: &Graph) -> Option<Vec<OpId>> {
    let mut written: HashSet<ValueId> = HashSet::new();
    let mut order = Vec::with_capacity(g.op_count());
    for (id, op) in g.ops() {
        let ready =
            op.inputs().iter().flatten().all(|v| g.value(*v).producer().is_none() || written.contains(v));
        if !ready {
            return g.topo_order().ok();
        }
        written.extend(op.outputs().iter().flatten().copied());
        order.push(id);
    }
    Some(order)
}

/// The order to visit `g`'s ops in: topological, counting the values an op's bodies read from
/// `g` as inputs of the op; program order among independent ops (or for a cycle).
pub(crate) fn visit_order(g: &Graph) -> Vec<OpId> {
    use std::cmp::Reverse;
    let program: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
    if !g.ops().any(|(_, op)| subgraphs(op).next().is_some()) {
        return g.topo_order().unwrap_or(program);
    }
    let pos: HashMap<OpId, usize> = program.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let n = program.len();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indeg = vec![0usize; n];
    for (k, (_, op)) in g.ops().enumerate() {
        let mut names = HashSet::new();
        for sub in subgraphs(op) {
            add_outer_names(sub, &mut names);
        }
        let reads = op.inputs().iter().flatten().copied().chain(names.iter().filter_map(|name| g.find(name)));
        let mut preds: Vec<usize> =
            reads.filter_map(|v| g.value(v).producer()).filter_map(|p| pos.get(&p).copied()).collect();
        preds.sort_unstable();
        preds.dedup();
        for p in preds.into_iter().filter(|&p| p != k) {
            succs[p].push(k);
            indeg[k] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n).filter(|&k| indeg[k] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(k)) = ready.pop() {
        order.push(program[k]);
        for &s in &succs[k] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() == n { order } else { program }
}

// ---------------------------------------------------------------------------------------------
// Changes

/// A batch of changes to one graph, applied at once by [`Rewrite::apply`]: ops replaced in place
/// (program order is kept), uses of values replaced, and values to drop once nothing uses them.
///
/// New values and constants are added to the graph directly ([`new_value`], [`add_const`], ...);
/// those the batch leaves unused are harmless and reused by the next [`new_value`].
#[derive(Default)]
pub(crate) struct Rewrite {
    replace: HashMap<OpId, Vec<NewOp>>,
    /// `(from, to)`: the readers of `from` read `to`, in this order.
    uses: Vec<(ValueId, ValueId)>,
    /// Values that may have lost their last reader or writer.
    unused: Vec<ValueId>,
}

impl Rewrite {
    /// Whether `op` is already part of this batch.
    pub(crate) fn touches(&self, op: OpId) -> bool {
        self.replace.contains_key(&op)
    }

    /// Replaces `op` by `new` (empty: removes it).
    pub(crate) fn set(&mut self, op: OpId, new: Vec<NewOp>) {
        self.replace.insert(op, new);
    }

    /// Drops each of `values` (its data, initializer entry and declaration) if, once the batch
    /// is applied, no op reads or writes it and it is not a graph input or output.
    pub(crate) fn drop_if_unused(&mut self, values: impl IntoIterator<Item = ValueId>) {
        self.unused.extend(values);
    }

    /// Makes every reader of `from` read `to` instead: op inputs, and the bodies that read
    /// `from` by name (they read `to`'s name). When `from` is a graph output, the output keeps
    /// its name: the op that writes `to` writes `from` instead and `to`'s readers read `from`.
    /// The value that loses its readers stays declared; pass it to [`Rewrite::drop_if_unused`]
    /// to drop it.
    ///
    /// Refused (returns `false`, nothing recorded) when that cannot be done without changing
    /// what the graph computes or its interface: `from` is a graph input or `from == to`; a body
    /// that reads the old name defines the new one; or, for a graph output, `to` is not written
    /// by an op of `g` (other than `from`'s), or is itself a graph input, output or initializer,
    /// or is already renamed in this batch.
    pub(crate) fn replace_uses(&mut self, g: &Graph, from: ValueId, to: ValueId) -> bool {
        if from == to || g.inputs.contains(&from) {
            return false;
        }
        let (old, new) = if g.outputs.contains(&from) {
            let producer = g.value(to).producer();
            let ok = producer.is_some_and(|p| g.value(from).producer() != Some(p))
                && !g.outputs.contains(&to)
                && !g.inputs.contains(&to)
                && !g.initializers.contains(&to)
                && !g.sparse_initializers.contains(&to)
                && !self.uses.iter().any(|&(f, t)| t == to || f == to);
            if !ok {
                return false;
            }
            (to, from)
        } else {
            (from, to)
        };
        let (old_name, new_name) = (&g.value(old).name, &g.value(new).name);
        if !g.ops().all(|(_, op)| subgraphs(op).all(|sub| can_rename(sub, old_name, new_name))) {
            return false;
        }
        self.uses.push((from, to));
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.replace.is_empty() && self.uses.is_empty()
    }

    /// Applies the batch and drops the values nothing uses any more.
    pub(crate) fn apply(mut self, g: &mut Graph) {
        // Graph outputs keep their names: the producer of the replacement writes the output.
        let renames: Vec<(ValueId, ValueId)> =
            self.uses.iter().filter(|(from, _)| g.outputs.contains(from)).map(|&(f, t)| (t, f)).collect();
        if !renames.is_empty() {
            let rename = |outs: &mut Vec<Option<ValueId>>| {
                for o in outs.iter_mut().flatten() {
                    if let Some(&(_, to)) = renames.iter().find(|(from, _)| from == o) {
                        *o = to;
                    }
                }
            };
            for new in self.replace.values_mut() {
                new.iter_mut().for_each(|(_, _, outs)| rename(outs));
            }
            for &(old, _) in &renames {
                if let Some(p) = g.value(old).producer()
                    && !self.replace.contains_key(&p)
                {
                    let op = g.op(p).clone();
                    let (ins, mut outs) = (op.inputs().to_vec(), op.outputs().to_vec());
                    rename(&mut outs);
                    self.replace.insert(p, vec![(op, ins, outs)]);
                }
            }
        }
        rebuild(g, self.replace);
        for &(from, to) in &self.uses {
            let (old, new) = if g.outputs.contains(&from) { (to, from) } else { (from, to) };
            redirect_uses(g, old, new);
            let (old_name, new_name) = (g.value(old).name.clone(), g.value(new).name.clone());
            rename_in_bodies(g, &old_name, &new_name);
        }
        drop_unused(g, &self.unused);
    }
}

/// Makes every op input of `g` that reads `from` read `to` instead, at once. Graph outputs and
/// bodies that read `from` by name are not changed: the caller has made sure there are none, or
/// uses [`Rewrite::replace_uses`].
pub(crate) fn redirect_uses(g: &mut Graph, from: ValueId, to: ValueId) {
    for (reader, slot) in g.value(from).uses().to_vec() {
        g.set_input(reader, slot as usize, Some(to));
    }
}

/// Whether the bodies reachable from `sub` that read `old` from outside can read `new` instead:
/// none of them defines `new` itself.
fn can_rename(sub: &Graph, old: &str, new: &str) -> bool {
    let defined = sub.defined_values();
    let defines = |name: &str| sub.find(name).is_some_and(|v| defined[v.index()]);
    if defines(old) {
        // Shadowed: this body and the ones in it see their own `old`.
        return true;
    }
    if sub.find(old).is_some() && defines(new) {
        return false;
    }
    sub.ops().all(|(_, op)| subgraphs(op).all(|s| can_rename(s, old, new)))
}

/// Makes the bodies of `g`'s ops (at any depth) that read `old` from an enclosing graph read
/// `new` instead.
fn rename_in_bodies(g: &mut Graph, old: &str, new: &str) {
    let ids: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
    for id in ids {
        subgraphs_mut(g.op_mut(id), &mut |sub| rename_outer(sub, old, new));
    }
}

fn rename_outer(sub: &mut Graph, old: &str, new: &str) {
    let defined = sub.defined_values();
    let Some(o) = sub.find(old) else {
        return rename_in_bodies(sub, old, new);
    };
    if defined[o.index()] {
        return;
    }
    let n = sub.value_named(new);
    for (reader, slot) in sub.value(o).uses().to_vec() {
        sub.set_input(reader, slot as usize, Some(n));
    }
    for list in [&mut sub.outputs, &mut sub.value_info] {
        for v in list.iter_mut().filter(|v| **v == o) {
            *v = n;
        }
    }
    if sub.value(n).ty.is_none() {
        sub.value_mut(n).ty = sub.value_mut(o).ty.take();
    }
    rename_in_bodies(sub, old, new);
}

/// Replaces ops in place: each op in `replace` gives way to its list (empty: removed), and the
/// program order is otherwise kept. Op ids change; value ids do not.
pub(crate) fn rebuild(g: &mut Graph, mut replace: HashMap<OpId, Vec<NewOp>>) {
    if replace.is_empty() {
        return;
    }
    let order: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
    let mut seq: Vec<NewOp> = Vec::with_capacity(order.len());
    for id in order {
        let Some(op) = g.remove_op(id) else { continue };
        match replace.remove(&id) {
            Some(new) => seq.extend(new),
            None => {
                let (ins, outs) = (op.inputs().to_vec(), op.outputs().to_vec());
                seq.push((op, ins, outs));
            }
        }
    }
    for (op, ins, outs) in seq {
        g.add_op(op, ins, outs);
    }
}

/// Drops the values in `candidates` that nothing reads or writes any more: their constant data,
/// their place in the initializer list and their `value_info` declaration. Graph inputs and
/// outputs are kept.
pub(crate) fn drop_unused(g: &mut Graph, candidates: &[ValueId]) {
    let dead: Vec<ValueId> = candidates
        .iter()
        .copied()
        .filter(|&v| {
            let val = g.value(v);
            val.uses().is_empty()
                && val.producer().is_none()
                && !g.inputs.contains(&v)
                && !g.outputs.contains(&v)
        })
        .collect();
    if dead.is_empty() {
        return;
    }
    g.initializers.retain(|v| !dead.contains(v));
    g.sparse_initializers.retain(|v| !dead.contains(v));
    let old = std::mem::take(&mut g.value_info);
    let mut kept_positions = Vec::new();
    for (i, v) in old.into_iter().enumerate() {
        if dead.contains(&v) {
            continue;
        }
        kept_positions.push(i);
        g.value_info.push(v);
    }
    g.reindex_decl_overrides(qc_ir::DeclList::ValueInfo, &kept_positions);
    for v in dead {
        let val = g.value_mut(v);
        val.init = None;
        val.ty = None;
        val.doc_string = None;
        val.metadata.clear();
    }
}

/// Removes the `Constant` ops among the producers of `candidates` whose outputs nothing reads any
/// more, then drops the values that became unused (see [`drop_unused`]).
pub(crate) fn drop_unused_constants(g: &mut Graph, candidates: &[ValueId]) {
    let mut replace: HashMap<OpId, Vec<NewOp>> = HashMap::new();
    for &v in candidates {
        let Some(p) = g.value(v).producer() else { continue };
        let op = g.op(p);
        let unread = |o: &ValueId| g.value(*o).uses().is_empty() && !g.outputs.contains(o);
        if op.kind() == OpKind::Constant && op.outputs().iter().flatten().all(unread) {
            replace.insert(p, Vec::new());
        }
    }
    rebuild(g, replace);
    drop_unused(g, candidates);
}

#[cfg(test)]
mod tests {
    use super::*;
    use qc_ir::text::{Form, parse_model, print_model};

    const HEAD: &str = "ir_version 8\nopset_import \"\" 13\n\n";

    fn model(body: &str) -> Model {
        parse_model(&format!("{HEAD}{body}")).unwrap()
    }

    /// Asserts that `m` is valid and prints as `expected` does, apart from the list of values
    /// (a rewrite leaves orphans, which the text lists to keep value ids) and default domains
    /// spelled out.
    fn assert_model(m: &Model, expected: &str) {
        assert!(qc_ir::verify_model(m).is_empty(), "{:?}", qc_ir::verify_model(m));
        let text = |m: &Model| {
            print_model(m, Form::Full)
                .lines()
                .filter(|l| !l.trim_start().starts_with("values "))
                .map(|l| l.replace("\"\"::", ""))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(text(m), text(&model(expected)));
    }

    fn op_writing(g: &Graph, name: &str) -> OpId {
        g.value(g.find(name).unwrap()).producer().unwrap()
    }

    #[test]
    fn replacing_a_graph_output_keeps_its_name() {
        let mut m = model(
            "graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %a = \"\"::Relu(%x)\n  %y = \"\"::Identity(%a)\n}\n",
        );
        let g = &mut m.graph;
        let (a, y) = (g.find("a").unwrap(), g.find("y").unwrap());
        let mut rw = Rewrite::default();
        rw.set(op_writing(g, "y"), vec![]);
        assert!(rw.replace_uses(g, y, a));
        rw.drop_if_unused([a]);
        rw.apply(g);
        assert_model(&m, "graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = \"\"::Relu(%x)\n}\n");
    }

    #[test]
    fn a_graph_output_is_not_replaced_by_a_graph_input() {
        let m = model("graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = \"\"::Identity(%x)\n}\n");
        let g = &m.graph;
        let (x, y) = (g.find("x").unwrap(), g.find("y").unwrap());
        let mut rw = Rewrite::default();
        assert!(!rw.replace_uses(g, y, x), "the output would lose its name or its producer");
        assert!(!rw.replace_uses(g, x, y), "a graph input keeps its readers");
        assert!(!rw.replace_uses(g, y, y));
        assert!(rw.is_empty());
    }

    const CAPTURED: &str = "graph @g(%x: f32[2], %c: bool[]) -> (%z: ?) {
  %a = \"\"::Relu(%x)
  %b = \"\"::Identity(%a)
  %z = \"\"::If(%c) {
    else_branch = graph @else() -> (%e: ?) {
      %e = \"\"::Neg(%b)
    },
    then_branch = graph @then() -> (%b: ?) {
    }
  }
}
";

    #[test]
    fn names_captured_by_bodies_are_found_also_as_body_outputs() {
        let m = model(CAPTURED);
        let names = captured_names(&m.graph);
        assert_eq!(names, HashSet::from(["b".to_string()]));
        let readers = Readers::new(&m.graph);
        let b = m.graph.find("b").unwrap();
        assert!(readers.captured(&m.graph, b));
        assert_eq!(readers.sole_reader(&m.graph, b), None, "a body reads it by name");
    }

    #[test]
    fn bodies_that_capture_a_replaced_value_read_its_replacement() {
        let mut m = model(CAPTURED);
        let g = &mut m.graph;
        let (a, b) = (g.find("a").unwrap(), g.find("b").unwrap());
        let mut rw = Rewrite::default();
        rw.set(op_writing(g, "b"), vec![]);
        assert!(rw.replace_uses(g, b, a));
        rw.drop_if_unused([b]);
        rw.apply(g);
        assert_eq!(captured_names(g), HashSet::from(["a".to_string()]));
        assert_model(
            &m,
            "graph @g(%x: f32[2], %c: bool[]) -> (%z: ?) {
  %a = \"\"::Relu(%x)
  %z = \"\"::If(%c) {
    else_branch = graph @else() -> (%e: ?) {
      %e = \"\"::Neg(%a)
    },
    then_branch = graph @then() -> (%a: ?) {
    }
  }
}
",
        );
    }

    #[test]
    fn a_body_that_defines_the_new_name_refuses_the_replacement() {
        let m = model(
            "graph @g(%x: f32[2], %c: bool[]) -> (%z: ?) {
  %a = \"\"::Relu(%x)
  %b = \"\"::Identity(%a)
  %z = \"\"::If(%c) {
    else_branch = graph @else() -> (%e: ?) {
      %a = \"\"::Neg(%b)
      %e = \"\"::Abs(%a)
    },
    then_branch = graph @then() -> (%t: ?) {
      %t = \"\"::Neg(%x)
    }
  }
}
",
        );
        let g = &m.graph;
        let (a, b) = (g.find("a").unwrap(), g.find("b").unwrap());
        let mut rw = Rewrite::default();
        assert!(!rw.replace_uses(g, b, a), "`else` would read its own `a`");
        assert!(rw.is_empty());
    }

    #[test]
    fn outer_names_leave_out_what_a_body_defines_for_its_own_bodies() {
        let m = model(
            "graph @g(%x: f32[2], %c: bool[]) -> (%z: ?) {
  %z = \"\"::If(%c) {
    else_branch = graph @else() -> (%e: ?) {
      %t = \"\"::Neg(%x)
      %e = \"\"::If(%c) {
        else_branch = graph @inner_else() -> (%f: ?) {
          %f = \"\"::Abs(%t)
        },
        then_branch = graph @inner_then() -> (%x: ?) {
        }
      }
    },
    then_branch = graph @then() -> (%x: ?) {
    }
  }
}
",
        );
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<HashSet<String>>();
        let (_, iff) = m.graph.ops().next().unwrap();
        let bodies: Vec<&Graph> = subgraphs(iff).collect();
        assert_eq!(bodies.len(), 2);
        // `else` defines `t`, which its own body reads: not an outer name of `else`.
        assert_eq!(outer_names(bodies[0]), names(&["x", "c"]));
        assert_eq!(outer_names(bodies[1]), names(&["x"]));
        assert_eq!(captured_names(&m.graph), names(&["x", "c"]));
    }

    #[test]
    fn dropping_unused_values_keeps_graph_outputs_and_values_still_read() {
        let mut m = model(
            "graph @g(%x: f32[2]) -> (%y: f32[2], %w: f32[2]) {
  init %w = f32[2] floats [1.0, 2.0]
  init %k = f32[2] floats [3.0, 4.0]
  init %u = f32[2] floats [5.0, 6.0]
  %s: f32[2] = \"\"::Add(%x, %k)
  %y = \"\"::Mul(%s, %u)
}
",
        );
        let g = &mut m.graph;
        let [x, w, k, u, s] = ["x", "w", "k", "u", "s"].map(|n| g.find(n).unwrap());
        let mut rw = Rewrite::default();
        let y = g.find("y").unwrap();
        rw.set(op_writing(g, "s"), vec![]);
        rw.set(op_writing(g, "y"), vec![(Op::new("Mul", None), vec![Some(x), Some(u)], vec![Some(y)])]);
        rw.drop_if_unused([x, w, k, u, s]);
        rw.apply(g);
        assert!(g.value(k).init.is_none() && g.value(s).ty.is_none());
        assert_model(
            &m,
            "graph @g(%x: f32[2]) -> (%y: f32[2], %w: f32[2]) {
  init %w = f32[2] floats [1.0, 2.0]
  init %u = f32[2] floats [5.0, 6.0]
  %y = \"\"::Mul(%x, %u)
}
",
        );
    }

    #[test]
    fn unused_constant_ops_are_dropped_with_their_values() {
        let mut m = model(
            "graph @g(%x: f32[2]) -> (%y: f32[2]) {
  %k = \"\"::Constant() {value_float = 2.0}
  %y = \"\"::Mul(%x, %k)
}
",
        );
        let g = &mut m.graph;
        let (x, y, k) = (g.find("x").unwrap(), g.find("y").unwrap(), g.find("k").unwrap());
        let mut replace = HashMap::new();
        replace.insert(op_writing(g, "y"), vec![(Op::new("Neg", None), vec![Some(x)], vec![Some(y)])]);
        rebuild(g, replace);
        drop_unused_constants(g, &[k]);
        assert_model(&m, "graph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = \"\"::Neg(%x)\n}\n");
    }

    #[test]
    fn new_names_do_not_collide_and_orphans_are_reused() {
        let mut m = model(
            "graph @g(%x: f32[2]) -> (%y: f32[2]) {
  init %w = f32[2] floats [1.0, 2.0]
  init %w_1 = f32[2] floats [1.0, 2.0]
  %a = \"\"::Add(%x, %w)
  %y = \"\"::Add(%a, %w_1)
}
",
        );
        let g = &mut m.graph;
        let v = new_value(g, "w");
        assert_eq!(g.value(v).name, "w_2");
        assert_eq!(new_value(g, "w"), v, "a value nothing uses or declares is reused");
        let c = add_ints(g, "w", vec![1, 2]).unwrap();
        assert_eq!((c, g.value(c).name.as_str()), (v, "w_2"));
        assert_eq!(g.initializers.last(), Some(&c));
        let w3 = new_value(g, "w");
        assert_eq!(g.value(w3).name, "w_3", "an initializer is not an orphan");
        let a1 = new_value(g, "a");
        assert_eq!(g.value(a1).name, "a_1", "an op output is not an orphan");
        let t = add_typed_value(g, "x", ElemType::F32, Some(vec![Dim::Known(2)]));
        assert_eq!(g.value(t).name, "x_1");
        assert_eq!(g.value_info.last(), Some(&t));
        assert_eq!(elem_in(g, t), Some(ElemType::F32));
        assert!(add_float(g, "f", ElemType::F32, vec![3], vec![1.0]).is_none(), "3 dims, 1 value");
    }

    #[test]
    fn constants_are_read_from_initializers_and_constant_ops() {
        let m = model(
            "graph @g(%x: f32[2]) -> (%y: f32[2]) {
  init %w = f32[2] floats [1.5, 2.0]
  %k = \"\"::Constant() {value_ints = [3, 4]}
  %a = \"\"::Add(%x, %w)
  %y = \"\"::Reshape(%a, %k)
}
",
        );
        let g = &m.graph;
        let (w, k, a) = (g.find("w"), g.find("k"), g.find("a"));
        assert_eq!(float_const(&m, w), Some((ElemType::F32, vec![2], vec![1.5, 2.0])));
        assert_eq!(int_const(&m, k), Some(vec![3, 4]));
        assert_eq!(float_const(&m, k), None, "not a float constant");
        assert_eq!(int_const(&m, a), None, "computed, not constant");
        assert_eq!(constant(&m, k.unwrap()), Some((vec![2], vec![3.0, 4.0], ElemType::I64)));
    }

    #[test]
    fn stable_order_is_program_order_when_that_is_topological() {
        let mut g = Graph::new();
        let [x, a, b] = ["x", "a", "b"].map(|n| g.value_named(n));
        g.inputs.push(x);
        let late = g.add_op(Op::new("Neg", None), vec![Some(a)], vec![Some(b)]);
        let early = g.add_op(Op::new("Relu", None), vec![Some(x)], vec![Some(a)]);
        assert_eq!(stable_order(&g), Some(vec![early, late]));
        assert_eq!(visit_order(&g), vec![early, late]);
        let c = g.value_named("c");
        let third = g.add_op(Op::new("Abs", None), vec![Some(b)], vec![Some(c)]);
        assert_eq!(stable_order(&g), Some(vec![early, late, third]));
    }
}
