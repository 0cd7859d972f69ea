//! Ops: what every node holds, the table of ops qc knows, and typed views of their attributes.
//!
//! An op keeps its attributes once, verbatim and in order ([`crate::attr`]). For the ops in
//! [`SCHEMAS`], qc also knows the arity and the type of each attribute (checked by the verifier),
//! and offers typed views such as [`Op::conv`]. Every other op is a [`OpKind::Custom`] op that
//! is carried through unchanged.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::attr::{AttrKind, AttrValue, Attribute};
use crate::graph::ValueId;
use crate::types::MetaEntry;

/// The ONNX domains that mean the default operator set.
pub fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The domains QONNX's custom ops appear in (the empty domain is what older exporters used).
/// Domains whose `Quant`, `BipolarQuant`, `Trunc`, ... are QONNX's ops: the canonical one, the
/// Brevitas alias, FINN's, and old-style `finn` (which qonnx rewrites on load).
pub const QONNX_DOMAINS: [&str; 4] =
    ["qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general", "finn"];

/// The domain of onnxruntime's contrib ops (`FusedConv`, `QLinearAdd`, ...), which its offline
/// optimizer writes into models.
pub const MICROSOFT_DOMAIN: &str = "com.microsoft";

/// The domain of qonnx's channels-last wrappers (`Conv`, `MaxPool`, `BatchNormalization` on NHWC
/// data).
pub const CHANNELS_LAST_DOMAIN: &str = "qonnx.custom_op.channels_last";

/// A node of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub name: Option<String>,
    op_type: String,
    domain: Option<String>,
    kind: OpKind,
    pub overload: Option<String>,
    pub(crate) inputs: Vec<Option<ValueId>>,
    pub(crate) outputs: Vec<Option<ValueId>>,
    pub attrs: Vec<Attribute>,
    pub doc_string: Option<String>,
    pub metadata: Vec<MetaEntry>,
    /// Multi-device annotations, carried as encoded bytes that qc does not interpret.
    pub device_configurations: Vec<Bytes>,
}

impl Op {
    /// A new op; `domain: None` is the default domain. Inputs and outputs are set when the op is
    /// added to a graph.
    pub fn new(op_type: impl Into<String>, domain: Option<String>) -> Op {
        let op_type = op_type.into();
        let kind = OpKind::resolve(domain.as_deref().unwrap_or(""), &op_type);
        Op {
            name: None,
            op_type,
            domain,
            kind,
            overload: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            attrs: Vec::new(),
            doc_string: None,
            metadata: Vec::new(),
            device_configurations: Vec::new(),
        }
    }

