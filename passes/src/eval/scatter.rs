//! Index, scan and spectral kernels: `NonZero`, `ScatterND`, `ScatterElements`, the deprecated
//! `Scatter`, `CumSum` (exclusive, reverse), `STFT` and `DynamicQuantizeLinear`.
//!
//! Scatters without a reduction copy elements whatever their type; with a reduction (`add`,
//! `mul`, `max`, `min`) they compute in `f64` for floats and `i128` for integers and convert
//! back once. Indices out of range are an error, never a panic.

use qc_ir::{ElemType, Op, OpKind};

use super::array::{Array, Domain, alloc_count, numel};
use super::elementwise::round_half_even;
use super::{EvalError, Ins, a_int, a_str, norm_axis};

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Normalises an index against a dim of size `n` (negative counts from the end).
fn norm_index(i: i64, n: usize) -> Result<usize, EvalError> {
    let n = n as i64;
    let j = if i < 0 { i + n } else { i };
    if j < 0 || j >= n {
        return Err(EvalError::shape(format!("index {i} is out of range for a dim of {n}")));
    }
    Ok(j as usize)
}

/// Writes `updates[src]` into a copy of `data` at `dst`, pair by pair, with `reduction`.
fn apply(
    data: &Array,
    updates: &Array,
    pairs: &[(usize, usize)],
    reduction: &str,
) -> Result<Array, EvalError> {
    if data.elem != updates.elem {
        return Err(EvalError::type_mismatch(format!("updates are {}, data is {}", updates.elem, data.elem)));
    }
    if reduction == "none" {
        let mut idx: Vec<usize> = (0..data.len()).collect();
        for &(d, s) in pairs {
            idx[d] = data.len() + s;
        }
        let joined = Array::concat_data(data.elem, vec![data.len() + updates.len()], &[data, updates])?;
        return joined.gather_flat(data.dims.clone(), &idx);
    }
    macro_rules! reduce {
        ($out:expr, $upd:expr) => {{
            let mut out = $out;
            let upd = $upd;
            for &(d, s) in pairs {
                let (a, b) = (out[d], upd[s]);
                out[d] = match reduction {
                    "add" => a + b,
                    "mul" => a * b,
                    "max" => {
                        if b > a {
                            b
                        } else {
                            a
                        }
                    }
                    "min" => {
                        if b < a {
                            b
                        } else {
                            a
                        }
                    }
                    r => return Err(EvalError::attr(format!("unknown reduction `{r}`"))),
                };
            }
            out
        }};
    }
    match data.domain()? {
        Domain::Float => {
            let out = reduce!(data.to_f64()?, updates.to_f64()?);
            Array::from_f64s(data.elem, data.dims.clone(), out)
        }
        Domain::Int => {
            let out = reduce!(data.to_i128()?, updates.to_i128()?);
            Array::from_i128s(data.elem, data.dims.clone(), out)
        }
        _ => Err(EvalError::unsupported(format!("reduction `{reduction}` on {}", data.elem))),
    }
}

fn scatter_elements(op: &Op, x: &Ins<'_>, reduction: &str) -> Result<Array, EvalError> {
    let (data, indices, updates) = (x.get(0)?, x.get(1)?, x.get(2)?);
    let r = data.rank();
    if indices.rank() != r || updates.dims != indices.dims {
        return Err(EvalError::shape(format!(
            "data {:?}, indices {:?} and updates {:?} must have the same rank, indices and updates the same dims",
            data.dims, indices.dims, updates.dims
        )));
    }
    let axis = norm_axis(a_int(op, "axis", 0)?, r)?;
    let idx = indices.to_i64s()?;
    let (ds, is) = (strides(&data.dims), strides(&indices.dims));
    let mut pairs = Vec::with_capacity(idx.len());
    for (s, &i) in idx.iter().enumerate() {
        let mut dst = 0;
        for k in 0..r {
            let c = (s / is[k]) % indices.dims[k];
            let c = if k == axis { norm_index(i, data.dims[k])? } else { c };
            if c >= data.dims[k] {
                return Err(EvalError::shape(format!("indices dim {k} exceeds data's {}", data.dims[k])));
            }
            dst += c * ds[k];
        }
        pairs.push((dst, s));
    }
    apply(data, updates, &pairs, reduction)
}

