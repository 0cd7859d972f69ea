//! `to-channels-last`: QONNX's channels-last conversion (`qonnx-to-channels-last`). NCHW `Conv`,
//! `MaxPool` and `BatchNormalization` become qonnx's wrappers of domain
//! `qonnx.custom_op.channels_last` on data stored `N, spatial..., C`; the element-wise and shape
//! ops around them follow into that layout, and the Transposes that remain sit at the edges of
//! the channels-last region (the graph's inputs and outputs, and ops that only have a
//! channels-first form), where those that meet cancel.
//!
//! What it does. Every value is known as `T(s, q)`: the transpose by `q` of a value `s` that the
//! new graph computes. The ops are then decided and written in program order:
//! - **wrapped**: a default-domain Conv, MaxPool or BatchNormalization whose data is 3-D or 4-D
//!   reads its input 0 channels-last, and a Conv its weight too (`O, kH, kW, I/group`, as qonnx
//!   stores it); a Conv's bias and a BatchNormalization's per-channel inputs are read as they are
//!   (qonnx issue #32 was a Conv with a bias). Missing attributes that qonnx's wrappers require
//!   (`kernel_shape`, `strides`, `dilations`, `pads`, `group`; `epsilon`, `momentum`) are written
//!   with the standard op's defaults. The output is channels-last.
//! - **moved**: an element-wise op (the unary activations, the broadcasting binary and n-ary ops,
//!   Clip, Where, PRelu, Cast, Dropout, and QONNX's Quant, IntQuant, BipolarQuant, Trunc and
//!   FloatQuant), QuantizeLinear/DequantizeLinear (the per-axis `axis` moved), Concat (`axis`
//!   moved), Split (`axis` moved), Resize (`roi`, `scales`, `sizes` or `axes` permuted), Pad
//!   (`pads` permuted), Softmax/LogSoftmax/Hardmax of opset 13 and later (`axis` moved), the
//!   reductions (`axes`, attribute or constant input, moved; one that drops dims gives its kept
//!   dims in their stored order, which for the spatial dims of `N, C, H, W` is plain `N, C`), or
//!   GlobalAveragePool/GlobalMaxPool (written as ReduceMean/ReduceMax over the spatial axes), on
//!   3-D or 4-D data, runs
//!   channels-last when one of its data inputs is channels-last (forwards), or when every reader
//!   of its outputs reads them channels-last (backwards: this moves the transposes of weights
//!   into their constants and the one of a graph input to the input). Constant operands are
//!   transposed in place of a Transpose (a lower-rank one is first given the leading 1s that
//!   broadcasting gives it); an operand of lower rank that is not constant keeps the op
//!   channels-first unless all its dims are 1. Branches (residual Adds, Concats, forks) need no
//!   special case: each reader asks for the layout it needs and shares one transpose per value
//!   and layout (qonnx issue #100).
//! - **Transpose** ops are not written where they stand: a Transpose of `T(s, q)` is
//!   `T(s, q∘p)`, so a Transpose that undoes the layout change costs nothing.
//! - every other op reads channels-first values, each made by one Transpose from its
//!   channels-last form, written before its first reader.
//!
//! A graph output keeps its name and layout (a final Transpose writes it when needed); graph
//! inputs keep theirs, with one Transpose after each that is read channels-last. The domain
//! `qonnx.custom_op.channels_last` is imported at the default domain's opset, as qonnx does.
//! New values get no declaration: run `infer-shapes` after (qc convert does).
//!
//! Preconditions: the main graph's ranks are known (`infer-shapes`) where a Conv, MaxPool or
//! BatchNormalization reads them. The pass fails, naming the node, when such an op cannot be
//! wrapped: its data is not 3-D or 4-D (a BatchNormalization of rank 2 is left alone, as qonnx
//! does), its rank is unknown, a MaxPool's `Indices` or a BatchNormalization's training outputs
//! are read, or it sits inside an If/Loop/Scan body ([`unconvertible`] lists them all). Nothing
//! is half-converted.
//!
//! Postconditions: the model computes the same outputs (the evaluator runs the wrappers as qonnx
//! does); no default-domain Conv, MaxPool or BatchNormalization of rank 3 or 4 is left in the main
//! graph.
//!
//! Statistics: `wrapped` (Conv, MaxPool, BatchNormalization), `moved` (ops that now run
//! channels-last), `constants-transposed`, `transposes-before`, `transposes-after`.

use std::collections::{HashMap, HashSet};

use qc_ir::op::CHANNELS_LAST_DOMAIN;
use qc_ir::{AttrValue, Const, Graph, Model, Op, OpId, OpKind, OpsetImport, ValueId, dims};

use crate::eval::Array;
use crate::eval::channels_last::{to_first_perm, to_last_perm};
use crate::eval::shape_ops::transpose;
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::quant::const_array;
use crate::registry::PassInfo;
use crate::rewrite::{NewOp, captured_names, drop_unused, is_onnx, stable_order, subgraphs};

pub const INFO: PassInfo = PassInfo {
    name: "to-channels-last",
    summary: "QONNX's channels-last conversion: Conv, MaxPool, BatchNormalization and the ops around them on NHWC data",
    options: &[],
    build: |_| Ok(Box::new(ToChannelsLast)),
};

/// The `to-channels-last` pass.
pub struct ToChannelsLast;

/// An op that the conversion cannot put into channels-last form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("node `{node}` ({op_type}) cannot be converted to channels-last: {reason}")]
#[diagnostic(code(qc::convert::channels_last_unsupported), help("{help}"))]
pub struct Unconvertible {
    pub node: String,
    pub op_type: String,
    pub reason: String,
    pub help: String,
}

impl Pass for ToChannelsLast {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let problems = unconvertible(model);
        if let Some(first) = problems.first() {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more node(s))", n - 1),
            };
            return Err(PassError::Failed {
                pass: INFO.name,
                message: format!("{first}{more}"),
                help: first.help.clone(),
            });
        }
        let transposes = |g: &Graph| g.ops().filter(|(_, op)| is_transpose(op)).count() as u64;
        let before = transposes(&model.graph);
        let stats = convert(model)?;
        cx.count("wrapped", stats.wrapped);
        cx.count("moved", stats.moved);
        cx.count("constants-transposed", stats.constants);
        cx.count("transposes-before", before);
        cx.count("transposes-after", if stats.wrapped > 0 { transposes(&model.graph) } else { before });
        Ok(Changed::from_bool(stats.wrapped > 0))
    }
}

fn is_transpose(op: &Op) -> bool {
    op.kind() == OpKind::Transpose && is_onnx(op)
}

