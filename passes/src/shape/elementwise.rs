//! Elementwise ops and ONNX (numpy) broadcasting, including symbolic dimensions.
//!
//! Broadcasting aligns shapes on the right; per dimension, `1` gives way to the other size,
//! equal sizes (or equal names) stay, a known size above 1 wins over a symbolic one, and two
//! different names give an unknown dimension.
//!
//! Values are computed for small tensors: unary `Neg`/`Abs`/`Ceil`/`Floor`/`Sqrt`/`Identity`,
//! binary arithmetic and comparisons, `Sum`/`Max`/`Min`, and `Where` with known conditions. On symbolic shape
//! elements ([`SymInt`]) a name survives only where the result is the name itself (`N * 1`,
//! `N / 1`, `N + 0`, `N - 0`, `Abs(N)`); `N - N` and `N * 0` are `0`; comparisons of a name with
//! a negative number are decided (a size is never negative), as is `N == N`; everything else
//! (`N * 2`, `N + 1`, `N / 2`, `N == 3`) is an unknown element.

use qc_ir::{Dim, ElemType, OpKind};

use super::{Cx, Fail, Kind, R, SymInt, TypeFact, Values, bad, one};

const UNARY: &[OpKind] = &[
    OpKind::Abs,
    OpKind::Ceil,
    OpKind::Floor,
    OpKind::Neg,
    OpKind::Relu,
    OpKind::Sigmoid,
    OpKind::Tanh,
    OpKind::Exp,
    OpKind::Log,
    OpKind::Sqrt,
    OpKind::Reciprocal,
    OpKind::Sign,
    OpKind::Sin,
    OpKind::Cos,
    OpKind::Erf,
    OpKind::Elu,
    OpKind::LeakyRelu,
    OpKind::HardSigmoid,
    OpKind::HardSwish,
    OpKind::Softplus,
    OpKind::Gelu,
    OpKind::Mish,
    OpKind::Swish,
    OpKind::Identity,
    OpKind::Clip,
    OpKind::Selu,
    OpKind::Round,
    OpKind::Acos,
    OpKind::Asin,
    OpKind::Atan,
    OpKind::Tan,
    OpKind::Sinh,
    OpKind::Cosh,
    OpKind::Asinh,
    OpKind::Acosh,
    OpKind::Atanh,
    OpKind::Softsign,
];

const BINARY: &[OpKind] =
    &[OpKind::Add, OpKind::Sub, OpKind::Mul, OpKind::Div, OpKind::Pow, OpKind::Mod, OpKind::PRelu];
const COMPARE: &[OpKind] = &[
    OpKind::Equal,
    OpKind::Greater,
    OpKind::Less,
    OpKind::GreaterOrEqual,
    OpKind::LessOrEqual,
    OpKind::And,
    OpKind::Or,
    OpKind::Xor,
];
const VARIADIC: &[OpKind] = &[OpKind::Sum, OpKind::Mean, OpKind::Max, OpKind::Min];

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    let t = cx.op.kind();
    Some(if UNARY.contains(&t) {
        unary(cx)
    } else if t == OpKind::Not {
        cx.dims(0).and_then(|d| one(TypeFact::new(ElemType::Bool, d.to_vec())))
    } else if BINARY.contains(&t) || COMPARE.contains(&t) {
        binary(cx, COMPARE.contains(&t))
    } else if VARIADIC.contains(&t) {
        variadic(cx)
    } else if t == OpKind::Where {
        where_(cx)
    } else {
        return None;
    })
}

