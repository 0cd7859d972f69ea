//! Reductions and normalisations: the `Reduce*` family (axes as an attribute or, from opset 13
//! for `ReduceSum` and 18 for the rest, as an input), `ArgMax`/`ArgMin`, `Softmax`, `TopK`,
//! `LayerNormalization`, `RMSNormalization`, `InstanceNormalization`, `BatchNormalization` and
//! `LRN`.

use qc_ir::{ElemType, Op, OpKind};

use super::array::{Array, Domain, alloc_count};
use super::elementwise::broadcast_to;
use super::shape_ops::{for_each_index, strides};
use super::{EvalError, Ins, a_float, a_int, a_ints, norm_axis};

/// For each input element, the flat index of its group after reducing `axes`; and the group dims
/// (with reduced dims set to 1).
fn groups(dims: &[usize], axes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let gdims: Vec<usize> =
        dims.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let gs = strides(&gdims);
    let mut map = Vec::with_capacity(dims.iter().product());
    for_each_index(dims, |pos| {
        map.push(pos.iter().enumerate().map(|(i, &p)| if axes.contains(&i) { 0 } else { p * gs[i] }).sum());
    });
    (map, gdims)
}

fn out_dims(gdims: &[usize], axes: &[usize], keep: bool) -> Vec<usize> {
    if keep {
        gdims.to_vec()
    } else {
        gdims.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
    }
}

fn reduce(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    let t = op.kind();
    let a = x.get(0)?;
    let axes_from_input = if t == OpKind::ReduceSum { opset >= 13 } else { opset >= 18 };
    let axes = if axes_from_input { x.opt(1).map(Array::to_i64s).transpose()? } else { a_ints(op, "axes")? };
    let keep = a_int(op, "keepdims", 1)? != 0;
    let noop = a_int(op, "noop_with_empty_axes", 0)? != 0;
    let axes: Vec<usize> = match axes {
        Some(v) if !v.is_empty() => {
            v.into_iter().map(|i| norm_axis(i, a.rank())).collect::<Result<_, _>>()?
        }
        _ if noop => return Ok(a.clone()),
        _ => (0..a.rank()).collect(),
    };
    let (map, gdims) = groups(&a.dims, &axes);
    let ng = alloc_count(&gdims)?;
    let od = out_dims(&gdims, &axes, keep);
    let int = matches!(a.domain()?, Domain::Int | Domain::Bool)
        && matches!(t, OpKind::ReduceMax | OpKind::ReduceMin | OpKind::ReduceSum | OpKind::ReduceProd);
    if int {
        let v = a.to_i128()?;
        let init = match t {
            OpKind::ReduceMax => i128::MIN,
            OpKind::ReduceMin => i128::MAX,
            OpKind::ReduceProd => 1,
            _ => 0,
        };
        let mut acc = vec![init; ng];
        for (k, &g) in map.iter().enumerate() {
            acc[g] = match t {
                OpKind::ReduceMax => acc[g].max(v[k]),
                OpKind::ReduceMin => acc[g].min(v[k]),
                OpKind::ReduceProd => acc[g].wrapping_mul(v[k]),
                _ => acc[g].wrapping_add(v[k]),
            };
        }
        if a.elem == ElemType::Bool && ng > 0 && a.is_empty() {
            // An empty bool max/min: false/true.
            acc = vec![i128::from(t == OpKind::ReduceMin); ng];
        }
        return Array::from_i128s(a.elem, od, acc);
    }
    let v = a.to_f64()?;
    let mut count = vec![0usize; ng];
    let init = match t {
        OpKind::ReduceMax => f64::NEG_INFINITY,
        OpKind::ReduceMin => f64::INFINITY,
        OpKind::ReduceProd => 1.0,
        _ => 0.0,
    };
    let mut acc = vec![init; ng];
    let mut mx = vec![f64::NEG_INFINITY; ng];
    if t == OpKind::ReduceLogSumExp {
        for (k, &g) in map.iter().enumerate() {
            mx[g] = mx[g].max(v[k]);
        }
    }
    for (k, &g) in map.iter().enumerate() {
        let e = v[k];
        count[g] += 1;
        acc[g] = match t {
            OpKind::ReduceMax => {
                if e.is_nan() || acc[g].is_nan() {
                    f64::NAN
                } else {
                    acc[g].max(e)
                }
            }
            OpKind::ReduceMin => {
                if e.is_nan() || acc[g].is_nan() {
                    f64::NAN
                } else {
                    acc[g].min(e)
                }
            }
            OpKind::ReduceProd => acc[g] * e,
            OpKind::ReduceL1 => acc[g] + e.abs(),
            OpKind::ReduceL2 | OpKind::ReduceSumSquare => acc[g] + e * e,
            OpKind::ReduceLogSumExp => acc[g] + (e - mx[g]).exp(),
            _ => acc[g] + e,
        };
    }
    for g in 0..ng {
        acc[g] = match t {
            OpKind::ReduceMean => acc[g] / count[g] as f64,
            OpKind::ReduceL2 => acc[g].sqrt(),
            OpKind::ReduceLogSum => acc[g].ln(),
            OpKind::ReduceLogSumExp => {
                if count[g] == 0 {
                    f64::NEG_INFINITY
                } else {
                    acc[g].ln() + mx[g]
                }
            }
            _ => acc[g],
        };
    }
    Array::from_f64s(a.elem, od, acc)
}

