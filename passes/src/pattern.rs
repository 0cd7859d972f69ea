//! Matching written-out subgraphs: what the fusions that recognise a formula spelled as many
//! small ops (`fuse-normalization`, `fuse-activations`) read the graph with.
//!
//! - [`Pat::producer`]: the default-domain op of a kind that writes a value as its only output;
//! - [`Pat::scalar`]: a float constant holding one element, whose rank does not grow its reader;
//! - [`Pat::product`]: a tree of `Mul`, `Div` by a constant and `Pow` by 2 or 3, read as a
//!   constant factor times a list of factors (`0.5 * x * p`, `x * x * x`), whatever the order
//!   and association in which the model writes it;
//! - [`Pat::closed`]: whether a matched set of ops can be replaced by one op: every value it
//!   computes other than its result is read only inside the set (not by another op, a graph
//!   output or a body).
//!
//! Constants are read through [`crate::rewrite::float_const`] (initializers and `Constant` ops).

use std::collections::HashSet;

use qc_ir::dims;
use qc_ir::{ElemType, Graph, Model, Op, OpId, OpKind, ValueId};

use crate::rewrite::{Readers, elem_in, float_const, input, is_onnx, sole_output};

/// A model's main graph, ready to be matched against.
pub(crate) struct Pat<'a> {
    pub model: &'a Model,
    pub g: &'a Graph,
    readers: Readers,
}

/// A product read from a tree of ops: `k * leaves[0] * leaves[1] * ...`.
#[derive(Debug)]
pub(crate) struct Product {
    pub k: f64,
    pub leaves: Vec<ValueId>,
    /// The ops of the tree, its root first.
    pub ops: Vec<OpId>,
}

impl<'a> Pat<'a> {
    pub(crate) fn new(model: &'a Model) -> Pat<'a> {
        Pat { model, g: &model.graph, readers: Readers::new(&model.graph) }
    }

    /// The op of `kind` in the default domain that writes `v` as its only output.
    pub(crate) fn producer(&self, v: ValueId, kind: OpKind) -> Option<(OpId, &'a Op)> {
        let g: &'a Graph = self.g;
        let id = g.value(v).producer()?;
        let op = g.op(id);
        (op.kind() == kind && is_onnx(op) && sole_output(op) == Some(v)).then_some((id, op))
    }

    /// The one op input that reads `v`, when nothing else does (see [`Readers::sole_reader`]).
    pub(crate) fn sole_reader(&self, v: ValueId) -> Option<(OpId, usize)> {
        self.readers.sole_reader(self.g, v)
    }

    /// The value of a float constant that holds exactly one element and has rank at most
    /// `max_rank` (so that as an operand it does not add dims to the result).
    pub(crate) fn scalar(&self, v: ValueId, max_rank: usize) -> Option<f64> {
        let (_, d, vals) = float_const(self.model, Some(v))?;
        (vals.len() == 1 && d.len() <= max_rank).then(|| vals[0])
    }

    /// The float element type of `v` (f32, f64, f16 or bf16), when known.
    pub(crate) fn float_elem(&self, v: ValueId) -> Option<ElemType> {
        elem_in(self.g, v)
            .filter(|e| matches!(e, ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16))
    }

    /// The rank of `v`, when known.
    pub(crate) fn rank(&self, v: ValueId) -> Option<usize> {
        dims::rank(self.g, v)
    }

    /// `v` read as a product: `Mul` of any operands, `Div` by a scalar constant and `Pow` by a
    /// scalar 2 or 3 are opened (the root always, an inner op only when nothing outside reads its
    /// output); scalar constants of rank at most `max_rank` multiply into `k`; every other value
    /// is a leaf. At most 16 ops are opened.
    pub(crate) fn product(&self, v: ValueId, max_rank: usize) -> Product {
        let mut p = Product { k: 1.0, leaves: Vec::new(), ops: Vec::new() };
        let mut stack = vec![(v, true)];
        while let Some((u, root)) = stack.pop() {
            if !root && let Some(c) = self.scalar(u, max_rank) {
                p.k *= c;
                continue;
            }
            let open = (root || self.sole_reader(u).is_some()) && p.ops.len() < 16;
            let id = self.g.value(u).producer().filter(|_| open);
            let op = id.map(|id| self.g.op(id)).filter(|op| is_onnx(op) && sole_output(op) == Some(u));
            let (Some(id), Some(op)) = (id, op) else {
                p.leaves.push(u);
                continue;
            };
            let (Some(a), Some(b)) = (input(op, 0), input(op, 1)) else {
                p.leaves.push(u);
                continue;
            };
            match op.kind() {
                OpKind::Mul if op.inputs().len() == 2 => {
                    p.ops.push(id);
                    stack.push((b, false));
                    stack.push((a, false));
                }
                OpKind::Div if op.inputs().len() == 2 => match self.scalar(b, max_rank) {
                    Some(c) if c != 0.0 => {
                        p.ops.push(id);
                        p.k /= c;
                        stack.push((a, false));
                    }
                    _ => p.leaves.push(u),
                },
                OpKind::Pow if op.inputs().len() == 2 => match self.scalar(b, max_rank) {
                    Some(n) if n == 2.0 || n == 3.0 => {
                        p.ops.push(id);
                        for _ in 0..n as usize {
                            stack.push((a, false));
                        }
                    }
                    _ => p.leaves.push(u),
                },
                _ => p.leaves.push(u),
            }
        }
        p
    }

    /// Whether `ops` can give way to one op writing `result`: every other value they write is
    /// read only by ops of the set, is not a graph output and is not read by a body.
    pub(crate) fn closed(&self, ops: &[OpId], result: ValueId) -> bool {
        let set: HashSet<OpId> = ops.iter().copied().collect();
        ops.iter().all(|&id| {
            self.g.op(id).outputs().iter().flatten().filter(|&&o| o != result).all(|&o| {
                !self.g.outputs.contains(&o)
                    && !self.readers.captured(self.g, o)
                    && self.g.value(o).uses().iter().all(|(r, _)| set.contains(r))
            })
        })
    }
}

/// Whether the constant `a` is `b` up to a relative `1e-6`: `b` rounded to f32 passes, a
/// truncated decimal (`1.4142`) does not.
pub(crate) fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1e-30)
}
