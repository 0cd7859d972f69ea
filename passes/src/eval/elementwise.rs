//! Elementwise ops: numpy broadcasting, arithmetic, comparisons, logic, unary math,
//! activations, `Where`, `Clip`, the variadic `Max`/`Min`/`Sum`/`Mean`, and `Cast`.

use qc_ir::{ElemType, Op, OpKind};

use super::array::{Array, Data, Domain, alloc_count, format_float};
use super::{EvalError, Ins, a_float, a_int, a_str, float8};

/// The numpy broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, EvalError> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(EvalError::shape(format!("shapes {a:?} and {b:?} do not broadcast")));
        };
    }
    Ok(out)
}

/// For each element of `out` (row-major), the flat index of the element of an array of dims
/// `src` that broadcasts to it.
pub fn broadcast_map(src: &[usize], out: &[usize]) -> Result<Vec<usize>, EvalError> {
    if src.len() > out.len() {
        return Err(EvalError::shape(format!("{src:?} does not broadcast to {out:?}")));
    }
    let n = alloc_count(out)?;
    let off = out.len() - src.len();
    let mut strides = vec![0usize; out.len()];
    let mut s = 1usize;
    for i in (0..src.len()).rev() {
        let d = src[i];
        if d != 1 && d != out[i + off] {
            return Err(EvalError::shape(format!("{src:?} does not broadcast to {out:?}")));
        }
        strides[i + off] = if d == 1 { 0 } else { s };
        s *= d;
    }
    let mut idx = Vec::with_capacity(n);
    if n == 0 {
        return Ok(idx);
    }
    let r = out.len();
    let mut pos = vec![0usize; r];
    let mut cur = 0usize;
    for _ in 0..n {
        idx.push(cur);
        for k in (0..r).rev() {
            pos[k] += 1;
            cur += strides[k];
            if pos[k] < out[k] {
                break;
            }
            cur -= strides[k] * pos[k];
            pos[k] = 0;
        }
    }
    Ok(idx)
}

/// Broadcasts two arrays' value lists to a common shape.
#[allow(clippy::type_complexity)]
fn bcast2<T: Clone>(
    a: &[T],
    ad: &[usize],
    b: &[T],
    bd: &[usize],
) -> Result<(Vec<usize>, Vec<T>, Vec<T>), EvalError> {
    let out = broadcast_shape(ad, bd)?;
    if ad == out.as_slice() && bd == out.as_slice() {
        return Ok((out, a.to_vec(), b.to_vec()));
    }
    let ia = broadcast_map(ad, &out)?;
    let ib = broadcast_map(bd, &out)?;
    Ok((out, ia.iter().map(|&i| a[i].clone()).collect(), ib.iter().map(|&i| b[i].clone()).collect()))
}

/// Expands an array to `dims` by broadcasting.
pub fn broadcast_to(a: &Array, dims: &[usize]) -> Result<Array, EvalError> {
    if a.dims == dims {
        return Ok(a.clone());
    }
    let idx = broadcast_map(&a.dims, dims)?;
    a.gather_flat(dims.to_vec(), &idx)
}

fn same_domain(a: &Array, b: &Array) -> Result<Domain, EvalError> {
    let (da, db) = (a.domain()?, b.domain()?);
    if da != db {
        return Err(EvalError::type_mismatch(format!("{} and {} cannot be combined", a.elem, b.elem)));
    }
    Ok(da)
}

fn py_mod_f(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) { r + b } else { r }
}

