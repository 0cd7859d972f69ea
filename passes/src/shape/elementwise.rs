//! Elementwise ops and ONNX (numpy) broadcasting, including symbolic dimensions.
//!
//! Broadcasting aligns shapes on the right; per dimension, `1` gives way to the other size,
//! equal sizes (or equal names) stay, a known size above 1 wins over a symbolic one, and two
//! different names give an unknown dimension.

use qc_ir::{Dim, ElemType};

use super::{Cx, Fail, Kind, R, TypeFact, Values, bad, one};

const UNARY: &[&str] = &[
    "Abs",
    "Ceil",
    "Floor",
    "Neg",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Sign",
    "Sin",
    "Cos",
    "Erf",
    "Elu",
    "LeakyRelu",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Gelu",
    "Identity",
    "Clip",
    "Selu",
    "Round",
    "Acos",
    "Softsign",
];

const BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu"];
const COMPARE: &[&str] = &["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor"];
const VARIADIC: &[&str] = &["Sum", "Mean", "Max", "Min"];

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    let t = cx.op.op_type();
    Some(if UNARY.contains(&t) {
        unary(cx)
    } else if t == "Not" {
        cx.dims(0).and_then(|d| one(TypeFact::new(ElemType::Bool, d.to_vec())))
    } else if BINARY.contains(&t) || COMPARE.contains(&t) {
        binary(cx, COMPARE.contains(&t))
    } else if VARIADIC.contains(&t) {
        variadic(cx)
    } else if t == "Where" {
        where_(cx)
    } else {
        return None;
    })
}

fn unary(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let f = cx.fact(0)?;
    let mut out = TypeFact { elem: f.elem, shape: f.shape.clone(), value: None };
    if let Some(v) = &f.value {
        out.value = match (cx.op.op_type(), v) {
            ("Identity", v) => Some(v.clone()),
            ("Neg", Values::Int(v)) => Some(Values::Int(v.iter().map(|x| x.wrapping_neg()).collect())),
            ("Abs", Values::Int(v)) => Some(Values::Int(v.iter().map(|x| x.wrapping_abs()).collect())),
            ("Neg", Values::Float(v)) => Some(Values::Float(v.iter().map(|x| -x).collect())),
            ("Abs", Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.abs()).collect())),
            ("Ceil", Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.ceil()).collect())),
            ("Floor", Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.floor()).collect())),
            ("Sqrt", Values::Float(v)) => Some(Values::Float(v.iter().map(|x| x.sqrt()).collect())),
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
        (Ok(a), _) if cx.opset < 7 && cx.op.op_type() != "PRelu" => Some(a.to_vec()),
        (Ok(a), _) if cx.op.op_type() == "PRelu" && cx.opset < 7 => Some(a.to_vec()),
        (Ok(a), Ok(b)) => Some(broadcast_r(a, b)?),
        _ => None,
    };
    if elem.is_none() && shape.is_none() {
        return Err(Fail::Unknown);
    }
    let mut out = TypeFact { elem, shape, value: None };
    if let (Ok(x), Ok(y)) = (cx.values(0), cx.values(1)) {
        out.value = binary_values(cx.op.op_type(), x, y);
    }
    one(out)
}

fn pairs<T: Copy>(a: &[T], b: &[T]) -> Option<Vec<(T, T)>> {
    if a.len() == b.len() {
        Some(a.iter().copied().zip(b.iter().copied()).collect())
    } else if a.len() == 1 {
        Some(b.iter().map(|y| (a[0], *y)).collect())
    } else if b.len() == 1 {
        Some(a.iter().map(|x| (*x, b[0])).collect())
    } else {
        None
    }
}

fn binary_values(op: &str, a: &Values, b: &Values) -> Option<Values> {
    match (a, b) {
        (Values::Int(a), Values::Int(b)) => {
            let p = pairs(a, b)?;
            let v: Option<Vec<i64>> = p
                .into_iter()
                .map(|(x, y)| match op {
                    "Add" => Some(x.wrapping_add(y)),
                    "Sub" => Some(x.wrapping_sub(y)),
                    "Mul" => Some(x.wrapping_mul(y)),
                    "Div" => x.checked_div(y),
                    "Mod" => x.checked_rem(y).map(|r| if r != 0 && (r < 0) != (y < 0) { r + y } else { r }),
                    "Equal" => Some(i64::from(x == y)),
                    "Greater" => Some(i64::from(x > y)),
                    "Less" => Some(i64::from(x < y)),
                    "And" => Some(i64::from(x != 0 && y != 0)),
                    "Or" => Some(i64::from(x != 0 || y != 0)),
                    "Xor" => Some(i64::from((x != 0) != (y != 0))),
                    _ => None,
                })
                .collect();
            v.map(Values::Int)
        }
        _ => {
            let p = pairs(&a.as_f64(), &b.as_f64())?;
            let v: Option<Vec<f64>> = p
                .into_iter()
                .map(|(x, y)| match op {
                    "Add" => Some(x + y),
                    "Sub" => Some(x - y),
                    "Mul" => Some(x * y),
                    "Div" => Some(x / y),
                    "Equal" => Some(f64::from(u8::from(x == y))),
                    "Greater" => Some(f64::from(u8::from(x > y))),
                    "Less" => Some(f64::from(u8::from(x < y))),
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
    if n == 1 {
        out.value = cx.values(0).ok().cloned();
    }
    one(out)
}

fn where_(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let s = broadcast_r(&broadcast_r(cx.dims(0)?, cx.dims(1)?)?, cx.dims(2)?)?;
    let elem = cx.elem_opt(1).or_else(|| cx.elem_opt(2));
    one(TypeFact { elem, shape: Some(s), value: None })
}
