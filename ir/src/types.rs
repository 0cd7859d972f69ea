//! Element types, dimensions, shapes and value types.
//!
//! These mirror what an ONNX model can declare, so that a model imported and exported again is
//! unchanged: an element type code qc does not know is kept as [`ElemType::Other`], a dimension
//! with neither a value nor a name is [`Dim::Unknown`], and a tensor type without a shape (unknown
//! rank) is `shape: None`.

use std::fmt;

/// The element type of a tensor (ONNX `TensorProto.DataType` numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElemType {
    Undefined,
    F32,
    U8,
    I8,
    U16,
    I16,
    I32,
    I64,
    String,
    Bool,
    F16,
    F64,
    U32,
    U64,
    Complex64,
    Complex128,
    BF16,
    F8E4M3FN,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    U4,
    I4,
    F4E2M1,
    F8E8M0,
    U2,
    I2,
    /// A code this version of qc does not know; kept so the model round-trips.
    Other(i32),
}

impl ElemType {
    const TABLE: [(i32, ElemType, &'static str); 27] = [
        (0, ElemType::Undefined, "undefined"),
        (1, ElemType::F32, "f32"),
        (2, ElemType::U8, "u8"),
        (3, ElemType::I8, "i8"),
        (4, ElemType::U16, "u16"),
        (5, ElemType::I16, "i16"),
        (6, ElemType::I32, "i32"),
        (7, ElemType::I64, "i64"),
        (8, ElemType::String, "string"),
        (9, ElemType::Bool, "bool"),
        (10, ElemType::F16, "f16"),
        (11, ElemType::F64, "f64"),
        (12, ElemType::U32, "u32"),
        (13, ElemType::U64, "u64"),
        (14, ElemType::Complex64, "complex64"),
        (15, ElemType::Complex128, "complex128"),
        (16, ElemType::BF16, "bf16"),
        (17, ElemType::F8E4M3FN, "f8e4m3fn"),
        (18, ElemType::F8E4M3FNUZ, "f8e4m3fnuz"),
        (19, ElemType::F8E5M2, "f8e5m2"),
        (20, ElemType::F8E5M2FNUZ, "f8e5m2fnuz"),
        (21, ElemType::U4, "u4"),
        (22, ElemType::I4, "i4"),
        (23, ElemType::F4E2M1, "f4e2m1"),
        (24, ElemType::F8E8M0, "f8e8m0"),
        (25, ElemType::U2, "u2"),
        (26, ElemType::I2, "i2"),
    ];

    /// From the ONNX `DataType` code; unknown codes become [`ElemType::Other`].
    pub fn from_code(code: i32) -> ElemType {
        match Self::TABLE.iter().find(|(c, _, _)| *c == code) {
            Some((_, t, _)) => *t,
            None => ElemType::Other(code),
        }
    }

    /// The ONNX `DataType` code.
    pub fn code(self) -> i32 {
        match self {
            ElemType::Other(c) => c,
            t => Self::TABLE.iter().find(|(_, x, _)| *x == t).map(|e| e.0).unwrap_or(0),
        }
    }

    /// Short lower-case name used in qc's output (`f32`, `i8`, `u4`, ...).
    pub fn name(self) -> String {
        match self {
            ElemType::Other(c) => format!("type#{c}"),
            t => Self::TABLE.iter().find(|(_, x, _)| *x == t).map(|e| e.2).unwrap_or("?").to_string(),
        }
    }

    /// Storage size of one element in bits, for the types with a fixed size.
    pub fn bits(self) -> Option<u32> {
        use ElemType::*;
        Some(match self {
            U2 | I2 => 2,
            U4 | I4 | F4E2M1 => 4,
            U8 | I8 | Bool | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 => 8,
            U16 | I16 | F16 | BF16 => 16,
            F32 | I32 | U32 => 32,
            F64 | I64 | U64 | Complex64 => 64,
            Complex128 => 128,
            Undefined | String | Other(_) => return None,
        })
    }

    /// Bytes needed to store `count` elements in ONNX's little-endian `raw_data` layout
    /// (sub-byte types are packed, the last byte padded). `None` on overflow or for types
    /// without a fixed size.
    pub fn raw_len(self, count: u64) -> Option<u64> {
        let bits = u64::from(self.bits()?);
        Some(count.checked_mul(bits)?.div_ceil(8))
    }
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A fixed size. Negative sizes are rejected at import.
    Known(u64),
    /// A named, symbolic size (`batch`, `N`).
    Sym(String),
    /// Neither a size nor a name.
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A declared tensor shape of known rank.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    pub dims: Vec<Dim>,
    /// Denotations of dimensions (`DATA_BATCH`, ...), by dimension index; rarely used.
    pub denotations: Vec<(usize, String)>,
}

impl Shape {
    pub fn known(dims: &[u64]) -> Shape {
        Shape { dims: dims.iter().map(|&d| Dim::Known(d)).collect(), denotations: Vec::new() }
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The sizes if every dimension is known.
    pub fn as_known(&self) -> Option<Vec<u64>> {
        self.dims.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).collect()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The type of a value, as a model declares it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TypeInfo {
    /// `None` when the declaration names no type at all.
    pub ty: Option<ValueType>,
    pub denotation: Option<String>,
}

impl TypeInfo {
    pub fn tensor(elem: ElemType, shape: Option<Shape>) -> TypeInfo {
        TypeInfo { ty: Some(ValueType::Tensor { elem: Some(elem), shape }), denotation: None }
    }
}

/// The kinds of value ONNX knows.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueType {
    Tensor { elem: Option<ElemType>, shape: Option<Shape> },
    SparseTensor { elem: Option<ElemType>, shape: Option<Shape> },
    Sequence(Option<Box<TypeInfo>>),
    Map { key: Option<ElemType>, value: Option<Box<TypeInfo>> },
    Optional(Option<Box<TypeInfo>>),
    Opaque { domain: Option<String>, name: Option<String> },
}

impl fmt::Display for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ty {
            None => f.write_str("?"),
            Some(t) => write!(f, "{t}"),
        }
    }
}

