//! One quantization model for every dialect a model may come in.
//!
//! A [`QuantSpec`] says how the numbers of a value are represented: the datatype (QONNX's
//! vocabulary, [`DataType`]), the scale and zero point, the rounding, and where the description
//! came from. The passes `absorb-quant` (quantizer ops, QDQ, QLinear ops, ACCESS and ZigZag node
//! attributes) and `infer-datatypes` (QONNX's propagation rules) fill it in, so that every later
//! stage (`qc cost`, `qc check`, lowering to loop nests) reads one representation.

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

/// A scale or zero point: one number for the tensor, one per slice along an axis, or one per
/// block of `block_size` elements along an axis (ONNX's blocked quantization, opset 21).
#[derive(Clone, Debug, PartialEq)]
pub enum QuantParam {
    PerTensor(f64),
    PerAxis {
        axis: i64,
        values: Vec<f64>,
    },
    /// `dims` is the shape of the parameter tensor (the quantized tensor's shape with the axis
    /// divided by `block_size`, rounded up); `values` are in row-major order.
    Blocked {
        axis: i64,
        block_size: i64,
        dims: Vec<i64>,
        values: Vec<f64>,
    },
}

impl QuantParam {
    /// All the numbers, whatever the granularity.
    pub fn values(&self) -> &[f64] {
        match self {
            QuantParam::PerTensor(x) => std::slice::from_ref(x),
            QuantParam::PerAxis { values, .. } | QuantParam::Blocked { values, .. } => values,
        }
    }

    /// Whether every number equals `x`.
    pub fn all_eq(&self, x: f64) -> bool {
        self.values().iter().all(|v| *v == x)
    }

    /// Whether every number is a power of two (a fixed-point scale).
    pub fn all_pow2(&self) -> bool {
        self.values().iter().all(|v| *v > 0.0 && v.is_finite() && v.log2().fract() == 0.0)
    }
}

/// How values are rounded onto the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round half to even (ONNX QuantizeLinear, QONNX `ROUND` and `HALF_EVEN`).
    HalfEven,
    /// Round half away from zero (QONNX `HALF_UP`).
    HalfAway,
    /// Round half towards zero (QONNX `HALF_DOWN`).
    HalfTowardZero,
    /// QONNX `CEIL`.
    Ceil,
    /// QONNX `FLOOR`.
    Floor,
    /// Towards zero (QONNX `DOWN`, Brevitas `ROUND_TO_ZERO`).
    Trunc,
    /// Away from zero (QONNX `UP`).
    AwayFromZero,
}

impl Rounding {
    /// The rounding a QONNX `rounding_mode` string names (case-insensitive), as qonnx's
    /// `resolve_rounding_mode` reads it.
    pub fn from_qonnx(mode: &str) -> Option<Rounding> {
        Some(match mode.to_ascii_uppercase().as_str() {
            "ROUND" | "HALF_EVEN" => Rounding::HalfEven,
            "CEIL" => Rounding::Ceil,
            "FLOOR" => Rounding::Floor,
            "UP" => Rounding::AwayFromZero,
            "DOWN" | "ROUND_TO_ZERO" => Rounding::Trunc,
            "HALF_UP" => Rounding::HalfAway,
            "HALF_DOWN" => Rounding::HalfTowardZero,
            _ => return None,
        })
    }

    /// Rounds `x` to an integer.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Rounding::HalfEven => x.round_ties_even(),
            Rounding::HalfAway => x.round(),
            Rounding::HalfTowardZero => x.signum() * (x.abs() - 0.5).ceil(),
            Rounding::Ceil => x.ceil(),
            Rounding::Floor => x.floor(),
            Rounding::Trunc => x.trunc(),
            Rounding::AwayFromZero => x.signum() * x.abs().ceil(),
        }
    }
}

/// Where a quantization description was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantOrigin {
    QonnxQuant,
    QonnxBipolarQuant,
    QonnxTrunc,
    QonnxFloatQuant,
    QonnxMultiThreshold,
    OnnxQdq,
    OnnxQLinear,
    /// ONNX `DynamicQuantizeLinear`: uint8 whose scale and zero point are computed at run time
    /// from the tensor's range (so the spec has neither).
    OnnxDynamic,
    AccessAttributes,
    ZigZagAttributes,
    /// A `finn_datatype` entry of the graph's `quantization_annotation` in the file.
    Annotation,
    /// Derived by `infer-datatypes` from the op and its inputs' datatypes (QONNX's rules: MAC
    /// results, identity-like ops, float defaults).
    Inferred,
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

/// The names of the roundings, as the textual IR and reports write them.
pub const ROUNDING_NAMES: [(Rounding, &str); 7] = [
    (Rounding::HalfEven, "half_even"),
    (Rounding::HalfAway, "half_away"),
    (Rounding::HalfTowardZero, "half_toward_zero"),
    (Rounding::Ceil, "ceil"),
    (Rounding::Floor, "floor"),
    (Rounding::Trunc, "trunc"),
    (Rounding::AwayFromZero, "away_from_zero"),
];