fn arg(op: &Op, a: &Array, max: bool) -> Result<Array, EvalError> {
    let ax = norm_axis(a_int(op, "axis", 0)?, a.rank())?;
    let keep = a_int(op, "keepdims", 1)? != 0;
    let last = a_int(op, "select_last_index", 0)? != 0;
    let (map, gdims) = groups(&a.dims, &[ax]);
    let ng = alloc_count(&gdims)?;
    let v = a.to_f64()?;
    let inner: usize = a.dims[ax + 1..].iter().product();
    let d = a.dims[ax];
    let mut best: Vec<Option<(f64, usize)>> = vec![None; ng];
    for (k, &g) in map.iter().enumerate() {
        let i = (k / inner) % d.max(1);
        let e = v[k];
        let better = match best[g] {
            None => true,
            Some((b, _)) => {
                if max {
                    e > b || (last && e == b)
                } else {
                    e < b || (last && e == b)
                }
            }
        };
        if better {
            best[g] = Some((e, i));
        }
    }
    let out = best.into_iter().map(|b| b.map_or(0, |(_, i)| i as i64)).collect();
    Array::from_i64(out_dims(&gdims, &[ax], keep), out)
}

/// Softmax over the trailing dims from `axis` (opset < 13) or over `axis` alone.
fn softmax(op: &Op, a: &Array, opset: i64, log: bool) -> Result<Array, EvalError> {
    let axis = a_int(op, "axis", if opset < 13 { 1 } else { -1 })?;
    let r = a.rank();
    let ax = norm_axis(axis, r.max(1))?;
    let v = a.to_f64()?;
    let (outer, len, inner) = if opset < 13 {
        (a.dims[..ax].iter().product::<usize>(), a.dims[ax..].iter().product::<usize>(), 1)
    } else {
        (
            a.dims[..ax].iter().product::<usize>(),
            a.dims.get(ax).copied().unwrap_or(1),
            a.dims[(ax + 1).min(r)..].iter().product::<usize>(),
        )
    };
    let mut out = vec![0.0; v.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| o * len * inner + k * inner + i;
            let m = (0..len).map(|k| v[at(k)]).fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = (0..len).map(|k| (v[at(k)] - m).exp()).sum();
            for k in 0..len {
                out[at(k)] = if log { v[at(k)] - m - s.ln() } else { (v[at(k)] - m).exp() / s };
            }
        }
    }
    Array::from_f64s(a.elem, a.dims.clone(), out)
}

fn topk(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Vec<Array>, EvalError> {
    let a = x.get(0)?;
    let k = if opset >= 10 {
        *x.get(1)?.to_i64s()?.first().ok_or_else(|| EvalError::shape("TopK k is empty"))?
    } else {
        a_int(op, "k", 0)?
    };
    let ax = norm_axis(a_int(op, "axis", -1)?, a.rank())?;
    let largest = a_int(op, "largest", 1)? != 0;
    let d = a.dims[ax];
    let k =
        usize::try_from(k).ok().filter(|&k| k <= d).ok_or_else(|| EvalError::shape("TopK k out of range"))?;
    let outer: usize = a.dims[..ax].iter().product();
    let inner: usize = a.dims[ax + 1..].iter().product();
    let int = a.domain()? == Domain::Int;
    let (vf, vi) = if int { (vec![], a.to_i128()?) } else { (a.to_f64()?, vec![]) };
    let mut dims = a.dims.clone();
    dims[ax] = k;
    let mut src = vec![0usize; outer * k * inner];
    let mut ind = vec![0i64; outer * k * inner];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * d * inner + j * inner + i;
            let mut order: Vec<usize> = (0..d).collect();
            order.sort_by(|&p, &q| {
                let c = if int {
                    vi[at(p)].cmp(&vi[at(q)])
                } else {
                    vf[at(p)].partial_cmp(&vf[at(q)]).unwrap_or(std::cmp::Ordering::Equal)
                };
                let c = if largest { c.reverse() } else { c };
                c.then(p.cmp(&q))
            });
            for (j, &p) in order.iter().take(k).enumerate() {
                let dst = o * k * inner + j * inner + i;
                src[dst] = at(p);
                ind[dst] = p as i64;
            }
        }
    }
    Ok(vec![a.gather_flat(dims.clone(), &src)?, Array::from_i64(dims, ind)?])
}

