//! Shape and element-type inference rules, one file per op family.
//!
//! [`infer_op`] takes what is known about an op's inputs (a [`TypeFact`]: element type, shape with
//! symbolic dimensions, and for small tensors the values) and returns what can be inferred about
//! its outputs. Values are propagated through the shape-computation chains exporters emit
//! (`Shape -> Gather -> Unsqueeze -> Concat -> Reshape`, `Shape -> Slice -> Concat -> Expand`,
//! `Cast`, `Identity`, `Squeeze`, small integer arithmetic (`Add`, `Sub`, `Mul`, `Div`, `Sum`,
//! `Max`, `Min`, comparisons), `Where`, `ConstantOfShape`, `Range`, `Tile`, `Resize` sizes), as
//! ONNX's data propagation does.
//!
//! Symbolic dimensions take part: `Shape` of an `f32[N,3,4]` value is the integer tensor
//! `[N, 3, 4]`, held as [`Values::Sym`] (elements [`SymInt`]: a known integer, a dimension name,
//! or unknown), and the ops that read a shape (`Reshape`, `Expand`, `ConstantOfShape`, `Tile`,
//! `Range`, `Resize`, `Slice`'s `ends`, `TopK`'s `K`) turn such elements back into dimensions, so
//! a batch dim `N` stays `N`. Arithmetic on a symbolic element keeps the name only where the result is the
//! name itself (`N * 1`, `N / 1`, `N + 0`, `N - 0`); `N - N` is `0`, anything times `0` is `0`,
//! and every other result (`N * 2`, `N + 1`, `N / 2`) is an unknown element, never a guessed
//! number. Rules that need concrete numbers read them with [`Values::as_i64`]/[`Values::as_f64`],
//! which refuse symbolic values, so a symbolic value is never taken for a concrete one. A
//! symbolic size is assumed non-zero where it matters (a name in a `Reshape` target is that
//! name, not a `0` that copies the input dimension), as in ONNX's own inference.
//!
//! The rule for an op is the one the op table (`crate::ops`) names for its kind.
//!
//! If, Loop and Scan are typed from their bodies: the `infer-shapes` pass infers the bodies (with
//! the enclosing graphs' values visible) and combines the results with the functions of
//! [`control`]. [`infer_op`] itself has no rule for them, since it sees no bodies.
//!
//! Bad input (wrong ranks, bad attributes, out-of-range axes) is a [`ShapeError`], never a panic.

pub(crate) mod attention;
pub(crate) mod channels_last;
pub mod control;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod matmul;
pub(crate) mod microsoft;
pub(crate) mod misc;
pub(crate) mod norm;
pub(crate) mod producers;
pub(crate) mod quant;
pub(crate) mod reduce;
pub(crate) mod reshape;
pub(crate) mod resize;
pub(crate) mod rnn;
pub(crate) mod scatter;
pub(crate) mod slicing;

pub use elementwise::broadcast;
pub use matmul::matmul_shape;
pub use reshape::{reshape_dims, reshape_dims_sym};
pub use slicing::slice_range;

use half::{bf16, f16};
use qc_ir::{Dim, ElemType, Op, Tensor, TensorData};

/// Tensors with at most this many elements have their values tracked.
pub const MAX_VALUES: usize = 1024;

/// One element of an integer tensor computed from shapes: a known integer, the size of a named
/// (symbolic) dimension, or an integer not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SymInt {
    Int(i64),
    /// The size of the dimension called this (never negative).
    Sym(String),
    Unknown,
}

impl SymInt {
    /// The element a dimension's size gives.
    pub fn of_dim(d: &Dim) -> SymInt {
        match d {
            Dim::Known(n) => i64::try_from(*n).map_or(SymInt::Unknown, SymInt::Int),
            Dim::Sym(s) => SymInt::Sym(s.clone()),
            Dim::Unknown => SymInt::Unknown,
        }
    }

    /// The dimension this element gives as a size; `None` for a negative integer.
    pub fn to_dim(&self) -> Option<Dim> {
        match self {
            SymInt::Int(n) => u64::try_from(*n).ok().map(Dim::Known),
            SymInt::Sym(s) => Some(Dim::Sym(s.clone())),
            SymInt::Unknown => Some(Dim::Unknown),
        }
    }

    /// The integer, when it is known.
    pub fn as_int(&self) -> Option<i64> {
        if let SymInt::Int(n) = self { Some(*n) } else { None }
    }
}