/// The names of the origins, as the textual IR and reports write them.
pub const ORIGIN_NAMES: [(QuantOrigin, &str); 12] = [
    (QuantOrigin::QonnxQuant, "qonnx_quant"),
    (QuantOrigin::QonnxBipolarQuant, "qonnx_bipolar_quant"),
    (QuantOrigin::QonnxTrunc, "qonnx_trunc"),
    (QuantOrigin::QonnxFloatQuant, "qonnx_float_quant"),
    (QuantOrigin::QonnxMultiThreshold, "qonnx_multi_threshold"),
    (QuantOrigin::OnnxQdq, "onnx_qdq"),
    (QuantOrigin::OnnxQLinear, "onnx_qlinear"),
    (QuantOrigin::OnnxDynamic, "onnx_dynamic"),
    (QuantOrigin::AccessAttributes, "access_attributes"),
    (QuantOrigin::ZigZagAttributes, "zigzag_attributes"),
    (QuantOrigin::Annotation, "annotation"),
    (QuantOrigin::Inferred, "inferred"),
];

impl Rounding {
    /// `half_even`, `half_away`, ... (see [`ROUNDING_NAMES`]).
    pub fn name(self) -> &'static str {
        ROUNDING_NAMES.iter().find(|(r, _)| *r == self).map_or("?", |x| x.1)
    }
}

impl QuantOrigin {
    /// `qonnx_quant`, `onnx_qdq`, ... (see [`ORIGIN_NAMES`]).
    pub fn name(self) -> &'static str {
        ORIGIN_NAMES.iter().find(|(o, _)| *o == self).map_or("?", |x| x.1)
    }
}

impl QuantSpec {
    /// A spec that says only the datatype (no scale or zero point).
    pub fn dtype_only(dtype: DataType, origin: QuantOrigin) -> QuantSpec {
        QuantSpec {
            dtype,
            scale: None,
            zero_point: None,
            narrow: false,
            rounding: Rounding::HalfEven,
            origin,
        }
    }
}

impl DataType {
    /// `INT<bits>` or `UINT<bits>`, with QONNX's normalisation: `UINT1` is [`DataType::Binary`].
    pub fn int(bits: u32, signed: bool) -> DataType {
        if bits == 1 && !signed { DataType::Binary } else { DataType::Int { bits, signed } }
    }

    /// QONNX's canonical name: `INT8`, `UINT4`, `BINARY`, `BIPOLAR`, `TERNARY`, `FIXED<8,3>`,
    /// `SCALEDINT<8>`, `FLOAT<4,3,7>`, `FLOAT32`, `FLOAT16`.
    pub fn name(&self) -> String {
        match *self {
            DataType::Int { bits: 1, signed: false } | DataType::Binary => "BINARY".into(),
            DataType::Int { bits, signed: true } => format!("INT{bits}"),
            DataType::Int { bits, signed: false } => format!("UINT{bits}"),
            DataType::Bipolar => "BIPOLAR".into(),
            DataType::Ternary => "TERNARY".into(),
            DataType::Fixed { w, i } => format!("FIXED<{w},{i}>"),
            DataType::ScaledInt { bits } => format!("SCALEDINT<{bits}>"),
            DataType::Float { e, m, bias } => format!("FLOAT<{e},{m},{bias}>"),
            DataType::F32 => "FLOAT32".into(),
            DataType::F16 => "FLOAT16".into(),
        }
    }