fn layer_norm(op: &Op, x: &Ins<'_>) -> Result<Vec<Array>, EvalError> {
    let a = x.get(0)?;
    let r = a.rank();
    let ax = norm_axis(a_int(op, "axis", -1)?, r)?;
    let eps = f64::from(a_float(op, "epsilon", 1e-5)?);
    let outer: usize = a.dims[..ax].iter().product();
    let len: usize = a.dims[ax..].iter().product();
    let v = a.to_f64()?;
    let scale = broadcast_to(x.get(1)?, &a.dims)?.to_f64()?;
    let bias = x.opt(2).map(|b| broadcast_to(b, &a.dims).and_then(|b| b.to_f64())).transpose()?;
    let mut y = vec![0.0; v.len()];
    let mut means = Vec::with_capacity(outer);
    let mut invs = Vec::with_capacity(outer);
    for o in 0..outer {
        let s = &v[o * len..(o + 1) * len];
        let m = s.iter().sum::<f64>() / len as f64;
        let var = s.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / len as f64;
        let inv = 1.0 / (var + eps).sqrt();
        means.push(m);
        invs.push(inv);
        for k in 0..len {
            let f = o * len + k;
            y[f] = (v[f] - m) * inv * scale[f] + bias.as_ref().map_or(0.0, |b| b[f]);
        }
    }
    let mut sd = a.dims.clone();
    for d in sd.iter_mut().skip(ax) {
        *d = 1;
    }
    let stash = ElemType::from_code(a_int(op, "stash_type", 1)? as i32);
    Ok(vec![
        Array::from_f64s(a.elem, a.dims.clone(), y)?,
        Array::from_f64s(stash, sd.clone(), means)?,
        Array::from_f64s(stash, sd, invs)?,
    ])
}

/// `RMSNormalization` (opset 23): `x / sqrt(mean(x^2) + epsilon) * scale` over the dims from
/// `axis`, the scale broadcast to the input.
fn rms_norm(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let ax = norm_axis(a_int(op, "axis", -1)?, a.rank())?;
    let eps = f64::from(a_float(op, "epsilon", 1e-5)?);
    let outer: usize = a.dims[..ax].iter().product();
    let len: usize = a.dims[ax..].iter().product();
    let v = a.to_f64()?;
    let scale = broadcast_to(x.get(1)?, &a.dims)?.to_f64()?;
    let mut y = vec![0.0; v.len()];
    for o in 0..outer {
        let row = &v[o * len..(o + 1) * len];
        let inv = 1.0 / (row.iter().map(|e| e * e).sum::<f64>() / len as f64 + eps).sqrt();
        for k in 0..len {
            let f = o * len + k;
            y[f] = v[f] * inv * scale[f];
        }
    }
    Array::from_f64s(a.elem, a.dims.clone(), y)
}

fn per_channel(a: &Array) -> Result<(usize, usize, usize), EvalError> {
    if a.rank() < 2 {
        return Err(EvalError::shape("expected an input of rank >= 2 (N, C, ...)"));
    }
    Ok((a.dims[0], a.dims[1], a.dims[2..].iter().product()))
}

fn chan(a: &Array, c: usize) -> Result<Vec<f64>, EvalError> {
    let v = a.to_f64()?;
    if v.len() != c {
        return Err(EvalError::shape(format!("expected {c} per-channel values, found {}", v.len())));
    }
    Ok(v)
}

fn instance_norm(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let (n, c, sp) = per_channel(a)?;
    let eps = f64::from(a_float(op, "epsilon", 1e-5)?);
    let (sc, b) = (chan(x.get(1)?, c)?, chan(x.get(2)?, c)?);
    let v = a.to_f64()?;
    let mut y = vec![0.0; v.len()];
    for i in 0..n * c {
        let s = &v[i * sp..(i + 1) * sp];
        let m = s.iter().sum::<f64>() / sp as f64;
        let var = s.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / sp as f64;
        let ch = i % c;
        for k in 0..sp {
            y[i * sp + k] = (s[k] - m) / (var + eps).sqrt() * sc[ch] + b[ch];
        }
    }
    Array::from_f64s(a.elem, a.dims.clone(), y)
}

