//! The dims of a value, read one way everywhere.
//!
//! A value's dims come from its initializer when it has one, else from its declared or inferred
//! tensor type. Every area (passes, checks, lowering, cost) reads them through this module, so
//! that negative, symbolic and unknown dims, and element counts too large to hold, are handled
//! once:
//!
//! - [`written`]: a tensor's `i64` dims as [`Dim`]s.
//! - [`of`]: the dims as [`Dim`]s when the rank is known. A negative initializer dim (which the
//!   verifier rejects) is [`Dim::Unknown`], never clamped to a size.
//! - [`partial`]: the same, a known size or `None` per dim.
//! - [`known`]: every dim a number, or a [`DimsError`] naming the value and the dim that is not.
//! - [`counted`]: as [`known`], and the element count fits in 64 bits.
//! - [`product`] / [`product_u128`]: checked products of sizes.

use std::fmt;

use crate::graph::{Graph, ValueId};
use crate::types::{Dim, ValueType};

/// Why the dims of a value cannot be used as sizes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DimsError {
    /// Neither an initializer nor a tensor type with a shape.
    #[error("the shape of `{value}` is unknown")]
    UnknownRank { value: String },
    #[error("dim `{name}` of `{value}` is symbolic")]
    Symbolic { value: String, index: usize, name: String },
    #[error("a dim of `{value}` is unknown")]
    Unknown { value: String, index: usize },
    #[error("dim {index} of `{value}` is negative ({dim})")]
    Negative { value: String, index: usize, dim: i64 },
    #[error("the dims of `{value}` ({dims}) hold more than 2^64 elements")]
    Overflow { value: String, dims: SizeList },
}

/// Sizes as written in messages: `[4294967296, 4294967296]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeList(pub Vec<u64>);

impl fmt::Display for SizeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl DimsError {
    /// The value the error is about.
    pub fn value(&self) -> &str {
        match self {
            DimsError::UnknownRank { value }
            | DimsError::Symbolic { value, .. }
            | DimsError::Unknown { value, .. }
            | DimsError::Negative { value, .. }
            | DimsError::Overflow { value, .. } => value,
        }
    }
}

/// Dims as a tensor writes them (`i64`), as [`Dim`]s: a negative dim is [`Dim::Unknown`].
pub fn written(dims: &[i64]) -> Vec<Dim> {
    dims.iter().map(|&d| u64::try_from(d).map_or(Dim::Unknown, Dim::Known)).collect()
}

/// The dims of `v` when its rank is known: its initializer's, else its tensor type's.
pub fn of(g: &Graph, v: ValueId) -> Option<Vec<Dim>> {
    let val = g.value(v);
    if let Some(t) = val.tensor() {
        return Some(written(&t.dims));
    }
    match val.ty.as_ref()?.ty.as_ref()? {
        ValueType::Tensor { shape: Some(s), .. } => Some(s.dims.clone()),
        _ => None,
    }
}

/// The rank of `v`, when known.
pub fn rank(g: &Graph, v: ValueId) -> Option<usize> {
    let val = g.value(v);
    if let Some(t) = val.tensor() {
        return Some(t.dims.len());
    }
    match val.ty.as_ref()?.ty.as_ref()? {
        ValueType::Tensor { shape: Some(s), .. } => Some(s.dims.len()),
        _ => None,
    }
}

/// The dims of `v` with `None` for each dim that is not a known size, when its rank is known.
pub fn partial(g: &Graph, v: ValueId) -> Option<Vec<Option<u64>>> {
    Some(of(g, v)?.into_iter().map(|d| if let Dim::Known(n) = d { Some(n) } else { None }).collect())
}

/// The sizes of `v` when every dim is known, else why not (the first dim that is not).
pub fn known(g: &Graph, v: ValueId) -> Result<Vec<u64>, DimsError> {
    let val = g.value(v);
    let value = || val.name.clone();
    if let Some(t) = val.tensor() {
        return t
            .dims
            .iter()
            .enumerate()
            .map(|(index, &d)| {
                u64::try_from(d).map_err(|_| DimsError::Negative { value: value(), index, dim: d })
            })
            .collect();
    }
    let dims = of(g, v).ok_or_else(|| DimsError::UnknownRank { value: value() })?;
    dims.into_iter()
        .enumerate()
        .map(|(index, d)| match d {
            Dim::Known(n) => Ok(n),
            Dim::Sym(name) => Err(DimsError::Symbolic { value: value(), index, name }),
            Dim::Unknown => Err(DimsError::Unknown { value: value(), index }),
        })
        .collect()
}

/// As [`known`], and the product of the non-zero sizes of `v` fits in 64 bits, so that the
/// product of any of its sizes does (`[0, 2^40, 2^40]` holds no elements, yet its last two dims
/// multiply past 2^64, and is refused).
pub fn counted(g: &Graph, v: ValueId) -> Result<Vec<u64>, DimsError> {
    let dims = known(g, v)?;
    match dims.iter().filter(|&&d| d != 0).try_fold(1u64, |p, &s| p.checked_mul(s)) {
        Some(_) => Ok(dims),
        None => Err(DimsError::Overflow { value: g.value(v).name.clone(), dims: SizeList(dims) }),
    }
}

