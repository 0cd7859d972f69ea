//! The reference evaluator: executes a graph on the CPU.
//!
//! - [`Array`] is the runtime tensor (see [`array`] for how each element type is stored);
//! - [`eval_op`] runs one op on arrays (constant folding uses it);
//! - [`run_graph`] runs a model's main graph on named inputs, and the bodies of `If`, `Loop` and
//!   `Scan` inside it ([`graph`], [`control`]).
//!
//! Semantics follow the ONNX reference implementation op by op, with the opset-dependent forms
//! (attributes that became inputs) selected by the `opset` argument, and the QONNX custom ops as
//! described in `research/qonnx.md`, and onnxruntime's `com.microsoft` contrib ops as its
//! offline optimizer writes them (`microsoft`). Floating-point kernels compute in `f64` and
//! round once to the output type. Bad input (shapes, arity, indices, overflowing dims) is an
//! [`EvalError`], never a panic. Ops not implemented return [`EvalError::UnsupportedOp`].

pub mod array;
pub(crate) mod attention;
pub mod channels_last;
mod control;
pub(crate) mod elementwise;
pub mod float8;
mod graph;
pub(crate) mod microsoft;
pub(crate) mod nn;
pub(crate) mod quant;
pub(crate) mod reduce;
pub(crate) mod resize;
pub(crate) mod rnn;
pub(crate) mod scatter;
pub(crate) mod shape_ops;
#[cfg(test)]
mod tests;

pub use array::{Array, Data, Domain};

use qc_ir::{AttrValue, Model, Op};

/// Why evaluation failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum EvalError {
    #[error("the evaluator does not support {op_type} (node `{node}`)")]
    #[diagnostic(
        code(qc::eval::unsupported_op),
        help(
            "qc's reference evaluator does not implement this op, so the model cannot be run; commands that need only shapes (cost, lower, evaluate, check) still work"
        )
    )]
    UnsupportedOp { op_type: String, node: String },
    #[error("{node}: {msg}")]
    #[diagnostic(
        code(qc::eval::unsupported),
        help("this form of the op is not implemented by the evaluator")
    )]
    Unsupported { node: String, msg: String },
    #[error("{node}: type mismatch: {msg}")]
    #[diagnostic(code(qc::eval::type_mismatch), help("check the element types of the op's inputs"))]
    TypeMismatch { node: String, msg: String },
    #[error("{node}: bad shape: {msg}")]
    #[diagnostic(code(qc::eval::shape), help("check the dims of the op's inputs and its shape attributes"))]
    Shape { node: String, msg: String },
    #[error("{node}: {msg}")]
    #[diagnostic(code(qc::eval::arity), help("the op is missing a required input"))]
    Arity { node: String, msg: String },
    #[error("{node}: bad attribute: {msg}")]
    #[diagnostic(code(qc::eval::attribute), help("check the op's attributes against the ONNX spec"))]
    Attribute { node: String, msg: String },
    #[error("tensor `{name}`: {msg}")]
    #[diagnostic(code(qc::eval::tensor), help("the constant's data cannot be read"))]
    Tensor { name: String, msg: String },
    #[error("graph input `{name}` has no value")]
    #[diagnostic(code(qc::eval::missing_input), help("bind every graph input that has no initializer"))]
    MissingInput { name: String },
    #[error("the graph has a cycle through {ops:?}")]
    #[diagnostic(code(qc::eval::cycle), help("run the verifier; only acyclic graphs can be evaluated"))]
    Cycle { ops: Vec<String> },
}

impl EvalError {
    pub(crate) fn shape(msg: impl Into<String>) -> EvalError {
        EvalError::Shape { node: String::new(), msg: msg.into() }
    }

    pub(crate) fn type_mismatch(msg: impl Into<String>) -> EvalError {
        EvalError::TypeMismatch { node: String::new(), msg: msg.into() }
    }

    pub(crate) fn attr(msg: impl Into<String>) -> EvalError {
        EvalError::Attribute { node: String::new(), msg: msg.into() }
    }

    pub(crate) fn unsupported(msg: impl Into<String>) -> EvalError {
        EvalError::Unsupported { node: String::new(), msg: msg.into() }
    }