/// Whether `op` is one of the ops qonnx wraps (a default-domain Conv, MaxPool or
/// BatchNormalization), and how many of its inputs are in the data layout.
fn wrapped_inputs(op: &Op) -> Option<usize> {
    if !is_onnx(op) {
        return None;
    }
    match op.kind() {
        OpKind::Conv => Some(2),
        OpKind::MaxPool | OpKind::BatchNormalization => Some(1),
        _ => None,
    }
}

const RANK_HELP: &str = "qonnx's channels-last wrappers take 3-D and 4-D data (N, C, W or N, C, H, W); \
                         this op has no channels-last form and nothing was converted";

/// The rank of the data a wrapped op reads (`None`: the op is not converted, a 2-D
/// BatchNormalization), or why it cannot be wrapped.
fn wrap_rank(g: &Graph, op: &Op, label: &str) -> Result<Option<usize>, Unconvertible> {
    let Some(moved) = wrapped_inputs(op) else { return Ok(None) };
    let fail = |reason: String, help: &str| Unconvertible {
        node: label.to_string(),
        op_type: op.op_type().to_string(),
        reason,
        help: help.to_string(),
    };
    let rank_of = |slot: usize| -> Result<usize, Unconvertible> {
        let v = op.inputs().get(slot).copied().flatten().ok_or_else(|| {
            fail(
                format!("its input {slot} is missing"),
                "the op is malformed; check the model with onnx.checker",
            )
        })?;
        dims::rank(g, v).ok_or_else(|| {
            fail(
                format!("the rank of its input {slot} (`{}`) is not known", g.value(v).name),
                "declare the graph inputs' shapes (--overwrite-input-shape) so that infer-shapes can type it",
            )
        })
    };
    let r = rank_of(0)?;
    if op.kind() == OpKind::BatchNormalization && r <= 2 {
        return Ok(None);
    }
    if r != 3 && r != 4 {
        return Err(fail(format!("its data is {r}-D"), RANK_HELP));
    }
    for slot in 1..moved {
        let k = rank_of(slot)?;
        if k != r {
            return Err(fail(format!("its weight is {k}-D and its data {r}-D"), RANK_HELP));
        }
    }
    for (i, o) in op.outputs().iter().enumerate().skip(1) {
        if let Some(o) = *o
            && (!g.value(o).uses().is_empty() || g.outputs.contains(&o))
        {
            return Err(fail(
                format!(
                    "its output {i} (`{}`) is read, and qonnx's wrappers have one output",
                    g.value(o).name
                ),
                "a MaxPool's Indices index the channels-first tensor and a BatchNormalization's running \
                 statistics are training outputs; neither has a channels-last form",
            ));
        }
    }
    Ok(Some(r))
}

/// Every op of `model` that keeps the conversion from running, with why: Conv, MaxPool and
/// BatchNormalization ops of the main graph that cannot be wrapped, and any inside a body.
pub fn unconvertible(model: &Model) -> Vec<Unconvertible> {
    let g = &model.graph;
    let mut out = Vec::new();
    for (id, op) in g.ops() {
        if let Err(e) = wrap_rank(g, op, &g.op_label(id)) {
            out.push(e);
        }
        for sub in subgraphs(op) {
            in_bodies(sub, &g.op_label(id), &mut out);
        }
    }
    out
}

fn in_bodies(g: &Graph, owner: &str, out: &mut Vec<Unconvertible>) {
    for (id, op) in g.ops() {
        if wrapped_inputs(op).is_some() {
            out.push(Unconvertible {
                node: g.op_label(id),
                op_type: op.op_type().to_string(),
                reason: format!("it is inside the body of `{owner}`, and only the main graph is converted"),
                help: "move the op out of the If/Loop/Scan body, or keep the model channels-first".into(),
            });
        }
        for sub in subgraphs(op) {
            in_bodies(sub, owner, out);
        }
    }
}

/// The ops that may follow their inputs into channels-last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Elementwise,
    QuantLinear,
    Concat,
    Resize,
    Pad,
    Softmax,
    /// Split along a moved `axis`.
    Split,
    /// A reduction that keeps its dims (`keepdims = 1`), its `axes` moved.
    Reduce,
    /// GlobalAveragePool or GlobalMaxPool, written as ReduceMean or ReduceMax over the spatial
    /// axes of the channels-last data (no channels-last form of their own).
    GlobalPool,
}

/// The reductions that may run channels-last when they keep their dims.
const REDUCE: &[&str] = &[
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
];

/// Default-domain element-wise ops: every output element depends on the same element of each
/// (broadcast) input.
const ELEMENTWISE: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "Cast",
    "Ceil",
    "Celu",
    "Clip",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Floor",
    "Gelu",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "IsInf",
    "IsNaN",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "Max",
    "Mean",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pow",
    "PRelu",
    "Reciprocal",
    "Relu",
    "Round",
    "Selu",
    "Sigmoid",
    "Sign",
    "Softplus",
    "Softsign",
    "Sqrt",
    "Sub",
    "Sum",
    "Tanh",
    "ThresholdedRelu",
    "Where",
    "Xor",
];

/// How a candidate op runs channels-last: its class, its data rank and the input slots in the
/// data layout.
#[derive(Clone, Debug)]
struct Candidate {
    class: Class,
    rank: usize,
    data: Vec<usize>,
    /// A reduction that drops dims: the layout of its output (the kept dims stay in their
    /// stored order), in place of channels-last.
    kept: Option<Vec<usize>>,
}

/// The rank of `v` when it is a constant (an initializer or a `Constant` op's output), without
/// reading its data.
fn const_rank(model: &Model, v: ValueId) -> Option<usize> {
    let g = &model.graph;
    let val = g.value(v);
    if let Some(t) = val.tensor() {
        return Some(t.dims.len());
    }
    let p = val.producer()?;
    if g.op(p).kind() != OpKind::Constant {
        return None;
    }
    dims::rank(g, v).or_else(|| const_array(model, v).map(|a| a.rank()))
}

fn all_ones(g: &Graph, v: ValueId) -> bool {
    dims::partial(g, v).is_some_and(|d| d.iter().all(|&x| x == Some(1)))
}