fn scatter_nd(x: &Ins<'_>, reduction: &str) -> Result<Array, EvalError> {
    let (data, indices, updates) = (x.get(0)?, x.get(1)?, x.get(2)?);
    let Some((&k, batch)) = indices.dims.split_last() else {
        return Err(EvalError::shape("indices must have rank 1 or more"));
    };
    if k > data.rank() {
        return Err(EvalError::shape(format!("index tuples of {k} for data of rank {}", data.rank())));
    }
    let mut want = batch.to_vec();
    want.extend_from_slice(&data.dims[k..]);
    if updates.dims != want {
        return Err(EvalError::shape(format!("updates are {:?}, expected {want:?}", updates.dims)));
    }
    let slice = numel(&data.dims[k..])?;
    let ds = strides(&data.dims);
    let idx = indices.to_i64s()?;
    let n = numel(batch)?;
    let mut pairs = Vec::with_capacity(n.saturating_mul(slice));
    for b in 0..n {
        let mut base = 0;
        for j in 0..k {
            base += norm_index(idx[b * k + j], data.dims[j])? * ds[j];
        }
        pairs.extend((0..slice).map(|e| (base + e, b * slice + e)));
    }
    apply(data, updates, &pairs, reduction)
}

fn nonzero(a: &Array) -> Result<Array, EvalError> {
    let nz: Vec<usize> = match a.domain()? {
        Domain::Float => a.to_f64()?.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, _)| i).collect(),
        Domain::Str => return Err(EvalError::type_mismatch("NonZero of strings")),
        _ => a.to_i128()?.iter().enumerate().filter(|(_, v)| **v != 0).map(|(i, _)| i).collect(),
    };
    let r = a.rank();
    let st = strides(&a.dims);
    let mut out = vec![0i64; r * nz.len()];
    for (j, &flat) in nz.iter().enumerate() {
        for k in 0..r {
            out[k * nz.len() + j] = ((flat / st[k]) % a.dims[k]) as i64;
        }
    }
    Array::from_i64(vec![r, nz.len()], out)
}

fn cumsum(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let ax = x.get(1)?.to_i64s()?;
    let [axis] = ax[..] else {
        return Err(EvalError::shape("`axis` must hold one value"));
    };
    let axis = norm_axis(axis, a.rank())?;
    let exclusive = a_int(op, "exclusive", 0)? != 0;
    let reverse = a_int(op, "reverse", 0)? != 0;
    let n = a.dims[axis];
    let inner = numel(&a.dims[axis + 1..])?;
    let outer = numel(&a.dims[..axis])?;
    macro_rules! scan {
        ($v:expr, $zero:expr) => {{
            let v = $v;
            let mut out = vec![$zero; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = $zero;
                    for s in 0..n {
                        let j = if reverse { n - 1 - s } else { s };
                        let at = (o * n + j) * inner + i;
                        if exclusive {
                            out[at] = acc;
                            acc += v[at];
                        } else {
                            acc += v[at];
                            out[at] = acc;
                        }
                    }
                }
            }
            out
        }};
    }
    match a.domain()? {
        Domain::Float => Array::from_f64s(a.elem, a.dims.clone(), scan!(a.to_f64()?, 0.0)),
        Domain::Int => Array::from_i128s(a.elem, a.dims.clone(), scan!(a.to_i128()?, 0i128)),
        _ => Err(EvalError::type_mismatch(format!("CumSum of {}", a.elem))),
    }
}

