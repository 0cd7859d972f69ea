//! Quantization ops: ONNX `QuantizeLinear`/`DequantizeLinear` (per-tensor, per-axis and blocked;
//! integer, 4/2-bit and float8 targets, rounding half to even and saturating) and the QONNX custom
//! ops `Quant` (IntQuant), `BipolarQuant`, `Trunc` (v1 with 5 inputs, v2 with 6), `FloatQuant`
//! and `MultiThreshold` (semantics from `research/qonnx.md` §1(a)).
//!
//! QONNX ops compute in the precision the Python oracle (qonnx 1.0.0 on float32 tensors) uses,
//! so results match it bit for bit: `f32` throughout, except that numpy promotes `FloatQuant`'s
//! clamp, its non-saturating inf/NaN rule and its final `* scale` to `f64` (the bound comes from
//! an `f64` sum), rounding to `f32` once at the end. `FloatQuant` follows qonnx's code where it
//! is more precise than `research/qonnx.md`: the exponent is `floor(log2(|X| + tiny))`, ±inf
//! inputs give NaN, and `saturation=0` sends out-of-range values to ±inf or NaN (see
//! `float_quant` below).

use qc_ir::{ElemType, Op, OpKind};

use super::array::{Array, Domain};
use super::elementwise::{broadcast_map, broadcast_shape, round_half_even};
use super::shape_ops::{for_each_index, strides};
use super::{EvalError, Ins, a_float, a_int, a_str, float8, norm_axis};

/// The representable range of an integer element type.
pub fn int_range(elem: ElemType) -> Result<(f64, f64), EvalError> {
    use ElemType::*;
    Ok(match elem {
        I8 => (-128.0, 127.0),
        U8 => (0.0, 255.0),
        I16 => (-32768.0, 32767.0),
        U16 => (0.0, 65535.0),
        I32 => (i32::MIN as f64, i32::MAX as f64),
        U32 => (0.0, u32::MAX as f64),
        I4 => (-8.0, 7.0),
        U4 => (0.0, 15.0),
        I2 => (-2.0, 1.0),
        U2 => (0.0, 3.0),
        I64 => (i64::MIN as f64, i64::MAX as f64),
        U64 => (0.0, u64::MAX as f64),
        other => return Err(EvalError::type_mismatch(format!("{other} is not an integer type"))),
    })
}

/// For each element of `xd`, the index of its scale/zero-point element.
fn param_index(xd: &[usize], pd: &[usize], n: usize, axis: i64, block: i64) -> Result<Vec<usize>, EvalError> {
    let total: usize = xd.iter().product();
    if n == 1 {
        return Ok(vec![0; total]);
    }
    let ax = norm_axis(axis, xd.len())?;
    if block > 0 {
        let b = block as usize;
        if pd.len() != xd.len()
            || xd
                .iter()
                .zip(pd)
                .enumerate()
                .any(|(i, (&x, &p))| if i == ax { x.div_ceil(b) != p } else { x != p })
        {
            return Err(EvalError::shape(format!("blocked scale {pd:?} does not fit input {xd:?}")));
        }
        let ps = strides(pd);
        let mut idx = Vec::with_capacity(total);
        for_each_index(xd, |p| {
            idx.push(p.iter().enumerate().map(|(i, &v)| if i == ax { v / b } else { v } * ps[i]).sum())
        });
        return Ok(idx);
    }
    if pd.len() != 1 || pd[0] != xd[ax] {
        return Err(EvalError::shape(format!("per-axis scale {pd:?} does not fit axis {ax} of {xd:?}")));
    }
    let inner: usize = xd[ax + 1..].iter().product();
    Ok((0..total).map(|i| (i / inner.max(1)) % xd[ax]).collect())
}

