//! The op table: for every [`OpKind`], the rules that serve it.
//!
//! One row per kind names the op's shape-inference rule, its evaluator and the family it lowers
//! as. Shape inference ([`crate::shape::infer_op`]), the evaluator ([`crate::eval::eval_op`]) and
//! lowering ([`crate::lower::Family::of`]) all look their op up here by kind: the row is found by
//! indexing with the kind's discriminant, never by comparing names. An op's name and domain are
//! resolved to its kind once, when the op is built ([`qc_ir::Op::new`]); a name qc does not know
//! is [`OpKind::Custom`], which has no row, so shape inference reports it as
//! [`crate::shape::ShapeError::Unsupported`] and the evaluator as
//! [`crate::eval::EvalError::UnsupportedOp`].
//!
//! The table is one list rather than a table per area so that what qc can do with an op is read
//! in one place, and so that the gaps (an op with a schema and no evaluator, say) are a column
//! away rather than a search through several match statements; [`schema_gaps`] lists them, and a
//! test holds the list. Rows are
//! in the order of [`OpKind`] and there is exactly one per kind, which is checked when the crate
//! is compiled, so a new kind without a row does not build.
//!
//! A rule named in a row may serve several kinds (the element-wise rules serve every
//! element-wise op): it matches on the kind to pick what differs, and returns `None` for a kind
//! it does not serve, which the tests rule out for every row.
//!
//! Adding an op: its kind (a row of `known_ops!` in `ir/src/op.rs`, with a schema when its
//! arity and attributes should be checked), a row here, and the functions the row names.
//!
//! A `check` column, naming the `qc check` rule that looks at an op, goes after `lower` in
//! [`OpRules`] and in each row.

use qc_ir::{Op, OpKind};

use crate::eval::{self, Array, EvalError, Ins};
use crate::lower::Family::{self, *};
use crate::shape::{self, Cx, R, TypeFact};