    /// Parses a QONNX datatype name (as `DataType[...]` in qonnx does): the special names, then
    /// `UINT<n>`, `INT<n>`, `FIXED<w,i>`, `SCALEDINT<n>`, `FLOAT<e,m>` or `FLOAT<e,m,bias>`
    /// (default bias `2^(e-1) - 1`). Spaces inside the brackets are allowed.
    pub fn parse(name: &str) -> Option<DataType> {
        fn nums(s: &str, prefix: &str) -> Option<Vec<i64>> {
            let inner = s.strip_prefix(prefix)?.strip_suffix('>')?;
            inner.split(',').map(|x| x.trim().parse::<i64>().ok()).collect()
        }
        let small = |x: i64| u32::try_from(x).ok().filter(|b| (1..=64).contains(b));
        Some(match name {
            "BINARY" => DataType::Binary,
            "BIPOLAR" => DataType::Bipolar,
            "TERNARY" => DataType::Ternary,
            "FLOAT32" => DataType::F32,
            "FLOAT16" => DataType::F16,
            _ if name.starts_with("UINT") => DataType::int(small(name[4..].parse().ok()?)?, false),
            _ if name.starts_with("INT") => DataType::int(small(name[3..].parse().ok()?)?, true),
            _ if name.starts_with("FIXED<") => match nums(name, "FIXED<")?.as_slice() {
                [w, i] if *i < *w => DataType::Fixed { w: small(*w)?, i: u32::try_from(*i).ok()? },
                _ => return None,
            },
            _ if name.starts_with("SCALEDINT<") => match nums(name, "SCALEDINT<")?.as_slice() {
                [b] => DataType::ScaledInt { bits: small(*b)? },
                _ => return None,
            },
            _ if name.starts_with("FLOAT<") => match nums(name, "FLOAT<")?.as_slice() {
                [e, m] => {
                    let e = small(*e)?;
                    DataType::Float { e, m: small(*m)?, bias: (1i32 << (e.min(31) - 1)) - 1 }
                }
                [e, m, b] => DataType::Float { e: small(*e)?, m: small(*m)?, bias: i32::try_from(*b).ok()? },
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Bits per element, as QONNX counts them (BIPOLAR and BINARY 1, TERNARY 2,
    /// `FLOAT<e,m,b>` `1 + e + m`).
    pub fn bitwidth(&self) -> u32 {
        match *self {
            DataType::Int { bits, .. } | DataType::ScaledInt { bits } => bits,
            DataType::Bipolar | DataType::Binary => 1,
            DataType::Ternary => 2,
            DataType::Fixed { w, .. } => w,
            DataType::Float { e, m, .. } => 1 + e + m,
            DataType::F32 => 32,
            DataType::F16 => 16,
        }
    }

    /// Whether negative values exist in the type.
    pub fn signed(&self) -> bool {
        match *self {
            DataType::Int { signed, .. } => signed,
            DataType::Binary => false,
            _ => true,
        }
    }

    /// Integer types: INT, UINT, BIPOLAR, TERNARY, BINARY (not FIXED or SCALEDINT).
    pub fn is_integer(&self) -> bool {
        matches!(self, DataType::Int { .. } | DataType::Bipolar | DataType::Ternary | DataType::Binary)
    }

    /// Integers, fixed point and scaled integers: what a MAC can treat as an integer with a scale.
    pub fn is_scaled_int(&self) -> bool {
        self.is_integer() || matches!(self, DataType::Fixed { .. } | DataType::ScaledInt { .. })
    }

    /// FLOAT32, FLOAT16 and the minifloats.
    pub fn is_float(&self) -> bool {
        matches!(self, DataType::F32 | DataType::F16 | DataType::Float { .. })
    }

    /// The smallest and largest integer codes, for the integer types.
    pub fn int_range(&self) -> Option<(i128, i128)> {
        match *self {
            DataType::Int { bits, signed: true } if (1..=64).contains(&bits) => {
                Some((-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1))
            }
            DataType::Int { bits, signed: false } if (1..=64).contains(&bits) => {
                Some((0, (1i128 << bits) - 1))
            }
            DataType::Binary => Some((0, 1)),
            DataType::Bipolar | DataType::Ternary => Some((-1, 1)),
            _ => None,
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for t in [
            DataType::int(8, true),
            DataType::int(4, false),
            DataType::Binary,
            DataType::Bipolar,
            DataType::Ternary,
            DataType::Fixed { w: 8, i: 3 },
            DataType::ScaledInt { bits: 32 },
            DataType::Float { e: 4, m: 3, bias: 7 },
            DataType::F32,
            DataType::F16,
        ] {
            assert_eq!(DataType::parse(&t.name()), Some(t), "{t}");
        }
        assert_eq!(DataType::parse("UINT1"), Some(DataType::Binary));
        assert_eq!(DataType::parse("FLOAT<5,2>"), Some(DataType::Float { e: 5, m: 2, bias: 15 }));
        assert_eq!(DataType::parse("FIXED<8, 3>"), Some(DataType::Fixed { w: 8, i: 3 }));
        assert_eq!(DataType::parse("INT0"), None);
        assert_eq!(DataType::parse("FLOAT64"), None);
    }

    #[test]
    fn roundings_follow_qonnx() {
        let r = |m: &str, x: f64| Rounding::from_qonnx(m).unwrap().apply(x);
        assert_eq!(r("ROUND", 2.5), 2.0);
        assert_eq!(r("round", -2.5), -2.0);
        assert_eq!(r("HALF_UP", 2.5), 3.0);
        assert_eq!(r("HALF_UP", -2.5), -3.0);
        assert_eq!(r("HALF_DOWN", 2.5), 2.0);
        assert_eq!(r("HALF_DOWN", -2.5), -2.0);
        assert_eq!(r("HALF_DOWN", 2.6), 3.0);
        assert_eq!(r("UP", 2.1), 3.0);
        assert_eq!(r("UP", -2.1), -3.0);
        assert_eq!(r("DOWN", -2.9), -2.0);
        assert_eq!(r("FLOOR", -2.1), -3.0);
        assert_eq!(r("CEIL", 2.1), 3.0);
        assert!(Rounding::from_qonnx("NEAREST").is_none());
    }
}