/// Known values of a small tensor, in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Integer and bool tensors.
    Int(Vec<i64>),
    /// Floating-point tensors.
    Float(Vec<f64>),
    /// Integer tensors with at least one element that is symbolic or unknown (an all-known
    /// list is always [`Values::Int`]; build with [`Values::from_sym`]).
    Sym(Vec<SymInt>),
}

impl Values {
    /// `Int` when every element is a known integer, else `Sym`.
    pub fn from_sym(v: Vec<SymInt>) -> Values {
        match v.iter().map(SymInt::as_int).collect::<Option<Vec<i64>>>() {
            Some(ints) => Values::Int(ints),
            None => Values::Sym(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Sym(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every element is a known number.
    pub fn is_concrete(&self) -> bool {
        !matches!(self, Values::Sym(v) if v.iter().any(|x| x.as_int().is_none()))
    }

    /// The values as integers (floats truncated toward zero); `None` unless every element is
    /// known.
    pub fn as_i64(&self) -> Option<Vec<i64>> {
        match self {
            Values::Int(v) => Some(v.clone()),
            Values::Float(v) => Some(v.iter().map(|x| *x as i64).collect()),
            Values::Sym(v) => v.iter().map(SymInt::as_int).collect(),
        }
    }

    /// The values as floats; `None` unless every element is known.
    pub fn as_f64(&self) -> Option<Vec<f64>> {
        match self {
            Values::Int(v) => Some(v.iter().map(|x| *x as f64).collect()),
            Values::Float(v) => Some(v.clone()),
            Values::Sym(v) => v.iter().map(|x| x.as_int().map(|n| n as f64)).collect(),
        }
    }

    /// The values as possibly symbolic integers (floats truncated toward zero).
    pub fn as_sym(&self) -> Vec<SymInt> {
        match self {
            Values::Int(v) => v.iter().map(|&x| SymInt::Int(x)).collect(),
            Values::Float(v) => v.iter().map(|&x| SymInt::Int(x as i64)).collect(),
            Values::Sym(v) => v.clone(),
        }
    }

    /// The values converted to the representation of `elem`. Symbolic elements survive a cast
    /// to a 32- or 64-bit integer type; a narrower integer or bool type makes them unknown, and a
    /// floating-point type drops symbolic values altogether (`None`).
    pub fn cast(&self, elem: ElemType) -> Option<Values> {
        use ElemType::*;
        if let Values::Sym(v) = self {
            if !is_int_like(elem) {
                return None;
            }
            let wide = matches!(elem, I32 | I64 | U32 | U64);
            let out = v
                .iter()
                .map(|x| match x {
                    SymInt::Int(n) if elem == Bool => SymInt::Int(i64::from(*n != 0)),
                    SymInt::Sym(_) if !wide => SymInt::Unknown,
                    x => x.clone(),
                })
                .collect();
            return Some(Values::from_sym(out));
        }
        Some(if is_int_like(elem) {
            let v = match self {
                Values::Float(v) if elem == Bool => v.iter().map(|x| i64::from(*x != 0.0)).collect(),
                Values::Float(v) => v.iter().map(|x| *x as i64).collect(),
                Values::Int(v) => v.clone(),
                Values::Sym(_) => return None,
            };
            if elem == Bool {
                Values::Int(v.iter().map(|x| i64::from(*x != 0)).collect())
            } else {
                Values::Int(v)
            }
        } else {
            match self {
                Values::Int(v) => Values::Float(v.iter().map(|x| *x as f64).collect()),
                Values::Float(v) => Values::Float(v.clone()),
                Values::Sym(_) => return None,
            }
        })
    }
}

/// What is known about one tensor value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TypeFact {
    pub elem: Option<ElemType>,
    /// `None`: unknown rank.
    pub shape: Option<Vec<Dim>>,
    /// The values, for small tensors whose values are known (an integer tensor computed from
    /// shapes may hold dimension names: [`Values::Sym`]).
    pub value: Option<Values>,
}

/// What is known about an op input (the same record as an output).
pub type InputFact = TypeFact;

impl TypeFact {
    pub fn new(elem: ElemType, dims: Vec<Dim>) -> TypeFact {
        TypeFact { elem: Some(elem), shape: Some(dims), value: None }
    }

    pub fn with_value(mut self, v: Values) -> TypeFact {
        self.value = Some(v);
        self
    }

    /// The fact for a constant tensor; values are read when the tensor is small.
    pub fn from_tensor(t: &Tensor, bytes: Option<&[u8]>) -> TypeFact {
        let dims = qc_ir::dims::written(&t.dims);
        let elem = t.elem;
        let value = elem.and_then(|e| {
            let n = t.element_count().ok()? as usize;
            if n > MAX_VALUES {
                return None;
            }
            tensor_values(t, e, n, bytes)
        });
        TypeFact { elem, shape: Some(dims), value }
    }
}

/// Whether `elem` is held as integers in [`Values`].
pub fn is_int_like(elem: ElemType) -> bool {
    use ElemType::*;
    matches!(elem, U8 | I8 | U16 | I16 | I32 | I64 | Bool | U32 | U64 | U4 | I4 | U2 | I2)
}

fn tensor_values(t: &Tensor, elem: ElemType, n: usize, bytes: Option<&[u8]>) -> Option<Values> {
    use ElemType::*;
    match &t.data {
        TensorData::Int64s(v) if v.len() == n => return Some(Values::Int(v.clone())),
        TensorData::Floats(v) if v.len() == n && elem == F32 => {
            return Some(Values::Float(v.iter().map(|x| f64::from(*x)).collect()));
        }
        TensorData::Doubles(v) if v.len() == n && elem == F64 => return Some(Values::Float(v.clone())),
        TensorData::Int32s(v) if v.len() == n && matches!(elem, I32 | I16 | I8 | U16 | U8 | Bool) => {
            return Some(Values::Int(v.iter().map(|x| i64::from(*x)).collect()));
        }
        TensorData::Empty if n == 0 => {
            return Some(if is_int_like(elem) { Values::Int(vec![]) } else { Values::Float(vec![]) });
        }
        _ => {}
    }
    let raw: Vec<u8> = match bytes {
        Some(b) => b.to_vec(),
        None => t.raw_bytes(None).ok()?.to_vec(),
    };
    let w = (elem.bits()? / 8) as usize;
    if w == 0 || raw.len() < n * w {
        return None;
    }
    let chunk = |i: usize| &raw[i * w..(i + 1) * w];
    let ints = |f: &dyn Fn(&[u8]) -> i64| Some(Values::Int((0..n).map(|i| f(chunk(i))).collect()));
    let floats = |f: &dyn Fn(&[u8]) -> f64| Some(Values::Float((0..n).map(|i| f(chunk(i))).collect()));
    match elem {
        I64 => ints(&|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
        U64 => ints(&|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as i64),
        I32 => ints(&|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4])))),
        U32 => ints(&|c| i64::from(u32::from_le_bytes(c.try_into().unwrap_or([0; 4])))),
        I16 => ints(&|c| i64::from(i16::from_le_bytes(c.try_into().unwrap_or([0; 2])))),
        U16 => ints(&|c| i64::from(u16::from_le_bytes(c.try_into().unwrap_or([0; 2])))),
        I8 => ints(&|c| i64::from(c[0] as i8)),
        U8 => ints(&|c| i64::from(c[0])),
        Bool => ints(&|c| i64::from(c[0] != 0)),
        F32 => floats(&|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))),
        F64 => floats(&|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
        F16 => floats(&|c| f16::from_le_bytes(c.try_into().unwrap_or([0; 2])).to_f64()),
        BF16 => floats(&|c| bf16::from_le_bytes(c.try_into().unwrap_or([0; 2])).to_f64()),
        _ => None,
    }
}

