//! The evaluator's runtime tensor, [`Array`], and its conversions from and to IR tensors.
//!
//! Storage: each element type has a typed `Vec` in [`Data`]. Types without a native Rust
//! counterpart are held widened, with [`Array::elem`] keeping the declared type:
//! - `int4`/`int2` as `i8`, `uint4`/`uint2` as `u8` (one value per element, unpacked);
//! - the float8 types, `float4e2m1` and `float8e8m0` as `f32`, holding exactly the values the
//!   narrow format can represent (conversion rounds; see [`super::float8`]).

use half::{bf16, f16};
use qc_ir::{ElemType, Model, Tensor, TensorData};

use super::EvalError;
use super::float8;

/// Typed element storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

/// A runtime tensor: element type, dimensions and row-major data.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub elem: ElemType,
    pub dims: Vec<usize>,
    pub data: Data,
}

/// The computation domain of an element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Float,
    Int,
    Bool,
    Str,
}

macro_rules! each_data {
    ($d:expr, $v:ident => $e:expr) => {
        match $d {
            Data::F32($v) => $e,
            Data::F64($v) => $e,
            Data::F16($v) => $e,
            Data::BF16($v) => $e,
            Data::I8($v) => $e,
            Data::I16($v) => $e,
            Data::I32($v) => $e,
            Data::I64($v) => $e,
            Data::U8($v) => $e,
            Data::U16($v) => $e,
            Data::U32($v) => $e,
            Data::U64($v) => $e,
            Data::Bool($v) => $e,
            Data::Str($v) => $e,
        }
    };
}

macro_rules! map_data {
    ($d:expr, $v:ident => $e:expr) => {
        match $d {
            Data::F32($v) => Data::F32($e),
            Data::F64($v) => Data::F64($e),
            Data::F16($v) => Data::F16($e),
            Data::BF16($v) => Data::BF16($e),
            Data::I8($v) => Data::I8($e),
            Data::I16($v) => Data::I16($e),
            Data::I32($v) => Data::I32($e),
            Data::I64($v) => Data::I64($e),
            Data::U8($v) => Data::U8($e),
            Data::U16($v) => Data::U16($e),
            Data::U32($v) => Data::U32($e),
            Data::U64($v) => Data::U64($e),
            Data::Bool($v) => Data::Bool($e),
            Data::Str($v) => Data::Str($e),
        }
    };
}

/// Product of dims, or a shape error on overflow.
pub fn numel(dims: &[usize]) -> Result<usize, EvalError> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| EvalError::shape(format!("the element count of {dims:?} overflows")))
}

/// Elements above which the evaluator refuses to allocate (a guard against absurd shapes).
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Checked element count that also refuses absurd sizes.
pub fn alloc_count(dims: &[usize]) -> Result<usize, EvalError> {
    let n = numel(dims)?;
    if n > MAX_ELEMENTS {
        return Err(EvalError::shape(format!("shape {dims:?} has too many elements ({n})")));
    }
    Ok(n)
}

/// The computation domain of `elem`, or an error for types the evaluator cannot compute with.
pub fn domain_of(elem: ElemType) -> Result<Domain, EvalError> {
    use ElemType::*;
    Ok(match elem {
        F32 | F64 | F16 | BF16 | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F4E2M1 | F8E8M0 => {
            Domain::Float
        }
        I8 | I16 | I32 | I64 | U8 | U16 | U32 | U64 | I4 | U4 | I2 | U2 => Domain::Int,
        Bool => Domain::Bool,
        String => Domain::Str,
        other => return Err(EvalError::type_mismatch(format!("element type {other} is not supported"))),
    })
}

fn clamp_int(v: i128, elem: ElemType) -> i128 {
    match elem {
        ElemType::I4 => v.clamp(-8, 7),
        ElemType::U4 => v.clamp(0, 15),
        ElemType::I2 => v.clamp(-2, 1),
        ElemType::U2 => v.clamp(0, 3),
        _ => v,
    }
}

