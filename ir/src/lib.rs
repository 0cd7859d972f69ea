//! `qc-ir`: the graph IR that every part of qc works on.
//!
//! - [`Graph`]: values in an arena ([`ValueId`]), ops as nodes of a petgraph `StableDiGraph`
//!   ([`OpId`]), graph inputs, outputs and initializers, nested graphs for If/Loop/Scan.
//! - [`Op`]: an op with its attributes kept verbatim; known ops ([`OpKind`], [`SCHEMAS`]) have
//!   checked arity, attribute kinds and typed views.
//! - [`dims`]: the dims of a value and their element count, checked, read one way everywhere.
//! - [`Tensor`]: constant data as zero-copy bytes or an external reference resolved lazily.
//! - [`QuantSpec`]: one quantization description for every dialect.
//! - [`verify`]: the verifier, which reports every problem at once.
//! - [`LoopNest`]: one compute layer as a typed, quantized loop nest ([`loops`]), the form the
//!   mapping and cost backends read; a [`Workload`] is a model's layers. [`loop_verify`] checks
//!   workloads and reports every problem at once.
//! - [`target`]: DLA target descriptions (ops, limits, scale rules) as `qc check` reads them.
//!
//! Invariants: this crate does no I/O, and knows nothing about protobuf, the CLI or terminals.

pub mod attr;
pub mod dims;
pub mod graph;
pub mod hash;
pub mod loop_verify;
pub mod loops;
pub mod model;
pub mod op;
pub mod quant;
pub mod rng;
pub mod target;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;
pub mod window;

pub use attr::{AttrKind, AttrValue, Attribute};
pub use dims::DimsError;
pub use graph::{Const, DeclList, DeclOverride, Graph, OpId, TensorAnnotation, Use, Value, ValueId};
pub use loop_verify::{LoopError, verify_workload};
pub use loops::{Compute, LoopDim, LoopNest, NotLowered, Operand, PsumRule, Relation, Source, Workload};
pub use model::{Function, Model, OpsetImport, TrainingInfo};
pub use op::{AttrError, Dialect, Op, OpKind, OpSchema, SCHEMAS};
pub use quant::{DataType, QuantOrigin, QuantParam, QuantSpec, Rounding};
pub use tensor::{DataResolver, ExternalRef, SparseTensor, Tensor, TensorData, TensorError};
pub use types::{Dim, ElemType, MetaEntry, Shape, TypeInfo, ValueType};
pub use verify::{VerifyError, verify_model};
pub use window::{AutoPad, Window, WindowError};