    /// A copy of this op in another domain (its kind resolved again), inputs and outputs kept:
    /// for rules that treat a wrapper op, such as qonnx's channels-last Conv, as the standard one.
    pub fn in_domain(&self, domain: Option<String>) -> Op {
        let mut op = self.clone();
        op.kind = OpKind::resolve(domain.as_deref().unwrap_or(""), &op.op_type);
        op.domain = domain;
        op
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Op {
        self.name = Some(name.into());
        self
    }

    pub fn with_attr(mut self, name: &str, value: AttrValue) -> Op {
        self.set_attr(name, value);
        self
    }

    pub fn op_type(&self) -> &str {
        &self.op_type
    }

    /// The domain as written (`None` when absent).
    pub fn domain_raw(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The domain, with the default domain spelled `""`.
    pub fn domain(&self) -> &str {
        match self.domain.as_deref() {
            Some(d) if !is_default_domain(d) => d,
            _ => "",
        }
    }

    pub fn kind(&self) -> OpKind {
        self.kind
    }

    /// Input values by slot; `None` is an omitted optional input (`""` in ONNX).
    pub fn inputs(&self) -> &[Option<ValueId>] {
        &self.inputs
    }

    /// Output values by slot; `None` is an omitted optional output.
    pub fn outputs(&self) -> &[Option<ValueId>] {
        &self.outputs
    }

    /// The schema of this op, when qc knows it.
    pub fn schema(&self) -> Option<&'static OpSchema> {
        self.kind.schema()
    }

    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Sets an attribute, replacing one of the same name in place or appending it.
    pub fn set_attr(&mut self, name: &str, value: AttrValue) {
        match self.attrs.iter_mut().find(|a| a.name == name) {
            Some(a) => {
                a.declared_kind = Some(value.kind());
                a.value = value;
            }
            None => self.attrs.push(Attribute::new(name, value)),
        }
    }

    pub fn remove_attr(&mut self, name: &str) -> Option<Attribute> {
        let i = self.attrs.iter().position(|a| a.name == name)?;
        Some(self.attrs.remove(i))
    }

    /// The value of an attribute. An attribute whose discriminator names a scalar kind but that
    /// holds no value (as proto3-style writers emit a zero) reads as that kind's zero.
    fn attr_value(&self, name: &str) -> Option<&AttrValue> {
        static ZERO_INT: AttrValue = AttrValue::Int(0);
        static ZERO_FLOAT: AttrValue = AttrValue::Float(0.0);
        static EMPTY_STRING: AttrValue = AttrValue::String(Bytes::from_static(b""));
        let a = self.attr(name)?;
        Some(match (&a.value, a.declared_kind) {
            (AttrValue::None, Some(AttrKind::Int)) => &ZERO_INT,
            (AttrValue::None, Some(AttrKind::Float)) => &ZERO_FLOAT,
            (AttrValue::None, Some(AttrKind::String)) => &EMPTY_STRING,
            (v, _) => v,
        })
    }

    /// An `int` attribute, or `default` when absent.
    pub fn attr_int(&self, name: &str, default: i64) -> Result<i64, AttrError> {
        match self.attr_value(name) {
            None => Ok(default),
            Some(AttrValue::Int(i)) => Ok(*i),
            Some(v) => Err(self.wrong_kind(name, AttrKind::Int, v)),
        }
    }

    /// A `float` attribute, or `default` when absent.
    pub fn attr_float(&self, name: &str, default: f32) -> Result<f32, AttrError> {
        match self.attr_value(name) {
            None => Ok(default),
            Some(AttrValue::Float(f)) => Ok(*f),
            Some(v) => Err(self.wrong_kind(name, AttrKind::Float, v)),
        }
    }

    /// An `ints` attribute, or `None` when absent.
    pub fn attr_ints(&self, name: &str) -> Result<Option<&[i64]>, AttrError> {
        match self.attr_value(name) {
            None => Ok(None),
            Some(AttrValue::Ints(v)) => Ok(Some(v)),
            Some(v) => Err(self.wrong_kind(name, AttrKind::Ints, v)),
        }
    }

    /// A `string` attribute as text, or `default` when absent.
    pub fn attr_str(&self, name: &str, default: &str) -> Result<String, AttrError> {
        match self.attr_value(name) {
            None => Ok(default.to_string()),
            Some(AttrValue::String(s)) => Ok(String::from_utf8_lossy(s).into_owned()),
            Some(v) => Err(self.wrong_kind(name, AttrKind::String, v)),
        }
    }

    fn wrong_kind(&self, name: &str, expected: AttrKind, found: &AttrValue) -> AttrError {
        AttrError {
            op_type: self.op_type.clone(),
            attr: name.to_string(),
            expected: expected.name().to_string(),
            found: found.kind().name().to_string(),
        }
    }

    /// Typed attributes of `Conv`, `ConvInteger`, `QLinearConv` and `ConvTranspose`.
    pub fn conv(&self) -> Result<ConvAttrs, AttrError> {
        Ok(ConvAttrs {
            auto_pad: self.attr_str("auto_pad", "NOTSET")?,
            dilations: self.attr_ints("dilations")?.map(<[i64]>::to_vec),
            group: self.attr_int("group", 1)?,
            kernel_shape: self.attr_ints("kernel_shape")?.map(<[i64]>::to_vec),
            pads: self.attr_ints("pads")?.map(<[i64]>::to_vec),
            strides: self.attr_ints("strides")?.map(<[i64]>::to_vec),
        })
    }

    /// Typed attributes of `MaxPool`, `AveragePool` and `LpPool`.
    pub fn pool(&self) -> Result<PoolAttrs, AttrError> {
        Ok(PoolAttrs {
            auto_pad: self.attr_str("auto_pad", "NOTSET")?,
            ceil_mode: self.attr_int("ceil_mode", 0)? != 0,
            count_include_pad: self.attr_int("count_include_pad", 0)? != 0,
            dilations: self.attr_ints("dilations")?.map(<[i64]>::to_vec),
            kernel_shape: self.attr_ints("kernel_shape")?.map(<[i64]>::to_vec).unwrap_or_default(),
            pads: self.attr_ints("pads")?.map(<[i64]>::to_vec),
            strides: self.attr_ints("strides")?.map(<[i64]>::to_vec),
        })
    }

    /// Typed attributes of `Gemm`.
    pub fn gemm(&self) -> Result<GemmAttrs, AttrError> {
        Ok(GemmAttrs {
            alpha: self.attr_float("alpha", 1.0)?,
            beta: self.attr_float("beta", 1.0)?,
            trans_a: self.attr_int("transA", 0)? != 0,
            trans_b: self.attr_int("transB", 0)? != 0,
        })
    }

    /// Typed attributes of QONNX `Quant` (IntQuant).
    pub fn qonnx_quant(&self) -> Result<QonnxQuantAttrs, AttrError> {
        Ok(QonnxQuantAttrs {
            signed: self.attr_int("signed", 1)? != 0,
            narrow: self.attr_int("narrow", 0)? != 0,
            rounding_mode: self.attr_str("rounding_mode", "ROUND")?,
        })
    }

    /// A readable name: the node name, or `OpType#index` for unnamed nodes.
    pub fn display_name(&self, index: usize) -> String {
        match self.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{}#{index}", self.op_type),
        }
    }
}