fn batch_norm(op: &Op, x: &Ins<'_>) -> Result<Vec<Array>, EvalError> {
    let a = x.get(0)?;
    let (n, c, sp) = per_channel(a)?;
    let eps = f64::from(a_float(op, "epsilon", 1e-5)?);
    let mom = f64::from(a_float(op, "momentum", 0.9)?);
    let (sc, b) = (chan(x.get(1)?, c)?, chan(x.get(2)?, c)?);
    let (mut mean, mut var) = (chan(x.get(3)?, c)?, chan(x.get(4)?, c)?);
    let training = a_int(op, "training_mode", 0)? != 0;
    let v = a.to_f64()?;
    let mut extra = Vec::new();
    if training {
        let cnt = (n * sp) as f64;
        let mut bm = vec![0.0; c];
        let mut bv = vec![0.0; c];
        for i in 0..n * c {
            bm[i % c] += v[i * sp..(i + 1) * sp].iter().sum::<f64>() / cnt;
        }
        for i in 0..n * c {
            let ch = i % c;
            bv[ch] += v[i * sp..(i + 1) * sp].iter().map(|e| (e - bm[ch]) * (e - bm[ch])).sum::<f64>() / cnt;
        }
        let rm: Vec<f64> = (0..c).map(|k| mean[k] * mom + bm[k] * (1.0 - mom)).collect();
        let rv: Vec<f64> = (0..c).map(|k| var[k] * mom + bv[k] * (1.0 - mom)).collect();
        let me = x.get(3)?.elem;
        extra.push(Array::from_f64s(me, vec![c], rm)?);
        extra.push(Array::from_f64s(me, vec![c], rv)?);
        mean = bm;
        var = bv;
    }
    let mut y = vec![0.0; v.len()];
    for i in 0..n * c {
        let ch = i % c;
        let k = sc[ch] / (var[ch] + eps).sqrt();
        for j in 0..sp {
            y[i * sp + j] = (v[i * sp + j] - mean[ch]) * k + b[ch];
        }
    }
    let mut out = vec![Array::from_f64s(a.elem, a.dims.clone(), y)?];
    out.extend(extra);
    Ok(out)
}

fn lrn(op: &Op, a: &Array) -> Result<Array, EvalError> {
    let (n, c, sp) = per_channel(a)?;
    let size = a_int(op, "size", 1)?.max(1) as usize;
    let alpha = f64::from(a_float(op, "alpha", 1e-4)?);
    let beta = f64::from(a_float(op, "beta", 0.75)?);
    let bias = f64::from(a_float(op, "bias", 1.0)?);
    let v = a.to_f64()?;
    let lo = (size - 1) / 2;
    let hi = (size - 1).div_ceil(2);
    let mut y = vec![0.0; v.len()];
    for b in 0..n {
        for ch in 0..c {
            let c0 = ch.saturating_sub(lo);
            let c1 = (ch + hi).min(c - 1);
            for s in 0..sp {
                let sq: f64 = (c0..=c1).map(|k| v[(b * c + k) * sp + s].powi(2)).sum();
                let f = (b * c + ch) * sp + s;
                y[f] = v[f] / (bias + alpha / size as f64 * sq).powf(beta);
            }
        }
    }
    Array::from_f64s(a.elem, a.dims.clone(), y)
}

/// Reductions and normalisations; `None` when `op` is not one of them.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let out = match op.kind() {
        OpKind::ReduceSum
        | OpKind::ReduceMean
        | OpKind::ReduceMax
        | OpKind::ReduceMin
        | OpKind::ReduceProd
        | OpKind::ReduceL1
        | OpKind::ReduceL2
        | OpKind::ReduceSumSquare
        | OpKind::ReduceLogSum
        | OpKind::ReduceLogSumExp => reduce(op, x, opset)?,
        OpKind::ArgMax => arg(op, x.get(0)?, true)?,
        OpKind::ArgMin => arg(op, x.get(0)?, false)?,
        OpKind::Softmax => softmax(op, x.get(0)?, opset, false)?,
        OpKind::LogSoftmax => softmax(op, x.get(0)?, opset, true)?,
        OpKind::TopK => return Ok(Some(topk(op, x, opset)?)),
        OpKind::SimplifiedLayerNormalization => return super::microsoft::simplified_norm(op, x).map(Some),
        OpKind::LayerNormalization => return Ok(Some(layer_norm(op, x)?)),
        OpKind::RmsNormalization => rms_norm(op, x)?,
        OpKind::InstanceNormalization => instance_norm(op, x)?,
        OpKind::BatchNormalization => return Ok(Some(batch_norm(op, x)?)),
        OpKind::LRN => lrn(op, x.get(0)?)?,
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}
