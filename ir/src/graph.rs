//! The graph: values in an arena, ops as nodes of a petgraph `StableDiGraph`.
//!
//! An edge runs from the op that produces a value to each op that reads it and carries the value
//! and the input slot ([`Use`]). The graph also keeps the order the ops were written in (the
//! program order that export follows) and, per value, its producer and readers, so passes can
//! walk def-use chains without searching.
//!
//! Invariants kept by the methods here (the fields that carry them are private):
//! - `op.inputs`/`op.outputs`, the petgraph edges, and each value's producer and uses agree;
//! - `order` lists every live op exactly once.
//!
//! A graph may still be invalid as a program (a cycle, an undefined input, two producers of a
//! value); [`crate::verify`] finds those, all at once.

use indexmap::IndexMap;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;

use crate::attr::AttrValue;
use crate::hash::FxBuildHasher;
use crate::op::Op;
use crate::quant::QuantSpec;
use crate::tensor::{SparseTensor, Tensor};
use crate::types::{MetaEntry, TypeInfo};

/// Index of a value in its graph's arena. Prints as `%N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id with arena index `i` (for side tables indexed by value).
    pub fn from_index(i: usize) -> ValueId {
        ValueId(u32::try_from(i).expect("value index fits in u32"))
    }
}

impl std::fmt::Display for ValueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// Index of an op in its graph.
pub type OpId = NodeIndex<u32>;

/// An edge: `value` flows into input `slot` of the target op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use {
    pub value: ValueId,
    pub slot: u32,
}

/// Constant data bound to a value (an initializer).
#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    Dense(Box<Tensor>),
    Sparse(Box<SparseTensor>),
}

/// A value: a graph input, an initializer, or an op output.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    /// The declared type, from the graph's inputs, outputs or `value_info`.
    pub ty: Option<TypeInfo>,
    /// Documentation and metadata of the declaration.
    pub doc_string: Option<String>,
    pub metadata: Vec<MetaEntry>,
    /// Constant data, for initializers.
    pub init: Option<Const>,
    pub quant: Option<QuantSpec>,
    producer: Option<OpId>,
    uses: Vec<(OpId, u32)>,
}

impl Value {
    fn new(name: String) -> Value {
        Value {
            name,
            ty: None,
            doc_string: None,
            metadata: Vec::new(),
            init: None,
            quant: None,
            producer: None,
            uses: Vec::new(),
        }
    }

    /// The op that writes this value, if an op does (the first one, if several do).
    pub fn producer(&self) -> Option<OpId> {
        self.producer
    }

    /// The ops and slots that read this value.
    pub fn uses(&self) -> &[(OpId, u32)] {
        &self.uses
    }

    /// Whether `other` has the same name, declaration, constant and quantization; the producer
    /// and uses (which follow from the graph's ops) are not compared.
    fn same_record(&self, other: &Value) -> bool {
        let Value { name, ty, doc_string, metadata, init, quant, producer: _, uses: _ } = self;
        *name == other.name
            && *ty == other.ty
            && *doc_string == other.doc_string
            && *metadata == other.metadata
            && *init == other.init
            && *quant == other.quant
    }

    /// The dense constant bound to this value.
    pub fn tensor(&self) -> Option<&Tensor> {
        match &self.init {
            Some(Const::Dense(t)) => Some(t),
            _ => None,
        }
    }
}

/// Which declaration list of a graph an entry is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeclList {
    Inputs,
    Outputs,
    ValueInfo,
}

/// A declaration that says something different about a value than the value's own record
/// (a value declared twice, with different types or documentation). Kept so that export
/// writes every declaration as it was.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclOverride {
    pub list: DeclList,
    pub index: usize,
    pub name: String,
    pub ty: Option<TypeInfo>,
    pub doc_string: Option<String>,
    pub metadata: Vec<MetaEntry>,
}

/// `quantization_annotation`: names of the scale and zero-point tensors of a tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorAnnotation {
    pub tensor_name: Option<String>,
    pub entries: Vec<MetaEntry>,
}

/// A computation graph (the model's main graph, or the body of If/Loop/Scan or a function).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: Option<String>,
    pub doc_string: Option<String>,
    pub metadata: Vec<MetaEntry>,
    values: Vec<Value>,
    by_name: IndexMap<String, ValueId, FxBuildHasher>,
    ops: StableDiGraph<Op, Use, u32>,
    order: Vec<OpId>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    pub value_info: Vec<ValueId>,
    /// Dense initializers, in file order.
    pub initializers: Vec<ValueId>,
    /// Sparse initializers, in file order.
    pub sparse_initializers: Vec<ValueId>,
    pub quantization_annotations: Vec<TensorAnnotation>,
    pub decl_overrides: Vec<DeclOverride>,
}

