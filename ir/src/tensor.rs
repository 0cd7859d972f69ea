//! Constant tensor data: zero-copy bytes, the typed lists some exporters write, or a reference to
//! external data that the front end resolves lazily.
//!
//! `ir` never reads files. A tensor stored outside the model is an [`ExternalRef`]; its bytes come
//! from the [`DataResolver`] that the front end attaches to the [`crate::Model`], and only when a
//! pass asks for them.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::types::{ElemType, MetaEntry};

/// A constant tensor (an initializer, or the value of a tensor attribute).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: Option<String>,
    /// `None` when the model leaves the element type unset.
    pub elem: Option<ElemType>,
    /// Dimensions as written in the model (checked by [`Tensor::check`]).
    pub dims: Vec<i64>,
    pub data: TensorData,
    /// For tensors stored in chunks: the `(begin, end)` of this chunk.
    pub segment: Option<(Option<i64>, Option<i64>)>,
    pub doc_string: Option<String>,
    pub metadata: Vec<MetaEntry>,
    /// The model spelled out `data_location: DEFAULT` although it is the default.
    pub explicit_default_location: bool,
}

/// Where a tensor's elements are.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// No elements are stored (valid when the element count is zero).
    Empty,
    /// Little-endian packed bytes; a slice of the model file when it was memory-mapped.
    Raw(Bytes),
    Floats(Vec<f32>),
    /// `int32_data`: the storage for all integer types up to 32 bits, bool, and the 16- and
    /// 8-bit floating-point types (as bit patterns).
    Int32s(Vec<i32>),
    Int64s(Vec<i64>),
    Doubles(Vec<f64>),
    Uint64s(Vec<u64>),
    Strings(Vec<Bytes>),
    External(ExternalRef),
}

/// A tensor stored in a file beside the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalRef {
    /// The `external_data` entries exactly as written (the front end parses them).
    pub entries: Vec<MetaEntry>,
    /// Path relative to the model's directory.
    pub location: String,
    pub offset: u64,
    /// `None`: to the end of the file.
    pub length: Option<u64>,
}

/// A sparse constant: values at the given indices, zero elsewhere.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseTensor {
    pub values: Option<Tensor>,
    pub indices: Option<Tensor>,
    pub dims: Vec<i64>,
}

