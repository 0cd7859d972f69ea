//! onnxruntime's contrib ops (`com.microsoft`) as its offline optimizer writes them, following
//! `docs/ContribOperators.md` and onnxruntime's CPU kernels:
//!
//! - fused ops: `FusedConv` (Conv, plus the optional `Z` input, then `activation`),
//!   `FusedGemm`, `FusedMatMul` (`alpha`, `transA`/`transB`, `transBatchA`/`transBatchB`);
//! - activations: `Gelu`, `FastGelu` (tanh form, optional bias), `BiasGelu`, `QuickGelu`
//!   (`x * sigmoid(alpha x)`), `BiasAdd`;
//! - normalisations: `SimplifiedLayerNormalization` (RMS; onnxruntime registers it in the
//!   default domain, whose evaluator calls it from here), `SkipLayerNormalization` and `SkipSimplifiedLayerNormalization` with their optional
//!   outputs (mean, inverse standard deviation, the sum of input, skip and bias);
//! - quantized ops: `QLinearAdd`, `QLinearMul`, `QLinearSigmoid`, `QLinearLeakyRelu`,
//!   `QLinearGlobalAveragePool`, `QLinearAveragePool`, `QLinearConcat`, `QLinearSoftmax`,
//!   `QGemm`, `QuantizeLinear`, `DequantizeLinear`. They dequantize (`(q - zp) * scale` in
//!   `f32`), run the float kernel of the default domain, and quantize the result as
//!   onnxruntime does (`round(x / scale) + zp`, half to even, saturated; the pools round
//!   `x / scale + zp` in `f32`);
//!   `QLinearAdd`/`QLinearMul` use onnxruntime's scale ratios instead (see
//!   [`qlinear_binary`]).
//!
//! The float kernels are the default domain's, run on a plain op built from this op's
//! attributes, so the two cannot drift apart.

use qc_ir::{AttrValue, ElemType, Op, OpKind};

use super::array::{Array, Domain};
use super::elementwise::round_half_even;
use super::{EvalError, Ins, a_float, a_floats, a_int, a_str, norm_axis};

/// A default-domain op of `op_type` with the attributes of `op` named in `keep`.
fn plain(op_type: &str, op: &Op, keep: &[&str]) -> Op {
    let mut p = Op::new(op_type, None);
    p.attrs = op.attrs.iter().filter(|a| keep.contains(&a.name.as_str())).cloned().collect();
    p
}

/// Runs the default-domain kernel of `op` on `ins`.
fn run(op: &Op, ins: &[Option<&Array>], opset: i64) -> Result<Vec<Array>, EvalError> {
    super::dispatch(op, &Ins { v: ins }, opset)
}

fn run1(op: &Op, ins: &[Option<&Array>], opset: i64) -> Result<Array, EvalError> {
    run(op, ins, opset)?.into_iter().next().ok_or_else(|| EvalError::unsupported("the kernel gave no output"))
}

