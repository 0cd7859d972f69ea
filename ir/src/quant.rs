//! One quantization model for every dialect a model may come in.
//!
//! A [`QuantSpec`] says how the numbers of a value are represented: the datatype (QONNX's
//! vocabulary), the scale and zero point, and where the description came from. The passes that
//! fill it in (`absorb-quant`, `infer-datatypes`) come with the quantization work; the graph
//! carries the field from the start so that every later stage sees one representation.

/// A datatype in QONNX's vocabulary (research/qonnx.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `INT<bits>` or `UINT<bits>`.
    Int {
        bits: u32,
        signed: bool,
    },
    /// `{-1, +1}`.
    Bipolar,
    /// `{-1, 0, +1}`.
    Ternary,
    /// `{0, 1}`.
    Binary,
    /// `FIXED<w,i>`: `w` bits in all, `i` of them integer bits.
    Fixed {
        w: u32,
        i: u32,
    },
    /// `SCALEDINT<bits>`: an integer with a non-power-of-two scale.
    ScaledInt {
        bits: u32,
    },
    /// `FLOAT<e,m,bias>`: a minifloat.
    Float {
        e: u32,
        m: u32,
        bias: i32,
    },
    F32,
    F16,
}

/// A scale or zero point: one number for the tensor, or one per slice along an axis.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantParam {
    PerTensor(f64),
    PerAxis { axis: i64, values: Vec<f64> },
}

/// How values are rounded onto the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round half to even (ONNX QuantizeLinear, QONNX `ROUND`).
    HalfEven,
    /// Round half away from zero.
    HalfAway,
    Ceil,
    Floor,
    /// Towards zero.
    Trunc,
}

/// Where a quantization description was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantOrigin {
    QonnxQuant,
    QonnxBipolarQuant,
    QonnxTrunc,
    QonnxFloatQuant,
    OnnxQdq,
    OnnxQLinear,
    AccessAttributes,
    ZigZagAttributes,
}

/// How the numbers of one value are represented.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantSpec {
    pub dtype: DataType,
    pub scale: Option<QuantParam>,
    pub zero_point: Option<QuantParam>,
    /// The most negative code is unused (symmetric range).
    pub narrow: bool,
    pub rounding: Rounding,
    pub origin: QuantOrigin,
}