/// `Add`, `Sub`, `Mul`, `Div`, `Max` or `Min` of two f32 arrays of the same dims, or of an array
/// and a one-element array, computed in f32 without the f64 copies and broadcast index maps of
/// the general path: the common case of folding a large weight. The results are the same, since
/// f32 arithmetic rounds once just as computing in f64 and rounding to f32 does.
fn arith_f32_fast(name: OpKind, a: &Array, b: &Array) -> Option<Array> {
    let (Data::F32(x), Data::F32(y)) = (&a.data, &b.data) else { return None };
    let f: fn(f32, f32) -> f32 = match name {
        OpKind::Add | OpKind::Sum => |x, y| x + y,
        OpKind::Sub => |x, y| x - y,
        OpKind::Mul => |x, y| x * y,
        OpKind::Div => |x, y| x / y,
        OpKind::Max => |x: f32, y: f32| if x.is_nan() || y.is_nan() { f32::NAN } else { x.max(y) },
        OpKind::Min => |x: f32, y: f32| if x.is_nan() || y.is_nan() { f32::NAN } else { x.min(y) },
        _ => return None,
    };
    let (dims, v): (Vec<usize>, Vec<f32>) = if a.dims == b.dims {
        (a.dims.clone(), x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect())
    } else if y.len() == 1 && b.dims.len() <= a.dims.len() {
        let q = y[0];
        (a.dims.clone(), x.iter().map(|&p| f(p, q)).collect())
    } else if x.len() == 1 && a.dims.len() <= b.dims.len() {
        let p = x[0];
        (b.dims.clone(), y.iter().map(|&q| f(p, q)).collect())
    } else {
        return None;
    };
    Some(Array { elem: ElemType::F32, dims, data: Data::F32(v) })
}

fn arith(name: OpKind, a: &Array, b: &Array, fmod: bool) -> Result<Array, EvalError> {
    if let Some(r) = arith_f32_fast(name, a, b) {
        return Ok(r);
    }
    let d = same_domain(a, b)?;
    match d {
        Domain::Float => {
            let (dims, x, y) = bcast2(&a.to_f64()?, &a.dims, &b.to_f64()?, &b.dims)?;
            let f: fn(f64, f64) -> f64 = match name {
                OpKind::Add | OpKind::Sum => |x, y| x + y,
                OpKind::Sub => |x, y| x - y,
                OpKind::Mul => |x, y| x * y,
                OpKind::Div => |x, y| x / y,
                OpKind::Max => |x: f64, y: f64| if x.is_nan() || y.is_nan() { f64::NAN } else { x.max(y) },
                OpKind::Min => |x: f64, y: f64| if x.is_nan() || y.is_nan() { f64::NAN } else { x.min(y) },
                OpKind::Mod if fmod => |x, y| x % y,
                OpKind::Mod => py_mod_f,
                _ => return Err(EvalError::unsupported(format!("{name} on floats"))),
            };
            // Single-precision types compute in f32 so results match a float32 reference.
            let v: Vec<f64> = if a.elem == ElemType::F32 {
                x.iter().zip(&y).map(|(&p, &q)| f64::from(f(p, q) as f32)).collect()
            } else {
                x.iter().zip(&y).map(|(&p, &q)| f(p, q)).collect()
            };
            Array::from_f64s(a.elem, dims, v)
        }
        Domain::Int | Domain::Bool => {
            let (dims, x, y) = bcast2(&a.to_i128()?, &a.dims, &b.to_i128()?, &b.dims)?;
            let v: Vec<i128> = x
                .iter()
                .zip(&y)
                .map(|(&p, &q)| match name {
                    OpKind::Add | OpKind::Sum => p.wrapping_add(q),
                    OpKind::Sub => p.wrapping_sub(q),
                    OpKind::Mul => p.wrapping_mul(q),
                    OpKind::Div => p.checked_div(q).unwrap_or(0),
                    OpKind::Max => p.max(q),
                    OpKind::Min => p.min(q),
                    OpKind::Mod if fmod => p.checked_rem(q).unwrap_or(0),
                    _ => {
                        if q == 0 {
                            0
                        } else {
                            let r = p % q;
                            if r != 0 && ((r < 0) != (q < 0)) { r + q } else { r }
                        }
                    }
                })
                .collect();
            Array::from_i128s(a.elem, dims, v)
        }
        Domain::Str => Err(EvalError::type_mismatch(format!("{name} on strings"))),
    }
}

fn pow(a: &Array, b: &Array) -> Result<Array, EvalError> {
    match (a.domain()?, b.domain()?) {
        (Domain::Int, Domain::Int) => {
            let (dims, x, y) = bcast2(&a.to_i128()?, &a.dims, &b.to_i128()?, &b.dims)?;
            let v = x
                .iter()
                .zip(&y)
                .map(|(&p, &q)| {
                    if q < 0 {
                        if p == 1 { 1 } else { 0 }
                    } else {
                        let mut r: i128 = 1;
                        for _ in 0..q.min(128) {
                            r = r.wrapping_mul(p);
                        }
                        r
                    }
                })
                .collect();
            Array::from_i128s(a.elem, dims, v)
        }
        _ => {
            let (dims, x, y) = bcast2(&a.to_f64()?, &a.dims, &b.to_f64()?, &b.dims)?;
            let v = x.iter().zip(&y).map(|(&p, &q)| p.powf(q)).collect();
            Array::from_f64s(a.elem, dims, v)
        }
    }
}