/// Whether `op` can run channels-last, and how.
fn candidate(model: &Model, op: &Op) -> Option<Candidate> {
    let g = &model.graph;
    let opset = model.onnx_opset();
    let onnx = is_onnx(op);
    let class = match op.kind() {
        OpKind::Quant | OpKind::IntQuant | OpKind::BipolarQuant | OpKind::Trunc | OpKind::FloatQuant => {
            Class::Elementwise
        }
        _ if !onnx => return None,
        OpKind::QuantizeLinear | OpKind::DequantizeLinear => Class::QuantLinear,
        OpKind::Concat => Class::Concat,
        OpKind::Resize if opset >= 10 => Class::Resize,
        OpKind::Pad => Class::Pad,
        OpKind::Softmax | OpKind::LogSoftmax | OpKind::Hardmax if opset >= 13 => Class::Softmax,
        _ if ELEMENTWISE.contains(&op.op_type()) => Class::Elementwise,
        _ if op.op_type() == "Split" => Class::Split,
        _ if REDUCE.contains(&op.op_type()) => Class::Reduce,
        _ if matches!(op.op_type(), "GlobalAveragePool" | "GlobalMaxPool") => Class::GlobalPool,
        _ => return None,
    };
    let x = op.inputs().first().copied().flatten()?;
    let mut outs = op.outputs().iter().flatten();
    let first = *outs.next()?;
    let dropping = class == Class::Reduce && op.attr_int("keepdims", 1).ok()? == 0;
    let rank = if dropping { dims::rank(g, x)? } else { dims::rank(g, first)? };
    if !(rank == 3 || rank == 4) || !outs.all(|&o| dims::rank(g, o) == Some(rank)) {
        return None;
    }
    let mut kept = None;
    if dropping {
        // The reduced axes, known and non-empty; the output keeps the others in the order they
        // are stored channels-last, which is its layout.
        let axes: Vec<i64> = match op.inputs().get(1).copied().flatten() {
            Some(a) => const_array(model, a)?.to_i64s().ok()?,
            None => op.attr_ints("axes").ok()??.to_vec(),
        };
        let norm: Vec<usize> = axes
            .iter()
            .map(|&a| usize::try_from(if a < 0 { a + rank as i64 } else { a }).ok())
            .collect::<Option<_>>()?;
        if norm.is_empty() || norm.iter().any(|&a| a >= rank) {
            return None;
        }
        let stored: Vec<usize> = to_last_perm(rank).into_iter().filter(|d| !norm.contains(d)).collect();
        let layout: Vec<usize> = (0..rank)
            .filter(|d| !norm.contains(d))
            .map(|d| stored.iter().position(|&x| x == d))
            .collect::<Option<_>>()?;
        if dims::rank(g, first) != Some(layout.len()) {
            return None;
        }
        kept = Some(layout);
    }
    let is_const = |v: ValueId| const_rank(model, v).is_some();
    let rank_is = |v: ValueId| dims::rank(g, v) == Some(rank);
    let mut data = vec![0];
    match class {
        Class::Elementwise => {
            data.clear();
            for (slot, v) in op.inputs().iter().enumerate() {
                let Some(v) = *v else { continue };
                if let Some(k) = const_rank(model, v) {
                    if k > rank {
                        return None;
                    }
                    data.push(slot);
                } else if rank_is(v) {
                    data.push(slot);
                } else if !all_ones(g, v) {
                    return None;
                }
            }
            if data.is_empty() {
                return None;
            }
        }
        Class::QuantLinear => {
            if !rank_is(x) || op.attr_int("block_size", 0).ok()? != 0 {
                return None;
            }
            for v in op.inputs().iter().skip(1).flatten() {
                if dims::rank(g, *v).is_none_or(|k| k > 1) {
                    return None;
                }
            }
        }
        Class::Concat => {
            data = (0..op.inputs().len()).collect();
            if !op.inputs().iter().all(|v| v.is_some_and(rank_is)) {
                return None;
            }
        }
        Class::Resize => {
            if !rank_is(x) {
                return None;
            }
            for v in op.inputs().iter().skip(1).flatten() {
                if !is_const(*v) {
                    return None;
                }
            }
        }
        Class::Pad => {
            if !rank_is(x) || op.inputs().get(3).copied().flatten().is_some() {
                return None;
            }
            if opset >= 11 {
                let pads = op.inputs().get(1).copied().flatten()?;
                if const_array(model, pads)?.len() != 2 * rank {
                    return None;
                }
            } else if op.attr_ints("pads").ok()??.len() != 2 * rank {
                return None;
            }
        }
        Class::Softmax | Class::Split | Class::GlobalPool => {
            if !rank_is(x) {
                return None;
            }
        }
        Class::Reduce => {
            if !rank_is(x) {
                return None;
            }
            if let Some(axes) = op.inputs().get(1).copied().flatten()
                && !is_const(axes)
            {
                return None;
            }
        }
    }
    Some(Candidate { class, rank, data, kept })
}

/// What each op of the main graph becomes.
#[derive(Clone, Debug)]
enum Mode {
    Plain,
    /// A qonnx wrapper on data of this rank.
    Wrap(usize),
    /// Runs channels-last.
    Moved(Candidate),
    /// A Transpose with this permutation, folded into the layout of its output.
    Lazy(Vec<usize>),
}

/// The permutation of a Transpose reading a value of rank `r`, if well formed.
fn perm_of(op: &Op, r: Option<usize>) -> Option<Vec<usize>> {
    let p: Vec<usize> = match op.attr_ints("perm").ok()? {
        Some(p) => p.iter().map(|&i| usize::try_from(i).ok()).collect::<Option<_>>()?,
        None => (0..r?).rev().collect(),
    };
    let mut seen = vec![false; p.len()];
    for &i in &p {
        if i >= p.len() || std::mem::replace(&mut seen[i], true) {
            return None;
        }
    }
    (r.is_none_or(|r| r == p.len())).then_some(p)
}

/// Decides the mode of every op: the wrapped ops, then the candidates that follow them forwards
/// or backwards, until nothing changes.
fn plan(model: &Model, order: &[OpId], captured: &HashSet<String>) -> HashMap<OpId, Mode> {
    let g = &model.graph;
    let mut modes: HashMap<OpId, Mode> = HashMap::new();
    let mut candidates: Vec<(OpId, Candidate)> = Vec::new();
    for &id in order {
        let op = g.op(id);
        let mode = if let Ok(Some(r)) = wrap_rank(g, op, "") {
            Mode::Wrap(r)
        } else if is_transpose(op)
            && let Some(x) = op.inputs().first().copied().flatten()
            && let Some(p) = perm_of(op, dims::rank(g, x))
        {
            Mode::Lazy(p)
        } else {
            if let Some(c) = candidate(model, op) {
                candidates.push((id, c));
            }
            Mode::Plain
        };
        modes.insert(id, mode);
    }
    let last = |modes: &HashMap<OpId, Mode>, v: ValueId| {
        g.value(v).producer().is_some_and(|p| match modes.get(&p) {
            Some(Mode::Wrap(_)) => true,
            Some(Mode::Moved(c)) => c.kept.is_none(),
            _ => false,
        })
    };
    let wants_last = |modes: &HashMap<OpId, Mode>, reader: OpId, slot: usize| match modes.get(&reader) {
        Some(Mode::Wrap(_)) => slot < wrapped_inputs(g.op(reader)).unwrap_or(0),
        Some(Mode::Moved(c)) => c.data.contains(&slot),
        _ => false,
    };
    for _ in 0..=candidates.len() {
        let mut changed = false;
        for (id, c) in &candidates {
            if !matches!(modes.get(id), Some(Mode::Plain)) {
                continue;
            }
            let op = g.op(*id);
            let data: Vec<ValueId> =
                c.data.iter().filter_map(|&s| op.inputs().get(s).copied().flatten()).collect();
            let forwards = data.iter().any(|&v| last(&modes, v));
            let backwards = || {
                let dynamic_first =
                    data.iter().filter(|&&v| !last(&modes, v) && const_rank(model, v).is_none()).count();
                dynamic_first <= 1
                    && op.outputs().iter().flatten().all(|&o| {
                        let val = g.value(o);
                        !g.outputs.contains(&o)
                            && !captured.contains(&val.name)
                            && !val.uses().is_empty()
                            && val.uses().iter().all(|&(r, s)| wants_last(&modes, r, s as usize))
                    })
            };
            if forwards || backwards() {
                modes.insert(*id, Mode::Moved(c.clone()));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    modes
}

#[derive(Default)]
struct Stats {
    wrapped: u64,
    moved: u64,
    constants: u64,
}

fn identity(n: usize) -> Vec<usize> {
    (0..n).collect()
}

fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &j)| i == j)
}