impl PartialEq for Graph {
    /// Graphs are equal when they hold the same values and the same ops in the same order.
    /// Op ids and the order of each value's use list are bookkeeping (they change when ops are
    /// removed or inputs rewired, and a parsed graph numbers its ops afresh), so values are
    /// compared by their own fields and def-use through the ops.
    fn eq(&self, other: &Graph) -> bool {
        self.name == other.name
            && self.doc_string == other.doc_string
            && self.metadata == other.metadata
            && self.values.len() == other.values.len()
            && self.values.iter().zip(&other.values).all(|(a, b)| a.same_record(b))
            && self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.value_info == other.value_info
            && self.initializers == other.initializers
            && self.sparse_initializers == other.sparse_initializers
            && self.quantization_annotations == other.quantization_annotations
            && self.decl_overrides == other.decl_overrides
            && self.order.len() == other.order.len()
            && self.ops().map(|(_, o)| o).eq(other.ops().map(|(_, o)| o))
    }
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The value called `name`, created (undeclared, without producer) if there is none.
    pub fn value_named(&mut self, name: &str) -> ValueId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        self.add_value(name)
    }

    /// Adds a new value. Names should be unique; if `name` is taken, the new value is not
    /// reachable by name (use [`Graph::value_named`] to share).
    pub fn add_value(&mut self, name: &str) -> ValueId {
        let id = ValueId(u32::try_from(self.values.len()).expect("more than 2^32 values"));
        self.values.push(Value::new(name.to_string()));
        self.by_name.entry(name.to_string()).or_insert(id);
        id
    }

    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.by_name.get(name).copied()
    }

    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.index()]
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = (ValueId, &Value)> {
        self.values.iter().enumerate().map(|(i, v)| (ValueId(i as u32), v))
    }

    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// Adds `op` after every op already in the graph, reading `inputs` and writing `outputs`.
    pub fn add_op(&mut self, op: Op, inputs: Vec<Option<ValueId>>, outputs: Vec<Option<ValueId>>) -> OpId {
        let mut op = op;
        op.inputs = inputs;
        op.outputs = outputs;
        let ins = op.inputs.clone();
        let outs = op.outputs.clone();
        let id = self.ops.add_node(op);
        self.order.push(id);
        for (slot, v) in ins.iter().enumerate() {
            if let Some(v) = *v {
                self.values[v.index()].uses.push((id, slot as u32));
                if let Some(p) = self.values[v.index()].producer {
                    self.ops.add_edge(p, id, Use { value: v, slot: slot as u32 });
                }
            }
        }
        for v in outs.into_iter().flatten() {
            if self.values[v.index()].producer.is_none() {
                self.values[v.index()].producer = Some(id);
                let uses = self.values[v.index()].uses.clone();
                for (reader, slot) in uses {
                    if reader != id {
                        self.ops.add_edge(id, reader, Use { value: v, slot });
                    }
                }
                // An op that reads its own output: a cycle of one, which the verifier reports.
                if let Some(slot) = ins.iter().position(|i| *i == Some(v)) {
                    self.ops.add_edge(id, id, Use { value: v, slot: slot as u32 });
                }
            }
        }
        id
    }

    /// Removes an op, detaching it from the values it read and wrote.
    pub fn remove_op(&mut self, id: OpId) -> Option<Op> {
        let op = self.ops.remove_node(id)?;
        self.order.retain(|o| *o != id);
        for v in op.inputs.iter().flatten() {
            self.values[v.index()].uses.retain(|(o, _)| *o != id);
        }
        for v in op.outputs.iter().flatten() {
            if self.values[v.index()].producer == Some(id) {
                self.values[v.index()].producer = None;
                // Another op that also wrote the value (an invalid graph) becomes its producer.
                let next = self.order.iter().copied().find(|o| self.ops[*o].outputs.contains(&Some(*v)));
                if let Some(p) = next {
                    self.values[v.index()].producer = Some(p);
                    for (reader, slot) in self.values[v.index()].uses.clone() {
                        self.ops.add_edge(p, reader, Use { value: *v, slot });
                    }
                }
            }
        }
        Some(op)
    }

    /// Makes input `slot` of `id` read `value` instead.
    pub fn set_input(&mut self, id: OpId, slot: usize, value: Option<ValueId>) {
        let old = self.ops[id].inputs[slot];
        if let Some(o) = old {
            self.values[o.index()].uses.retain(|u| *u != (id, slot as u32));
            let edges: Vec<_> = self
                .ops
                .edges_directed(id, petgraph::Direction::Incoming)
                .filter(|e| e.weight().slot == slot as u32)
                .map(|e| e.id())
                .collect();
            for e in edges {
                self.ops.remove_edge(e);
            }
        }
        self.ops[id].inputs[slot] = value;
        if let Some(v) = value {
            self.values[v.index()].uses.push((id, slot as u32));
            if let Some(p) = self.values[v.index()].producer {
                self.ops.add_edge(p, id, Use { value: v, slot: slot as u32 });
            }
        }
    }

    pub fn op(&self, id: OpId) -> &Op {
        &self.ops[id]
    }

    /// Mutable access to an op's name, attributes and documentation. Inputs and outputs change
    /// only through [`Graph::set_input`], so the def-use chains stay right.
    pub fn op_mut(&mut self, id: OpId) -> &mut Op {
        &mut self.ops[id]
    }

    /// The ops in program order.
    pub fn ops(&self) -> impl Iterator<Item = (OpId, &Op)> {
        self.order.iter().map(move |&id| (id, &self.ops[id]))
    }

    pub fn op_count(&self) -> usize {
        self.order.len()
    }

    /// The position of `id` in program order (used to name unnamed ops).
    pub fn position(&self, id: OpId) -> Option<usize> {
        self.order.iter().position(|o| *o == id)
    }

    /// A readable name for an op: its name, or `OpType#position`.
    pub fn op_label(&self, id: OpId) -> String {
        self.ops[id].display_name(self.position(id).unwrap_or(0))
    }

    /// The petgraph view, for algorithms (toposort, strongly connected components, ...).
    pub fn petgraph(&self) -> &StableDiGraph<Op, Use, u32> {
        &self.ops
    }

    /// The ops in a topological order, or the ops of one cycle.
    pub fn topo_order(&self) -> Result<Vec<OpId>, Vec<OpId>> {
        petgraph::algo::toposort(&self.ops, None).map_err(|c| {
            let start = c.node_id();
            petgraph::algo::tarjan_scc(&self.ops)
                .into_iter()
                .find(|scc| scc.contains(&start))
                .unwrap_or_else(|| vec![start])
        })
    }

    /// Calls `f` on every constant tensor of this graph and the graphs nested in its ops:
    /// initializers, the parts of sparse initializers, and tensor attributes.
    pub fn visit_tensors<'a>(&'a self, f: &mut dyn FnMut(&'a Tensor)) {
        for (_, v) in self.values() {
            match &v.init {
                Some(Const::Dense(t)) => f(t),
                Some(Const::Sparse(s)) => s.values.iter().chain(&s.indices).for_each(&mut *f),
                None => {}
            }
        }
        for (_, op) in self.ops() {
            for a in &op.attrs {
                visit_attr_tensors(&a.value, f);
            }
        }
    }

    /// [`Graph::visit_tensors`] with mutable access, in the same order.
    pub fn visit_tensors_mut(&mut self, f: &mut dyn FnMut(&mut Tensor)) {
        for v in &mut self.values {
            match &mut v.init {
                Some(Const::Dense(t)) => f(t),
                Some(Const::Sparse(s)) => s.values.iter_mut().chain(&mut s.indices).for_each(&mut *f),
                None => {}
            }
        }
        for op in self.ops.node_weights_mut() {
            for a in &mut op.attrs {
                visit_attr_tensors_mut(&mut a.value, f);
            }
        }
    }

    /// Calls `f` on every graph nested in this graph's ops (not on this graph), depth first.
    pub fn visit_subgraphs<'a>(&'a self, f: &mut dyn FnMut(&'a Graph)) {
        for (_, op) in self.ops() {
            for a in &op.attrs {
                let subs: &[Graph] = match &a.value {
                    AttrValue::Graph(g) => std::slice::from_ref(g.as_ref()),
                    AttrValue::Graphs(gs) => gs,
                    _ => continue,
                };
                for g in subs {
                    f(g);
                    g.visit_subgraphs(f);
                }
            }
        }
    }
    /// Which values `g` defines itself (graph inputs, initializers, op outputs), by value index;
    /// the others are read from an enclosing scope.
    pub fn defined_values(&self) -> Vec<bool> {
        let mut d = vec![false; self.value_count()];
        for &v in self.inputs.iter().chain(&self.initializers).chain(&self.sparse_initializers) {
            d[v.index()] = true;
        }
        for (_, op) in self.ops() {
            for v in op.outputs().iter().flatten() {
                d[v.index()] = true;
            }
        }
        d
    }

    /// After entries of the declaration list `list` were removed, moves its overrides to their
    /// entries' new positions and drops those of removed entries. `kept[new]` is the old position
    /// of the entry now at `new`.
    pub fn reindex_decl_overrides(&mut self, list: DeclList, kept: &[usize]) {
        self.decl_overrides.retain_mut(|o| {
            if o.list != list {
                return true;
            }
            match kept.iter().position(|&p| p == o.index) {
                Some(new) => {
                    o.index = new;
                    true
                }
                None => false,
            }
        });
    }

    /// Parameter count and stored bytes of the dense initializers.
    pub fn parameter_totals(&self) -> (u64, u64) {
        let mut count = 0u64;
        let mut bytes = 0u64;
        for &v in &self.initializers {
            if let Some(t) = self.value(v).tensor() {
                let n = t.element_count().unwrap_or(0);
                count = count.saturating_add(n);
                let size = t.elem_type().raw_len(n).unwrap_or_else(|| t.stored_bytes());
                bytes = bytes.saturating_add(size);
            }
        }
        (count, bytes)
    }
}