fn compare(name: OpKind, a: &Array, b: &Array) -> Result<Array, EvalError> {
    let d = same_domain(a, b)?;
    let v: (Vec<usize>, Vec<bool>) = match d {
        Domain::Float => {
            let (dims, x, y) = bcast2(&a.to_f64()?, &a.dims, &b.to_f64()?, &b.dims)?;
            (dims, x.iter().zip(&y).map(|(p, q)| cmp_op(name, p.partial_cmp(q))).collect())
        }
        Domain::Int | Domain::Bool => {
            let (dims, x, y) = bcast2(&a.to_i128()?, &a.dims, &b.to_i128()?, &b.dims)?;
            (dims, x.iter().zip(&y).map(|(p, q)| cmp_op(name, Some(p.cmp(q)))).collect())
        }
        Domain::Str => {
            let (Data::Str(sa), Data::Str(sb)) = (&a.data, &b.data) else {
                return Err(EvalError::type_mismatch("string storage"));
            };
            let (dims, x, y) = bcast2(sa, &a.dims, sb, &b.dims)?;
            (dims, x.iter().zip(&y).map(|(p, q)| cmp_op(name, Some(p.cmp(q)))).collect())
        }
    };
    Array::from_bool(v.0, v.1)
}

fn cmp_op(name: OpKind, o: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (name, o) {
        (_, None) => false,
        (OpKind::Equal, Some(o)) => o == Equal,
        (OpKind::Greater, Some(o)) => o == Greater,
        (OpKind::Less, Some(o)) => o == Less,
        (OpKind::GreaterOrEqual, Some(o)) => o != Less,
        (OpKind::LessOrEqual, Some(o)) => o != Greater,
        _ => false,
    }
}

fn logic(name: OpKind, a: &Array, b: &Array) -> Result<Array, EvalError> {
    let (dims, x, y) = bcast2(&a.to_bool()?, &a.dims, &b.to_bool()?, &b.dims)?;
    let v = x
        .iter()
        .zip(&y)
        .map(|(&p, &q)| match name {
            OpKind::And => p && q,
            OpKind::Or => p || q,
            _ => p ^ q,
        })
        .collect();
    Array::from_bool(dims, v)
}

/// The error function (Abramowitz–Stegun 7.1.26 refined by a series for small `x`; |err| < 1e-12
/// via the complementary continued fraction for large `x`).
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let r = if ax < 2.5 {
        // Maclaurin series.
        let mut sum = ax;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() || n > 200.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if ax > 6.0 {
        1.0
    } else {
        // Continued fraction for erfc.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        1.0 - (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * (ax + f))
    };
    if x < 0.0 { -r } else { r }
}

fn unary_float(a: &Array, f: impl Fn(f64) -> f64) -> Result<Array, EvalError> {
    if a.domain()? != Domain::Float {
        return Err(EvalError::type_mismatch(format!("expected a floating-point input, found {}", a.elem)));
    }
    let v = a.to_f64()?.into_iter().map(f).collect();
    Array::from_f64s(a.elem, a.dims.clone(), v)
}

fn unary_num(a: &Array, f: impl Fn(f64) -> f64, g: impl Fn(i128) -> i128) -> Result<Array, EvalError> {
    match a.domain()? {
        Domain::Float => unary_float(a, f),
        Domain::Int => {
            let v = a.to_i128()?.into_iter().map(g).collect();
            Array::from_i128s(a.elem, a.dims.clone(), v)
        }
        _ => Err(EvalError::type_mismatch(format!("expected a number, found {}", a.elem))),
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) }
}