/// The element count of `v`: the product of its sizes, checked.
pub fn element_count(g: &Graph, v: ValueId) -> Result<u64, DimsError> {
    counted(g, v).map(|d| d.iter().product())
}

/// The product of `sizes`, or `None` when it does not fit in 64 bits.
pub fn product(sizes: &[u64]) -> Option<u64> {
    sizes.iter().try_fold(1u64, |p, &s| p.checked_mul(s))
}

/// The product of `sizes` in 128 bits (loop iterations), or `None` when it does not fit.
pub fn product_u128(sizes: impl IntoIterator<Item = u64>) -> Option<u128> {
    sizes.into_iter().try_fold(1u128, |p, s| p.checked_mul(u128::from(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Const;
    use crate::tensor::{Tensor, TensorData};
    use crate::types::{ElemType, Shape, TypeInfo};

    fn declared(g: &mut Graph, name: &str, dims: Vec<Dim>) -> ValueId {
        let v = g.value_named(name);
        g.value_mut(v).ty =
            Some(TypeInfo::tensor(ElemType::F32, Some(Shape { dims, denotations: Vec::new() })));
        v
    }

    fn constant(g: &mut Graph, name: &str, dims: Vec<i64>) -> ValueId {
        let v = g.value_named(name);
        g.value_mut(v).init = Some(Const::Dense(Box::new(Tensor {
            name: Some(name.into()),
            elem: Some(ElemType::F32),
            dims,
            data: TensorData::Empty,
            segment: None,
            doc_string: None,
            metadata: Vec::new(),
            explicit_default_location: false,
        })));
        v
    }

    #[test]
    fn declared_dims_known_symbolic_and_unknown() {
        let mut g = Graph::default();
        let x = declared(&mut g, "x", vec![Dim::Known(2), Dim::Sym("N".into()), Dim::Unknown]);
        assert_eq!(rank(&g, x), Some(3));
        assert_eq!(partial(&g, x), Some(vec![Some(2), None, None]));
        assert_eq!(known(&g, x), Err(DimsError::Symbolic { value: "x".into(), index: 1, name: "N".into() }));
        assert_eq!(known(&g, x).unwrap_err().to_string(), "dim `N` of `x` is symbolic");
        let y = declared(&mut g, "y", vec![Dim::Known(3), Dim::Unknown]);
        assert_eq!(known(&g, y), Err(DimsError::Unknown { value: "y".into(), index: 1 }));
        let z = declared(&mut g, "z", vec![Dim::Known(3), Dim::Known(4)]);
        assert_eq!(known(&g, z), Ok(vec![3, 4]));
        assert_eq!(element_count(&g, z), Ok(12));
    }

    #[test]
    fn no_shape_is_unknown_rank() {
        let mut g = Graph::default();
        let v = g.value_named("v");
        assert_eq!(of(&g, v), None);
        assert_eq!(rank(&g, v), None);
        assert_eq!(known(&g, v), Err(DimsError::UnknownRank { value: "v".into() }));
    }

    #[test]
    fn initializer_dims_win_and_negative_dims_are_never_sizes() {
        let mut g = Graph::default();
        let w = declared(&mut g, "w", vec![Dim::Known(9)]);
        assert_eq!(known(&g, w), Ok(vec![9]));
        constant(&mut g, "w", vec![2, 3]);
        assert_eq!(known(&g, w), Ok(vec![2, 3]));
        let n = constant(&mut g, "n", vec![2, -1]);
        assert_eq!(of(&g, n), Some(vec![Dim::Known(2), Dim::Unknown]));
        assert_eq!(partial(&g, n), Some(vec![Some(2), None]));
        assert_eq!(known(&g, n), Err(DimsError::Negative { value: "n".into(), index: 1, dim: -1 }));
        assert_eq!(known(&g, n).unwrap_err().to_string(), "dim 1 of `n` is negative (-1)");
    }

    #[test]
    fn counts_are_checked() {
        let mut g = Graph::default();
        let big = declared(&mut g, "big", vec![Dim::Known(1 << 32), Dim::Known(1 << 32)]);
        assert_eq!(known(&g, big), Ok(vec![1 << 32, 1 << 32]));
        let e = counted(&g, big).unwrap_err();
        assert_eq!(e.value(), "big");
        assert_eq!(
            e.to_string(),
            "the dims of `big` ([4294967296, 4294967296]) hold more than 2^64 elements"
        );
        assert_eq!(element_count(&g, big), Err(e));
        let empty = declared(&mut g, "empty", vec![Dim::Known(0), Dim::Known(1 << 40), Dim::Known(1 << 40)]);
        assert!(matches!(counted(&g, empty), Err(DimsError::Overflow { .. })));
        let zero = declared(&mut g, "zero", vec![Dim::Known(0), Dim::Known(3)]);
        assert_eq!(element_count(&g, zero), Ok(0));
        assert_eq!(product(&[1 << 32, (1 << 32) - 1]), Some(((1u64 << 32) - 1) << 32));
        assert_eq!(product(&[]), Some(1));
        assert_eq!(product_u128([1 << 62, 1 << 62]), Some(1u128 << 124));
        assert_eq!(product_u128([1 << 62, 1 << 62, 1 << 62]), None);
    }
}