fn quantize_linear(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let s = x.get(1)?;
    let zp = x.opt(2);
    let axis = a_int(op, "axis", 1)?;
    let block = a_int(op, "block_size", 0)?;
    let sat = a_int(op, "saturate", 1)? != 0;
    let out = match (zp, a_int(op, "output_dtype", 0)?) {
        (Some(z), _) => z.elem,
        (None, 0) => ElemType::U8,
        (None, t) => ElemType::from_code(t as i32),
    };
    let idx = param_index(&a.dims, &s.dims, s.len(), axis, block)?;
    let xv = a.to_f64()?;
    let sv = s.to_f64()?;
    let zv = zp.map(Array::to_f64).transpose()?;
    let q: Vec<f64> = xv
        .iter()
        .zip(&idx)
        .map(|(&v, &i)| {
            // Divide in f32 as the reference does.
            let r = f64::from(v as f32 / sv[i] as f32);
            (r, zv.as_ref().map_or(0.0, |z| z[i]))
        })
        .map(|(r, z)| match out {
            ElemType::F8E4M3FN
            | ElemType::F8E4M3FNUZ
            | ElemType::F8E5M2
            | ElemType::F8E5M2FNUZ
            | ElemType::F4E2M1 => f64::from(float8::round_to(out, (r + z) as f32, sat)),
            _ => {
                let (lo, hi) = int_range(out).unwrap_or((f64::MIN, f64::MAX));
                (round_half_even(r) + z).clamp(lo, hi)
            }
        })
        .collect();
    int_range(out).or_else(|_| {
        if super::array::domain_of(out)? == Domain::Float {
            Ok((0.0, 0.0))
        } else {
            Err(EvalError::type_mismatch("bad output type"))
        }
    })?;
    Array::from_f64s(out, a.dims.clone(), q)
}

fn dequantize_linear(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let s = x.get(1)?;
    let zp = x.opt(2);
    let axis = a_int(op, "axis", 1)?;
    let block = a_int(op, "block_size", 0)?;
    let out = match a_int(op, "output_dtype", 0)? {
        0 => s.elem,
        t => ElemType::from_code(t as i32),
    };
    let idx = param_index(&a.dims, &s.dims, s.len(), axis, block)?;
    let xv = a.to_f64()?;
    let sv = s.to_f64()?;
    let zv = zp.map(Array::to_f64).transpose()?;
    let v = xv
        .iter()
        .zip(&idx)
        .map(|(&v, &i)| {
            let d = (v - zv.as_ref().map_or(0.0, |z| z[i])) as f32;
            f64::from(d * sv[i] as f32)
        })
        .collect();
    Array::from_f64s(out, a.dims.clone(), v)
}

/// numpy's `sign`: ±1, and +0 for both zeros (so `UP` and `HALF_UP` map -0 to +0, as the
/// oracle does); NaN stays NaN.
fn np_sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// Applies a QONNX rounding mode (upper-cased name).
fn round_mode(mode: &str) -> Result<fn(f32) -> f32, EvalError> {
    Ok(match mode.to_ascii_uppercase().as_str() {
        "ROUND" | "HALF_EVEN" => |x: f32| x.round_ties_even(),
        "CEIL" => f32::ceil,
        "FLOOR" => f32::floor,
        "UP" => |x: f32| np_sign(x) * x.abs().ceil(),
        "DOWN" => f32::trunc,
        "HALF_UP" => |x: f32| np_sign(x) * (x.abs() + 0.5).floor(),
        "HALF_DOWN" => |x: f32| np_sign(x) * (x.abs() - 0.5).ceil(),
        other => return Err(EvalError::attr(format!("unknown rounding_mode `{other}`"))),
    })
}

fn min_max_int(signed: bool, narrow: bool, b: f32) -> (f32, f32) {
    let min = if signed && narrow {
        -(2f32.powf(b - 1.0)) + 1.0
    } else if signed {
        -(2f32.powf(b - 1.0))
    } else {
        0.0
    };
    let max = if !signed && !narrow {
        2f32.powf(b) - 1.0
    } else if !signed && narrow {
        2f32.powf(b) - 2.0
    } else {
        2f32.powf(b - 1.0) - 1.0
    };
    (min, max)
}