fn clip(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let (lo, hi) = if opset < 11 {
        let lo = a_float(op, "min", f32::NEG_INFINITY)?;
        let hi = a_float(op, "max", f32::INFINITY)?;
        (Some(Array::scalar_f32(lo)), Some(Array::scalar_f32(hi)))
    } else {
        (x.opt(1).cloned(), x.opt(2).cloned())
    };
    for b in [&lo, &hi].into_iter().flatten() {
        if b.len() != 1 {
            return Err(EvalError::shape("Clip bounds must be scalars"));
        }
    }
    match a.domain()? {
        Domain::Float => {
            let l = lo.map(|b| b.to_f64()).transpose()?.map_or(f64::NEG_INFINITY, |v| v[0]);
            let h = hi.map(|b| b.to_f64()).transpose()?.map_or(f64::INFINITY, |v| v[0]);
            unary_float(a, |v| if v.is_nan() { v } else { v.max(l).min(h) })
        }
        Domain::Int => {
            let l = lo.map(|b| b.to_i128()).transpose()?.map_or(i128::MIN, |v| v[0]);
            let h = hi.map(|b| b.to_i128()).transpose()?.map_or(i128::MAX, |v| v[0]);
            let v = a.to_i128()?.into_iter().map(|v| v.max(l).min(h)).collect();
            Array::from_i128s(a.elem, a.dims.clone(), v)
        }
        _ => Err(EvalError::type_mismatch("Clip needs numbers")),
    }
}

fn where_op(c: &Array, a: &Array, b: &Array) -> Result<Array, EvalError> {
    if a.elem != b.elem {
        return Err(EvalError::type_mismatch(format!("Where of {} and {}", a.elem, b.elem)));
    }
    let dims = broadcast_shape(&broadcast_shape(&c.dims, &a.dims)?, &b.dims)?;
    let cv = c.to_bool()?;
    let ic = broadcast_map(&c.dims, &dims)?;
    let ia = broadcast_map(&a.dims, &dims)?;
    let ib = broadcast_map(&b.dims, &dims)?;
    // Pick from the concatenation of a and b.
    let both = Array::concat_data(a.elem, vec![a.len() + b.len()], &[a, b])?;
    let idx: Vec<usize> = (0..ic.len()).map(|k| if cv[ic[k]] { ia[k] } else { a.len() + ib[k] }).collect();
    both.gather_flat(dims, &idx)
}

/// `Cast` of `a` to `to` (ONNX semantics: floats to ints truncate; `saturate` applies to float8).
pub fn cast(a: &Array, to: ElemType, saturate: bool, round_mode: &str) -> Result<Array, EvalError> {
    if a.elem == to {
        return Ok(a.clone());
    }
    let dims = a.dims.clone();
    let from = a.domain()?;
    let target = super::array::domain_of(to)?;
    match (from, target) {
        (Domain::Str, Domain::Str) => Ok(a.clone()),
        (Domain::Str, _) => {
            let Data::Str(s) = &a.data else { return Err(EvalError::type_mismatch("string storage")) };
            let v: Vec<f64> = s
                .iter()
                .map(|t| {
                    let t = t.trim();
                    match t.to_ascii_lowercase().as_str() {
                        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
                        "-inf" | "-infinity" => f64::NEG_INFINITY,
                        "nan" | "+nan" | "-nan" => f64::NAN,
                        _ => t.parse::<f64>().unwrap_or(f64::NAN),
                    }
                })
                .collect();
            if target == Domain::Float {
                cast_floats(v, to, dims, saturate, round_mode)
            } else {
                Array::from_f64s(to, dims, v)
            }
        }
        (_, Domain::Str) => {
            let v: Vec<String> = match from {
                Domain::Float => a.to_f64()?.into_iter().map(|x| format_float(x as f32)).collect(),
                Domain::Bool => {
                    a.to_bool()?.into_iter().map(|b| if b { "True".into() } else { "False".into() }).collect()
                }
                _ => a.to_i128()?.into_iter().map(|x| x.to_string()).collect(),
            };
            Array::new(to, dims, Data::Str(v))
        }
        (Domain::Float, Domain::Float) => cast_floats(a.to_f64()?, to, dims, saturate, round_mode),
        (Domain::Float, Domain::Int) => {
            let v = a.to_f64()?;
            if matches!(to, ElemType::I4 | ElemType::U4 | ElemType::I2 | ElemType::U2) {
                // The reference rounds half to even, then wraps into the narrow range.
                let bits = if matches!(to, ElemType::I4 | ElemType::U4) { 4 } else { 2 };
                let signed = matches!(to, ElemType::I4 | ElemType::I2);
                let ints =
                    v.into_iter().map(|x| wrap_bits(round_half_even(x) as i128, bits, signed)).collect();
                return Array::from_i128s(to, dims, ints);
            }
            Array::from_f64s(to, dims, v)
        }
        (Domain::Int | Domain::Bool, Domain::Float) => {
            let v = a.to_i128()?.into_iter().map(|x| x as f64).collect();
            cast_floats(v, to, dims, saturate, round_mode)
        }
        (_, _) => {
            let v = a.to_i128()?;
            if matches!(to, ElemType::I4 | ElemType::U4 | ElemType::I2 | ElemType::U2) {
                let bits = if matches!(to, ElemType::I4 | ElemType::U4) { 4 } else { 2 };
                let signed = matches!(to, ElemType::I4 | ElemType::I2);
                return Array::from_i128s(
                    to,
                    dims,
                    v.into_iter().map(|x| wrap_bits(x, bits, signed)).collect(),
                );
            }
            Array::from_i128s(to, dims, v)
        }
    }
}