/// A value named `base`, or `base_1`, ...: a name no value of `g` has.
fn fresh(g: &mut Graph, base: &str) -> ValueId {
    let mut name = base.to_string();
    let mut k = 0;
    while g.find(&name).is_some() {
        k += 1;
        name = format!("{base}_{k}");
    }
    g.add_value(&name)
}

fn failed(message: String) -> PassError {
    PassError::Failed {
        pass: INFO.name,
        message,
        help: "this is a bug in qc's channels-last conversion; please report it with the model".into(),
    }
}

/// Writes the new graph's ops in order, keeping every value's layout.
struct Emitter<'m> {
    model: &'m mut Model,
    /// `v -> (s, q)`: the original value `v` is `T(s, q)`. Absent: `v` itself.
    state: HashMap<ValueId, (ValueId, Vec<usize>)>,
    /// `(s, q) -> t`: `t` holds `T(s, q)`.
    made: HashMap<(ValueId, Vec<usize>), ValueId>,
    /// Constants given the layout of rank `r`: `(v, r) -> constant`.
    consts: HashMap<(ValueId, usize), ValueId>,
    /// Names of the Transpose ops that were folded, for the one that writes their output again.
    lazy_names: HashMap<ValueId, Option<String>>,
    /// Values this pass created (no declaration, no graph role).
    created: HashSet<ValueId>,
    /// Inputs given to original ops in place of their own: `(op, slot) -> value` (the weights
    /// a Flatten absorbed).
    overrides: HashMap<(OpId, usize), ValueId>,
    seq: Vec<NewOp>,
    stats: Stats,
}