/// Why a tensor's data cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error("dimension {index} is negative ({value})")]
    NegativeDim { index: usize, value: i64 },
    #[error("the product of dims {dims:?} overflows 64 bits")]
    DimsOverflow { dims: Vec<i64> },
    #[error("element type {elem} has no fixed size")]
    NoFixedSize { elem: String },
    #[error("raw_data holds {actual} bytes, but dims {dims:?} of {elem} need {expected}")]
    RawLength { dims: Vec<i64>, elem: String, expected: u64, actual: u64 },
    #[error("{field} holds {actual} entries, but dims {dims:?} of {elem} need {expected}")]
    TypedLength { field: &'static str, dims: Vec<i64>, elem: String, expected: u64, actual: u64 },
    #[error("{field} cannot hold elements of type {elem}")]
    WrongField { field: &'static str, elem: String },
    #[error("the tensor has {expected} elements but stores no data")]
    NoData { expected: u64 },
    #[error("external data is not available: {0}")]
    External(String),
}

impl Tensor {
    /// The number of elements, checking that no dimension is negative and the product fits.
    pub fn element_count(&self) -> Result<u64, TensorError> {
        element_count(&self.dims)
    }

    pub fn elem_type(&self) -> ElemType {
        self.elem.unwrap_or(ElemType::Undefined)
    }

    /// Checks that the stored data agrees with the dims and element type. External data is
    /// checked by the front end that can see the file.
    pub fn check(&self) -> Result<(), TensorError> {
        let count = self.element_count()?;
        let elem = self.elem_type();
        let expect_typed = |field: &'static str, len: usize, per_entry: u64| {
            let expected = count.div_ceil(per_entry);
            if len as u64 != expected {
                return Err(TensorError::TypedLength {
                    field,
                    dims: self.dims.clone(),
                    elem: elem.name(),
                    expected,
                    actual: len as u64,
                });
            }
            Ok(())
        };
        let wrong = |field: &'static str| Err(TensorError::WrongField { field, elem: elem.name() });
        use ElemType::*;
        match &self.data {
            TensorData::Empty => {
                if count > 0 {
                    return Err(TensorError::NoData { expected: count });
                }
                Ok(())
            }
            TensorData::Raw(b) => {
                if elem == String {
                    return wrong("raw_data");
                }
                if let Other(_) = elem {
                    // An element type newer than qc: its size is unknown, so the data is carried
                    // unchecked.
                    return Ok(());
                }
                let expected =
                    elem.raw_len(count).ok_or_else(|| TensorError::NoFixedSize { elem: elem.name() })?;
                if b.len() as u64 != expected {
                    return Err(TensorError::RawLength {
                        dims: self.dims.clone(),
                        elem: elem.name(),
                        expected,
                        actual: b.len() as u64,
                    });
                }
                Ok(())
            }
            TensorData::Floats(v) => match elem {
                F32 => expect_typed("float_data", v.len(), 1),
                Complex64 => expect_typed("float_data", v.len() / 2, 1),
                _ => wrong("float_data"),
            },
            TensorData::Doubles(v) => match elem {
                F64 => expect_typed("double_data", v.len(), 1),
                Complex128 => expect_typed("double_data", v.len() / 2, 1),
                _ => wrong("double_data"),
            },
            TensorData::Int32s(v) => match elem {
                I32 | I16 | I8 | U16 | U8 | Bool | F16 | BF16 | F8E4M3FN | F8E4M3FNUZ | F8E5M2
                | F8E5M2FNUZ | F8E8M0 => expect_typed("int32_data", v.len(), 1),
                I4 | U4 | F4E2M1 => expect_typed("int32_data", v.len(), 2),
                I2 | U2 => expect_typed("int32_data", v.len(), 4),
                _ => wrong("int32_data"),
            },
            TensorData::Int64s(v) => match elem {
                I64 => expect_typed("int64_data", v.len(), 1),
                _ => wrong("int64_data"),
            },
            TensorData::Uint64s(v) => match elem {
                U32 | U64 => expect_typed("uint64_data", v.len(), 1),
                _ => wrong("uint64_data"),
            },
            TensorData::Strings(v) => match elem {
                String => expect_typed("string_data", v.len(), 1),
                _ => wrong("string_data"),
            },
            TensorData::External(_) => Ok(()),
        }
    }

    /// Bytes of stored data as held in memory (not counting external data).
    pub fn stored_bytes(&self) -> u64 {
        match &self.data {
            TensorData::Empty | TensorData::External(_) => 0,
            TensorData::Raw(b) => b.len() as u64,
            TensorData::Floats(v) => 4 * v.len() as u64,
            TensorData::Int32s(v) => 4 * v.len() as u64,
            TensorData::Int64s(v) => 8 * v.len() as u64,
            TensorData::Doubles(v) => 8 * v.len() as u64,
            TensorData::Uint64s(v) => 8 * v.len() as u64,
            TensorData::Strings(v) => v.iter().map(|s| s.len() as u64).sum(),
        }
    }

    /// The raw little-endian bytes of this tensor: a cheap clone for `raw_data`, read through
    /// `resolver` for external data, and encoded for the typed lists.
    pub fn raw_bytes(&self, resolver: Option<&dyn DataResolver>) -> Result<Bytes, TensorError> {
        let elem = self.elem_type();
        Ok(match &self.data {
            TensorData::Raw(b) => b.clone(),
            TensorData::Empty => Bytes::new(),
            TensorData::External(r) => match resolver {
                Some(res) => res.read(r).map_err(TensorError::External)?,
                None => return Err(TensorError::External("no data resolver attached".into())),
            },
            TensorData::Floats(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Doubles(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Int64s(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Uint64s(v) => match elem {
                ElemType::U32 => v.iter().flat_map(|x| (*x as u32).to_le_bytes()).collect(),
                _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            },
            TensorData::Int32s(v) => pack_int32_data(elem, v, self.element_count()?)?,
            TensorData::Strings(_) => {
                return Err(TensorError::NoFixedSize { elem: elem.name() });
            }
        })
    }
}

/// Packs `int32_data` entries into the `raw_data` layout of `elem`.
fn pack_int32_data(elem: ElemType, v: &[i32], count: u64) -> Result<Bytes, TensorError> {
    use ElemType::*;
    let out: Vec<u8> = match elem {
        I32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        I16 | U16 | F16 | BF16 => v.iter().flat_map(|x| (*x as u16).to_le_bytes()).collect(),
        I8 | U8 | Bool | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 => {
            v.iter().map(|x| *x as u8).collect()
        }
        // Sub-byte types: each int32 entry already holds the packed byte.
        I4 | U4 | F4E2M1 | I2 | U2 => {
            let len = elem.raw_len(count).unwrap_or(0) as usize;
            v.iter().map(|x| *x as u8).take(len).collect()
        }
        _ => {
            return Err(TensorError::WrongField { field: "int32_data", elem: elem.name() });
        }
    };
    Ok(Bytes::from(out))
}

/// Element count of `dims`, or why it has none.
pub fn element_count(dims: &[i64]) -> Result<u64, TensorError> {
    let mut n: u64 = 1;
    for (index, &d) in dims.iter().enumerate() {
        if d < 0 {
            return Err(TensorError::NegativeDim { index, value: d });
        }
        n = n.checked_mul(d as u64).ok_or_else(|| TensorError::DimsOverflow { dims: dims.to_vec() })?;
    }
    Ok(n)
}

/// Supplies the bytes of external tensors. Implemented by the front end, which owns files and
/// memory maps; `ir` only calls it.
pub trait DataResolver: Send + Sync + fmt::Debug {
    /// The bytes of `r`, or a message saying why they cannot be had.
    fn read(&self, r: &ExternalRef) -> Result<Bytes, String>;
}

/// A shared resolver handle, as stored in a [`crate::Model`].
pub type SharedResolver = Arc<dyn DataResolver>;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(elem: ElemType, dims: &[i64], data: TensorData) -> Tensor {
        Tensor {
            name: Some("t".into()),
            elem: Some(elem),
            dims: dims.to_vec(),
            data,
            segment: None,
            doc_string: None,
            metadata: vec![],
            explicit_default_location: false,
        }
    }

    #[test]
    fn raw_length_is_checked() {
        let ok = t(ElemType::F32, &[2, 2], TensorData::Raw(Bytes::from(vec![0u8; 16])));
        assert_eq!(ok.check(), Ok(()));
        let bad = t(ElemType::F32, &[2, 2], TensorData::Raw(Bytes::from(vec![0u8; 15])));
        assert!(matches!(bad.check(), Err(TensorError::RawLength { expected: 16, actual: 15, .. })));
        let packed = t(ElemType::I4, &[3], TensorData::Raw(Bytes::from(vec![0u8; 2])));
        assert_eq!(packed.check(), Ok(()));
    }

    #[test]
    fn overflowing_and_negative_dims_are_errors() {
        let big = t(ElemType::F32, &[i64::MAX, 4], TensorData::Empty);
        assert!(matches!(big.check(), Err(TensorError::DimsOverflow { .. })));
        let neg = t(ElemType::F32, &[2, -1], TensorData::Empty);
        assert!(matches!(neg.check(), Err(TensorError::NegativeDim { index: 1, value: -1 })));
    }

    #[test]
    fn typed_lists_pack_to_raw_layout() {
        let x = t(ElemType::I8, &[3], TensorData::Int32s(vec![-1, 2, 3]));
        assert_eq!(x.check(), Ok(()));
        assert_eq!(&x.raw_bytes(None).unwrap()[..], &[0xff, 2, 3]);
        let f = t(ElemType::F32, &[1], TensorData::Floats(vec![1.0]));
        assert_eq!(&f.raw_bytes(None).unwrap()[..], &1.0f32.to_le_bytes());
        let wrong = t(ElemType::I64, &[1], TensorData::Floats(vec![1.0]));
        assert!(matches!(wrong.check(), Err(TensorError::WrongField { .. })));
    }
}