fn wrap_bits(x: i128, bits: u32, signed: bool) -> i128 {
    let m = 1i128 << bits;
    let r = x.rem_euclid(m);
    if signed && r >= m / 2 { r - m } else { r }
}

/// Rounds half to even.
pub fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 { 2.0 * (x / 2.0).round() } else { r }
}

fn cast_floats(
    v: Vec<f64>,
    to: ElemType,
    dims: Vec<usize>,
    saturate: bool,
    round_mode: &str,
) -> Result<Array, EvalError> {
    use ElemType::*;
    match to {
        F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F4E2M1 => {
            // Round to f32 first, as the reference does.
            let w = v.into_iter().map(|x| float8::round_to(to, x as f32, saturate)).collect();
            Array::new(to, dims, Data::F32(w))
        }
        F8E8M0 => {
            let w = v
                .into_iter()
                .map(|x| float8::decode(to, float8::encode_e8m0(x as f32, saturate, round_mode)))
                .collect();
            Array::new(to, dims, Data::F32(w))
        }
        _ => Array::from_f64s(to, dims, v),
    }
}

/// Elementwise ops; `None` when `op` is not one of them.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let t = op.kind();
    let out = match t {
        OpKind::Add | OpKind::Sub | OpKind::Mul | OpKind::Div => arith(t, x.get(0)?, x.get(1)?, false)?,
        OpKind::Mod => arith(t, x.get(0)?, x.get(1)?, a_int(op, "fmod", 0)? != 0)?,
        OpKind::Pow => pow(x.get(0)?, x.get(1)?)?,
        OpKind::Max | OpKind::Min | OpKind::Sum | OpKind::Mean => {
            let mut acc = x.get(0)?.clone();
            for i in 1..x.len() {
                let b = x.get(i)?;
                let name = if t == OpKind::Mean { OpKind::Sum } else { t };
                acc = arith(name, &acc, b, false)?;
            }
            if t == OpKind::Mean {
                let n = x.len() as f64;
                acc = unary_float(&acc, |v| v / n)?;
            }
            acc
        }
        OpKind::Equal | OpKind::Greater | OpKind::Less | OpKind::GreaterOrEqual | OpKind::LessOrEqual => {
            compare(t, x.get(0)?, x.get(1)?)?
        }
        OpKind::And | OpKind::Or | OpKind::Xor => logic(t, x.get(0)?, x.get(1)?)?,
        OpKind::Not => {
            let a = x.get(0)?;
            Array::from_bool(a.dims.clone(), a.to_bool()?.into_iter().map(|b| !b).collect())?
        }
        OpKind::Where => where_op(x.get(0)?, x.get(1)?, x.get(2)?)?,
        OpKind::Clip => clip(op, x, opset)?,
        OpKind::Abs => unary_num(x.get(0)?, f64::abs, i128::abs)?,
        OpKind::Neg => unary_num(x.get(0)?, |v| -v, |v| -v)?,
        OpKind::Sign => unary_num(
            x.get(0)?,
            |v| {
                if v > 0.0 {
                    1.0
                } else if v < 0.0 {
                    -1.0
                } else {
                    v
                }
            },
            i128::signum,
        )?,
        OpKind::Relu => unary_num(x.get(0)?, |v| if v > 0.0 { v } else { 0.0 }, |v| v.max(0))?,
        OpKind::Ceil => unary_float(x.get(0)?, f64::ceil)?,
        OpKind::Floor => unary_float(x.get(0)?, f64::floor)?,
        OpKind::Sqrt => unary_float(x.get(0)?, f64::sqrt)?,
        OpKind::Exp => unary_float(x.get(0)?, f64::exp)?,
        OpKind::Log => unary_float(x.get(0)?, f64::ln)?,
        OpKind::Sin => unary_float(x.get(0)?, f64::sin)?,
        OpKind::Cos => unary_float(x.get(0)?, f64::cos)?,
        OpKind::Tan => unary_float(x.get(0)?, f64::tan)?,
        OpKind::Asin => unary_float(x.get(0)?, f64::asin)?,
        OpKind::Acos => unary_float(x.get(0)?, f64::acos)?,
        OpKind::Atan => unary_float(x.get(0)?, f64::atan)?,
        OpKind::Sinh => unary_float(x.get(0)?, f64::sinh)?,
        OpKind::Cosh => unary_float(x.get(0)?, f64::cosh)?,
        OpKind::Asinh => unary_float(x.get(0)?, f64::asinh)?,
        OpKind::Acosh => unary_float(x.get(0)?, f64::acosh)?,
        OpKind::Atanh => unary_float(x.get(0)?, f64::atanh)?,
        OpKind::Round => unary_float(x.get(0)?, round_half_even)?,
        OpKind::Tanh => unary_float(x.get(0)?, f64::tanh)?,
        OpKind::Erf => unary_float(x.get(0)?, erf)?,
        OpKind::Reciprocal => unary_float(x.get(0)?, |v| 1.0 / v)?,
        OpKind::Sigmoid => unary_float(x.get(0)?, sigmoid)?,
        OpKind::Softplus => unary_float(x.get(0)?, |v| if v > 30.0 { v } else { v.exp().ln_1p() })?,
        OpKind::LeakyRelu => {
            let al = f64::from(a_float(op, "alpha", 0.01)?);
            unary_float(x.get(0)?, |v| if v >= 0.0 { v } else { al * v })?
        }
        OpKind::Elu => {
            let al = f64::from(a_float(op, "alpha", 1.0)?);
            unary_float(x.get(0)?, |v| if v >= 0.0 { v } else { al * (v.exp() - 1.0) })?
        }
        OpKind::Selu => {
            let al = f64::from(a_float(op, "alpha", 1.673_263_2)?);
            let ga = f64::from(a_float(op, "gamma", 1.050_701)?);
            unary_float(x.get(0)?, |v| if v > 0.0 { ga * v } else { ga * (al * v.exp() - al) })?
        }
        OpKind::HardSigmoid => {
            let al = f64::from(a_float(op, "alpha", 0.2)?);
            let be = f64::from(a_float(op, "beta", 0.5)?);
            unary_float(x.get(0)?, |v| (al * v + be).clamp(0.0, 1.0))?
        }
        OpKind::HardSwish => unary_float(x.get(0)?, |v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0))?,
        OpKind::Mish => unary_float(x.get(0)?, |v| v * (if v > 30.0 { v } else { v.exp().ln_1p() }).tanh())?,
        OpKind::Swish => {
            let al = f64::from(a_float(op, "alpha", 1.0)?);
            unary_float(x.get(0)?, |v| v * sigmoid(al * v))?
        }
        OpKind::Gelu => {
            if a_str(op, "approximate", "none")? == "tanh" {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                unary_float(x.get(0)?, |v| 0.5 * v * (1.0 + (c * (v + 0.044715 * v * v * v)).tanh()))?
            } else {
                unary_float(x.get(0)?, |v| 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2)))?
            }
        }
        OpKind::PRelu => {
            let (a, s) = (x.get(0)?, x.get(1)?);
            let (dims, p, q) = bcast2(&a.to_f64()?, &a.dims, &s.to_f64()?, &s.dims)?;
            let v = p.iter().zip(&q).map(|(&v, &k)| if v < 0.0 { v * k } else { v }).collect();
            Array::from_f64s(a.elem, dims, v)?
        }
        OpKind::Cast => {
            let to = ElemType::from_code(a_int(op, "to", 1)? as i32);
            let sat = a_int(op, "saturate", 1)? != 0;
            let mode = a_str(op, "round_mode", "up")?;
            cast(x.get(0)?, to, sat, &mode)?
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}