/// Broadcasts the parameters of a QONNX op to the shape of its input `xs[0]` (the output keeps
/// that shape, as QONNX defines it and as shape inference says); returns dims and f32 values.
fn bcast_all(xs: &[&Array]) -> Result<(Vec<usize>, Vec<Vec<f32>>), EvalError> {
    let dims = xs[0].dims.clone();
    for a in &xs[1..] {
        if broadcast_shape(&dims, &a.dims)? != dims {
            return Err(EvalError::shape(format!(
                "a parameter of shape {:?} does not broadcast to the input's shape {:?}",
                a.dims, dims
            )));
        }
    }
    let mut vals = Vec::new();
    for a in xs {
        let v = a.to_f64()?;
        let m = broadcast_map(&a.dims, &dims)?;
        vals.push(m.into_iter().map(|i| v[i] as f32).collect());
    }
    Ok((dims, vals))
}

/// QONNX `Quant` on f32 values.
pub fn int_quant(
    x: f32,
    scale: f32,
    zp: f32,
    bw: f32,
    signed: bool,
    narrow: bool,
    round: fn(f32) -> f32,
) -> f32 {
    let q = x / scale + zp;
    let q = if bw == 1.0 && signed {
        if q >= 0.0 { 1.0 } else { -1.0 }
    } else {
        let (lo, hi) = min_max_int(signed, narrow, bw);
        round(np_clip(q, lo, hi))
    };
    (q - zp) * scale
}

/// numpy's `minimum`/`maximum`: NaN if either side is NaN.
fn np_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

fn np_max32(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { a.max(b) }
}

/// numpy's `clip(x, lo, hi)`, i.e. `min(max(x, lo), hi)` with NaN winning; `lo > hi` gives `hi`
/// (where `f32::clamp` panics: a Quant of bit width 0 has `lo > hi`).
fn np_clip<T: PartialOrd + Copy>(x: T, lo: T, hi: T) -> T {
    let nan = |v: T| v.partial_cmp(&v).is_none();
    if nan(x) {
        return x;
    }
    let a = if x > lo { x } else { lo };
    if nan(a) || a < hi { a } else { hi }
}

/// The largest value of a minifloat format, as the oracle's `compute_max_val` computes it:
/// `max_exponent = 2^e - 1 - bias` (no exponent code is reserved for inf/NaN: 480 for e=4, m=3,
/// bias=7), `2^max_exponent` in f32 (infinite from 2^128 on), times the mantissa
/// `sum(2^-i for i in arange(0, -m-1, -1))` in f64; the product is f64.
pub(crate) fn float_format_max(eb: f32, mb: f32, bias: f32) -> f64 {
    let max_exp = 2f32.powf(eb) - 1.0 - bias;
    // `arange(0, -m - 1, -1)` has `ceil(m + 1)` elements. The sum is exact up to m = 52; past
    // that (meaningless for f32) numpy's pairwise order may round differently in the last bit.
    let n = (f64::from(-mb - 1.0) / -1.0).ceil().clamp(0.0, 64.0) as i32;
    let mant = (0..n).fold(0.0f64, |acc, i| acc + 2f64.powi(-i));
    mant * f64::from(2f32.powf(max_exp))
}

/// The per-node settings of a QONNX `FloatQuant`.
#[derive(Clone, Copy)]
struct FloatQuantMode {
    /// `rounding_mode`, resolved as for `Quant`.
    round: fn(f32) -> f32,
    /// `saturation`: out-of-range values clamp to `±max`; otherwise they become ±inf
    /// (`has_inf`) or NaN (`has_nan`).
    saturation: bool,
    has_inf: bool,
    has_nan: bool,
}