/// An attribute of a known op has the wrong kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("attribute `{attr}` of {op_type} must be {expected}, found {found}")]
pub struct AttrError {
    pub op_type: String,
    pub attr: String,
    pub expected: String,
    pub found: String,
}

/// Attributes shared by the convolution ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvAttrs {
    pub auto_pad: String,
    pub dilations: Option<Vec<i64>>,
    pub group: i64,
    pub kernel_shape: Option<Vec<i64>>,
    pub pads: Option<Vec<i64>>,
    pub strides: Option<Vec<i64>>,
}

/// Attributes shared by the pooling ops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolAttrs {
    pub auto_pad: String,
    pub ceil_mode: bool,
    pub count_include_pad: bool,
    pub dilations: Option<Vec<i64>>,
    pub kernel_shape: Vec<i64>,
    pub pads: Option<Vec<i64>>,
    pub strides: Option<Vec<i64>>,
}

/// Attributes of `Gemm`.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmAttrs {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// Attributes of QONNX `Quant`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QonnxQuantAttrs {
    pub signed: bool,
    pub narrow: bool,
    pub rounding_mode: String,
}

/// What qc knows about an op: its arity and the kinds its attributes may take.
#[derive(Debug)]
pub struct OpSchema {
    pub kind: OpKind,
    pub op_type: &'static str,
    /// Which domains this schema answers for: the default domain, QONNX's, or onnxruntime's.
    pub dialect: Dialect,
    pub min_inputs: usize,
    pub max_inputs: usize,
    pub min_outputs: usize,
    pub max_outputs: usize,
    /// `name:kinds` pairs separated by spaces; kinds are letters (f float, i int, s string,
    /// t tensor, g graph, F floats, I ints, S strings, T tensors, G graphs, p sparse tensor,
    /// y type proto). More than one letter: the kind changed between opset versions.
    attrs: &'static str,
}

/// The dialect of an op kind: which domains its schema answers for (not to be confused with
/// `lower::Family`, the compute family a layer lowers as).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `""` or `ai.onnx`.
    Onnx,
    /// QONNX's custom ops: [`QONNX_DOMAINS`] and, for older exporters, the empty domain.
    Qonnx,
    /// onnxruntime's contrib ops, in [`MICROSOFT_DOMAIN`] only.
    Microsoft,
    /// qonnx's channels-last wrappers of standard ops, in [`CHANNELS_LAST_DOMAIN`] only.
    ChannelsLast,
}

impl OpSchema {
    /// The attribute kinds allowed for `name`, or `None` when the schema does not list it
    /// (unlisted attributes are carried, not checked).
    pub fn attr_kinds(&self, name: &str) -> Option<Vec<AttrKind>> {
        self.attrs.split_whitespace().find_map(|pair| {
            let (n, kinds) = pair.split_once(':')?;
            (n == name).then(|| kinds.chars().filter_map(kind_of_letter).collect())
        })
    }

    /// Names of the attributes this schema lists.
    pub fn attr_names(&self) -> impl Iterator<Item = &'static str> {
        self.attrs.split_whitespace().filter_map(|p| p.split_once(':').map(|(n, _)| n))
    }
}

fn kind_of_letter(c: char) -> Option<AttrKind> {
    Some(match c {
        'f' => AttrKind::Float,
        'i' => AttrKind::Int,
        's' => AttrKind::String,
        't' => AttrKind::Tensor,
        'g' => AttrKind::Graph,
        'F' => AttrKind::Floats,
        'I' => AttrKind::Ints,
        'S' => AttrKind::Strings,
        'T' => AttrKind::Tensors,
        'G' => AttrKind::Graphs,
        'p' => AttrKind::SparseTensor,
        'y' => AttrKind::TypeProto,
        _ => return None,
    })
}

const N: usize = usize::MAX;