impl Emitter<'_> {
    fn g(&mut self) -> &mut Graph {
        &mut self.model.graph
    }

    fn new_value(&mut self, base: &str) -> ValueId {
        let v = fresh(self.g(), base);
        self.created.insert(v);
        v
    }

    fn new_const(&mut self, base: &str, a: &Array) -> ValueId {
        let v = self.new_value(base);
        let g = self.g();
        let name = g.value(v).name.clone();
        g.value_mut(v).init = Some(Const::Dense(Box::new(a.to_tensor(&name))));
        g.initializers.push(v);
        self.stats.constants += 1;
        v
    }

    /// `T(v, r)` as a value of the new graph: a value that holds it already, a transposed
    /// constant, or a new Transpose.
    fn get(&mut self, v: ValueId, r: &[usize]) -> Result<ValueId, PassError> {
        let (s, q) = self.state.get(&v).cloned().unwrap_or_else(|| (v, identity(r.len())));
        if q.len() != r.len() {
            return Err(failed(format!(
                "value `{}` has a layout of rank {} and is read at rank {}",
                self.model.graph.value(v).name,
                q.len(),
                r.len()
            )));
        }
        let comp: Vec<usize> = r.iter().map(|&i| q[i]).collect();
        if is_identity(&comp) {
            return Ok(s);
        }
        if let Some(&t) = self.made.get(&(s, comp.clone())) {
            return Ok(t);
        }
        let plain = is_identity(r);
        let base = self.model.graph.value(v).name.clone();
        if !plain && let Some(a) = const_array(self.model, s) {
            let t = transpose(&a, &comp).map_err(|e| failed(e.to_string()))?;
            let c = self.new_const(&format!("{base}_chlast"), &t);
            self.made.insert((s, comp), c);
            return Ok(c);
        }
        if !plain && let Some(filled) = self.filled(s, &comp, &base)? {
            self.made.insert((s, comp), filled);
            return Ok(filled);
        }
        let (out, name) = if plain {
            (v, self.lazy_names.get(&v).cloned().flatten())
        } else {
            (self.new_value(&format!("{base}_chlast")), None)
        };
        let mut op = Op::new("Transpose", None)
            .with_attr("perm", AttrValue::Ints(comp.iter().map(|&i| i as i64).collect()));
        op.name = name;
        self.seq.push((op, vec![Some(s)], vec![Some(out)]));
        self.made.insert((s, comp), out);
        Ok(out)
    }

    /// `T(s, perm)` as a new ConstantOfShape when `s` is one of a constant shape (the weights of
    /// the light model zoo are): the same fill over the permuted shape, in place of a Transpose.
    fn filled(&mut self, s: ValueId, perm: &[usize], base: &str) -> Result<Option<ValueId>, PassError> {
        let g = &self.model.graph;
        let Some(p) = g.value(s).producer() else { return Ok(None) };
        let op = g.op(p);
        if op.kind() != OpKind::ConstantOfShape || !is_onnx(op) {
            return Ok(None);
        }
        let Some(shape) = op.inputs().first().copied().flatten() else { return Ok(None) };
        let Some(a) = const_array(self.model, shape) else { return Ok(None) };
        let Ok(dims) = a.to_i64s() else { return Ok(None) };
        if dims.len() != perm.len() {
            return Ok(None);
        }
        let mut fill = op.clone();
        fill.name = op.name.as_ref().map(|n| format!("{n}_chlast"));
        let permuted: Vec<i64> = perm.iter().map(|&i| dims[i]).collect();
        let t = Array::from_i64(vec![permuted.len()], permuted).map_err(|e| failed(e.to_string()))?;
        let shape_name = self.model.graph.value(shape).name.clone();
        let c = self.new_const(&format!("{shape_name}_chlast"), &t);
        let out = self.new_value(&format!("{base}_chlast"));
        self.seq.push((fill, vec![Some(c)], vec![Some(out)]));
        Ok(Some(out))
    }

    /// `v` in its own layout.
    fn plain(&mut self, v: ValueId) -> Result<ValueId, PassError> {
        match self.state.get(&v) {
            None => Ok(v),
            Some((_, q)) => {
                let n = q.len();
                self.get(v, &identity(n))
            }
        }
    }

    /// Operand `v` of an op running channels-last at rank `r`: constants transposed (after the
    /// leading 1s broadcasting gives a lower rank), other values through [`Emitter::get`].
    fn operand(&mut self, v: ValueId, r: usize) -> Result<ValueId, PassError> {
        if !self.state.contains_key(&v)
            && let Some(a) = const_array(self.model, v)
        {
            if a.dims.iter().all(|&d| d == 1) {
                return Ok(v);
            }
            if let Some(&c) = self.consts.get(&(v, r)) {
                return Ok(c);
            }
            let mut d = vec![1; r.saturating_sub(a.rank())];
            d.extend_from_slice(&a.dims);
            let t = a
                .reshaped(d)
                .and_then(|a| transpose(&a, &to_last_perm(r)))
                .map_err(|e| failed(e.to_string()))?;
            let base = self.model.graph.value(v).name.clone();
            let c = self.new_const(&format!("{base}_chlast"), &t);
            self.consts.insert((v, r), c);
            return Ok(c);
        }
        if dims::rank(&self.model.graph, v) != Some(r) && !self.state.contains_key(&v) {
            // A lower-rank operand of all-1 dims: broadcasting reads it the same way.
            return Ok(v);
        }
        self.get(v, &to_last_perm(r))
    }

    /// A constant list permuted for rank `r`: `new[i] = old[L[i]]` over each of its `len / r`
    /// blocks (Resize's `scales`/`sizes` have one, `roi` and Pad's `pads` two).
    fn permuted_list(&mut self, v: ValueId, r: usize) -> Result<ValueId, PassError> {
        let a = const_array(self.model, v)
            .ok_or_else(|| failed("a Resize or Pad operand is not constant".into()))?;
        if a.is_empty() {
            return Ok(v);
        }
        let l = to_last_perm(r);
        if a.len() % r != 0 || a.rank() != 1 {
            return Err(failed(format!(
                "list `{}` has {} elements for rank {r}",
                self.model.graph.value(v).name,
                a.len()
            )));
        }
        let idx: Vec<usize> = (0..a.len()).map(|i| (i / r) * r + l[i % r]).collect();
        let t = a.gather_flat(a.dims.clone(), &idx).map_err(|e| failed(e.to_string()))?;
        if t == a {
            return Ok(v);
        }
        let base = self.model.graph.value(v).name.clone();
        Ok(self.new_const(&format!("{base}_chlast"), &t))
    }

    /// A reduction's constant `axes` input moved to their channels-last places.
    fn moved_axes(&mut self, v: ValueId, r: usize) -> Result<ValueId, PassError> {
        let name = self.model.graph.value(v).name.clone();
        let a =
            const_array(self.model, v).ok_or_else(|| failed(format!("axes `{name}` are not constant")))?;
        let axes = a.to_i64s().map_err(|e| failed(e.to_string()))?;
        let moved = axes
            .iter()
            .map(|&x| moved_axis(x, r))
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| failed(format!("axes `{name}` are out of range for rank {r}")))?;
        if moved == axes {
            return Ok(v);
        }
        let t = Array::from_i64(a.dims.clone(), moved).map_err(|e| failed(e.to_string()))?;
        Ok(self.new_const(&format!("{name}_chlast"), &t))
    }

    /// A Flatten (axis 1) or a Reshape to `[N, -1]` of a channels-last value, read only by a
    /// Gemm (`transA = 0`) or MatMul whose weight is a 2-D constant, or the one output of a
    /// QONNX quantizer or DequantizeLinear of one whose parameters do not vary along the
    /// flattened axis: flattens the channels-last value itself and permutes the weight's rows
    /// (columns with `transB`) to match, so no Transpose is needed (qonnx's
    /// `AbsorbChanFirstIntoMatMul`). Returns whether it did.
    fn absorb(
        &mut self,
        op: &Op,
        modes: &HashMap<OpId, Mode>,
        captured: &HashSet<String>,
    ) -> Result<bool, PassError> {
        let Some(plan) = self.absorption(op, modes, captured) else { return Ok(false) };
        let Absorption { source, channels, spatial, weight, trans_b, quantizer, reader } = plan;
        let a = const_array(self.model, weight).ok_or_else(|| failed("a weight is not constant".into()))?;
        let (k, m) = if trans_b { (a.dims[1], a.dims[0]) } else { (a.dims[0], a.dims[1]) };
        if k != channels * spatial {
            return Ok(false);
        }
        // Row k_last of the channels-last flattening, (p, c), is row k_first = c * spatial + p.
        let first = |k_last: usize| (k_last % channels) * spatial + k_last / channels;
        let idx: Vec<usize> = (0..k * m)
            .map(|i| if trans_b { (i / k) * k + first(i % k) } else { first(i / m) * m + i % m })
            .collect();
        let t = a.gather_flat(a.dims.clone(), &idx).map_err(|e| failed(e.to_string()))?;
        let base = self.model.graph.value(weight).name.clone();
        let w = self.new_const(&format!("{base}_chlast"), &t);
        match quantizer {
            Some((p, b)) => {
                let emitted = self.seq.iter_mut().find(|(_, _, outs)| outs.contains(&Some(b)));
                match emitted {
                    Some((_, ins, _)) => ins[0] = Some(w),
                    None => {
                        self.overrides.insert((p, 0), w);
                    }
                }
            }
            None => {
                self.overrides.insert((reader, 1), w);
            }
        }
        let mut new_ins: Vec<Option<ValueId>> = vec![Some(source)];
        for v in op.inputs().iter().skip(1) {
            new_ins.push(v.map(|v| self.plain(v)).transpose()?);
        }
        self.seq.push((op.clone(), new_ins, op.outputs().to_vec()));
        Ok(true)
    }

    /// Whether [`Emitter::absorb`] applies to `op`, and what it needs.
    fn absorption(
        &self,
        op: &Op,
        modes: &HashMap<OpId, Mode>,
        captured: &HashSet<String>,
    ) -> Option<Absorption> {
        let model: &Model = &*self.model;
        let g = &model.graph;
        let x = op.inputs().first().copied().flatten()?;
        let (source, q) = self.state.get(&x)?;
        let r = q.len();
        if !(r == 3 || r == 4) || *q != to_first_perm(r) || !is_onnx(op) {
            return None;
        }
        let d = dims::known(g, x).ok()?;
        let spatial: u64 = d[2..].iter().product();
        let flattens = match op.kind() {
            OpKind::Flatten => op.attr_int("axis", 1).ok()? == 1,
            OpKind::Reshape => {
                let shape = const_array(model, op.inputs().get(1).copied().flatten()?)?.to_i64s().ok()?;
                op.attr_int("allowzero", 0).ok()? == 0
                    && shape.len() == 2
                    && (shape[0] == 0 || shape[0] == d[0] as i64)
                    && (shape[1] == -1 || shape[1] as u64 == d[1] * spatial)
            }
            _ => false,
        };
        let f = op.outputs().first().copied().flatten()?;
        let fv = g.value(f);
        if !flattens || g.outputs.contains(&f) || captured.contains(&fv.name) || fv.uses().len() != 1 {
            return None;
        }
        let (reader, slot) = fv.uses()[0];
        let rd = g.op(reader);
        if slot != 0 || !is_onnx(rd) || !matches!(modes.get(&reader), Some(Mode::Plain)) {
            return None;
        }
        let trans_b = match rd.kind() {
            OpKind::Gemm if rd.attr_int("transA", 0).ok()? == 0 => rd.attr_int("transB", 0).ok()? != 0,
            OpKind::MatMul => false,
            _ => return None,
        };
        let b = rd.inputs().get(1).copied().flatten()?;
        if g.outputs.contains(&b) || captured.contains(&g.value(b).name) || g.value(b).uses().len() != 1 {
            return None;
        }
        let two_d = |v: ValueId| g.value(v).tensor().is_some_and(|t| t.dims.len() == 2);
        // The axis of B the flattened dim runs along.
        let k_axis = usize::from(trans_b);
        let (weight, quantizer) = if two_d(b) {
            (b, None)
        } else {
            let p = g.value(b).producer()?;
            let qop = g.op(p);
            let quantizer = matches!(qop.kind(), OpKind::Quant | OpKind::IntQuant | OpKind::BipolarQuant)
                || (qop.kind() == OpKind::DequantizeLinear && is_onnx(qop));
            let w = qop.inputs().first().copied().flatten()?;
            if !quantizer
                || !matches!(modes.get(&p), Some(Mode::Plain))
                || !two_d(w)
                || qop.outputs().len() != 1
            {
                return None;
            }
            for v in qop.inputs().iter().skip(1).flatten() {
                let pd = dims::partial(g, *v)?;
                if qop.kind() == OpKind::DequantizeLinear {
                    let per_axis = pd.iter().copied().product::<Option<u64>>() != Some(1);
                    let axis = qop.attr_int("axis", 1).ok()?;
                    let axis = if axis < 0 { axis + 2 } else { axis };
                    if per_axis && axis == k_axis as i64 {
                        return None;
                    }
                } else {
                    // Broadcast from the right against a 2-D weight.
                    let at = (pd.len() + k_axis).checked_sub(2);
                    if pd.len() > 2 || at.is_some_and(|i| pd[i] != Some(1)) {
                        return None;
                    }
                }
            }
            (w, Some((p, b)))
        };
        Some(Absorption {
            source: *source,
            channels: usize::try_from(d[1]).ok()?,
            spatial: usize::try_from(spatial).ok()?,
            weight,
            trans_b,
            quantizer,
            reader,
        })
    }

    /// Gives `op`'s outputs new values in channels-last layout at rank `r`.
    /// New values for `op`'s outputs, stored in the layout `q`.
    fn outputs_in(&mut self, op: &Op, q: &[usize]) -> Vec<Option<ValueId>> {
        let mut outs = Vec::new();
        for o in op.outputs() {
            outs.push(o.map(|o| {
                let base = self.model.graph.value(o).name.clone();
                let n = self.new_value(&format!("{base}_chlast"));
                self.state.insert(o, (n, q.to_vec()));
                n
            }));
        }
        outs
    }

    fn last_outputs(&mut self, op: &Op, r: usize) -> Vec<Option<ValueId>> {
        let mut outs = Vec::new();
        for o in op.outputs() {
            outs.push(o.map(|o| {
                let base = self.model.graph.value(o).name.clone();
                let n = self.new_value(&format!("{base}_chlast"));
                self.state.insert(o, (n, to_first_perm(r)));
                n
            }));
        }
        outs
    }
}