impl Array {
    /// An array from parts, checking that the data length matches the dims.
    pub fn new(elem: ElemType, dims: Vec<usize>, data: Data) -> Result<Array, EvalError> {
        let n = numel(&dims)?;
        let len = each_data!(&data, v => v.len());
        if n != len {
            return Err(EvalError::shape(format!("dims {dims:?} need {n} elements, data has {len}")));
        }
        Ok(Array { elem, dims, data })
    }

    pub fn from_f32(dims: Vec<usize>, v: Vec<f32>) -> Result<Array, EvalError> {
        Array::new(ElemType::F32, dims, Data::F32(v))
    }

    pub fn from_i64(dims: Vec<usize>, v: Vec<i64>) -> Result<Array, EvalError> {
        Array::new(ElemType::I64, dims, Data::I64(v))
    }

    pub fn from_bool(dims: Vec<usize>, v: Vec<bool>) -> Result<Array, EvalError> {
        Array::new(ElemType::Bool, dims, Data::Bool(v))
    }

    /// A scalar `f32`.
    pub fn scalar_f32(x: f32) -> Array {
        Array { elem: ElemType::F32, dims: vec![], data: Data::F32(vec![x]) }
    }

    pub fn len(&self) -> usize {
        each_data!(&self.data, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    pub fn domain(&self) -> Result<Domain, EvalError> {
        domain_of(self.elem)
    }

    /// The same data with other dims (the element count must agree).
    pub fn reshaped(&self, dims: Vec<usize>) -> Result<Array, EvalError> {
        Array::new(self.elem, dims, self.data.clone())
    }

    /// Every element as `f64` (ints converted, bools 0/1); strings are an error.
    pub fn to_f64(&self) -> Result<Vec<f64>, EvalError> {
        Ok(match &self.data {
            Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::F64(v) => v.clone(),
            Data::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::U64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect(),
            Data::Str(_) => return Err(EvalError::type_mismatch("strings have no numeric value")),
        })
    }

    /// Every element as `i128` (floats truncated toward zero, NaN as 0).
    pub fn to_i128(&self) -> Result<Vec<i128>, EvalError> {
        Ok(match &self.data {
            Data::I8(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::I16(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::I32(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::I64(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::U8(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::U16(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::U32(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::U64(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::Bool(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Data::Str(_) => return Err(EvalError::type_mismatch("strings have no numeric value")),
            _ => self.to_f64()?.into_iter().map(|x| x as i128).collect(),
        })
    }

    /// Every element as a bool (non-zero is true).
    pub fn to_bool(&self) -> Result<Vec<bool>, EvalError> {
        Ok(match &self.data {
            Data::Bool(v) => v.clone(),
            Data::Str(_) => return Err(EvalError::type_mismatch("strings have no truth value")),
            _ => self.to_f64()?.into_iter().map(|x| x != 0.0).collect(),
        })
    }

    /// The integer values of a shape-like input (`i64`/`i32`), checked.
    pub fn to_i64s(&self) -> Result<Vec<i64>, EvalError> {
        match self.domain()? {
            Domain::Int | Domain::Bool => {
                self.to_i128()?.into_iter().map(|x| i64::try_from(x).map_err(|_| overflow())).collect()
            }
            _ => Err(EvalError::type_mismatch(format!("expected integers, found {}", self.elem))),
        }
    }

    /// An array of `elem` from `f64` values (rounded to the type; ints truncate, wrapping).
    pub fn from_f64s(elem: ElemType, dims: Vec<usize>, v: Vec<f64>) -> Result<Array, EvalError> {
        use ElemType::*;
        let data = match elem {
            F32 => Data::F32(v.into_iter().map(|x| x as f32).collect()),
            F64 => Data::F64(v),
            F16 => Data::F16(v.into_iter().map(f16::from_f64).collect()),
            BF16 => Data::BF16(v.into_iter().map(bf16::from_f64).collect()),
            F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F4E2M1 | F8E8M0 => {
                Data::F32(v.into_iter().map(|x| float8::round_to(elem, x as f32, true)).collect())
            }
            Bool => Data::Bool(v.into_iter().map(|x| x != 0.0).collect()),
            String => Data::Str(v.into_iter().map(|x| format_float(x as f32)).collect()),
            _ => {
                let ints = v.into_iter().map(|x| if x.is_nan() { 0 } else { x as i128 }).collect();
                return Array::from_i128s(elem, dims, ints);
            }
        };
        Array::new(elem, dims, data)
    }

    /// An array of `elem` from `i128` values (wrapping into the type, 4/2-bit types clamped).
    pub fn from_i128s(elem: ElemType, dims: Vec<usize>, v: Vec<i128>) -> Result<Array, EvalError> {
        use ElemType::*;
        let data = match elem {
            I8 => Data::I8(v.into_iter().map(|x| x as i8).collect()),
            I16 => Data::I16(v.into_iter().map(|x| x as i16).collect()),
            I32 => Data::I32(v.into_iter().map(|x| x as i32).collect()),
            I64 => Data::I64(v.into_iter().map(|x| x as i64).collect()),
            U8 => Data::U8(v.into_iter().map(|x| x as u8).collect()),
            U16 => Data::U16(v.into_iter().map(|x| x as u16).collect()),
            U32 => Data::U32(v.into_iter().map(|x| x as u32).collect()),
            U64 => Data::U64(v.into_iter().map(|x| x as u64).collect()),
            I4 | I2 => Data::I8(v.into_iter().map(|x| clamp_int(x, elem) as i8).collect()),
            U4 | U2 => Data::U8(v.into_iter().map(|x| clamp_int(x, elem) as u8).collect()),
            Bool => Data::Bool(v.into_iter().map(|x| x != 0).collect()),
            String => Data::Str(v.into_iter().map(|x| x.to_string()).collect()),
            _ => return Array::from_f64s(elem, dims, v.into_iter().map(|x| x as f64).collect()),
        };
        Array::new(elem, dims, data)
    }

    /// An empty-valued array (zeros) of `elem`.
    pub fn zeros(elem: ElemType, dims: Vec<usize>) -> Result<Array, EvalError> {
        let n = alloc_count(&dims)?;
        match domain_of(elem)? {
            Domain::Str => Array::new(elem, dims, Data::Str(vec![String::new(); n])),
            Domain::Float => Array::from_f64s(elem, dims, vec![0.0; n]),
            _ => Array::from_i128s(elem, dims, vec![0; n]),
        }
    }

    /// Picks elements by flat index into a new array of `dims`.
    pub fn gather_flat(&self, dims: Vec<usize>, idx: &[usize]) -> Result<Array, EvalError> {
        let len = self.len();
        if idx.iter().any(|&i| i >= len) {
            return Err(EvalError::shape("index out of range"));
        }
        let data = map_data!(&self.data, v => idx.iter().map(|&i| v[i].to_owned()).collect());
        Array::new(self.elem, dims, data)
    }

    /// An array of `dims` filled with element `i` of `self` (ConstantOfShape, Expand of a scalar).
    pub fn splat(&self, i: usize, dims: Vec<usize>) -> Result<Array, EvalError> {
        if i >= self.len() {
            return Err(EvalError::shape("index out of range"));
        }
        let n = alloc_count(&dims)?;
        let data = map_data!(&self.data, v => vec![v[i].to_owned(); n]);
        Array::new(self.elem, dims, data)
    }

    /// Concatenates the data of arrays of the same type (dims are the caller's).
    pub fn concat_data(elem: ElemType, dims: Vec<usize>, parts: &[&Array]) -> Result<Array, EvalError> {
        let mut out = Array::zeros(elem, vec![0])?.data;
        for p in parts {
            if p.elem != elem {
                return Err(EvalError::type_mismatch(format!("cannot join {} with {}", p.elem, elem)));
            }
            match (&mut out, &p.data) {
                (Data::F32(a), Data::F32(b)) => a.extend_from_slice(b),
                (Data::F64(a), Data::F64(b)) => a.extend_from_slice(b),
                (Data::F16(a), Data::F16(b)) => a.extend_from_slice(b),
                (Data::BF16(a), Data::BF16(b)) => a.extend_from_slice(b),
                (Data::I8(a), Data::I8(b)) => a.extend_from_slice(b),
                (Data::I16(a), Data::I16(b)) => a.extend_from_slice(b),
                (Data::I32(a), Data::I32(b)) => a.extend_from_slice(b),
                (Data::I64(a), Data::I64(b)) => a.extend_from_slice(b),
                (Data::U8(a), Data::U8(b)) => a.extend_from_slice(b),
                (Data::U16(a), Data::U16(b)) => a.extend_from_slice(b),
                (Data::U32(a), Data::U32(b)) => a.extend_from_slice(b),
                (Data::U64(a), Data::U64(b)) => a.extend_from_slice(b),
                (Data::Bool(a), Data::Bool(b)) => a.extend_from_slice(b),
                (Data::Str(a), Data::Str(b)) => a.extend_from_slice(b),
                _ => return Err(EvalError::type_mismatch("storage mismatch")),
            }
        }
        Array::new(elem, dims, out)
    }

    /// Converts an IR tensor, reading raw bytes through the model (external data included).
    pub fn from_tensor(t: &Tensor, model: &Model) -> Result<Array, EvalError> {
        let elem = t.elem_type();
        let tensor_err = |msg: String| EvalError::Tensor { name: t.name.clone().unwrap_or_default(), msg };
        let count = t.element_count().map_err(|e| tensor_err(e.to_string()))?;
        let n = usize::try_from(count).map_err(|_| tensor_err("too many elements".into()))?;
        if n > MAX_ELEMENTS {
            return Err(tensor_err(format!("too many elements ({n})")));
        }
        // An empty tensor's other dims still size the evaluator's loops and strides.
        let nonzero = t.dims.iter().filter(|&&d| d != 0).try_fold(1u64, |p, &d| p.checked_mul(d as u64));
        if nonzero.is_none_or(|m| m > MAX_ELEMENTS as u64) {
            return Err(tensor_err(format!(
                "its dims {:?} without the 0s multiply past {MAX_ELEMENTS} elements",
                t.dims
            )));
        }
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        if elem == ElemType::String {
            let v = match &t.data {
                TensorData::Strings(s) => s.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect(),
                TensorData::Empty => Vec::new(),
                _ => return Err(tensor_err("string tensor without string_data".into())),
            };
            return Array::new(elem, dims, Data::Str(v));
        }
        domain_of(elem)?;
        let bytes = model.tensor_bytes(t).map_err(|e| tensor_err(e.to_string()))?;
        let need = elem.raw_len(count).unwrap_or(0) as usize;
        if bytes.len() < need {
            return Err(tensor_err(format!("{} bytes of data, {need} needed", bytes.len())));
        }
        Array::from_raw(elem, dims, &bytes, n).map_err(|e| match e {
            EvalError::Shape { msg, .. } => tensor_err(msg),
            other => other,
        })
    }

    /// Decodes little-endian raw bytes of `n` elements.
    pub fn from_raw(elem: ElemType, dims: Vec<usize>, b: &[u8], n: usize) -> Result<Array, EvalError> {
        use ElemType::*;
        macro_rules! le {
            ($t:ty, $w:expr) => {
                b.chunks_exact($w)
                    .take(n)
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $w])))
                    .collect()
            };
        }
        let nibbles = |bits: usize| -> Vec<u8> {
            let per = 8 / bits;
            let mask = (1u8 << bits) - 1;
            (0..n).map(|i| (b[i / per] >> ((i % per) * bits)) & mask).collect()
        };
        let data = match elem {
            F32 => Data::F32(le!(f32, 4)),
            F64 => Data::F64(le!(f64, 8)),
            F16 => Data::F16(b.chunks_exact(2).take(n).map(|c| f16::from_le_bytes([c[0], c[1]])).collect()),
            BF16 => {
                Data::BF16(b.chunks_exact(2).take(n).map(|c| bf16::from_le_bytes([c[0], c[1]])).collect())
            }
            I8 => Data::I8(b.iter().take(n).map(|&x| x as i8).collect()),
            U8 => Data::U8(b[..n.min(b.len())].to_vec()),
            Bool => Data::Bool(b.iter().take(n).map(|&x| x != 0).collect()),
            I16 => Data::I16(le!(i16, 2)),
            U16 => Data::U16(le!(u16, 2)),
            I32 => Data::I32(le!(i32, 4)),
            U32 => Data::U32(le!(u32, 4)),
            I64 => Data::I64(le!(i64, 8)),
            U64 => Data::U64(le!(u64, 8)),
            U4 => Data::U8(nibbles(4)),
            U2 => Data::U8(nibbles(2)),
            I4 => Data::I8(nibbles(4).into_iter().map(|x| ((x << 4) as i8) >> 4).collect()),
            I2 => Data::I8(nibbles(2).into_iter().map(|x| ((x << 6) as i8) >> 6).collect()),
            F4E2M1 => Data::F32(nibbles(4).into_iter().map(|x| float8::decode(elem, x)).collect()),
            F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 => {
                Data::F32(b.iter().take(n).map(|&x| float8::decode(elem, x)).collect())
            }
            other => return Err(EvalError::type_mismatch(format!("element type {other} is not supported"))),
        };
        Array::new(elem, dims, data)
    }

    /// The little-endian raw bytes of this array (sub-byte types packed, low bits first).
    pub fn raw_bytes(&self) -> Vec<u8> {
        use ElemType::*;
        let pack = |vals: Vec<u8>, bits: usize| -> Vec<u8> {
            let per = 8 / bits;
            let mask = (1u8 << bits) - 1;
            let mut out = vec![0u8; vals.len().div_ceil(per)];
            for (i, v) in vals.into_iter().enumerate() {
                out[i / per] |= (v & mask) << ((i % per) * bits);
            }
            out
        };
        match (&self.data, self.elem) {
            (Data::I8(v), I4) => pack(v.iter().map(|&x| x as u8).collect(), 4),
            (Data::I8(v), I2) => pack(v.iter().map(|&x| x as u8).collect(), 2),
            (Data::U8(v), U4) => pack(v.clone(), 4),
            (Data::U8(v), U2) => pack(v.clone(), 2),
            (Data::F32(v), F4E2M1) => {
                pack(v.iter().map(|&x| float8::encode(self.elem, x, true)).collect(), 4)
            }
            (Data::F32(v), F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0) => {
                v.iter().map(|&x| float8::encode(self.elem, x, true)).collect()
            }
            (Data::F32(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::F64(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::F16(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::BF16(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::I8(v), _) => v.iter().map(|&x| x as u8).collect(),
            (Data::I16(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::I32(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::I64(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::U8(v), _) => v.clone(),
            (Data::U16(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::U32(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::U64(v), _) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            (Data::Bool(v), _) => v.iter().map(|&x| u8::from(x)).collect(),
            (Data::Str(_), _) => Vec::new(),
        }
    }

    /// An IR tensor holding this array (`raw_data`, or `string_data` for strings).
    pub fn to_tensor(&self, name: &str) -> Tensor {
        let data = match &self.data {
            Data::Str(v) => TensorData::Strings(v.iter().map(|s| bytes::Bytes::from(s.clone())).collect()),
            _ => TensorData::Raw(bytes::Bytes::from(self.raw_bytes())),
        };
        Tensor {
            name: Some(name.to_string()),
            elem: Some(self.elem),
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data,
            segment: None,
            doc_string: None,
            metadata: Vec::new(),
            explicit_default_location: false,
        }
    }
}

fn overflow() -> EvalError {
    EvalError::shape("an integer does not fit in 64 bits")
}

/// Formats a float as numpy's `str` would for the common cases (used by Cast to string).
pub fn format_float(x: f32) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "INF".into() } else { "-INF".into() }
    } else {
        format!("{x}")
    }
}