/// A shape-inference rule: the output facts of the op in `cx`, `Err(Fail::Unknown)` when its
/// inputs are not known well enough, `None` when the rule does not serve the op's kind.
pub(crate) type ShapeFn = fn(&Cx<'_>) -> Option<R<Vec<Option<TypeFact>>>>;

/// An evaluator: the op's outputs from its inputs under the default-domain opset; `Ok(None)` when
/// the function does not serve the op's kind.
pub(crate) type EvalFn = fn(&Op, &Ins<'_>, i64) -> Result<Option<Vec<Array>>, EvalError>;

/// How an area serves an op.
#[derive(Clone, Copy)]
pub(crate) enum Rule<F> {
    /// By this function.
    By(F),
    /// Not at all: a gap.
    No,
    /// Through the op's bodies (`If`, `Loop`, `Scan`): shape inference types them with
    /// [`crate::shape::control`] as `infer-shapes` walks the bodies, and the graph runner runs
    /// them; neither goes through the per-op entry points.
    Bodies,
}

use Rule::{Bodies, By, No};

impl<F> Rule<F> {
    /// Whether the area has any rule for the op.
    pub(crate) fn is_some(&self) -> bool {
        !matches!(self, No)
    }
}

/// What qc can do with one kind of op.
pub(crate) struct OpRules {
    pub kind: OpKind,
    pub shape: Rule<ShapeFn>,
    pub eval: Rule<EvalFn>,
    /// The family `lower-to-loops` lowers the op as; `None` for ops with no loop nest.
    pub lower: Option<Family>,
}

/// The ops with a schema (in [`qc_ir::SCHEMAS`]) that have no shape rule, and those that have no
/// evaluator, in the order of the table.
pub fn schema_gaps() -> (Vec<OpKind>, Vec<OpKind>) {
    let without = |has: &dyn Fn(&OpRules) -> bool| -> Vec<OpKind> {
        qc_ir::SCHEMAS.iter().map(|s| s.kind).filter(|&k| !rules(k).is_some_and(has)).collect()
    };
    (without(&|r| r.shape.is_some()), without(&|r| r.eval.is_some()))
}

/// The rules for `kind`; `None` for [`OpKind::Custom`].
pub(crate) fn rules(kind: OpKind) -> Option<&'static OpRules> {
    ROWS.get(kind as usize)
}

static ROWS: &[OpRules] = TABLE;

macro_rules! op_table {
    ($( $kind:ident: $shape:expr, $eval:expr, $lower:expr; )*) => {
        const TABLE: &[OpRules] = &[
            $( OpRules { kind: OpKind::$kind, shape: $shape, eval: $eval, lower: $lower }, )*
        ];
    };
}

// One row per kind, in the order of `OpKind`: shape rule, evaluator, lowering family.
op_table! {
    Abs: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Acos: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Add: By(shape::elementwise::infer), By(eval::elementwise::eval), Some(Elementwise);
    And: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    ArgMax: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ArgMin: By(shape::reduce::infer), By(eval::reduce::eval), None;
    Attention: By(shape::attention::infer), By(eval::attention::eval), Some(Attention);
    AveragePool: By(shape::conv::infer), By(eval::nn::eval), Some(Pool);
    BatchNormalization: By(shape::norm::infer), By(eval::reduce::eval), None;
    Cast: By(shape::misc::infer), By(eval::elementwise::eval), None;
    Ceil: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Clip: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Concat: By(shape::slicing::infer), By(eval::shape_ops::eval), None;
    Constant: By(shape::producers::infer), By(eval::shape_ops::eval), None;
    ConstantOfShape: By(shape::producers::infer), By(eval::shape_ops::eval), None;
    Conv: By(shape::conv::infer), By(eval::nn::eval), Some(Conv);
    ConvInteger: By(shape::conv::infer), By(eval::nn::eval), Some(Conv);
    ConvTranspose: By(shape::conv::infer), By(eval::nn::eval), Some(ConvTranspose);
    DepthToSpace: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    DequantizeLinear: By(shape::quant::infer), By(eval::quant::eval), None;
    DynamicQuantizeLinear: By(shape::scatter::infer), By(eval::scatter::eval), None;
    Div: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Dropout: By(shape::misc::infer), By(eval::shape_ops::eval), None;
    Elu: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Equal: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Erf: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Exp: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Expand: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    Flatten: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    Floor: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Gather: By(shape::slicing::infer), By(eval::shape_ops::eval), None;
    Gelu: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Gemm: By(shape::matmul::infer), By(eval::nn::eval), Some(Gemm);
    GlobalAveragePool: By(shape::conv::infer), By(eval::nn::eval), Some(Pool);
    GlobalMaxPool: By(shape::conv::infer), By(eval::nn::eval), Some(Pool);
    Greater: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    HardSigmoid: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    HardSwish: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Identity: By(shape::elementwise::infer), By(eval::shape_ops::eval), None;
    If: Bodies, Bodies, None;
    InstanceNormalization: By(shape::norm::infer), By(eval::reduce::eval), None;
    LayerNormalization: By(shape::norm::infer), By(eval::reduce::eval), None;
    LeakyRelu: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Less: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Log: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Loop: Bodies, Bodies, None;
    LRN: By(shape::norm::infer), By(eval::reduce::eval), None;
    MatMul: By(shape::matmul::infer), By(eval::nn::eval), Some(MatMul);
    MatMulInteger: By(shape::matmul::infer), By(eval::nn::eval), Some(MatMul);
    Max: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    MaxPool: By(shape::conv::infer), By(eval::nn::eval), Some(Pool);
    Mean: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Min: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Mul: By(shape::elementwise::infer), By(eval::elementwise::eval), Some(Elementwise);
    Neg: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Not: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Pad: By(shape::slicing::infer), By(eval::shape_ops::eval), None;
    Pow: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    PRelu: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    QLinearConv: By(shape::conv::infer), By(eval::nn::eval), Some(Conv);
    QLinearMatMul: By(shape::matmul::infer), By(eval::nn::eval), Some(MatMul);
    QuantizeLinear: By(shape::quant::infer), By(eval::quant::eval), None;
    Reciprocal: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    ReduceMax: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceMean: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceMin: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceSum: By(shape::reduce::infer), By(eval::reduce::eval), None;
    Relu: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Reshape: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    Resize: By(shape::resize::infer), By(eval::resize::eval), None;
    Round: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    SimplifiedLayerNormalization: By(shape::norm::infer), By(eval::reduce::eval), None;
    Scan: Bodies, Bodies, None;
    Selu: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Shape: By(shape::producers::infer), By(eval::shape_ops::eval), None;
    Sigmoid: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Sign: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Slice: By(shape::slicing::infer), By(eval::shape_ops::eval), None;
    Softmax: By(shape::misc::infer), By(eval::reduce::eval), None;
    Softplus: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    SpaceToDepth: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    Split: By(shape::slicing::infer), By(eval::shape_ops::eval), None;
    Sqrt: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Squeeze: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    Sub: By(shape::elementwise::infer), By(eval::elementwise::eval), Some(Elementwise);
    Sum: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Tanh: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Tile: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    TopK: By(shape::reduce::infer), By(eval::reduce::eval), None;
    Transpose: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    Unsqueeze: By(shape::reshape::infer), By(eval::shape_ops::eval), None;
    Upsample: By(shape::resize::infer), By(eval::resize::eval), None;
    Where: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Quant: By(shape::quant::infer_qonnx), By(eval::quant::qonnx), None;
    IntQuant: By(shape::quant::infer_qonnx), By(eval::quant::qonnx), None;
    BipolarQuant: By(shape::quant::infer_qonnx), By(eval::quant::qonnx), None;
    Trunc: By(shape::quant::infer_qonnx), By(eval::quant::qonnx), None;
    MultiThreshold: By(shape::quant::infer_qonnx), By(eval::quant::qonnx), None;
    FloatQuant: By(shape::quant::infer_qonnx), By(eval::quant::qonnx), None;
    FusedConv: By(shape::microsoft::infer), By(eval::microsoft::eval), Some(Conv);
    FusedMatMul: By(shape::microsoft::infer), By(eval::microsoft::eval), Some(MatMul);
    FusedGemm: By(shape::microsoft::infer), By(eval::microsoft::eval), Some(Gemm);
    MsGelu: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    FastGelu: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    BiasGelu: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QuickGelu: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    BiasAdd: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    SkipLayerNormalization: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    SkipSimplifiedLayerNormalization: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QLinearAdd: By(shape::microsoft::infer), By(eval::microsoft::eval), Some(Elementwise);
    QLinearMul: By(shape::microsoft::infer), By(eval::microsoft::eval), Some(Elementwise);
    QLinearSigmoid: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QLinearLeakyRelu: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QLinearGlobalAveragePool: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QLinearAveragePool: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QLinearConcat: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QLinearSoftmax: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    QGemm: By(shape::microsoft::infer), By(eval::microsoft::eval), Some(Gemm);
    MsQuantizeLinear: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    MsDequantizeLinear: By(shape::microsoft::infer), By(eval::microsoft::eval), None;
    Mish: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    RmsNormalization: By(shape::norm::infer), By(eval::reduce::eval), None;
    Swish: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Sin: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Cos: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Tan: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Asin: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Atan: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Sinh: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Cosh: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Asinh: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Acosh: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Atanh: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Softsign: By(shape::elementwise::infer), No, None;
    Mod: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Or: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    Xor: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    GreaterOrEqual: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    LessOrEqual: By(shape::elementwise::infer), By(eval::elementwise::eval), None;
    LpPool: By(shape::conv::infer), No, None;
    GlobalLpPool: By(shape::conv::infer), No, None;
    Einsum: By(shape::matmul::infer), By(eval::nn::eval), None;
    ReduceL1: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceL2: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceLogSum: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceLogSumExp: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceProd: By(shape::reduce::infer), By(eval::reduce::eval), None;
    ReduceSumSquare: By(shape::reduce::infer), By(eval::reduce::eval), None;
    GatherElements: By(shape::slicing::infer), By(eval::shape_ops::eval), None;
    Size: By(shape::producers::infer), By(eval::shape_ops::eval), None;
    Range: By(shape::producers::infer), By(eval::shape_ops::eval), None;
    LogSoftmax: By(shape::misc::infer), By(eval::reduce::eval), None;
    Hardmax: By(shape::misc::infer), No, None;
    Trilu: By(shape::misc::infer), By(eval::shape_ops::eval), None;
    Lstm: By(shape::rnn::infer), By(eval::rnn::eval), Some(Recurrent);
    Gru: By(shape::rnn::infer), By(eval::rnn::eval), Some(Recurrent);
    Rnn: By(shape::rnn::infer), By(eval::rnn::eval), Some(Recurrent);
    ScatterND: By(shape::scatter::infer), By(eval::scatter::eval), None;
    ScatterElements: By(shape::scatter::infer), By(eval::scatter::eval), None;
    Scatter: By(shape::scatter::infer), By(eval::scatter::eval), None;
    CumSum: By(shape::scatter::infer), By(eval::scatter::eval), None;
    NonZero: By(shape::scatter::infer), By(eval::scatter::eval), None;
    Stft: By(shape::scatter::infer), By(eval::scatter::eval), None;
    DynamicQuantizeLstm: By(shape::rnn::infer), By(eval::rnn::eval_contrib), Some(Recurrent);
    ChannelsLastConv: By(shape::channels_last::infer), By(eval::channels_last::eval), Some(Conv);
    ChannelsLastMaxPool: By(shape::channels_last::infer), By(eval::channels_last::eval), Some(Pool);
    ChannelsLastBatchNormalization: By(shape::channels_last::infer), By(eval::channels_last::eval), None;
}

// The table has one row per kind, in the order of the enum, so a kind's discriminant is its row.
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].kind as usize == i, "the op table's rows must follow the order of OpKind");
        i += 1;
    }
    assert!(TABLE.len() == OpKind::Custom as usize, "every OpKind but Custom needs a row in the op table");
};