/// Why an op's outputs cannot be typed from its inputs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum ShapeError {
    #[error("{node}: {message}")]
    #[diagnostic(
        code(qc::shape::rank),
        help("check the ranks of the op's inputs against the operator's definition")
    )]
    Rank { node: String, message: String },
    #[error("{node}: {message}")]
    #[diagnostic(
        code(qc::shape::attribute),
        help("check the op's attributes against the operator's definition")
    )]
    Attribute { node: String, message: String },
    #[error("{node}: {message}")]
    #[diagnostic(code(qc::shape::axis), help("an axis must lie in [-rank, rank)"))]
    Axis { node: String, message: String },
    #[error("{node}: {message}")]
    #[diagnostic(code(qc::shape::incompatible), help("the input dimensions do not fit together"))]
    Incompatible { node: String, message: String },
    #[error("{node}: {message}")]
    #[diagnostic(
        code(qc::shape::subgraph),
        help("an If, Loop or Scan body must take and return what the op's definition says")
    )]
    Subgraph { node: String, message: String },
    #[error("{node}: no shape inference rule for {op_type}")]
    #[diagnostic(code(qc::shape::unsupported_op), help("the op's outputs are left untyped"))]
    Unsupported { node: String, op_type: String },
}

impl ShapeError {
    /// The node the error is about.
    pub fn node(&self) -> &str {
        match self {
            ShapeError::Rank { node, .. }
            | ShapeError::Attribute { node, .. }
            | ShapeError::Axis { node, .. }
            | ShapeError::Incompatible { node, .. }
            | ShapeError::Subgraph { node, .. }
            | ShapeError::Unsupported { node, .. } => node,
        }
    }