macro_rules! known_ops {
    (
        schemas { $( $kind:ident $fam:ident $name:literal ($imin:expr, $imax:expr) ($omin:expr, $omax:expr) $attrs:literal; )* }
        unchecked { $( $ukind:ident $ufam:ident $uname:literal; )* }
    ) => {
        /// The ops qc knows by name. Anything else is [`OpKind::Custom`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $( $kind, )*
            $( $ukind, )*
            /// An op qc does not know; kept verbatim.
            Custom,
        }

        /// Every op qc knows with its arity and attributes, in one table.
        pub static SCHEMAS: &[OpSchema] = &[
            $( OpSchema {
                kind: OpKind::$kind,
                op_type: $name,
                dialect: Dialect::$fam,
                min_inputs: $imin,
                max_inputs: $imax,
                min_outputs: $omin,
                max_outputs: $omax,
                attrs: $attrs,
            }, )*
        ];

        /// The ops qc has shape or evaluation rules for but no schema: they have a kind, so rules
        /// are chosen by kind, but their arity and attributes are not checked by the verifier.
        /// Giving one a schema moves its row to [`SCHEMAS`].
        pub static UNCHECKED: &[(OpKind, Dialect, &str)] = &[
            $( (OpKind::$ukind, Dialect::$ufam, $uname), )*
        ];
    };
}