/// QONNX `FloatQuant` of one element, step for step as qonnx 1.0.0's numpy `float_quant` with
/// float32 inputs: `X = x / scale`; `e = max(floor(log2(|X| + tiny)) - m, 1 - bias - m)` (f32,
/// `tiny` = `f32::MIN_POSITIVE`; the lower bound is the subnormal step, which the op always
/// keeps, whatever `has_subnormal` says); `q = 2^e * round(X / 2^e)` (f32); then in f64, clamp
/// to `±max` (`min(format max, max_val)`, see [`float_format_max`]), apply the non-saturating
/// rule, multiply by `scale` and round to f32. ±inf inputs give NaN (`inf / inf` inside); NaN
/// stays NaN.
fn float_quant(x: f32, scale: f32, mb: f32, bias: f32, max: f64, mode: FloatQuantMode) -> f32 {
    let v = x / scale;
    let e_min = 1.0 - bias - mb;
    let e = np_max32((v.abs() + f32::MIN_POSITIVE).log2().floor() - mb, e_min);
    let p = e.exp2();
    let q = p * (mode.round)(v / p);
    let q64 = f64::from(q);
    let (above, below) = (q64 > max, q64 < -max);
    let mut y = np_clip(q64, -max, max);
    if !mode.saturation {
        if mode.has_inf {
            if above {
                y = f64::INFINITY;
            }
            if below {
                y = f64::NEG_INFINITY;
            }
        } else if above || below || q.is_infinite() {
            // `has_nan` (the caller rejects nodes with neither).
            y = f64::NAN;
        }
    }
    (y * f64::from(scale)) as f32
}

fn float_quant_op(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    // A missing attribute takes the op spec's default (floatquant_v1.md), as `narrow` does for
    // `Quant`; qonnx's code declares `has_inf`, `has_nan`, `has_subnormal` and `saturation`
    // required and raises instead. `has_subnormal` does not change the result (see below).
    let mode = FloatQuantMode {
        round: round_mode(&a_str(op, "rounding_mode", "ROUND")?)?,
        saturation: a_int(op, "saturation", 1)? != 0,
        has_inf: a_int(op, "has_inf", 0)? != 0,
        has_nan: a_int(op, "has_nan", 0)? != 0,
    };
    if !(mode.saturation || mode.has_inf || mode.has_nan) {
        // The reference raises for such a node whatever its input.
        return Err(EvalError::attr("FloatQuant with saturation=0 needs has_inf=1 or has_nan=1"));
    }
    let mut ins = vec![x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?];
    let has_max = x.opt(5).is_some();
    ins.extend(x.opt(5));
    let (dims, v) = bcast_all(&ins)?;
    let mut last: Option<([u32; 4], f64)> = None;
    let y = (0..v[0].len())
        .map(|i| {
            let (eb, mb, bias) = (v[2][i], v[3][i], v[4][i]);
            let mv = if has_max { v[5][i] } else { f32::NAN };
            let key = [eb.to_bits(), mb.to_bits(), bias.to_bits(), mv.to_bits()];
            let max = match last {
                Some((k, m)) if k == key => m,
                _ => {
                    if !mb.is_finite() {
                        return Err(EvalError::attr("FloatQuant mantissa_bitwidth must be finite"));
                    }
                    let m = float_format_max(eb, mb, bias);
                    let m = if has_max { np_min(m, f64::from(mv)) } else { m };
                    last = Some((key, m));
                    m
                }
            };
            Ok(f64::from(float_quant(v[0][i], v[1][i], mb, bias, max, mode)))
        })
        .collect::<Result<Vec<f64>, EvalError>>()?;
    Array::from_f64s(ElemType::F32, dims, y)
}