/// What [`Emitter::absorb`] found.
struct Absorption {
    /// The channels-last value the Flatten reads instead.
    source: ValueId,
    channels: usize,
    spatial: usize,
    /// The 2-D constant whose rows (columns with `trans_b`) are permuted.
    weight: ValueId,
    trans_b: bool,
    /// The quantizer between the constant and the Gemm/MatMul, and its output.
    quantizer: Option<(OpId, ValueId)>,
    /// The Gemm or MatMul.
    reader: OpId,
}

/// The axis `a` of a channels-first value of rank `r`, in its channels-last storage.
fn moved_axis(a: i64, r: usize) -> Option<i64> {
    let n = if a < 0 { a + r as i64 } else { a };
    let n = usize::try_from(n).ok().filter(|&n| n < r)?;
    Some(to_first_perm(r)[n] as i64)
}

fn convert(model: &mut Model) -> Result<Stats, PassError> {
    let order = stable_order(&model.graph).ok_or_else(|| failed("the graph has a cycle".into()))?;
    let captured = captured_names(&model.graph);
    let modes = plan(model, &order, &captured);
    if !modes.values().any(|m| matches!(m, Mode::Wrap(_))) {
        return Ok(Stats::default());
    }
    let ops: Vec<(OpId, Op)> = order.iter().map(|&id| (id, model.graph.op(id).clone())).collect();
    let opset = model.onnx_opset();
    let mut e = Emitter {
        model,
        state: HashMap::new(),
        made: HashMap::new(),
        consts: HashMap::new(),
        lazy_names: HashMap::new(),
        created: HashSet::new(),
        overrides: HashMap::new(),
        seq: Vec::new(),
        stats: Stats::default(),
    };
    for (id, op) in &ops {
        let ins: Vec<Option<ValueId>> = op.inputs().to_vec();
        match &modes[id] {
            Mode::Plain => {
                if e.absorb(op, &modes, &captured)? {
                    continue;
                }
                let mut new_ins = Vec::with_capacity(ins.len());
                for (slot, v) in ins.iter().enumerate() {
                    new_ins.push(match e.overrides.get(&(*id, slot)) {
                        Some(&w) => Some(w),
                        None => v.map(|v| e.plain(v)).transpose()?,
                    });
                }
                e.seq.push((op.clone(), new_ins, op.outputs().to_vec()));
            }
            Mode::Lazy(p) => {
                let (Some(x), Some(y)) =
                    (ins.first().copied().flatten(), op.outputs().first().copied().flatten())
                else {
                    return Err(failed(format!("Transpose `{}` has no input or output", op.display_name(0))));
                };
                let (s, q) = e.state.get(&x).cloned().unwrap_or_else(|| (x, identity(p.len())));
                if q.len() != p.len() {
                    return Err(failed(format!(
                        "Transpose `{}` reads a value of another rank",
                        op.display_name(0)
                    )));
                }
                let comp: Vec<usize> = p.iter().map(|&i| q[i]).collect();
                e.state.insert(y, (s, comp));
                e.lazy_names.insert(y, op.name.clone());
            }
            Mode::Wrap(r) => {
                let moved = wrapped_inputs(op).unwrap_or(1);
                let mut new_ins = Vec::with_capacity(ins.len());
                for (slot, v) in ins.iter().enumerate() {
                    new_ins.push(match v {
                        None => None,
                        Some(v) if slot < moved => Some(e.operand(*v, *r)?),
                        Some(v) => Some(e.plain(*v)?),
                    });
                }
                let mut wrapped = op.in_domain(Some(CHANNELS_LAST_DOMAIN.to_string()));
                fill_defaults(&e.model.graph, &mut wrapped, ins.get(1).copied().flatten(), *r);
                let mut outs = e.last_outputs(op, *r);
                outs.truncate(1);
                e.seq.push((wrapped, new_ins, outs));
                e.stats.wrapped += 1;
            }
            Mode::Moved(c) => {
                let r = c.rank;
                let mut new_op = op.clone();
                let mut new_ins = Vec::with_capacity(ins.len());
                for (slot, v) in ins.iter().enumerate() {
                    let Some(v) = *v else {
                        new_ins.push(None);
                        continue;
                    };
                    let n = if c.data.contains(&slot) {
                        e.operand(v, r)?
                    } else {
                        match c.class {
                            Class::Resize
                                if opset >= 11 && (1..=3).contains(&slot) && op.attr("axes").is_none() =>
                            {
                                e.permuted_list(v, r)?
                            }
                            Class::Resize if opset < 11 && slot == 1 => e.permuted_list(v, r)?,
                            Class::Pad if slot == 1 => e.permuted_list(v, r)?,
                            Class::Reduce if slot == 1 => e.moved_axes(v, r)?,
                            _ => e.plain(v)?,
                        }
                    };
                    new_ins.push(Some(n));
                }
                if c.class == Class::GlobalPool {
                    // The spatial axes of N, spatial..., C; an attribute before opset 18.
                    let axes: Vec<i64> = (1..r as i64 - 1).collect();
                    let reduce = if op.op_type() == "GlobalAveragePool" { "ReduceMean" } else { "ReduceMax" };
                    new_op = Op::new(reduce, None).with_attr("keepdims", AttrValue::Int(1));
                    new_op.name.clone_from(&op.name);
                    if opset >= 18 {
                        let a = Array::from_i64(vec![axes.len()], axes).map_err(|e| failed(e.to_string()))?;
                        let base = op.name.clone().unwrap_or_else(|| op.op_type().to_string());
                        new_ins.push(Some(e.new_const(&format!("{base}_axes"), &a)));
                    } else {
                        new_op.set_attr("axes", AttrValue::Ints(axes));
                    }
                }
                move_attrs(&e.model.graph, &mut new_op, c, opset)?;
                let outs = match &c.kept {
                    None => e.last_outputs(op, r),
                    Some(layout) => e.outputs_in(op, layout),
                };
                e.seq.push((new_op, new_ins, outs));
                e.stats.moved += 1;
            }
        }
        // A value a body reads by name keeps its layout under its name.
        for o in op.outputs().iter().flatten() {
            if captured.contains(&e.model.graph.value(*o).name) && e.state.contains_key(o) {
                let got = e.plain(*o)?;
                if got != *o {
                    e.seq.push((Op::new("Identity", None), vec![Some(got)], vec![Some(*o)]));
                }
            }
        }
    }
    // Graph outputs keep their names and layouts.
    let outputs = e.model.graph.outputs.clone();
    for o in outputs {
        if !e.state.contains_key(&o) {
            continue;
        }
        let got = e.plain(o)?;
        if got == o {
            continue;
        }
        let renamable = e.created.contains(&got) && e.model.graph.value(got).init.is_none();
        if renamable {
            for (_, ins, outs) in &mut e.seq {
                for v in ins.iter_mut().chain(outs.iter_mut()).flatten() {
                    if *v == got {
                        *v = o;
                    }
                }
            }
            e.made.retain(|_, t| *t != got);
            for (s, _) in e.state.values_mut() {
                if *s == got {
                    *s = o;
                }
            }
        } else {
            e.seq.push((Op::new("Identity", None), vec![Some(got)], vec![Some(o)]));
        }
    }
    let Emitter { model, seq, stats, .. } = e;
    let g = &mut model.graph;
    for (id, _) in &ops {
        g.remove_op(*id);
    }
    for (op, ins, outs) in seq {
        g.add_op(op, ins, outs);
    }
    let all: Vec<ValueId> = g.values().map(|(v, _)| v).collect();
    drop_unused(g, &all);
    if model.opset_version(CHANNELS_LAST_DOMAIN).is_none() {
        let version = model.onnx_opset();
        model
            .opset_imports
            .push(OpsetImport { domain: Some(CHANNELS_LAST_DOMAIN.to_string()), version: Some(version) });
    }
    Ok(stats)
}