    /// The same error about the node called `label`.
    pub fn with_node(mut self, label: &str) -> ShapeError {
        match &mut self {
            ShapeError::Rank { node, .. }
            | ShapeError::Attribute { node, .. }
            | ShapeError::Axis { node, .. }
            | ShapeError::Incompatible { node, .. }
            | ShapeError::Subgraph { node, .. }
            | ShapeError::Unsupported { node, .. } => *node = label.to_string(),
        }
        self
    }

    /// The stable diagnostic code.
    pub fn code(&self) -> &'static str {
        match self {
            ShapeError::Rank { .. } => "qc::shape::rank",
            ShapeError::Attribute { .. } => "qc::shape::attribute",
            ShapeError::Axis { .. } => "qc::shape::axis",
            ShapeError::Incompatible { .. } => "qc::shape::incompatible",
            ShapeError::Subgraph { .. } => "qc::shape::subgraph",
            ShapeError::Unsupported { .. } => "qc::shape::unsupported_op",
        }
    }
}

/// Kinds of rule failure, before the node is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Rank,
    Attribute,
    Axis,
    Incompatible,
    Subgraph,
}

/// Why a rule stopped: the inputs are not known well enough, or they are wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    Unknown,
    Bad(Kind, String),
}

pub(crate) type R<T> = Result<T, Fail>;

pub(crate) fn bad<T>(kind: Kind, msg: impl Into<String>) -> R<T> {
    Err(Fail::Bad(kind, msg.into()))
}

/// What a rule sees: the op, its input facts and the opset.
pub(crate) struct Cx<'a> {
    pub op: &'a Op,
    pub ins: &'a [Option<TypeFact>],
    pub opset: i64,
}

impl<'a> Cx<'a> {
    /// Whether input `i` is present (an omitted optional input is not).
    pub fn has(&self, i: usize) -> bool {
        self.op.inputs().get(i).is_some_and(|v| v.is_some())
    }

    pub fn fact(&self, i: usize) -> R<&'a TypeFact> {
        self.ins.get(i).and_then(|f| f.as_ref()).ok_or(Fail::Unknown)
    }

    pub fn dims(&self, i: usize) -> R<&'a [Dim]> {
        self.fact(i)?.shape.as_deref().ok_or(Fail::Unknown)
    }

    /// The elem type of input `i`, if known.
    pub fn elem_opt(&self, i: usize) -> Option<ElemType> {
        self.ins.get(i).and_then(|f| f.as_ref()).and_then(|f| f.elem)
    }

    pub fn values(&self, i: usize) -> R<&'a Values> {
        self.fact(i)?.value.as_ref().ok_or(Fail::Unknown)
    }

    /// The values of input `i` as concrete integers; unknown if any element is symbolic.
    pub fn ints(&self, i: usize) -> R<Vec<i64>> {
        self.values(i)?.as_i64().ok_or(Fail::Unknown)
    }

    /// The values of input `i` as concrete floats; unknown if any element is symbolic.
    pub fn floats(&self, i: usize) -> R<Vec<f64>> {
        self.values(i)?.as_f64().ok_or(Fail::Unknown)
    }

    /// The values of input `i` as possibly symbolic integers (for shape operands).
    pub fn sym_ints(&self, i: usize) -> R<Vec<SymInt>> {
        Ok(self.values(i)?.as_sym())
    }

    /// The length of the 1-D input `i`, when known (the rank a shape operand gives).
    pub fn known_len(&self, i: usize) -> Option<usize> {
        match self.dims(i).ok()? {
            [Dim::Known(n)] => usize::try_from(*n).ok(),
            _ => None,
        }
    }

    pub fn attr_int(&self, name: &str, default: i64) -> R<i64> {
        self.op.attr_int(name, default).map_err(|e| Fail::Bad(Kind::Attribute, e.to_string()))
    }

    pub fn attr_float(&self, name: &str, default: f32) -> R<f32> {
        self.op.attr_float(name, default).map_err(|e| Fail::Bad(Kind::Attribute, e.to_string()))
    }

    pub fn attr_ints(&self, name: &str) -> R<Option<Vec<i64>>> {
        self.op
            .attr_ints(name)
            .map(|o| o.map(<[i64]>::to_vec))
            .map_err(|e| Fail::Bad(Kind::Attribute, e.to_string()))
    }

    pub fn attr_str(&self, name: &str, default: &str) -> R<String> {
        self.op.attr_str(name, default).map_err(|e| Fail::Bad(Kind::Attribute, e.to_string()))
    }

    /// The number of output slots.
    pub fn n_out(&self) -> usize {
        self.op.outputs().len().max(1)
    }
}