known_ops! {
    schemas {
    Abs Onnx "Abs" (1, 1) (1, 1) "consumed_inputs:I";
    Acos Onnx "Acos" (1, 1) (1, 1) "";
    Add Onnx "Add" (2, 2) (1, 1) "axis:i broadcast:i consumed_inputs:I";
    And Onnx "And" (2, 2) (1, 1) "axis:i broadcast:i";
    ArgMax Onnx "ArgMax" (1, 1) (1, 1) "axis:i keepdims:i select_last_index:i";
    ArgMin Onnx "ArgMin" (1, 1) (1, 1) "axis:i keepdims:i select_last_index:i";
    // Opset 23 (scaled dot-product attention); opset 24 adds input 6, `nonpad_kv_seqlen`.
    Attention Onnx "Attention" (3, 7) (1, 4) "is_causal:i kv_num_heads:i q_num_heads:i qk_matmul_output_mode:i scale:f softcap:f softmax_precision:i";
    AveragePool Onnx "AveragePool" (1, 1) (1, 1) "auto_pad:s ceil_mode:i count_include_pad:i dilations:I kernel_shape:I pads:I strides:I";
    BatchNormalization Onnx "BatchNormalization" (5, 5) (1, 5) "epsilon:f momentum:f spatial:i is_test:i consumed_inputs:I training_mode:i";
    Cast Onnx "Cast" (1, 1) (1, 1) "to:is saturate:i round_mode:s";
    Ceil Onnx "Ceil" (1, 1) (1, 1) "consumed_inputs:I";
    Clip Onnx "Clip" (1, 3) (1, 1) "min:f max:f consumed_inputs:I";
    Concat Onnx "Concat" (1, N) (1, 1) "axis:i";
    Constant Onnx "Constant" (0, 0) (1, 1) "value:t sparse_value:p value_float:f value_floats:F value_int:i value_ints:I value_string:s value_strings:S";
    ConstantOfShape Onnx "ConstantOfShape" (1, 1) (1, 1) "value:t";
    Conv Onnx "Conv" (2, 3) (1, 1) "auto_pad:s dilations:I group:i kernel_shape:I pads:I strides:I";
    ConvInteger Onnx "ConvInteger" (2, 4) (1, 1) "auto_pad:s dilations:I group:i kernel_shape:I pads:I strides:I";
    ConvTranspose Onnx "ConvTranspose" (2, 3) (1, 1) "auto_pad:s dilations:I group:i kernel_shape:I output_padding:I output_shape:I pads:I strides:I";
    DepthToSpace Onnx "DepthToSpace" (1, 1) (1, 1) "blocksize:i mode:s";
    DequantizeLinear Onnx "DequantizeLinear" (2, 3) (1, 1) "axis:i block_size:i output_dtype:i";
    DynamicQuantizeLinear Onnx "DynamicQuantizeLinear" (1, 1) (3, 3) "";
    Div Onnx "Div" (2, 2) (1, 1) "axis:i broadcast:i consumed_inputs:I";
    Dropout Onnx "Dropout" (1, 3) (1, 2) "ratio:f is_test:i seed:i consumed_inputs:I";
    Elu Onnx "Elu" (1, 1) (1, 1) "alpha:f consumed_inputs:I";
    Equal Onnx "Equal" (2, 2) (1, 1) "axis:i broadcast:i";
    Erf Onnx "Erf" (1, 1) (1, 1) "";
    Exp Onnx "Exp" (1, 1) (1, 1) "consumed_inputs:I";
    Expand Onnx "Expand" (2, 2) (1, 1) "";
    Flatten Onnx "Flatten" (1, 1) (1, 1) "axis:i";
    Floor Onnx "Floor" (1, 1) (1, 1) "consumed_inputs:I";
    Gather Onnx "Gather" (2, 2) (1, 1) "axis:i";
    Gelu Onnx "Gelu" (1, 1) (1, 1) "approximate:s";
    Gemm Onnx "Gemm" (2, 3) (1, 1) "alpha:f beta:f transA:i transB:i broadcast:i";
    GlobalAveragePool Onnx "GlobalAveragePool" (1, 1) (1, 1) "";
    GlobalMaxPool Onnx "GlobalMaxPool" (1, 1) (1, 1) "";
    Greater Onnx "Greater" (2, 2) (1, 1) "axis:i broadcast:i";
    HardSigmoid Onnx "HardSigmoid" (1, 1) (1, 1) "alpha:f beta:f consumed_inputs:I";
    HardSwish Onnx "HardSwish" (1, 1) (1, 1) "";
    Identity Onnx "Identity" (1, 1) (1, 1) "";
    If Onnx "If" (1, 1) (1, N) "then_branch:g else_branch:g";
    InstanceNormalization Onnx "InstanceNormalization" (3, 3) (1, 1) "epsilon:f consumed_inputs:I";
    LayerNormalization Onnx "LayerNormalization" (2, 3) (1, 3) "axis:i epsilon:f stash_type:i";
    LeakyRelu Onnx "LeakyRelu" (1, 1) (1, 1) "alpha:f consumed_inputs:I";
    Less Onnx "Less" (2, 2) (1, 1) "axis:i broadcast:i";
    Log Onnx "Log" (1, 1) (1, 1) "consumed_inputs:I";
    Loop Onnx "Loop" (2, N) (1, N) "body:g";
    LRN Onnx "LRN" (1, 1) (1, 1) "alpha:f beta:f bias:f size:i";
    MatMul Onnx "MatMul" (2, 2) (1, 1) "";
    MatMulInteger Onnx "MatMulInteger" (2, 4) (1, 1) "";
    Max Onnx "Max" (1, N) (1, 1) "consumed_inputs:I";
    MaxPool Onnx "MaxPool" (1, 1) (1, 2) "auto_pad:s ceil_mode:i dilations:I kernel_shape:I pads:I storage_order:i strides:I";
    Mean Onnx "Mean" (1, N) (1, 1) "consumed_inputs:I";
    Min Onnx "Min" (1, N) (1, 1) "consumed_inputs:I";
    Mul Onnx "Mul" (2, 2) (1, 1) "axis:i broadcast:i consumed_inputs:I";
    Neg Onnx "Neg" (1, 1) (1, 1) "consumed_inputs:I";
    Not Onnx "Not" (1, 1) (1, 1) "";
    Pad Onnx "Pad" (1, 4) (1, 1) "mode:s pads:I paddings:I value:f";
    Pow Onnx "Pow" (2, 2) (1, 1) "axis:i broadcast:i";
    PRelu Onnx "PRelu" (2, 2) (1, 1) "consumed_inputs:I";
    QLinearConv Onnx "QLinearConv" (8, 9) (1, 1) "auto_pad:s dilations:I group:i kernel_shape:I pads:I strides:I";
    QLinearMatMul Onnx "QLinearMatMul" (8, 8) (1, 1) "";
    QuantizeLinear Onnx "QuantizeLinear" (2, 3) (1, 1) "axis:i block_size:i output_dtype:i saturate:i precision:i";
    Reciprocal Onnx "Reciprocal" (1, 1) (1, 1) "consumed_inputs:I";
    ReduceMax Onnx "ReduceMax" (1, 2) (1, 1) "axes:I keepdims:i noop_with_empty_axes:i";
    ReduceMean Onnx "ReduceMean" (1, 2) (1, 1) "axes:I keepdims:i noop_with_empty_axes:i";
    ReduceMin Onnx "ReduceMin" (1, 2) (1, 1) "axes:I keepdims:i noop_with_empty_axes:i";
    ReduceSum Onnx "ReduceSum" (1, 2) (1, 1) "axes:I keepdims:i noop_with_empty_axes:i";
    Relu Onnx "Relu" (1, 1) (1, 1) "consumed_inputs:I";
    Reshape Onnx "Reshape" (1, 2) (1, 1) "shape:I allowzero:i consumed_inputs:I";
    Resize Onnx "Resize" (1, 4) (1, 1) "antialias:i axes:I coordinate_transformation_mode:s cubic_coeff_a:f exclude_outside:i extrapolation_value:f keep_aspect_ratio_policy:s mode:s nearest_mode:s";
    Round Onnx "Round" (1, 1) (1, 1) "";
    // onnxruntime's RMS normalisation, which it registers in the default domain.
    SimplifiedLayerNormalization Onnx "SimplifiedLayerNormalization" (2, 3) (1, 2) "axis:i epsilon:f stash_type:i";
    Scan Onnx "Scan" (1, N) (1, N) "body:g num_scan_inputs:i scan_input_axes:I scan_input_directions:I scan_output_axes:I scan_output_directions:I directions:I";
    Selu Onnx "Selu" (1, 1) (1, 1) "alpha:f gamma:f consumed_inputs:I";
    Shape Onnx "Shape" (1, 1) (1, 1) "start:i end:i";
    Sigmoid Onnx "Sigmoid" (1, 1) (1, 1) "consumed_inputs:I";
    Sign Onnx "Sign" (1, 1) (1, 1) "";
    Slice Onnx "Slice" (1, 5) (1, 1) "starts:I ends:I axes:I";
    Softmax Onnx "Softmax" (1, 1) (1, 1) "axis:i";
    Softplus Onnx "Softplus" (1, 1) (1, 1) "";
    SpaceToDepth Onnx "SpaceToDepth" (1, 1) (1, 1) "blocksize:i";
    Split Onnx "Split" (1, 2) (1, N) "axis:i split:I num_outputs:i";
    Sqrt Onnx "Sqrt" (1, 1) (1, 1) "consumed_inputs:I";
    Squeeze Onnx "Squeeze" (1, 2) (1, 1) "axes:I";
    Sub Onnx "Sub" (2, 2) (1, 1) "axis:i broadcast:i consumed_inputs:I";
    Sum Onnx "Sum" (1, N) (1, 1) "consumed_inputs:I";
    Tanh Onnx "Tanh" (1, 1) (1, 1) "consumed_inputs:I";
    Tile Onnx "Tile" (2, 3) (1, 1) "";
    TopK Onnx "TopK" (1, 2) (2, 2) "axis:i k:i largest:i sorted:i";
    Transpose Onnx "Transpose" (1, 1) (1, 1) "perm:I";
    Unsqueeze Onnx "Unsqueeze" (1, 2) (1, 1) "axes:I";
    Upsample Onnx "Upsample" (1, 2) (1, 1) "height_scale:f width_scale:f mode:s scales:F";
    Where Onnx "Where" (3, 3) (1, 1) "";
    // QONNX custom ops (research/qonnx.md).
    Quant Qonnx "Quant" (4, 4) (1, 1) "signed:i narrow:i rounding_mode:s";
    IntQuant Qonnx "IntQuant" (4, 4) (1, 1) "signed:i narrow:i rounding_mode:s";
    BipolarQuant Qonnx "BipolarQuant" (2, 2) (1, 1) "";
    Trunc Qonnx "Trunc" (5, 6) (1, 1) "rounding_mode:s signed:i narrow:i";
    MultiThreshold Qonnx "MultiThreshold" (2, 2) (1, 1) "out_dtype:s out_scale:f out_bias:f data_layout:s";
    FloatQuant Qonnx "FloatQuant" (5, 6) (1, 1) "has_inf:i has_nan:i has_subnormal:i rounding_mode:s saturation:i";
    // onnxruntime's contrib ops (com.microsoft), as its offline optimizer writes them.
    FusedConv Microsoft "FusedConv" (2, 4) (1, 1) "auto_pad:s dilations:I group:i kernel_shape:I pads:I strides:I activation:s activation_params:F";
    FusedMatMul Microsoft "FusedMatMul" (2, 2) (1, 1) "alpha:f transA:i transB:i transBatchA:i transBatchB:i";
    FusedGemm Microsoft "FusedGemm" (2, 3) (1, 1) "alpha:f beta:f transA:i transB:i activation:s activation_alpha:f activation_beta:f activation_gamma:f";
    MsGelu Microsoft "Gelu" (1, 1) (1, 1) "";
    FastGelu Microsoft "FastGelu" (1, 2) (1, 1) "";
    BiasGelu Microsoft "BiasGelu" (2, 2) (1, 1) "";
    QuickGelu Microsoft "QuickGelu" (1, 1) (1, 1) "alpha:f";
    BiasAdd Microsoft "BiasAdd" (3, 3) (1, 1) "";
    SkipLayerNormalization Microsoft "SkipLayerNormalization" (3, 5) (1, 4) "epsilon:f";
    SkipSimplifiedLayerNormalization Microsoft "SkipSimplifiedLayerNormalization" (3, 4) (1, 4) "epsilon:f";
    QLinearAdd Microsoft "QLinearAdd" (7, 8) (1, 1) "";
    QLinearMul Microsoft "QLinearMul" (7, 8) (1, 1) "";
    QLinearSigmoid Microsoft "QLinearSigmoid" (4, 5) (1, 1) "";
    QLinearLeakyRelu Microsoft "QLinearLeakyRelu" (4, 5) (1, 1) "alpha:f";
    QLinearGlobalAveragePool Microsoft "QLinearGlobalAveragePool" (5, 5) (1, 1) "channels_last:i";
    QLinearAveragePool Microsoft "QLinearAveragePool" (4, 5) (1, 1) "auto_pad:s ceil_mode:i count_include_pad:i kernel_shape:I pads:I strides:I channels_last:i";
    QLinearConcat Microsoft "QLinearConcat" (5, N) (1, 1) "axis:i";
    QLinearSoftmax Microsoft "QLinearSoftmax" (4, 5) (1, 1) "axis:i opset:i";
    QGemm Microsoft "QGemm" (6, 9) (1, 1) "alpha:f transA:i transB:i";
    MsQuantizeLinear Microsoft "QuantizeLinear" (2, 3) (1, 1) "axis:i";
    MsDequantizeLinear Microsoft "DequantizeLinear" (2, 3) (1, 1) "axis:i";
    // Default-domain ops of newer opsets that the fusions write: Mish (18), RMSNormalization
    // (23), Swish (24).
    Mish Onnx "Mish" (1, 1) (1, 1) "";
    RmsNormalization Onnx "RMSNormalization" (2, 2) (1, 1) "axis:i epsilon:f stash_type:i";
    Swish Onnx "Swish" (1, 1) (1, 1) "alpha:f";
    }
    unchecked {
    Sin Onnx "Sin";
    Cos Onnx "Cos";
    Tan Onnx "Tan";
    Asin Onnx "Asin";
    Atan Onnx "Atan";
    Sinh Onnx "Sinh";
    Cosh Onnx "Cosh";
    Asinh Onnx "Asinh";
    Acosh Onnx "Acosh";
    Atanh Onnx "Atanh";
    Softsign Onnx "Softsign";
    Mod Onnx "Mod";
    Or Onnx "Or";
    Xor Onnx "Xor";
    GreaterOrEqual Onnx "GreaterOrEqual";
    LessOrEqual Onnx "LessOrEqual";
    LpPool Onnx "LpPool";
    GlobalLpPool Onnx "GlobalLpPool";
    Einsum Onnx "Einsum";
    ReduceL1 Onnx "ReduceL1";
    ReduceL2 Onnx "ReduceL2";
    ReduceLogSum Onnx "ReduceLogSum";
    ReduceLogSumExp Onnx "ReduceLogSumExp";
    ReduceProd Onnx "ReduceProd";
    ReduceSumSquare Onnx "ReduceSumSquare";
    GatherElements Onnx "GatherElements";
    Size Onnx "Size";
    Range Onnx "Range";
    LogSoftmax Onnx "LogSoftmax";
    Hardmax Onnx "Hardmax";
    Trilu Onnx "Trilu";
    Lstm Onnx "LSTM";
    Gru Onnx "GRU";
    Rnn Onnx "RNN";
    ScatterND Onnx "ScatterND";
    ScatterElements Onnx "ScatterElements";
    Scatter Onnx "Scatter";
    CumSum Onnx "CumSum";
    NonZero Onnx "NonZero";
    Stft Onnx "STFT";
    DynamicQuantizeLstm Microsoft "DynamicQuantizeLSTM";
    // qonnx's channels-last wrappers of the standard ops.
    ChannelsLastConv ChannelsLast "Conv";
    ChannelsLastMaxPool ChannelsLast "MaxPool";
    ChannelsLastBatchNormalization ChannelsLast "BatchNormalization";
    }
}