/// Writes the attributes qonnx's wrappers require that `op` leaves to their defaults.
fn fill_defaults(g: &Graph, op: &mut Op, weight: Option<ValueId>, r: usize) {
    let spatial = r - 2;
    let explicit_pads = op.attr_str("auto_pad", "NOTSET").is_ok_and(|p| p == "NOTSET");
    let set = |op: &mut Op, name: &str, value: AttrValue| {
        if op.attr(name).is_none() {
            op.set_attr(name, value);
        }
    };
    match op.kind() {
        OpKind::ChannelsLastConv => {
            if let Some(w) = weight
                && let Ok(d) = dims::known(g, w)
                && d.len() == r
            {
                set(op, "kernel_shape", AttrValue::Ints(d[2..].iter().map(|&k| k as i64).collect()));
            }
            set(op, "strides", AttrValue::Ints(vec![1; spatial]));
            set(op, "dilations", AttrValue::Ints(vec![1; spatial]));
            if explicit_pads {
                set(op, "pads", AttrValue::Ints(vec![0; 2 * spatial]));
            }
            set(op, "group", AttrValue::Int(1));
        }
        OpKind::ChannelsLastMaxPool => {
            set(op, "strides", AttrValue::Ints(vec![1; spatial]));
            if explicit_pads {
                set(op, "pads", AttrValue::Ints(vec![0; 2 * spatial]));
            }
        }
        OpKind::ChannelsLastBatchNormalization => {
            set(op, "epsilon", AttrValue::Float(1e-5));
            set(op, "momentum", AttrValue::Float(0.9));
        }
        _ => {}
    }
}