fn unary(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let f = cx.fact(0)?;
    let mut out = TypeFact { elem: f.elem, shape: f.shape.clone(), value: None };
    if let Some(v) = &f.value {
        out.value = match (cx.op.kind(), v) {
            (OpKind::Identity, v) => Some(v.clone()),
            (OpKind::Neg, Values::Int(v)) => Some(Values::Int(v.iter().map(|x| x.wrapping_neg()).collect())),
            (OpKind::Abs, Values::Int(v)) => Some(Values::Int(v.iter().map(|x| x.wrapping_abs()).collect())),
            (OpKind::Neg, Values::Float(v)) => Some(Values::Float(v.iter().map(|x| -x).collect())),
            (OpKind::Abs, Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.abs()).collect())),
            (OpKind::Ceil, Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.ceil()).collect())),
            (OpKind::Floor, Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.floor()).collect())),
            (OpKind::Sqrt, Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.sqrt()).collect())),
            (OpKind::Neg, Values::Sym(v)) => Some(Values::from_sym(
                v.iter()
                    .map(|x| match x {
                        SymInt::Int(n) => SymInt::Int(n.wrapping_neg()),
                        _ => SymInt::Unknown,
                    })
                    .collect(),
            )),
            (OpKind::Abs, Values::Sym(v)) => Some(Values::from_sym(
                v.iter()
                    .map(|x| match x {
                        SymInt::Int(n) => SymInt::Int(n.wrapping_abs()),
                        // A dimension's size is never negative.
                        x => x.clone(),
                    })
                    .collect(),
            )),
            _ => None,
        };
    }
    if f.elem.is_none() && f.shape.is_none() {
        return Err(Fail::Unknown);
    }
    one(out)
}

/// Broadcasts two dims.
pub(crate) fn broadcast_dim(a: &Dim, b: &Dim) -> R<Dim> {
    Ok(match (a, b) {
        (Dim::Known(1), d) | (d, Dim::Known(1)) => d.clone(),
        (Dim::Known(x), Dim::Known(y)) => {
            if x != y {
                return bad(Kind::Incompatible, format!("dimensions {x} and {y} do not broadcast"));
            }
            Dim::Known(*x)
        }
        (Dim::Known(x), _) | (_, Dim::Known(x)) => Dim::Known(*x),
        (Dim::Sym(x), Dim::Sym(y)) if x == y => Dim::Sym(x.clone()),
        _ => Dim::Unknown,
    })
}

/// Broadcasts two shapes (numpy rules).
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    broadcast_r(a, b).map_err(|e| match e {
        Fail::Bad(_, m) => m,
        Fail::Unknown => "unknown".to_string(),
    })
}

pub(crate) fn broadcast_r(a: &[Dim], b: &[Dim]) -> R<Vec<Dim>> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let da = if i + a.len() >= n { &a[i + a.len() - n] } else { &Dim::Known(1) };
        let db = if i + b.len() >= n { &b[i + b.len() - n] } else { &Dim::Known(1) };
        out.push(broadcast_dim(da, db)?);
    }
    Ok(out)
}

fn binary(cx: &Cx, compare: bool) -> R<Vec<Option<TypeFact>>> {
    let elem = if compare { Some(ElemType::Bool) } else { cx.elem_opt(0).or_else(|| cx.elem_opt(1)) };
    let a = cx.dims(0);
    let b = cx.dims(1);
    let shape = match (a, b) {
        (Ok(a), _) if cx.opset < 7 && cx.op.kind() != OpKind::PRelu => Some(a.to_vec()),
        (Ok(a), _) if cx.op.kind() == OpKind::PRelu && cx.opset < 7 => Some(a.to_vec()),
        (Ok(a), Ok(b)) => Some(broadcast_r(a, b)?),
        _ => None,
    };
    if elem.is_none() && shape.is_none() {
        return Err(Fail::Unknown);
    }
    let mut out = TypeFact { elem, shape, value: None };
    if let (Ok(x), Ok(y)) = (cx.values(0), cx.values(1)) {
        out.value = binary_values(cx.op.kind(), x, y);
    }
    one(out)
}

fn pairs<T: Clone>(a: &[T], b: &[T]) -> Option<Vec<(T, T)>> {
    if a.len() == b.len() {
        Some(a.iter().cloned().zip(b.iter().cloned()).collect())
    } else if a.len() == 1 {
        Some(b.iter().map(|y| (a[0].clone(), y.clone())).collect())
    } else if b.len() == 1 {
        Some(a.iter().map(|x| (x.clone(), b[0].clone())).collect())
    } else {
        None
    }
}