impl OpKind {
    /// The kind for `op_type` in `domain` (`""` for the default domain).
    pub fn resolve(domain: &str, op_type: &str) -> OpKind {
        type ByName = HashMap<&'static str, Vec<(OpKind, Dialect)>>;
        static BY_NAME: OnceLock<ByName> = OnceLock::new();
        let by_name = BY_NAME.get_or_init(|| {
            let mut m: ByName = HashMap::new();
            for s in SCHEMAS {
                m.entry(s.op_type).or_default().push((s.kind, s.dialect));
            }
            for &(kind, dialect, name) in UNCHECKED {
                m.entry(name).or_default().push((kind, dialect));
            }
            m
        });
        let default = is_default_domain(domain);
        let qonnx = QONNX_DOMAINS.contains(&domain);
        by_name
            .get(op_type)
            .and_then(|cands| {
                cands.iter().find(|(_, dialect)| match dialect {
                    Dialect::Onnx => default,
                    Dialect::Qonnx => qonnx || domain.is_empty(),
                    Dialect::Microsoft => domain == MICROSOFT_DOMAIN,
                    Dialect::ChannelsLast => domain == CHANNELS_LAST_DOMAIN,
                })
            })
            .map_or(OpKind::Custom, |&(kind, _)| kind)
    }