/// Moves the axis attributes of an op that now runs channels-last.
fn move_attrs(g: &Graph, op: &mut Op, c: &Candidate, opset: i64) -> Result<(), PassError> {
    let r = c.rank;
    let label = op.display_name(0);
    let bad = |what: &str| failed(format!("`{label}`: {what} is out of range"));
    match c.class {
        Class::Concat | Class::Split => {
            // Concat's `axis` is required; Split's defaults to 0.
            let default = if c.class == Class::Concat { 1 } else { 0 };
            let a = op.attr_int("axis", default).map_err(|e| failed(e.to_string()))?;
            let n = moved_axis(a, r).ok_or_else(|| bad("axis"))?;
            op.set_attr("axis", AttrValue::Int(n));
        }
        Class::Softmax => {
            let a =
                op.attr_int("axis", if opset >= 13 { -1 } else { 1 }).map_err(|e| failed(e.to_string()))?;
            let n = moved_axis(a, r).ok_or_else(|| bad("axis"))?;
            op.set_attr("axis", AttrValue::Int(n));
        }
        Class::QuantLinear => {
            // Only a per-axis scale reads the axis.
            let per_axis = op
                .inputs()
                .get(1)
                .copied()
                .flatten()
                .and_then(|s| dims::partial(g, s))
                .is_some_and(|d| d.len() == 1 && d[0] != Some(1));
            if per_axis {
                let a = op.attr_int("axis", 1).map_err(|e| failed(e.to_string()))?;
                let n = moved_axis(a, r).ok_or_else(|| bad("axis"))?;
                op.set_attr("axis", AttrValue::Int(n));
            }
        }
        // Resize's `axes`, and a reduction's when they are an attribute.
        Class::Resize | Class::Reduce => {
            if let Some(axes) = op.attr_ints("axes").map_err(|e| failed(e.to_string()))? {
                let moved = axes
                    .iter()
                    .map(|&a| moved_axis(a, r))
                    .collect::<Option<Vec<i64>>>()
                    .ok_or_else(|| bad("axes"))?;
                op.set_attr("axes", AttrValue::Ints(moved));
            }
        }
        Class::Pad => {
            if opset < 11
                && let Some(p) = op.attr_ints("pads").map_err(|e| failed(e.to_string()))?
            {
                let l = to_last_perm(r);
                let moved: Vec<i64> = (0..p.len()).map(|i| p[(i / r) * r + l[i % r]]).collect();
                op.set_attr("pads", AttrValue::Ints(moved));
            }
        }
        Class::Elementwise | Class::GlobalPool => {}
    }
    Ok(())
}

/// The inverse of the conversion, op by op: every channels-last wrapper (`Conv`, `MaxPool`,
/// `BatchNormalization` of domain `qonnx.custom_op.channels_last`) becomes the standard op
/// between Transposes: its data (and a Conv's weight, stored `O, kH, kW, I/group`) to
/// channels-first, its output back to channels-last. The model computes the same; Transposes
/// that meet are left for the caller to cancel. New values get no declaration: run
/// `infer-shapes` after. Returns the count of wrappers, or `(node, reason)` for one that cannot be
/// unwrapped (no input 0, more than one output, data of unknown rank or rank other than 3 or 4),
/// in which case nothing is changed.
pub fn unwrap_wrappers(model: &mut Model) -> Result<usize, (String, String)> {
    let g = &mut model.graph;
    let wrappers: Vec<OpId> = g
        .ops()
        .filter(|(_, op)| {
            matches!(
                op.kind(),
                OpKind::ChannelsLastConv
                    | OpKind::ChannelsLastMaxPool
                    | OpKind::ChannelsLastBatchNormalization
            )
        })
        .map(|(id, _)| id)
        .collect();
    let mut plans = Vec::with_capacity(wrappers.len());
    for &id in &wrappers {
        let op = g.op(id);
        let label = g.op_label(id);
        let refuse = |reason: &str| (label.clone(), reason.to_string());
        let (Some(x), Some(_)) =
            (op.inputs().first().copied().flatten(), op.outputs().first().copied().flatten())
        else {
            return Err(refuse("a channels-last wrapper needs its input 0 and its output"));
        };
        if op.outputs().iter().skip(1).any(Option::is_some) {
            return Err(refuse("a channels-last wrapper has one output"));
        }
        let r = dims::rank(g, x)
            .filter(|r| (3..=4).contains(r))
            .ok_or_else(|| refuse("its data's rank is unknown, or not 3 or 4"))?;
        plans.push((id, r));
    }
    let perm = |p: Vec<usize>| AttrValue::Ints(p.into_iter().map(|i| i as i64).collect());
    let mut rw = crate::rewrite::Rewrite::default();
    for (id, r) in plans {
        let op = g.op(id).clone();
        let label = g.op_label(id);
        let moved = if op.kind() == OpKind::ChannelsLastConv { 2 } else { 1 };
        let mut new: Vec<NewOp> = Vec::new();
        let mut ins = op.inputs().to_vec();
        for (slot, v) in ins.iter_mut().enumerate().take(moved) {
            let Some(x) = *v else { continue };
            let t = fresh(g, &format!("{}_channels_first", g.value(x).name));
            let t_op = Op::new("Transpose", None)
                .with_name(format!("{label}_to_channels_first_{slot}"))
                .with_attr("perm", perm(to_first_perm(r)));
            new.push((t_op, vec![Some(x)], vec![Some(t)]));
            *v = Some(t);
        }
        let y = op.outputs()[0];
        let z = fresh(g, &format!("{}_channels_first", y.map_or(String::new(), |y| g.value(y).name.clone())));
        let mut standard = op.in_domain(None);
        standard.name = Some(label.clone());
        new.push((standard, ins, vec![Some(z)]));
        let back = Op::new("Transpose", None)
            .with_name(format!("{label}_to_channels_last"))
            .with_attr("perm", perm(to_last_perm(r)));
        new.push((back, vec![Some(z)], vec![y]));
        rw.set(id, new);
    }
    rw.apply(g);
    Ok(wrappers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_move_to_their_channels_last_place() {
        // N, C, H, W stored as N, H, W, C.
        assert_eq!(moved_axis(1, 4), Some(3));
        assert_eq!(moved_axis(-1, 4), Some(2));
        assert_eq!(moved_axis(0, 4), Some(0));
        assert_eq!(moved_axis(2, 3), Some(1));
        assert_eq!(moved_axis(4, 4), None);
    }
}