/// The QONNX custom ops; `None` when `op` is not one of them.
pub(crate) fn qonnx(op: &Op, x: &Ins<'_>, _opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let in_qonnx_domain = qc_ir::op::QONNX_DOMAINS.contains(&op.domain());
    let out = match op.kind() {
        OpKind::Quant | OpKind::IntQuant => {
            let signed = a_int(op, "signed", 1)? != 0;
            let narrow = a_int(op, "narrow", 0)? != 0;
            let round = round_mode(&a_str(op, "rounding_mode", "ROUND")?)?;
            let (dims, v) = bcast_all(&[x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?])?;
            let y = (0..v[0].len())
                .map(|i| f64::from(int_quant(v[0][i], v[1][i], v[2][i], v[3][i], signed, narrow, round)))
                .collect();
            Array::from_f64s(ElemType::F32, dims, y)?
        }
        OpKind::BipolarQuant => {
            let (dims, v) = bcast_all(&[x.get(0)?, x.get(1)?])?;
            let y = (0..v[0].len())
                .map(|i| f64::from(if v[0][i] >= 0.0 { 1.0 } else { -1.0 } * v[1][i]))
                .collect();
            Array::from_f64s(ElemType::F32, dims, y)?
        }
        OpKind::Trunc => {
            let round = round_mode(&a_str(op, "rounding_mode", "FLOOR")?)?;
            if x.len() >= 6 {
                let signed = a_int(op, "signed", 1)? != 0;
                let narrow = a_int(op, "narrow", 0)? != 0;
                let (dims, v) = bcast_all(&[x.get(0)?, x.get(1)?, x.get(2)?, x.get(4)?, x.get(5)?])?;
                let y = (0..v[0].len())
                    .map(|i| {
                        let (xx, s, z, os, ob) = (v[0][i], v[1][i], v[2][i], v[3][i], v[4][i]);
                        let y = (xx / s + z).round_ties_even();
                        let tt = 2f32.powf((os / s).log2().round_ties_even());
                        let (lo, hi) = min_max_int(signed, narrow, ob);
                        let y = round((y / tt).clamp(lo, hi));
                        f64::from((y - z / tt) * os)
                    })
                    .collect();
                Array::from_f64s(ElemType::F32, dims, y)?
            } else {
                let (dims, v) = bcast_all(&[x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?])?;
                let y = (0..v[0].len())
                    .map(|i| {
                        let (xx, s, z, ib, ob) = (v[0][i], v[1][i], v[2][i], v[3][i], v[4][i]);
                        let y = (xx / s + z).round_ties_even();
                        let y = round(y / 2f32.powf(ib - ob));
                        f64::from((y - z) * s)
                    })
                    .collect();
                Array::from_f64s(ElemType::F32, dims, y)?
            }
        }
        OpKind::FloatQuant => float_quant_op(op, x)?,
        OpKind::MultiThreshold if in_qonnx_domain => {
            let (a, th) = (x.get(0)?, x.get(1)?);
            if th.rank() != 2 {
                return Err(EvalError::shape("MultiThreshold thresholds must be [C or 1, T]"));
            }
            let layout = a_str(op, "data_layout", "NCHW")?;
            let scale = a_float(op, "out_scale", 1.0)?;
            let bias = a_float(op, "out_bias", 0.0)?;
            let cax = if layout.starts_with("NC") && a.rank() >= 2 { 1 } else { a.rank().saturating_sub(1) };
            let c = *a.dims.get(cax).ok_or_else(|| EvalError::shape("MultiThreshold input rank"))?;
            let (rows, nt) = (th.dims[0], th.dims[1]);
            if rows != 1 && rows != c {
                return Err(EvalError::shape("MultiThreshold threshold rows differ from the channels"));
            }
            let tv = th.to_f64()?;
            let inner: usize = a.dims[cax + 1..].iter().product();
            let v = a.to_f64()?;
            let y = v
                .iter()
                .enumerate()
                .map(|(i, &e)| {
                    let ch = if rows == 1 { 0 } else { (i / inner.max(1)) % c };
                    let n = tv[ch * nt..(ch + 1) * nt].iter().filter(|&&t| e >= t).count();
                    f64::from(scale * n as f32 + bias)
                })
                .collect();
            Array::from_f64s(ElemType::F32, a.dims.clone(), y)?
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}

/// ONNX quantization ops; `None` when `op` is not one of them.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, _opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let out = match op.kind() {
        OpKind::QuantizeLinear => quantize_linear(op, x)?,
        OpKind::DequantizeLinear => dequantize_linear(op, x)?,
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}
