//! Op attributes, stored once, in the order the model wrote them.
//!
//! Typed views of the attributes of known ops are computed from this list (see [`crate::op`]),
//! so an attribute is never held twice and a model round-trips exactly.

use bytes::Bytes;

use crate::graph::Graph;
use crate::tensor::{SparseTensor, Tensor};
use crate::types::TypeInfo;

/// The kind of an attribute value (ONNX `AttributeType` numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrKind {
    Undefined,
    Float,
    Int,
    String,
    Tensor,
    Graph,
    Floats,
    Ints,
    Strings,
    Tensors,
    Graphs,
    SparseTensor,
    SparseTensors,
    TypeProto,
    TypeProtos,
}

impl AttrKind {
    const ALL: [AttrKind; 15] = [
        AttrKind::Undefined,
        AttrKind::Float,
        AttrKind::Int,
        AttrKind::String,
        AttrKind::Tensor,
        AttrKind::Graph,
        AttrKind::Floats,
        AttrKind::Ints,
        AttrKind::Strings,
        AttrKind::Tensors,
        AttrKind::Graphs,
        AttrKind::SparseTensor,
        AttrKind::SparseTensors,
        AttrKind::TypeProto,
        AttrKind::TypeProtos,
    ];

    pub fn from_code(code: i32) -> Option<AttrKind> {
        usize::try_from(code).ok().and_then(|i| Self::ALL.get(i).copied())
    }

    pub fn code(self) -> i32 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as i32
    }

    pub fn name(self) -> &'static str {
        match self {
            AttrKind::Undefined => "undefined",
            AttrKind::Float => "float",
            AttrKind::Int => "int",
            AttrKind::String => "string",
            AttrKind::Tensor => "tensor",
            AttrKind::Graph => "graph",
            AttrKind::Floats => "floats",
            AttrKind::Ints => "ints",
            AttrKind::Strings => "strings",
            AttrKind::Tensors => "tensors",
            AttrKind::Graphs => "graphs",
            AttrKind::SparseTensor => "sparse_tensor",
            AttrKind::SparseTensors => "sparse_tensors",
            AttrKind::TypeProto => "type_proto",
            AttrKind::TypeProtos => "type_protos",
        }
    }
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// No value: only valid for a reference to a function attribute (`ref_attr_name`).
    None,
    Float(f32),
    Int(i64),
    /// Attribute strings are bytes; ONNX asks for UTF-8 but does not enforce it.
    String(Bytes),
    Tensor(Box<Tensor>),
    Graph(Box<Graph>),
    SparseTensor(Box<SparseTensor>),
    TypeProto(Box<TypeInfo>),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strings(Vec<Bytes>),
    Tensors(Vec<Tensor>),
    Graphs(Vec<Graph>),
    SparseTensors(Vec<SparseTensor>),
    TypeProtos(Vec<TypeInfo>),
}

impl AttrValue {
    /// The kind of the value held.
    pub fn kind(&self) -> AttrKind {
        match self {
            AttrValue::None => AttrKind::Undefined,
            AttrValue::Float(_) => AttrKind::Float,
            AttrValue::Int(_) => AttrKind::Int,
            AttrValue::String(_) => AttrKind::String,
            AttrValue::Tensor(_) => AttrKind::Tensor,
            AttrValue::Graph(_) => AttrKind::Graph,
            AttrValue::SparseTensor(_) => AttrKind::SparseTensor,
            AttrValue::TypeProto(_) => AttrKind::TypeProto,
            AttrValue::Floats(_) => AttrKind::Floats,
            AttrValue::Ints(_) => AttrKind::Ints,
            AttrValue::Strings(_) => AttrKind::Strings,
            AttrValue::Tensors(_) => AttrKind::Tensors,
            AttrValue::Graphs(_) => AttrKind::Graphs,
            AttrValue::SparseTensors(_) => AttrKind::SparseTensors,
            AttrValue::TypeProtos(_) => AttrKind::TypeProtos,
        }
    }
}

/// A named attribute of an op.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: AttrValue,
    /// The `type` discriminator as the model wrote it (`None`: absent, as in IR version 1).
    pub declared_kind: Option<AttrKind>,
    pub doc_string: Option<String>,
    /// Inside a function body: the name of the function attribute this one refers to.
    pub ref_attr_name: Option<String>,
}

impl Attribute {
    /// A new attribute with its type discriminator set, as every current writer does.
    pub fn new(name: impl Into<String>, value: AttrValue) -> Attribute {
        let declared_kind = Some(value.kind());
        Attribute { name: name.into(), value, declared_kind, doc_string: None, ref_attr_name: None }
    }

    /// The kind the attribute claims to be: its discriminator, else the kind of its value.
    pub fn kind(&self) -> AttrKind {
        self.declared_kind.unwrap_or_else(|| self.value.kind())
    }
}