/// `STFT` (opset 17): frames of `frame_length` every `frame_step` samples, times the window,
/// through a DFT; the output is `[batch, frames, bins, 2]` (real, imaginary).
fn stft(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let signal = x.get(0)?;
    let &[batch, len, comps] = &signal.dims[..] else {
        return Err(EvalError::shape(format!(
            "the signal must be [batch, length, 1 or 2], not {:?}",
            signal.dims
        )));
    };
    if comps != 1 && comps != 2 {
        return Err(EvalError::shape(format!("the signal's last dim is {comps}, not 1 or 2")));
    }
    let step = x.get(1)?.to_i64s()?.first().copied().unwrap_or(0);
    let window = x.opt(2).map(Array::to_f64).transpose()?;
    let flen = match x.opt(3) {
        Some(f) => f.to_i64s()?.first().copied().unwrap_or(0),
        None => window.as_ref().map_or(0, |w| w.len() as i64),
    };
    if step <= 0 || flen <= 0 || flen as usize > len {
        return Err(EvalError::shape(format!(
            "frame_step {step} and frame_length {flen} do not fit a signal of {len}"
        )));
    }
    let (step, flen) = (step as usize, flen as usize);
    if window.as_ref().is_some_and(|w| w.len() != flen) {
        return Err(EvalError::shape(format!("the window does not have frame_length {flen} values")));
    }
    let onesided = a_int(op, "onesided", 1)? != 0;
    let bins = if onesided { flen / 2 + 1 } else { flen };
    let frames = (len - flen) / step + 1;
    let v = signal.to_f64()?;
    let dims = vec![batch, frames, bins, 2];
    let mut out = vec![0.0; alloc_count(&dims)?];
    for b in 0..batch {
        for f in 0..frames {
            for k in 0..bins {
                let (mut re, mut im) = (0.0, 0.0);
                for t in 0..flen {
                    let w = window.as_ref().map_or(1.0, |w| w[t]);
                    let at = (b * len + f * step + t) * comps;
                    let (xr, xi) = (v[at] * w, if comps == 2 { v[at + 1] * w } else { 0.0 });
                    let ang = -2.0 * std::f64::consts::PI * (k * t) as f64 / flen as f64;
                    let (s, c) = ang.sin_cos();
                    re += xr * c - xi * s;
                    im += xr * s + xi * c;
                }
                let at = ((b * frames + f) * bins + k) * 2;
                out[at] = re;
                out[at + 1] = im;
            }
        }
    }
    Array::from_f64s(signal.elem, dims, out)
}

/// `DynamicQuantizeLinear`: uint8 with the scale and zero point computed from the data's range
/// (widened to include 0), in `f32` as the ONNX reference computes.
fn dynamic_quantize(x: &Ins<'_>) -> Result<Vec<Array>, EvalError> {
    let a = x.get(0)?;
    if a.domain()? != Domain::Float {
        return Err(EvalError::type_mismatch(format!("DynamicQuantizeLinear of {}", a.elem)));
    }
    let v: Vec<f32> = a.to_f64()?.into_iter().map(|x| x as f32).collect();
    let lo = v.iter().copied().fold(0.0f32, f32::min);
    let hi = v.iter().copied().fold(0.0f32, f32::max);
    let scale = (hi - lo) / 255.0;
    let zp = round_half_even(f64::from(-lo / scale)).clamp(0.0, 255.0);
    let zp = if zp.is_nan() { 0.0 } else { zp };
    let q = v
        .iter()
        .map(|&x| {
            let r = round_half_even(f64::from(x / scale)) + zp;
            if r.is_nan() { 0.0 } else { r.clamp(0.0, 255.0) }
        })
        .collect();
    Ok(vec![
        Array::from_f64s(ElemType::U8, a.dims.clone(), q)?,
        Array::from_f32(vec![], vec![scale])?,
        Array::from_f64s(ElemType::U8, vec![], vec![zp])?,
    ])
}

/// The kernels of this module; `None` when `op` is not one of them.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, _opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let out = match op.kind() {
        OpKind::NonZero => nonzero(x.get(0)?)?,
        OpKind::ScatterElements => scatter_elements(op, x, &a_str(op, "reduction", "none")?)?,
        OpKind::Scatter => scatter_elements(op, x, "none")?,
        OpKind::ScatterND => scatter_nd(x, &a_str(op, "reduction", "none")?)?,
        OpKind::CumSum => cumsum(op, x)?,
        OpKind::Stft => stft(op, x)?,
        OpKind::DynamicQuantizeLinear => return dynamic_quantize(x).map(Some),
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}