fn map_float(a: &Array, f: impl Fn(f64) -> f64) -> Result<Array, EvalError> {
    if a.domain()? != Domain::Float {
        return Err(EvalError::type_mismatch(format!("expected a float tensor, found {}", a.elem)));
    }
    Array::from_f64s(a.elem, a.dims.clone(), a.to_f64()?.into_iter().map(f).collect())
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// The activation of `FusedConv`/`FusedGemm`, with its parameters.
fn activate(a: Array, name: &str, params: &[f32]) -> Result<Array, EvalError> {
    let p = |i: usize, d: f64| params.get(i).map_or(d, |&v| f64::from(v));
    match name {
        "" | "Identity" => Ok(a),
        "Relu" => map_float(&a, |v| if v > 0.0 { v } else { 0.0 }),
        "Tanh" => map_float(&a, f64::tanh),
        "Sigmoid" => map_float(&a, sigmoid),
        "LeakyRelu" => {
            let al = p(0, 0.01);
            map_float(&a, |v| if v >= 0.0 { v } else { al * v })
        }
        "Clip" => {
            let (lo, hi) = (p(0, f64::NEG_INFINITY), p(1, f64::INFINITY));
            map_float(&a, |v| v.max(lo).min(hi))
        }
        "HardSigmoid" => {
            let (al, be) = (p(0, 0.2), p(1, 0.5));
            map_float(&a, |v| (al * v + be).clamp(0.0, 1.0))
        }
        other => Err(EvalError::attr(format!("unknown activation `{other}`"))),
    }
}

/// `(q - zp) * scale`, per tensor, as an `f32` array of `q`'s dims.
fn deq(q: &Array, scale: &Array, zp: Option<&Array>) -> Result<Array, EvalError> {
    let s = first(scale)? as f32;
    let z = zp.map(first).transpose()?.unwrap_or(0.0);
    let v = q.to_f64()?.into_iter().map(|x| f64::from((x - z) as f32 * s)).collect();
    Array::from_f64s(ElemType::F32, q.dims.clone(), v)
}

/// Quantizes `a` with a per-tensor scale and zero point (the zero point's type is the result's;
/// uint8 without one): `round(x / scale) + zp`, or with `zp_first` `round(x / scale + zp)` in
/// `f32`, as onnxruntime's quantized pools do. The two differ on ties with an odd zero point and
/// where the f32 sum rounds.
fn quant_with(a: &Array, scale: &Array, zp: Option<&Array>, zp_first: bool) -> Result<Array, EvalError> {
    let s = first(scale)? as f32;
    let (z, elem) = match zp {
        Some(z) => (first(z)?, z.elem),
        None => (0.0, ElemType::U8),
    };
    let (lo, hi) = super::quant::int_range(elem)?;
    let v = a
        .to_f64()?
        .into_iter()
        .map(|x| {
            let r = if zp_first {
                round_half_even(f64::from(x as f32 / s + z as f32))
            } else {
                round_half_even(f64::from(x as f32 / s)) + z
            };
            if r.is_nan() { z } else { r.clamp(lo, hi) }
        })
        .collect();
    Array::from_f64s(elem, a.dims.clone(), v)
}

fn quant(a: &Array, scale: &Array, zp: Option<&Array>) -> Result<Array, EvalError> {
    quant_with(a, scale, zp, false)
}

fn first(a: &Array) -> Result<f64, EvalError> {
    match a.to_f64()?[..] {
        [v] => Ok(v),
        _ => Err(EvalError::shape(format!("expected a scalar (one value), found dims {:?}", a.dims))),
    }
}

/// Moves axis 0 of `a` to position `rank - 2` (`transBatch*` of `FusedMatMul`).
fn trans_batch(a: &Array) -> Result<Array, EvalError> {
    let r = a.rank();
    if r < 3 {
        return Ok(a.clone());
    }
    let mut perm: Vec<usize> = (1..r - 1).collect();
    perm.push(0);
    perm.push(r - 1);
    super::shape_ops::transpose(a, &perm)
}

fn swap_last(a: &Array) -> Result<Array, EvalError> {
    let r = a.rank();
    if r < 2 {
        return Err(EvalError::shape("a transposed operand needs rank 2 or more"));
    }
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    super::shape_ops::transpose(a, &perm)
}

fn fused_matmul(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    let mut a = x.get(0)?.clone();
    let mut b = x.get(1)?.clone();
    if a_int(op, "transBatchA", 0)? != 0 {
        a = trans_batch(&a)?;
    }
    if a_int(op, "transA", 0)? != 0 {
        a = swap_last(&a)?;
    }
    if a_int(op, "transBatchB", 0)? != 0 {
        b = trans_batch(&b)?;
    }
    if a_int(op, "transB", 0)? != 0 {
        b = swap_last(&b)?;
    }
    let y = run1(&Op::new("MatMul", None), &[Some(&a), Some(&b)], opset)?;
    let alpha = f64::from(a_float(op, "alpha", 1.0)?);
    if alpha == 1.0 { Ok(y) } else { map_float(&y, |v| v * alpha) }
}

/// A normalisation's result, means, inverse standard deviations, and the dims of the two.
type Normed = (Array, Vec<f64>, Vec<f64>, Vec<usize>);

/// Layer normalisation of `s` over the dims from `axis` on, with `gamma` and `beta`; `rms`
/// leaves out the mean (the simplified form). Returns `y`, the means, the inverse standard
/// deviations and their dims.
fn norm_from(
    s: &Array,
    gamma: &Array,
    beta: Option<&Array>,
    eps: f64,
    axis: usize,
    rms: bool,
) -> Result<Normed, EvalError> {
    let len: usize = s.dims[axis..].iter().product();
    let outer: usize = s.dims[..axis].iter().product();
    let v = s.to_f64()?;
    let g = gamma.to_f64()?;
    let b = beta.map(Array::to_f64).transpose()?;
    if g.len() != len || b.as_ref().is_some_and(|b| b.len() != len) {
        return Err(EvalError::shape(format!("gamma and beta must hold {len} values")));
    }
    let mut y = vec![0.0; v.len()];
    let (mut means, mut invs) = (Vec::with_capacity(outer), Vec::with_capacity(outer));
    for o in 0..outer {
        let row = &v[o * len..(o + 1) * len];
        let m = if rms { 0.0 } else { row.iter().sum::<f64>() / len as f64 };
        let var = row.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / len as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for k in 0..len {
            y[o * len + k] = (row[k] - m) * inv * g[k] + b.as_ref().map_or(0.0, |b| b[k]);
        }
        means.push(m);
        invs.push(inv);
    }
    let mut sd = s.dims.clone();
    sd[axis..].iter_mut().for_each(|d| *d = 1);
    Ok((Array::from_f64s(s.elem, s.dims.clone(), y)?, means, invs, sd))
}

fn skip_norm(op: &Op, x: &Ins<'_>, opset: i64, rms: bool) -> Result<Vec<Array>, EvalError> {
    let add = Op::new("Add", None);
    let mut s = run1(&add, &[Some(x.get(0)?), Some(x.get(1)?)], opset)?;
    let (beta, bias) = if rms { (None, x.opt(3)) } else { (x.opt(3), x.opt(4)) };
    if let Some(b) = bias {
        s = run1(&add, &[Some(&s), Some(b)], opset)?;
    }
    if s.rank() == 0 {
        return Err(EvalError::shape("the input must have rank 1 or more"));
    }
    let eps = f64::from(a_float(op, "epsilon", 1e-12)?);
    let (y, means, invs, sd) = norm_from(&s, x.get(2)?, beta, eps, s.rank() - 1, rms)?;
    Ok(vec![
        y,
        Array::from_f64s(ElemType::F32, sd.clone(), means)?,
        Array::from_f64s(ElemType::F32, sd, invs)?,
        s,
    ])
}

/// `SimplifiedLayerNormalization` (onnxruntime registers it in the default domain): `Y` and
/// `inv_std_var`, normalising from `axis` without subtracting the mean.
pub(crate) fn simplified_norm(op: &Op, x: &Ins<'_>) -> Result<Vec<Array>, EvalError> {
    let a = x.get(0)?;
    let axis = norm_axis(a_int(op, "axis", -1)?, a.rank())?;
    let eps = f64::from(a_float(op, "epsilon", 1e-5)?);
    let (y, _, invs, sd) = norm_from(a, x.get(1)?, x.opt(2), eps, axis, true)?;
    let stash = ElemType::from_code(a_int(op, "stash_type", 1)? as i32);
    Ok(vec![y, Array::from_f64s(stash, sd, invs)?])
}

/// Dequantizes the inputs at `(q, scale, zp)` slot triples, runs `float` on them, and quantizes
/// its output with the scale and zero point at `out`.
fn qlinear(x: &Ins<'_>, float: &Op, triples: &[usize], out: usize, opset: i64) -> Result<Array, EvalError> {
    qlinear_with(x, float, triples, out, opset, false)
}

fn qlinear_with(
    x: &Ins<'_>,
    float: &Op,
    triples: &[usize],
    out: usize,
    opset: i64,
    zp_first: bool,
) -> Result<Array, EvalError> {
    let fs = triples
        .iter()
        .map(|&i| deq(x.get(i)?, x.get(i + 1)?, x.opt(i + 2)))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<Option<&Array>> = fs.iter().map(Some).collect();
    let y = run1(float, &refs, opset)?;
    quant_with(&y, x.get(out)?, x.opt(out + 1), zp_first)
}

/// `QLinearAdd`/`QLinearMul` as onnxruntime computes them in `f32`: `A' = A - zp_A`, then
/// `A' sA/sC + B' sB/sC` or `A' B' (sA sB / sC)`, plus `zp_C`, rounded.
fn qlinear_binary(x: &Ins<'_>, mul: bool, opset: i64) -> Result<Array, EvalError> {
    let (sa, sb, sc) = (first(x.get(1)?)? as f32, first(x.get(4)?)? as f32, first(x.get(6)?)? as f32);
    let centred = |q: &Array, zp: Option<&Array>, k: f32| -> Result<Array, EvalError> {
        let z = zp.map(first).transpose()?.unwrap_or(0.0);
        let v = q.to_f64()?.into_iter().map(|v| f64::from((v - z) as f32 * k)).collect();
        Array::from_f64s(ElemType::F32, q.dims.clone(), v)
    };
    let (ka, kb) = if mul { (1.0, 1.0) } else { (sa / sc, sb / sc) };
    let a = centred(x.get(0)?, x.opt(2), ka)?;
    let b = centred(x.get(3)?, x.opt(5), kb)?;
    let y = run1(&Op::new(if mul { "Mul" } else { "Add" }, None), &[Some(&a), Some(&b)], opset)?;
    let factor = if mul { sa * sb / sc } else { 1.0 };
    let (z, elem) = match x.opt(7) {
        Some(z) => (first(z)?, z.elem),
        None => (0.0, ElemType::U8),
    };
    let (lo, hi) = super::quant::int_range(elem)?;
    let v = y
        .to_f64()?
        .into_iter()
        .map(|v| {
            let r = round_half_even(f64::from(v as f32 * factor + z as f32));
            if r.is_nan() { z } else { r.clamp(lo, hi) }
        })
        .collect();
    Array::from_f64s(elem, y.dims.clone(), v)
}

fn channels_last_pool(op: &Op, x: &Ins<'_>, float: &Op, opset: i64) -> Result<Array, EvalError> {
    if a_int(op, "channels_last", 0)? == 0 {
        return qlinear_with(x, float, &[0], 3, opset, true);
    }
    let a = x.get(0)?;
    let r = a.rank();
    if r < 3 {
        return Err(EvalError::shape("a pooled input needs rank 3 or more"));
    }
    let mut to_first: Vec<usize> = vec![0, r - 1];
    to_first.extend(1..r - 1);
    let mut to_last: Vec<usize> = vec![0];
    to_last.extend(2..r);
    to_last.push(1);
    let t = super::shape_ops::transpose(a, &to_first)?;
    let mut ins: Vec<Option<&Array>> = x.v.to_vec();
    ins[0] = Some(&t);
    let y = qlinear_with(&Ins { v: &ins }, float, &[0], 3, opset, true)?;
    super::shape_ops::transpose(&y, &to_last)
}

fn qlinear_concat(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    if x.len() < 5 || !(x.len() - 2).is_multiple_of(3) {
        return Err(EvalError::Arity {
            node: String::new(),
            msg: format!("QLinearConcat takes Y_scale, Y_zero_point and triples, found {} inputs", x.len()),
        });
    }
    let triples: Vec<usize> = (2..x.len()).step_by(3).collect();
    let fs = triples
        .iter()
        .map(|&i| deq(x.get(i)?, x.get(i + 1)?, x.opt(i + 2)))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<Option<&Array>> = fs.iter().map(Some).collect();
    let y = run1(&plain("Concat", op, &["axis"]), &refs, opset)?;
    quant(&y, x.get(0)?, x.opt(1))
}

/// `QGemm`: `alpha * A' B' + C` on the dequantized operands (`C` is int32 at scale
/// `a_scale * b_scale`); quantized with `y_scale`/`y_zero_point`, or float without them.
/// `b_scale`/`b_zero_point` may be per output column.
fn qgemm(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    let a = deq(x.get(0)?, x.get(1)?, x.opt(2))?;
    let (b, bs) = (x.get(3)?, x.get(4)?);
    let trans_b = a_int(op, "transB", 0)? != 0;
    if b.rank() != 2 {
        return Err(EvalError::shape("QGemm's B must be a matrix"));
    }
    let n_axis = if trans_b { 0 } else { 1 };
    let n = b.dims[n_axis];
    let per = |p: &Array| -> Result<Vec<f64>, EvalError> {
        let v = p.to_f64()?;
        match v.len() {
            1 => Ok(vec![v[0]; n]),
            l if l == n => Ok(v),
            l => Err(EvalError::shape(format!("a B parameter of {l} values for {n} columns"))),
        }
    };
    let sv = per(bs)?;
    let zv = x.opt(5).map(per).transpose()?.unwrap_or_else(|| vec![0.0; n]);
    let bq = b.to_f64()?;
    let bf: Vec<f64> = bq
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let c = if trans_b { i / b.dims[1] } else { i % b.dims[1] };
            f64::from((q - zv[c]) as f32 * sv[c] as f32)
        })
        .collect();
    let bf = Array::from_f64s(ElemType::F32, b.dims.clone(), bf)?;
    let a_s = first(x.get(1)?)?;
    let c = x
        .opt(6)
        .map(|c| {
            let v: Vec<f64> = c.to_f64()?;
            let v = if v.len() == n {
                v.iter().zip(&sv).map(|(q, s)| f64::from(*q as f32 * (a_s as f32 * *s as f32))).collect()
            } else {
                let s = first(bs)?;
                v.iter().map(|q| f64::from(*q as f32 * (a_s as f32 * s as f32))).collect()
            };
            Array::from_f64s(ElemType::F32, c.dims.clone(), v)
        })
        .transpose()?;
    let gemm = plain("Gemm", op, &["alpha", "transA", "transB"]);
    let y = run1(&gemm, &[Some(&a), Some(&bf), c.as_ref()], opset)?;
    match x.opt(7) {
        Some(ys) => quant(&y, ys, x.opt(8)),
        None => Ok(y),
    }
}

