//! Reshape-like ops: `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Transpose`, `Expand`,
//! `Tile`, `DepthToSpace`, `SpaceToDepth`.
//!
//! Values (symbolic ones too) pass through `Reshape`, `Flatten`, `Squeeze` and `Unsqueeze`
//! unchanged (the element order does not change), which is what data propagation needs. The
//! shape operands of `Reshape`, `Expand` and `Tile` may hold dimension names
//! ([`super::SymInt`]), which become those dims; when their values are unknown but their length
//! is known, the output's rank still is.

use qc_ir::{Dim, OpKind};

use super::elementwise::broadcast_r;
use super::{Cx, Fail, Kind, R, SymInt, TypeFact, Values, bad, dim_mul, dim_product, norm_axis, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::Reshape => reshape(cx),
        OpKind::Flatten => flatten(cx),
        OpKind::Squeeze => squeeze(cx),
        OpKind::Unsqueeze => unsqueeze(cx),
        OpKind::Transpose => transpose(cx),
        OpKind::Expand => expand(cx),
        OpKind::Tile => tile(cx),
        OpKind::DepthToSpace => depth_space(cx, true),
        OpKind::SpaceToDepth => depth_space(cx, false),
        _ => return None,
    })
}

fn same_values(cx: &Cx, shape: Vec<Dim>) -> R<Vec<Option<TypeFact>>> {
    let f = cx.fact(0).ok();
    one(TypeFact { elem: f.and_then(|f| f.elem), shape: Some(shape), value: f.and_then(|f| f.value.clone()) })
}

/// The output shape of `Reshape` of `input` to `target` (`0` copies, `-1` is inferred).
pub fn reshape_dims(input: &[Dim], target: &[i64], allowzero: bool) -> Result<Vec<Dim>, String> {
    let target: Vec<SymInt> = target.iter().map(|&t| SymInt::Int(t)).collect();
    reshape_dims_sym(input, &target, allowzero)
}

/// [`reshape_dims`] for a target that may hold symbolic or unknown elements (a shape computed
/// from another value's shape). A name in the target is that dimension; an unknown element is an
/// unknown dimension. The `-1` entry is inferred only when the input's size divided by the rest
/// of the target is determined: the copied (`0`) entries and the names the target repeats cancel
/// against the input, and the remaining input dims must be known, or one name whose known factor
/// equals the target's known rest. Otherwise it is unknown, never a guess.
pub fn reshape_dims_sym(input: &[Dim], target: &[SymInt], allowzero: bool) -> Result<Vec<Dim>, String> {
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    // Input dims accounted for by a copied entry or a repeated name.
    let mut used = vec![false; input.len()];
    let mut copied = vec![false; target.len()];
    for (i, t) in target.iter().enumerate() {
        match t {
            SymInt::Int(-1) => {
                if infer_at.is_some() {
                    return Err("more than one -1 in the target shape".into());
                }
                infer_at = Some(i);
                out.push(Dim::Unknown);
            }
            SymInt::Int(0) if !allowzero => match input.get(i) {
                Some(d) => {
                    used[i] = true;
                    copied[i] = true;
                    out.push(d.clone());
                }
                None => return Err(format!("a 0 at position {i} has no input dimension to copy")),
            },
            SymInt::Int(t) if *t < 0 => return Err(format!("invalid target dimension {t}")),
            SymInt::Int(t) => out.push(Dim::Known(*t as u64)),
            SymInt::Sym(s) => out.push(Dim::Sym(s.clone())),
            SymInt::Unknown => out.push(Dim::Unknown),
        }
    }
    if let Some(at) = infer_at {
        let mut den: u64 = 1;
        let mut den_open = false;
        for (i, d) in out.iter().enumerate() {
            if i == at || copied[i] {
                continue;
            }
            match d {
                Dim::Known(n) => den = den.saturating_mul(*n),
                Dim::Sym(_) => match (0..input.len()).find(|&p| !used[p] && input[p] == *d) {
                    Some(p) => used[p] = true,
                    None => den_open = true,
                },
                Dim::Unknown => den_open = true,
            }
        }
        let mut num: u64 = 1;
        let mut open: Vec<&Dim> = Vec::new();
        for (d, _) in input.iter().zip(&used).filter(|(_, u)| !**u) {
            match d {
                Dim::Known(n) => num = num.saturating_mul(*n),
                d => open.push(d),
            }
        }
        out[at] = if den_open || den == 0 {
            if !den_open && open.is_empty() {
                return Err(format!("cannot reshape {num} elements into a shape with 0 elements per -1"));
            }
            Dim::Unknown
        } else if open.is_empty() {
            if !num.is_multiple_of(den) {
                return Err(format!("cannot reshape {num} elements into a shape with {den} elements per -1"));
            }
            Dim::Known(num / den)
        } else if num == 0 {
            Dim::Known(0)
        } else if open.len() == 1 && num == den {
            open[0].clone()
        } else {
            Dim::Unknown
        };
    } else if let (Some(a), Some(b)) = (dim_product(input).known(), dim_product(&out).known())
        && a != b
    {
        return Err(format!("cannot reshape {a} elements into {b}"));
    }
    Ok(out)
}