/// One element of a binary op on possibly symbolic integers. A name survives only where the
/// result is the name itself; other results with a name are unknown. Names are sizes, so they
/// are never negative (which settles comparisons with negative numbers).
fn sym_binary(op: OpKind, x: &SymInt, y: &SymInt) -> SymInt {
    use SymInt::{Int, Sym, Unknown};
    if let (Int(a), Int(b)) = (x, y) {
        return match binary_values(op, &Values::Int(vec![*a]), &Values::Int(vec![*b])) {
            Some(Values::Int(v)) if v.len() == 1 => Int(v[0]),
            _ => Unknown,
        };
    }
    match (op, x, y) {
        (OpKind::Add, Sym(_), Int(0))
        | (OpKind::Sub, Sym(_), Int(0))
        | (OpKind::Mul, Sym(_), Int(1))
        | (OpKind::Div, Sym(_), Int(1)) => x.clone(),
        (OpKind::Add, Int(0), Sym(_)) | (OpKind::Mul, Int(1), Sym(_)) => y.clone(),
        (OpKind::Mul, _, Int(0)) | (OpKind::Mul, Int(0), _) => Int(0),
        (OpKind::Sub, Sym(a), Sym(b)) if a == b => Int(0),
        (OpKind::Max | OpKind::Min, Sym(a), Sym(b)) if a == b => x.clone(),
        (OpKind::Max, Sym(_), Int(n)) if *n <= 0 => x.clone(),
        (OpKind::Max, Int(n), Sym(_)) if *n <= 0 => y.clone(),
        (OpKind::Min, Sym(_), Int(n)) | (OpKind::Min, Int(n), Sym(_)) if *n <= 0 => Int(*n),
        (OpKind::Equal, Sym(a), Sym(b)) if a == b => Int(1),
        (OpKind::Equal, Sym(_), Int(n)) | (OpKind::Equal, Int(n), Sym(_)) if *n < 0 => Int(0),
        (OpKind::Greater, Sym(_), Int(n)) | (OpKind::Less, Int(n), Sym(_)) if *n < 0 => Int(1),
        (OpKind::Less, Sym(_), Int(n)) | (OpKind::Greater, Int(n), Sym(_)) if *n < 0 => Int(0),
        _ => Unknown,
    }
}

fn binary_values(op: OpKind, a: &Values, b: &Values) -> Option<Values> {
    match (a, b) {
        (Values::Sym(_), Values::Int(_) | Values::Sym(_)) | (Values::Int(_), Values::Sym(_)) => {
            let p = pairs(&a.as_sym(), &b.as_sym())?;
            Some(Values::from_sym(p.iter().map(|(x, y)| sym_binary(op, x, y)).collect()))
        }
        (Values::Sym(_), _) | (_, Values::Sym(_)) => None,
        (Values::Int(a), Values::Int(b)) => {
            let p = pairs(a, b)?;
            let v: Option<Vec<i64>> = p
                .into_iter()
                .map(|(x, y)| match op {
                    OpKind::Add => Some(x.wrapping_add(y)),
                    OpKind::Sub => Some(x.wrapping_sub(y)),
                    OpKind::Mul => Some(x.wrapping_mul(y)),
                    OpKind::Div => x.checked_div(y),
                    OpKind::Max => Some(x.max(y)),
                    OpKind::Min => Some(x.min(y)),
                    OpKind::Mod => {
                        x.checked_rem(y).map(|r| if r != 0 && (r < 0) != (y < 0) { r + y } else { r })
                    }
                    OpKind::Equal => Some(i64::from(x == y)),
                    OpKind::Greater => Some(i64::from(x > y)),
                    OpKind::Less => Some(i64::from(x < y)),
                    OpKind::And => Some(i64::from(x != 0 && y != 0)),
                    OpKind::Or => Some(i64::from(x != 0 || y != 0)),
                    OpKind::Xor => Some(i64::from((x != 0) != (y != 0))),
                    _ => None,
                })
                .collect();
            v.map(Values::Int)
        }
        _ => {
            let p = pairs(&a.as_f64()?, &b.as_f64()?)?;
            let v: Option<Vec<f64>> = p
                .into_iter()
                .map(|(x, y)| match op {
                    OpKind::Add => Some(x + y),
                    OpKind::Sub => Some(x - y),
                    OpKind::Mul => Some(x * y),
                    OpKind::Div => Some(x / y),
                    // NaN wins, as in numpy's maximum and minimum.
                    OpKind::Max | OpKind::Min if x.is_nan() || y.is_nan() => Some(f64::NAN),
                    OpKind::Max => Some(x.max(y)),
                    OpKind::Min => Some(x.min(y)),
                    OpKind::Equal => Some(f64::from(u8::from(x == y))),
                    OpKind::Greater => Some(f64::from(u8::from(x > y))),
                    OpKind::Less => Some(f64::from(u8::from(x < y))),
                    _ => None,
                })
                .collect();
            v.map(Values::Float)
        }
    }
}