fn fmt_opt_type(f: &mut fmt::Formatter<'_>, t: &Option<Box<TypeInfo>>) -> fmt::Result {
    match t {
        Some(t) => write!(f, "{t}"),
        None => f.write_str("?"),
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tensor = |f: &mut fmt::Formatter<'_>, elem: &Option<ElemType>, shape: &Option<Shape>| {
            match elem {
                Some(e) => write!(f, "{e}")?,
                None => f.write_str("?")?,
            }
            match shape {
                Some(s) => write!(f, "{s}"),
                None => f.write_str("[*]"),
            }
        };
        match self {
            ValueType::Tensor { elem, shape } => tensor(f, elem, shape),
            ValueType::SparseTensor { elem, shape } => {
                f.write_str("sparse ")?;
                tensor(f, elem, shape)
            }
            ValueType::Sequence(t) => {
                f.write_str("seq<")?;
                fmt_opt_type(f, t)?;
                f.write_str(">")
            }
            ValueType::Map { key, value } => {
                match key {
                    Some(k) => write!(f, "map<{k},")?,
                    None => f.write_str("map<?,")?,
                }
                fmt_opt_type(f, value)?;
                f.write_str(">")
            }
            ValueType::Optional(t) => {
                f.write_str("optional<")?;
                fmt_opt_type(f, t)?;
                f.write_str(">")
            }
            ValueType::Opaque { domain, name } => {
                write!(f, "opaque<{}:{}>", domain.as_deref().unwrap_or(""), name.as_deref().unwrap_or(""))
            }
        }
    }
}

/// A key/value pair of metadata (`metadata_props`, `external_data`, annotation entries).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct MetaEntry {
    pub key: String,
    pub value: String,
}

impl MetaEntry {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> MetaEntry {
        MetaEntry { key: key.into(), value: value.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_kept() {
        for code in 0..=26 {
            assert_eq!(ElemType::from_code(code).code(), code);
        }
        assert_eq!(ElemType::from_code(99), ElemType::Other(99));
        assert_eq!(ElemType::from_code(99).code(), 99);
    }

    #[test]
    fn packed_sizes() {
        assert_eq!(ElemType::I4.raw_len(3), Some(2));
        assert_eq!(ElemType::U2.raw_len(5), Some(2));
        assert_eq!(ElemType::F32.raw_len(3), Some(12));
        assert_eq!(ElemType::F64.raw_len(u64::MAX), None);
        assert_eq!(ElemType::String.raw_len(1), None);
    }
}