trait KnownDim {
    fn known(&self) -> Option<u64>;
}

impl KnownDim for Dim {
    fn known(&self) -> Option<u64> {
        if let Dim::Known(n) = self { Some(*n) } else { None }
    }
}

/// The dims a shape operand (input `i`) gives: from its values when known (names kept), else
/// as many unknown dims as its length. Negative entries are an error.
fn shape_operand(cx: &Cx, i: usize, what: &str) -> R<Vec<Dim>> {
    match cx.sym_ints(i) {
        Ok(v) => v
            .iter()
            .map(|d| {
                d.to_dim().ok_or_else(|| Fail::Bad(Kind::Attribute, format!("{what} has a negative entry")))
            })
            .collect(),
        Err(_) => cx.known_len(i).map(|n| vec![Dim::Unknown; n]).ok_or(Fail::Unknown),
    }
}

fn reshape(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let target: Vec<SymInt> = if cx.opset < 5 {
        cx.attr_ints("shape")?
            .ok_or_else(|| Fail::Bad(Kind::Attribute, "`shape` is required".into()))?
            .into_iter()
            .map(SymInt::Int)
            .collect()
    } else {
        match cx.sym_ints(1) {
            Ok(t) => t,
            // The rank is still known from the length of the shape operand.
            Err(_) => {
                let n = cx.known_len(1).ok_or(Fail::Unknown)?;
                return one(TypeFact {
                    elem: cx.elem_opt(0),
                    shape: Some(vec![Dim::Unknown; n]),
                    value: None,
                });
            }
        }
    };
    let allowzero = cx.opset >= 14 && cx.attr_int("allowzero", 0)? != 0;
    let input = match cx.dims(0) {
        Ok(d) => d,
        Err(_) => {
            // Without the input's shape, every entry but `0` (copy) and `-1` is still its dim.
            if target.iter().filter(|t| **t == SymInt::Int(-1)).count() > 1 {
                return bad(Kind::Incompatible, "more than one -1 in the target shape");
            }
            let s = target
                .iter()
                .map(|t| match t {
                    SymInt::Int(0) if allowzero => Ok(Dim::Known(0)),
                    SymInt::Int(0 | -1) => Ok(Dim::Unknown),
                    t => t.to_dim().ok_or_else(|| {
                        Fail::Bad(Kind::Incompatible, format!("invalid target dimension {t:?}"))
                    }),
                })
                .collect::<R<Vec<Dim>>>()?;
            return one(TypeFact { elem: cx.elem_opt(0), shape: Some(s), value: None });
        }
    };
    let s = reshape_dims_sym(input, &target, allowzero).map_err(|m| Fail::Bad(Kind::Incompatible, m))?;
    same_values(cx, s)
}

fn flatten(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let axis = cx.attr_int("axis", 1)?;
    let r = x.len() as i64;
    if axis < -r || axis > r {
        return bad(Kind::Axis, format!("axis {axis} is out of range for rank {r}"));
    }
    let a = if axis < 0 { axis + r } else { axis } as usize;
    same_values(cx, vec![dim_product(&x[..a]), dim_product(&x[a..])])
}

fn axes_of(cx: &Cx, from_input: bool) -> R<Option<Vec<i64>>> {
    if from_input { if cx.has(1) { Ok(Some(cx.ints(1)?)) } else { Ok(None) } } else { cx.attr_ints("axes") }
}