/// One output fact.
pub(crate) fn one(f: TypeFact) -> R<Vec<Option<TypeFact>>> {
    Ok(vec![Some(f)])
}

/// `axis` normalised against `rank`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return bad(Kind::Axis, format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// The product of `dims`: known when all are known, the one symbolic dim when the others are 1.
pub(crate) fn dim_product(dims: &[Dim]) -> Dim {
    let mut prod: u64 = 1;
    let mut other: Option<&Dim> = None;
    for d in dims {
        match d {
            Dim::Known(n) => prod = prod.saturating_mul(*n),
            d => {
                if other.is_some() {
                    return Dim::Unknown;
                }
                other = Some(d);
            }
        }
    }
    match other {
        None => Dim::Known(prod),
        Some(_) if prod == 0 => Dim::Known(0),
        Some(d) if prod == 1 => d.clone(),
        Some(_) => Dim::Unknown,
    }
}

/// Multiplies a dim by a known factor.
pub(crate) fn dim_mul(d: &Dim, k: u64) -> Dim {
    match d {
        Dim::Known(n) => Dim::Known(n.saturating_mul(k)),
        _ if k == 1 => d.clone(),
        _ if k == 0 => Dim::Known(0),
        _ => Dim::Unknown,
    }
}

/// Infers the output facts of `op` from the facts of its inputs, under the default-domain
/// `opset`. An output that cannot be inferred is `None`.
pub fn infer_op(
    op: &Op,
    inputs: &[Option<InputFact>],
    opset: i64,
) -> Result<Vec<Option<TypeFact>>, ShapeError> {
    let cx = Cx { op, ins: inputs, opset };
    let n_out = op.outputs().len().max(1);
    let result = dispatch(&cx);
    let mut outs = match result {
        None => {
            return Err(ShapeError::Unsupported {
                node: op.display_name(0),
                op_type: op.op_type().to_string(),
            });
        }
        Some(Ok(v)) => v,
        Some(Err(Fail::Unknown)) => vec![None; n_out],
        Some(Err(f)) => return Err(error(op, f)),
    };
    outs.resize(n_out, None);
    // Values only for small tensors whose count agrees with the shape.
    for f in outs.iter_mut().flatten() {
        if let (Some(v), Some(s)) = (&f.value, &f.shape) {
            let count = dim_product(s);
            if v.len() > MAX_VALUES || count != Dim::Known(v.len() as u64) {
                f.value = None;
            }
        }
        if let Some(v) = f.value.take() {
            let v = if let Values::Sym(s) = v { Values::from_sym(s) } else { v };
            f.value = match f.elem {
                Some(e) => v.cast(e),
                None => Some(v),
            };
        }
    }
    Ok(outs)
}

/// The error a rule's failure is about `op` (an unknown input gives a `Subgraph` error only
/// where callers have already handled [`Fail::Unknown`]).
pub(crate) fn error(op: &Op, f: Fail) -> ShapeError {
    let node = op.display_name(0);
    let (kind, message) = match f {
        Fail::Bad(kind, message) => (kind, message),
        Fail::Unknown => (Kind::Subgraph, "the op's inputs are not known".to_string()),
    };
    match kind {
        Kind::Rank => ShapeError::Rank { node, message },
        Kind::Attribute => ShapeError::Attribute { node, message },
        Kind::Axis => ShapeError::Axis { node, message },
        Kind::Incompatible => ShapeError::Incompatible { node, message },
        Kind::Subgraph => ShapeError::Subgraph { node, message },
    }
}

/// Whether `op` has an inference rule (If, Loop and Scan are typed through [`control`]).
pub fn is_supported(op: &Op) -> bool {
    crate::ops::rules(op.kind()).is_some_and(|r| r.shape.is_some())
}

/// The rule the op table names for the op's kind, run; `None` when there is none.
pub(crate) fn dispatch(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    match crate::ops::rules(cx.op.kind())?.shape {
        crate::ops::Rule::By(rule) => rule(cx),
        crate::ops::Rule::No | crate::ops::Rule::Bodies => None,
    }
}

#[cfg(test)]
mod tests;
