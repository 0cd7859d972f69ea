//! `Resize` (opsets 10 to 19: scales or sizes, `axes`, `keep_aspect_ratio_policy`, the
//! coordinate transformation modes, nearest/linear/cubic with antialiasing and
//! `exclude_outside`) and `Upsample`. Interpolation is separable and applied one axis at a time
//! from the last axis to the first, as the ONNX reference does.

use qc_ir::{Op, OpKind};

use super::array::{Array, alloc_count};
use super::{EvalError, Ins, a_float, a_floats, a_int, a_ints, a_str, norm_axis};

struct Mode {
    mode: String,
    coord: String,
    nearest: String,
    cubic_a: f64,
    exclude_outside: bool,
    extrapolation: f64,
    antialias: bool,
}

/// The source coordinate of output index `i` along one axis.
fn source_coord(m: &Mode, i: usize, len_in: usize, len_out: usize, scale: f64, roi: (f64, f64)) -> f64 {
    let (i, lin, lout) = (i as f64, len_in as f64, len_out as f64);
    match m.coord.as_str() {
        "half_pixel_symmetric" => {
            let adj = lout / (scale * lin);
            let center = lin / 2.0;
            let offset = center * (1.0 - adj);
            offset + (i + 0.5) / scale - 0.5
        }
        "pytorch_half_pixel" => {
            if len_out > 1 {
                (i + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        "align_corners" => {
            if len_out == 1 {
                0.0
            } else {
                // The reference divides by the unrounded output length `scale * len_in`.
                i * (lin - 1.0) / (scale * lin - 1.0)
            }
        }
        "asymmetric" => i / scale,
        "tf_crop_and_resize" => {
            if len_out > 1 {
                roi.0 * (lin - 1.0) + i * (roi.1 - roi.0) * (lin - 1.0) / (lout - 1.0)
            } else {
                0.5 * (roi.0 + roi.1) * (lin - 1.0)
            }
        }
        _ => (i + 0.5) / scale - 0.5,
    }
}

/// Contributions (input index, weight) for one output coordinate; `None`: extrapolate.
fn weights(m: &Mode, x: f64, len_in: usize, scale: f64) -> Option<Vec<(usize, f64)>> {
    let last = len_in as i64 - 1;
    if m.coord == "tf_crop_and_resize" && (x < 0.0 || x > last as f64) {
        return None;
    }
    let clamp = |i: i64| i.clamp(0, last.max(0)) as usize;
    if m.mode == "nearest" {
        let f = x.floor();
        let frac = x - f;
        let r = match m.nearest.as_str() {
            "round_prefer_ceil" => {
                if frac >= 0.5 {
                    f + 1.0
                } else {
                    f
                }
            }
            "floor" => f,
            "ceil" => x.ceil(),
            _ => {
                if frac > 0.5 {
                    f + 1.0
                } else {
                    f
                }
            }
        };
        return Some(vec![(clamp(r as i64), 1.0)]);
    }
    let base = x.ceil() - 1.0;
    let ratio = x - base;
    let base = base as i64;
    let a = m.cubic_a;
    let (start, coeffs): (i64, Vec<f64>) = if m.antialias && scale < 1.0 {
        if m.mode == "linear" {
            let start = (-1.0 / scale).floor() as i64 + 1;
            let n = 2 - 2 * start;
            let c: Vec<f64> = (start..start + n)
                .map(|i| (1.0 - ((i as f64 - ratio) * scale).abs()).clamp(0.0, 1.0))
                .collect();
            (start, c)
        } else {
            let start = (-2.0 / scale).floor() as i64 + 1;
            let end = 2 - start;
            let f = |x: f64| {
                let x = x.abs();
                if x <= 1.0 {
                    (a + 2.0) * x * x * x - (a + 3.0) * x * x + 1.0
                } else if x < 2.0 {
                    a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a
                } else {
                    0.0
                }
            };
            (start, (start..end).map(|i| f(scale * (i as f64 - ratio))).collect())
        }
    } else if m.mode == "linear" {
        (0, vec![1.0 - ratio, ratio])
    } else {
        let r = ratio;
        (
            -1,
            vec![
                ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
                ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                ((a + 2.0) * (1.0 - r) - (a + 3.0)) * (1.0 - r) * (1.0 - r) + 1.0,
                ((a * (2.0 - r) - 5.0 * a) * (2.0 - r) + 8.0 * a) * (2.0 - r) - 4.0 * a,
            ],
        )
    };
    let mut out: Vec<(i64, f64)> =
        coeffs.into_iter().enumerate().map(|(j, c)| (base + start + j as i64, c)).collect();
    if m.exclude_outside {
        for p in &mut out {
            if p.0 < 0 || p.0 > last {
                p.1 = 0.0;
            }
        }
    }
    let s: f64 = out.iter().map(|p| p.1).sum();
    let norm = if (m.antialias && scale < 1.0) || m.exclude_outside { s } else { 1.0 };
    Some(out.into_iter().map(|(i, c)| (clamp(i), if norm != 0.0 { c / norm } else { c })).collect())
}

/// Resizes along one axis.
fn resize_axis(
    v: &[f64],
    dims: &[usize],
    ax: usize,
    len_out: usize,
    scale: f64,
    roi: (f64, f64),
    m: &Mode,
) -> Result<(Vec<f64>, Vec<usize>), EvalError> {
    let len_in = dims[ax];
    let outer: usize = dims[..ax].iter().product();
    let inner: usize = dims[ax + 1..].iter().product();
    let mut od = dims.to_vec();
    od[ax] = len_out;
    let mut out = vec![0.0; alloc_count(&od)?];
    if len_in == 0 {
        return Ok((out, od));
    }
    let table: Vec<Option<Vec<(usize, f64)>>> = (0..len_out)
        .map(|i| weights(m, source_coord(m, i, len_in, len_out, scale, roi), len_in, scale))
        .collect();
    for o in 0..outer {
        for (i, w) in table.iter().enumerate() {
            for k in 0..inner {
                out[(o * len_out + i) * inner + k] = match w {
                    None => m.extrapolation,
                    Some(w) => w.iter().map(|&(j, c)| c * v[(o * len_in + j) * inner + k]).sum(),
                };
            }
        }
    }
    Ok((out, od))
}

fn resize(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let r = a.rank();
    let upsample = op.kind() == OpKind::Upsample;
    let m = Mode {
        mode: a_str(op, "mode", "nearest")?,
        coord: if upsample || opset < 11 {
            "asymmetric".into()
        } else {
            a_str(op, "coordinate_transformation_mode", "half_pixel")?
        },
        nearest: if upsample || opset < 11 {
            "floor".into()
        } else {
            a_str(op, "nearest_mode", "round_prefer_floor")?
        },
        cubic_a: f64::from(a_float(op, "cubic_coeff_a", -0.75)?),
        exclude_outside: a_int(op, "exclude_outside", 0)? != 0,
        extrapolation: f64::from(a_float(op, "extrapolation_value", 0.0)?),
        antialias: a_int(op, "antialias", 0)? != 0,
    };
    let m = Mode { mode: if m.mode == "bilinear" { "linear".into() } else { m.mode.clone() }, ..m };
    let (roi, scales, sizes) = if upsample {
        let s = if opset >= 9 {
            x.get(1)?.to_f64()?
        } else {
            a_floats(op, "scales")?.map(|v| v.into_iter().map(f64::from).collect()).unwrap_or_default()
        };
        (None, Some(s), None)
    } else if opset < 11 {
        (None, Some(x.get(1)?.to_f64()?), None)
    } else {
        let roi = x.opt(1).map(Array::to_f64).transpose()?.filter(|v| !v.is_empty());
        let scales = x.opt(2).map(Array::to_f64).transpose()?.filter(|v| !v.is_empty());
        let sizes = x.opt(3).map(Array::to_i64s).transpose()?.filter(|v| !v.is_empty());
        (roi, scales, sizes)
    };
    let axes: Vec<usize> = match a_ints(op, "axes")? {
        Some(v) => v.into_iter().map(|i| norm_axis(i, r)).collect::<Result<_, _>>()?,
        None => (0..r).collect(),
    };
    let mut scale = vec![1.0f64; r];
    let mut out_len = a.dims.clone();
    match (scales, sizes) {
        (_, Some(sz)) => {
            if sz.len() != axes.len() {
                return Err(EvalError::shape("Resize sizes length differs from the axes"));
            }
            let policy = a_str(op, "keep_aspect_ratio_policy", "stretch")?;
            let ratios: Vec<f64> =
                axes.iter().zip(&sz).map(|(&ax, &s)| s as f64 / a.dims[ax] as f64).collect();
            for (k, &ax) in axes.iter().enumerate() {
                let s = match policy.as_str() {
                    "not_larger" => ratios.iter().copied().fold(f64::INFINITY, f64::min),
                    "not_smaller" => ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    _ => ratios[k],
                };
                scale[ax] = s;
                out_len[ax] = if policy == "stretch" {
                    usize::try_from(sz[k]).map_err(|_| EvalError::shape("negative size"))?
                } else {
                    (a.dims[ax] as f64 * s).round() as usize
                };
            }
        }
        (Some(sc), None) => {
            if sc.len() != axes.len() {
                return Err(EvalError::shape("Resize scales length differs from the axes"));
            }
            for (k, &ax) in axes.iter().enumerate() {
                if sc[k].is_nan() || sc[k] <= 0.0 {
                    return Err(EvalError::attr("Resize scales must be positive"));
                }
                scale[ax] = sc[k];
                let n = (a.dims[ax] as f64 * sc[k]).floor();
                if n > super::array::MAX_ELEMENTS as f64 {
                    return Err(EvalError::shape("Resize output too large"));
                }
                out_len[ax] = n as usize;
            }
        }
        (None, None) => return Err(EvalError::shape("Resize needs scales or sizes")),
    }
    alloc_count(&out_len)?;
    let mut v = a.to_f64()?;
    let mut dims = a.dims.clone();
    for ax in (0..r).rev() {
        if out_len[ax] == dims[ax] && scale[ax] == 1.0 && m.coord != "tf_crop_and_resize" {
            continue;
        }
        let roi_ax = match &roi {
            Some(rv) if rv.len() == 2 * axes.len() => match axes.iter().position(|&q| q == ax) {
                Some(k) => (rv[k], rv[k + axes.len()]),
                None => (0.0, 1.0),
            },
            _ => (0.0, 1.0),
        };
        let (nv, nd) = resize_axis(&v, &dims, ax, out_len[ax], scale[ax], roi_ax, &m)?;
        v = nv;
        dims = nd;
    }
    Array::from_f64s(a.elem, dims, v)
}

/// `Resize` and `Upsample`; `None` for other ops.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    match op.kind() {
        OpKind::Resize | OpKind::Upsample => Ok(Some(vec![resize(op, x, opset)?])),
        _ => Ok(None),
    }
}