/// The contrib kernels; `None` when `op` is not one of them.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let conv_attrs = ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"];
    let pool_attrs = ["auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"];
    let out = match op.kind() {
        OpKind::FusedConv => {
            let mut y =
                run1(&plain("Conv", op, &conv_attrs), &[Some(x.get(0)?), Some(x.get(1)?), x.opt(2)], opset)?;
            if let Some(z) = x.opt(3) {
                y = run1(&Op::new("Add", None), &[Some(&y), Some(z)], opset)?;
            }
            let params = a_floats(op, "activation_params")?.unwrap_or_default();
            activate(y, &a_str(op, "activation", "")?, &params)?
        }
        OpKind::FusedGemm => {
            let y = run1(&plain("Gemm", op, &["alpha", "beta", "transA", "transB"]), x.v, opset)?;
            let params: Vec<f32> = ["activation_alpha", "activation_beta", "activation_gamma"]
                .iter()
                .map_while(|n| op.attr(n).map(|_| a_float(op, n, 0.0)))
                .collect::<Result<_, _>>()?;
            activate(y, &a_str(op, "activation", "")?, &params)?
        }
        OpKind::FusedMatMul => fused_matmul(op, x, opset)?,
        OpKind::MsGelu | OpKind::BiasGelu | OpKind::FastGelu => {
            let mut a = x.get(0)?.clone();
            if let Some(b) = x.opt(1) {
                a = run1(&Op::new("Add", None), &[Some(&a), Some(b)], opset)?;
            }
            let mut g = Op::new("Gelu", None);
            if op.kind() == OpKind::FastGelu {
                g = g.with_attr("approximate", AttrValue::String("tanh".into()));
            }
            run1(&g, &[Some(&a)], opset)?
        }
        OpKind::QuickGelu => {
            let al = f64::from(a_float(op, "alpha", 1.702)?);
            map_float(x.get(0)?, |v| v * sigmoid(al * v))?
        }
        OpKind::BiasAdd => {
            let add = Op::new("Add", None);
            let s = run1(&add, &[Some(x.get(0)?), Some(x.get(1)?)], opset)?;
            run1(&add, &[Some(&s), Some(x.get(2)?)], opset)?
        }
        OpKind::SkipLayerNormalization => return skip_norm(op, x, opset, false).map(Some),
        OpKind::SkipSimplifiedLayerNormalization => return skip_norm(op, x, opset, true).map(Some),
        OpKind::QLinearAdd => qlinear_binary(x, false, opset)?,
        OpKind::QLinearMul => qlinear_binary(x, true, opset)?,
        OpKind::QLinearSigmoid => qlinear(x, &Op::new("Sigmoid", None), &[0], 3, opset)?,
        OpKind::QLinearLeakyRelu => qlinear(x, &plain("LeakyRelu", op, &["alpha"]), &[0], 3, opset)?,
        OpKind::QLinearGlobalAveragePool => {
            channels_last_pool(op, x, &Op::new("GlobalAveragePool", None), opset)?
        }
        OpKind::QLinearAveragePool => {
            channels_last_pool(op, x, &plain("AveragePool", op, &pool_attrs), opset)?
        }
        OpKind::QLinearConcat => qlinear_concat(op, x, opset)?,
        OpKind::QLinearSoftmax => {
            let sm_opset = a_int(op, "opset", opset)?;
            qlinear(x, &plain("Softmax", op, &["axis"]), &[0], 3, sm_opset)?
        }
        OpKind::QGemm => qgemm(op, x, opset)?,
        OpKind::MsQuantizeLinear | OpKind::MsDequantizeLinear => {
            run1(&plain(op.op_type(), op, &["axis"]), x.v, opset)?
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}
