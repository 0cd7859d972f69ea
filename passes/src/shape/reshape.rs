//! Reshape-like ops: `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Transpose`, `Expand`,
//! `Tile`, `DepthToSpace`, `SpaceToDepth`.
//!
//! Values pass through `Reshape`, `Flatten`, `Squeeze` and `Unsqueeze` unchanged (the element
//! order does not change), which is what data propagation needs.

use qc_ir::Dim;

use super::elementwise::broadcast_r;
use super::{Cx, Fail, Kind, R, TypeFact, bad, dim_mul, dim_product, norm_axis, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.op_type() {
        "Reshape" => reshape(cx),
        "Flatten" => flatten(cx),
        "Squeeze" => squeeze(cx),
        "Unsqueeze" => unsqueeze(cx),
        "Transpose" => transpose(cx),
        "Expand" => expand(cx),
        "Tile" => tile(cx),
        "DepthToSpace" => depth_space(cx, true),
        "SpaceToDepth" => depth_space(cx, false),
        _ => return None,
    })
}

fn same_values(cx: &Cx, shape: Vec<Dim>) -> R<Vec<Option<TypeFact>>> {
    let f = cx.fact(0).ok();
    one(TypeFact { elem: f.and_then(|f| f.elem), shape: Some(shape), value: f.and_then(|f| f.value.clone()) })
}

/// The output shape of `Reshape` of `input` to `target` (`0` copies, `-1` is inferred).
pub fn reshape_dims(input: &[Dim], target: &[i64], allowzero: bool) -> Result<Vec<Dim>, String> {
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 => {
                if infer_at.is_some() {
                    return Err("more than one -1 in the target shape".into());
                }
                infer_at = Some(i);
                out.push(Dim::Unknown);
            }
            0 if !allowzero => match input.get(i) {
                Some(d) => out.push(d.clone()),
                None => return Err(format!("a 0 at position {i} has no input dimension to copy")),
            },
            t if t < 0 => return Err(format!("invalid target dimension {t}")),
            t => out.push(Dim::Known(t as u64)),
        }
    }
    if let Some(at) = infer_at {
        // Cancel the dims common to both sides (symbolic names too), then divide.
        let mut rest_in: Vec<Dim> = input.to_vec();
        let mut rest_out: Vec<Dim> = Vec::new();
        for (i, d) in out.iter().enumerate() {
            if i == at {
                continue;
            }
            match d {
                Dim::Known(_) => rest_out.push(d.clone()),
                d => match rest_in.iter().position(|x| x == d) {
                    Some(p) => {
                        rest_in.remove(p);
                    }
                    None => rest_out.push(d.clone()),
                },
            }
        }
        let num = dim_product(&rest_in);
        let den = dim_product(&rest_out);
        out[at] = match (num, den) {
            (Dim::Known(n), Dim::Known(d)) => {
                if d == 0 || n % d != 0 {
                    return Err(format!("cannot reshape {n} elements into a shape with {d} elements per -1"));
                }
                Dim::Known(n / d)
            }
            (n, Dim::Known(1)) => n,
            _ => Dim::Unknown,
        };
    } else if let (Some(a), Some(b)) = (dim_product(input).known(), dim_product(&out).known()) {
        if a != b {
            return Err(format!("cannot reshape {a} elements into {b}"));
        }
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

fn reshape(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let target = if cx.opset < 5 {
        cx.attr_ints("shape")?.ok_or_else(|| Fail::Bad(Kind::Attribute, "`shape` is required".into()))?
    } else {
        cx.ints(1)?
    };
    let allowzero = cx.opset >= 14 && cx.attr_int("allowzero", 0)? != 0;
    let input = match cx.dims(0) {
        Ok(d) => d,
        Err(_) if target.iter().all(|&t| t > 0 || (t == 0 && allowzero)) => {
            let s: Vec<Dim> = target.iter().map(|&t| Dim::Known(t as u64)).collect();
            return one(TypeFact { elem: cx.elem_opt(0), shape: Some(s), value: None });
        }
        Err(e) => return Err(e),
    };
    let s = reshape_dims(input, &target, allowzero).map_err(|m| Fail::Bad(Kind::Incompatible, m))?;
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
                if let Dim::Known(n) = x[a] {
                    if n != 1 {
                        return bad(Kind::Incompatible, format!("cannot squeeze axis {a} of size {n}"));
                    }
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
    let shape = cx.ints(1)?;
    if shape.iter().any(|&d| d < 0) {
        return bad(Kind::Attribute, "Expand's shape has a negative entry");
    }
    let s: Vec<Dim> = shape.iter().map(|&d| Dim::Known(d as u64)).collect();
    let out = broadcast_r(x, &s)?;
    let mut f = TypeFact { elem: cx.elem_opt(0), shape: Some(out.clone()), value: None };
    if let Ok(v) = cx.values(0) {
        if v.len() == 1 {
            if let Some(n) = dim_product(&out).known_u64() {
                f.value = Some(match v {
                    super::Values::Int(v) => super::Values::Int(vec![v[0]; n as usize]),
                    super::Values::Float(v) => super::Values::Float(vec![v[0]; n as usize]),
                });
            }
        }
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
    let reps = cx.ints(1)?;
    if reps.len() != x.len() {
        return bad(Kind::Rank, format!("repeats has {} entries for rank {}", reps.len(), x.len()));
    }
    if reps.iter().any(|&r| r < 0) {
        return bad(Kind::Attribute, "a repeat count is negative");
    }
    let out = x.iter().zip(&reps).map(|(d, &r)| dim_mul(d, r as u64)).collect();
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