fn variadic(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let n = cx.op.inputs().len();
    if n == 0 {
        return bad(Kind::Rank, "the op has no inputs");
    }
    let mut shape = cx.dims(0)?.to_vec();
    for i in 1..n {
        shape = broadcast_r(&shape, cx.dims(i)?)?;
    }
    let elem = (0..n).find_map(|i| cx.elem_opt(i));
    let mut out = TypeFact { elem, shape: Some(shape), value: None };
    // Values fold pairwise (`Sum` as `Add`); `Mean` only of one input.
    let pairwise = match cx.op.kind() {
        OpKind::Sum => Some(OpKind::Add),
        OpKind::Max => Some(OpKind::Max),
        OpKind::Min => Some(OpKind::Min),
        _ => None,
    };
    if n == 1 {
        out.value = cx.values(0).ok().cloned();
    } else if let Some(p) = pairwise {
        let mut acc = cx.values(0).ok().cloned();
        for i in 1..n {
            acc = match (acc, cx.values(i)) {
                (Some(a), Ok(b)) => binary_values(p, &a, b),
                _ => None,
            };
        }
        out.value = acc;
    }
    one(out)
}

fn where_(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let s = broadcast_r(&broadcast_r(cx.dims(0)?, cx.dims(1)?)?, cx.dims(2)?)?;
    let elem = cx.elem_opt(1).or_else(|| cx.elem_opt(2));
    let mut out = TypeFact { elem, shape: Some(s), value: None };
    if let (Ok(c), Ok(x), Ok(y)) = (cx.ints(0), cx.values(1), cx.values(2)) {
        out.value = where_values(&c, x, y);
    }
    one(out)
}

/// `Where` on known conditions, elementwise (a length-1 operand broadcasts).
fn where_values(c: &[i64], x: &Values, y: &Values) -> Option<Values> {
    let n = [c.len(), x.len(), y.len()].into_iter().max()?;
    let at = |len: usize, i: usize| {
        if len == 1 {
            Some(0)
        } else if len == n {
            Some(i)
        } else {
            None
        }
    };
    let idx: Vec<(bool, usize, usize)> = (0..n)
        .map(|i| Some((c[at(c.len(), i)?] != 0, at(x.len(), i)?, at(y.len(), i)?)))
        .collect::<Option<_>>()?;
    Some(match (x, y) {
        (Values::Int(x), Values::Int(y)) => {
            Values::Int(idx.iter().map(|&(t, i, j)| if t { x[i] } else { y[j] }).collect())
        }
        (Values::Float(_), _) | (_, Values::Float(_)) => {
            let (x, y) = (x.as_f64()?, y.as_f64()?);
            Values::Float(idx.iter().map(|&(t, i, j)| if t { x[i] } else { y[j] }).collect())
        }
        _ => {
            let (x, y) = (x.as_sym(), y.as_sym());
            Values::from_sym(
                idx.iter().map(|&(t, i, j)| if t { x[i].clone() } else { y[j].clone() }).collect(),
            )
        }
    })
}