#[cfg(test)]
mod tests {
    use qc_ir::op::{CHANNELS_LAST_DOMAIN, Dialect, MICROSOFT_DOMAIN, QONNX_DOMAINS, UNCHECKED};

    use super::*;

    /// An op of `kind`, in a domain its kind resolves in.
    fn op_of(kind: OpKind) -> Op {
        let dialect = kind
            .schema()
            .map(|s| s.dialect)
            .or_else(|| UNCHECKED.iter().find(|u| u.0 == kind).map(|u| u.1))
            .unwrap_or_else(|| panic!("{kind:?} has neither a schema nor an UNCHECKED row"));
        let domain = match dialect {
            Dialect::Onnx => None,
            Dialect::Qonnx => Some(QONNX_DOMAINS[0]),
            Dialect::Microsoft => Some(MICROSOFT_DOMAIN),
            Dialect::ChannelsLast => Some(CHANNELS_LAST_DOMAIN),
        };
        let op = Op::new(kind.name(), domain.map(str::to_string));
        assert_eq!(op.kind(), kind, "{} in {domain:?}", kind.name());
        op
    }

    /// Every function a row names serves the row's kind: a shared rule that forgot a kind
    /// would otherwise leave it untyped or unevaluated without a test noticing.
    #[test]
    fn every_rule_serves_its_row() {
        for row in ROWS {
            let op = op_of(row.kind);
            if let By(rule) = row.shape {
                let cx = Cx { op: &op, ins: &[], opset: 22 };
                assert!(rule(&cx).is_some(), "the shape rule of {} does not serve it", row.kind);
            }
            if let By(rule) = row.eval {
                let served = !matches!(rule(&op, &Ins { v: &[] }, 22), Ok(None));
                assert!(served, "the evaluator of {} does not serve it", row.kind);
            }
        }
    }

    #[test]
    fn custom_ops_have_no_rules() {
        let op = Op::new("Frobnicate", None);
        assert_eq!(op.kind(), OpKind::Custom);
        assert!(rules(op.kind()).is_none());
        let e = shape::infer_op(&op, &[], 22).unwrap_err();
        assert!(matches!(e, shape::ShapeError::Unsupported { .. }), "{e:?}");
        let e = eval::eval_op(&op, &[], 22).unwrap_err();
        assert!(matches!(e, EvalError::UnsupportedOp { .. }), "{e:?}");
        // A known name in a domain that does not define it is just as unknown.
        let op = Op::new("Conv", Some("com.example".into()));
        assert!(matches!(shape::infer_op(&op, &[], 22), Err(shape::ShapeError::Unsupported { .. })));
        assert!(matches!(eval::eval_op(&op, &[], 22), Err(EvalError::UnsupportedOp { .. })));
    }
}