fn visit_attr_tensors<'a>(value: &'a AttrValue, f: &mut dyn FnMut(&'a Tensor)) {
    match value {
        AttrValue::Tensor(t) => f(t),
        AttrValue::Tensors(ts) => ts.iter().for_each(&mut *f),
        AttrValue::SparseTensor(s) => s.values.iter().chain(&s.indices).for_each(&mut *f),
        AttrValue::SparseTensors(ss) => {
            ss.iter().flat_map(|s| s.values.iter().chain(&s.indices)).for_each(&mut *f)
        }
        AttrValue::Graph(g) => g.visit_tensors(f),
        AttrValue::Graphs(gs) => gs.iter().for_each(|g| g.visit_tensors(f)),
        _ => {}
    }
}

fn visit_attr_tensors_mut(value: &mut AttrValue, f: &mut dyn FnMut(&mut Tensor)) {
    match value {
        AttrValue::Tensor(t) => f(t),
        AttrValue::Tensors(ts) => ts.iter_mut().for_each(&mut *f),
        AttrValue::SparseTensor(s) => s.values.iter_mut().chain(&mut s.indices).for_each(&mut *f),
        AttrValue::SparseTensors(ss) => {
            ss.iter_mut().flat_map(|s| s.values.iter_mut().chain(&mut s.indices)).for_each(&mut *f)
        }
        AttrValue::Graph(g) => g.visit_tensors_mut(f),
        AttrValue::Graphs(gs) => gs.iter_mut().for_each(|g| g.visit_tensors_mut(f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn def_use_chains_follow_edits() {
        let mut g = Graph::new();
        let x = g.value_named("x");
        let y = g.value_named("y");
        let z = g.value_named("z");
        g.inputs.push(x);
        // Added out of program order: the reader first.
        let b = g.add_op(Op::new("Relu", None), vec![Some(y)], vec![Some(z)]);
        let a = g.add_op(Op::new("Relu", None), vec![Some(x)], vec![Some(y)]);
        assert_eq!(g.value(y).producer(), Some(a));
        assert_eq!(g.value(y).uses(), &[(b, 0)]);
        assert_eq!(g.petgraph().edge_count(), 1);
        assert_eq!(g.topo_order().unwrap(), vec![a, b]);
        g.set_input(b, 0, Some(x));
        assert_eq!(g.petgraph().edge_count(), 0);
        assert!(g.value(y).uses().is_empty());
        g.remove_op(a);
        assert_eq!(g.value(y).producer(), None);
        assert_eq!(g.op_count(), 1);
    }

    #[test]
    fn cycles_are_found() {
        let mut g = Graph::new();
        let a = g.value_named("a");
        let b = g.value_named("b");
        let p = g.add_op(Op::new("Relu", None), vec![Some(a)], vec![Some(b)]);
        let q = g.add_op(Op::new("Relu", None), vec![Some(b)], vec![Some(a)]);
        let mut cycle = g.topo_order().unwrap_err();
        cycle.sort();
        assert_eq!(cycle, vec![p, q]);
    }
}