    pub fn schema(self) -> Option<&'static OpSchema> {
        // The table is in the order of the enum, so the discriminant is the index.
        SCHEMAS.get(self as usize).filter(|s| s.kind == self)
    }

    /// The op type this kind is written as (`"custom"` for [`OpKind::Custom`]).
    pub fn name(self) -> &'static str {
        match self.schema() {
            Some(s) => s.op_type,
            None => UNCHECKED
                .get((self as usize).wrapping_sub(SCHEMAS.len()))
                .filter(|(k, _, _)| *k == self)
                .map_or("custom", |(_, _, name)| name),
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_attr_spec_parses() {
        for s in SCHEMAS {
            for pair in s.attrs.split_whitespace() {
                let (_, kinds) = pair.split_once(':').expect(s.op_type);
                assert!(
                    !kinds.is_empty() && kinds.chars().all(|c| kind_of_letter(c).is_some()),
                    "{}",
                    s.op_type
                );
            }
            assert!(s.min_inputs <= s.max_inputs && s.min_outputs <= s.max_outputs, "{}", s.op_type);
            assert_eq!(s.kind.schema().map(|x| x.op_type), Some(s.op_type));
        }
    }

    #[test]
    fn domains_resolve() {
        assert_eq!(OpKind::resolve("", "Conv"), OpKind::Conv);
        assert_eq!(OpKind::resolve("ai.onnx", "Conv"), OpKind::Conv);
        assert_eq!(OpKind::resolve("com.example", "Conv"), OpKind::Custom);
        assert_eq!(OpKind::resolve("onnx.brevitas", "Quant"), OpKind::Quant);
        assert_eq!(OpKind::resolve("", "Quant"), OpKind::Quant);
        assert_eq!(OpKind::resolve("qonnx.custom_op.general", "Relu"), OpKind::Custom);
        assert_eq!(OpKind::resolve("com.microsoft", "FusedConv"), OpKind::FusedConv);
        assert_eq!(OpKind::resolve("com.microsoft", "Gelu"), OpKind::MsGelu);
        assert_eq!(OpKind::resolve("", "Gelu"), OpKind::Gelu);
        assert_eq!(OpKind::resolve("", "FusedConv"), OpKind::Custom);
        assert_eq!(OpKind::resolve("com.microsoft", "Conv"), OpKind::Custom);
        assert_eq!(OpKind::resolve("", "LSTM"), OpKind::Lstm);
        assert_eq!(OpKind::resolve("com.microsoft", "LSTM"), OpKind::Custom);
        assert_eq!(OpKind::resolve(CHANNELS_LAST_DOMAIN, "Conv"), OpKind::ChannelsLastConv);
        assert_eq!(OpKind::resolve(CHANNELS_LAST_DOMAIN, "Relu"), OpKind::Custom);
        assert_eq!(OpKind::resolve("", "Frobnicate"), OpKind::Custom);
    }

    #[test]
    fn unchecked_kinds_follow_the_schemas_and_have_names() {
        for (i, &(kind, _, name)) in UNCHECKED.iter().enumerate() {
            assert_eq!(kind as usize, SCHEMAS.len() + i, "{name}");
            assert!(kind.schema().is_none(), "{name}");
            assert_eq!(kind.name(), name);
        }
        assert_eq!(OpKind::Custom as usize, SCHEMAS.len() + UNCHECKED.len());
        assert_eq!(OpKind::Custom.to_string(), "custom");
        assert_eq!(OpKind::Lstm.to_string(), "LSTM");
    }

    #[test]
    fn typed_views_read_attributes_and_defaults() {
        let op = Op::new("Conv", None)
            .with_attr("group", AttrValue::Int(2))
            .with_attr("strides", AttrValue::Ints(vec![2, 2]));
        let c = op.conv().unwrap();
        assert_eq!(c.group, 2);
        assert_eq!(c.strides.as_deref(), Some(&[2, 2][..]));
        assert_eq!(c.auto_pad, "NOTSET");
        let bad = Op::new("Conv", None).with_attr("group", AttrValue::Float(2.0));
        assert_eq!(bad.conv().unwrap_err().expected, "int");
    }
}