fn squeeze(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let axes = axes_of(cx, cx.opset >= 13)?;
    let out = match axes {
        Some(axes) if !axes.is_empty() => {
            let mut drop = vec![false; x.len()];
            for a in axes {
                let a = norm_axis(a, x.len())?;
                if let Dim::Known(n) = x[a]
                    && n != 1
                {
                    return bad(Kind::Incompatible, format!("cannot squeeze axis {a} of size {n}"));
                }
                drop[a] = true;
            }
            x.iter().zip(drop).filter(|(_, d)| !d).map(|(d, _)| d.clone()).collect()
        }
        _ => {
            if x.iter().any(|d| !matches!(d, Dim::Known(_))) {
                return Err(Fail::Unknown);
            }
            x.iter().filter(|d| **d != Dim::Known(1)).cloned().collect()
        }
    };
    same_values(cx, out)
}

fn unsqueeze(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let axes =
        axes_of(cx, cx.opset >= 13)?.ok_or_else(|| Fail::Bad(Kind::Attribute, "axes are required".into()))?;
    let n = x.len() + axes.len();
    let mut ones = vec![false; n];
    for a in axes {
        let a = norm_axis(a, n)?;
        if ones[a] {
            return bad(Kind::Axis, format!("axis {a} is repeated"));
        }
        ones[a] = true;
    }
    let mut it = x.iter();
    let out: Vec<Dim> = ones
        .iter()
        .map(|&o| if o { Dim::Known(1) } else { it.next().cloned().unwrap_or(Dim::Unknown) })
        .collect();
    same_values(cx, out)
}

fn transpose(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let perm = cx.attr_ints("perm")?.unwrap_or_else(|| (0..x.len() as i64).rev().collect());
    if perm.len() != x.len() {
        return bad(Kind::Attribute, format!("perm has {} entries for rank {}", perm.len(), x.len()));
    }
    let mut seen = vec![false; x.len()];
    let mut out = Vec::new();
    for p in perm {
        let p = norm_axis(p, x.len())?;
        if seen[p] {
            return bad(Kind::Attribute, "perm repeats an axis");
        }
        seen[p] = true;
        out.push(x[p].clone());
    }
    let mut f = TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None };
    if x.len() <= 1 {
        f.value = cx.values(0).ok().cloned();
    }
    one(f)
}

fn expand(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let s = shape_operand(cx, 1, "Expand's shape")?;
    let out = broadcast_r(x, &s)?;
    let mut f = TypeFact { elem: cx.elem_opt(0), shape: Some(out.clone()), value: None };
    if let Ok(v) = cx.values(0)
        && v.len() == 1
        && let Some(n) = dim_product(&out).known_u64()
    {
        let n = n as usize;
        f.value = Some(match v {
            Values::Int(v) => Values::Int(vec![v[0]; n]),
            Values::Float(v) => Values::Float(vec![v[0]; n]),
            Values::Sym(v) => Values::Sym(vec![v[0].clone(); n]),
        });
    }
    one(f)
}

trait KnownU64 {
    fn known_u64(&self) -> Option<u64>;
}

impl KnownU64 for Dim {
    fn known_u64(&self) -> Option<u64> {
        match self {
            Dim::Known(n) if *n as usize <= super::MAX_VALUES => Some(*n),
            _ => None,
        }
    }
}

fn tile(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if cx.opset < 6 {
        return Err(Fail::Unknown);
    }
    let reps = shape_operand(cx, 1, "repeats")?;
    if reps.len() != x.len() {
        return bad(Kind::Rank, format!("repeats has {} entries for rank {}", reps.len(), x.len()));
    }
    let out = x.iter().zip(&reps).map(|(d, r)| dim_product(&[d.clone(), r.clone()])).collect();
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None })
}

fn depth_space(cx: &Cx, to_space: bool) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if x.len() != 4 {
        return bad(Kind::Rank, format!("the input has rank {}, expected 4", x.len()));
    }
    let b = cx.attr_int("blocksize", 0)?;
    if b <= 0 {
        return bad(Kind::Attribute, "blocksize must be positive");
    }
    let b = b as u64;
    let div = |d: &Dim, k: u64| -> R<Dim> {
        Ok(match d {
            Dim::Known(n) if n % k != 0 => {
                return bad(Kind::Incompatible, format!("dimension {n} is not divisible by {k}"));
            }
            Dim::Known(n) => Dim::Known(n / k),
            _ if k == 1 => d.clone(),
            _ => Dim::Unknown,
        })
    };
    let out = if to_space {
        vec![x[0].clone(), div(&x[1], b * b)?, dim_mul(&x[2], b), dim_mul(&x[3], b)]
    } else {
        vec![x[0].clone(), dim_mul(&x[1], b * b), div(&x[2], b)?, div(&x[3], b)?]
    };
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None })
}