    /// Names the node, when the error does not yet.
    fn at(self, label: &str) -> EvalError {
        let fill = |node: String| if node.is_empty() { label.to_string() } else { node };
        match self {
            EvalError::Unsupported { node, msg } => EvalError::Unsupported { node: fill(node), msg },
            EvalError::TypeMismatch { node, msg } => EvalError::TypeMismatch { node: fill(node), msg },
            EvalError::Shape { node, msg } => EvalError::Shape { node: fill(node), msg },
            EvalError::Arity { node, msg } => EvalError::Arity { node: fill(node), msg },
            EvalError::Attribute { node, msg } => EvalError::Attribute { node: fill(node), msg },
            EvalError::UnsupportedOp { op_type, node } => {
                EvalError::UnsupportedOp { op_type, node: fill(node) }
            }
            other => other,
        }
    }
}

impl From<qc_ir::AttrError> for EvalError {
    fn from(e: qc_ir::AttrError) -> EvalError {
        EvalError::attr(e.to_string())
    }
}

/// The inputs of one op, with accessors that turn a missing input into an error.
pub(crate) struct Ins<'a> {
    pub v: &'a [Option<&'a Array>],
}

impl<'a> Ins<'a> {
    pub fn get(&self, i: usize) -> Result<&'a Array, EvalError> {
        self.v.get(i).copied().flatten().ok_or_else(|| EvalError::Arity {
            node: String::new(),
            msg: format!("input {i} is required but missing"),
        })
    }

    pub fn opt(&self, i: usize) -> Option<&'a Array> {
        self.v.get(i).copied().flatten()
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }
}

/// Attribute helpers returning evaluator errors.
pub(crate) fn a_int(op: &Op, name: &str, default: i64) -> Result<i64, EvalError> {
    Ok(op.attr_int(name, default)?)
}

pub(crate) fn a_float(op: &Op, name: &str, default: f32) -> Result<f32, EvalError> {
    Ok(op.attr_float(name, default)?)
}

pub(crate) fn a_ints(op: &Op, name: &str) -> Result<Option<Vec<i64>>, EvalError> {
    Ok(op.attr_ints(name)?.map(<[i64]>::to_vec))
}

pub(crate) fn a_str(op: &Op, name: &str, default: &str) -> Result<String, EvalError> {
    Ok(op.attr_str(name, default)?)
}

pub(crate) fn a_floats(op: &Op, name: &str) -> Result<Option<Vec<f32>>, EvalError> {
    match op.attr(name).map(|a| &a.value) {
        None => Ok(None),
        Some(AttrValue::Floats(v)) => Ok(Some(v.clone())),
        Some(_) => Err(EvalError::attr(format!("`{name}` must be floats"))),
    }
}

/// Normalises an axis in `[-rank, rank)`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Result<usize, EvalError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(0) {
        return Err(EvalError::attr(format!("axis {axis} is out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// Evaluates one op. `opset` is the model's default-domain opset version; it selects the forms
/// of ops whose attributes became inputs. Omitted optional inputs are `None`.
pub fn eval_op(op: &Op, inputs: &[Option<&Array>], opset: i64) -> Result<Vec<Array>, EvalError> {
    let label = op.display_name(0);
    dispatch(op, &Ins { v: inputs }, opset).map_err(|e| e.at(&label))
}

/// The evaluator the op table (`crate::ops`) names for the op's kind, run.
fn dispatch(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Vec<Array>, EvalError> {
    match crate::ops::rules(op.kind()).map(|r| &r.eval) {
        Some(crate::ops::Rule::By(rule)) => rule(op, x, opset)?.ok_or_else(|| unsupported_op(op)),
        _ => Err(unsupported_op(op)),
    }
}

fn unsupported_op(op: &Op) -> EvalError {
    let ty = if op.domain().is_empty() {
        op.op_type().to_string()
    } else {
        format!("{}::{}", op.domain(), op.op_type())
    };
    EvalError::UnsupportedOp { op_type: ty, node: String::new() }
}

/// Runs the main graph of `model` on `inputs`, as [`run_graph`] does, and returns every value of
/// the main graph by value index (`None` where no op computed one): the intermediate values that
/// per-layer comparisons read.
pub fn run_graph_all(model: &Model, inputs: &[(String, Array)]) -> Result<Vec<Option<Array>>, EvalError> {
    graph::Runner { model, opset: model.onnx_opset() }.run_main_all(inputs)
}

/// Runs the main graph of `model` on `inputs` (bound by graph input name; initializers supply
/// the rest) and returns the graph outputs, in order, by name. `If`, `Loop` and `Scan` run their
/// bodies with the enclosing graphs' values visible (see [`graph`]).
pub fn run_graph(model: &Model, inputs: &[(String, Array)]) -> Result<Vec<(String, Array)>, EvalError> {
    graph::Runner { model, opset: model.onnx_opset() }.run_main(inputs)
}
