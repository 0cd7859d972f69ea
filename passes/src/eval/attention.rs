//! `Attention` (opset 23), as ONNX's reference implementation computes it:
//! `Y = softmax(softcap(Q K^T * scale) + bias) V` per batch and query head, where `scale`
//! defaults to `1 / sqrt(head_size)`, `bias` is the float `attn_mask` (a boolean mask gives `0`
//! where true and `-inf` where false; a mask shorter than the key sequence is padded with
//! `-inf`/false) plus, with `is_causal`, `-inf` above the diagonal offset by the past length.
//! `past_key`/`past_value` are prepended to `K`/`V` along the sequence (`present_key`,
//! `present_value`); with fewer key heads than query heads (grouped-query attention) query head
//! `h` reads key head `h / (q_heads / kv_heads)`. 3-D inputs `[B, seq, heads * size]` are split
//! into `q_num_heads`/`kv_num_heads` heads and `Y` is merged back. `qk_matmul_output` is, by
//! `qk_matmul_output_mode`, the (softcapped) scaled product (0, 1), with the bias added (2), or the
//! softmax (3).
//!
//! Computed in `f64` and rounded once to the output type: the product is scaled after the sum (the
//! reference scales Q and K by `sqrt(scale)` each), so results agree with it up to float rounding.
//! `nonpad_kv_seqlen` (opset 24) is not evaluated.

use qc_ir::{Op, OpKind};

use super::array::{Array, Domain, alloc_count};
use super::{EvalError, Ins, a_float, a_int};

pub(crate) fn eval(op: &Op, x: &Ins<'_>, _opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    if op.kind() != OpKind::Attention {
        return Ok(None);
    }
    attention(op, x).map(Some)
}

/// A tensor in `[B, heads, seq, size]` form, values as `f64`.
struct Heads {
    dims: [usize; 4],
    v: Vec<f64>,
}

impl Heads {
    fn at(&self, b: usize, h: usize, s: usize) -> &[f64] {
        let [_, hn, sn, e] = self.dims;
        let start = ((b * hn + h) * sn + s) * e;
        &self.v[start..start + e]
    }
}

fn floats(a: &Array, what: &str) -> Result<Vec<f64>, EvalError> {
    if a.domain()? != Domain::Float {
        return Err(EvalError::type_mismatch(format!("{what} must be a float tensor, found {}", a.elem)));
    }
    a.to_f64()
}

/// `a` (4-D, or 3-D split into `heads`) as `[B, heads, seq, size]`.
fn heads_form(a: &Array, heads: usize, what: &str) -> Result<Heads, EvalError> {
    let v = floats(a, what)?;
    match a.dims[..] {
        [b, h, s, e] => Ok(Heads { dims: [b, h, s, e], v }),
        [b, s, hidden] => {
            if heads == 0 || hidden % heads != 0 {
                return Err(EvalError::shape(format!(
                    "{what}'s hidden size {hidden} is not a multiple of the head count {heads} (q_num_heads, kv_num_heads)"
                )));
            }
            let e = hidden / heads;
            let mut out = vec![0.0; v.len()];
            for bi in 0..b {
                for si in 0..s {
                    for hi in 0..heads {
                        let from = (bi * s + si) * hidden + hi * e;
                        let to = ((bi * heads + hi) * s + si) * e;
                        out[to..to + e].copy_from_slice(&v[from..from + e]);
                    }
                }
            }
            Ok(Heads { dims: [b, heads, s, e], v: out })
        }
        _ => {
            Err(EvalError::shape(format!("{what} has rank {}: Attention takes 3-D or 4-D inputs", a.rank())))
        }
    }
}

/// `past` and `cur` joined along the sequence axis.
fn prepend(past: Option<&Array>, cur: Heads, what: &str) -> Result<Heads, EvalError> {
    let Some(p) = past else { return Ok(cur) };
    let p = heads_form(p, 0, what)?;
    let [b, h, ps, e] = p.dims;
    let [cb, ch, cs, ce] = cur.dims;
    if (b, h, e) != (cb, ch, ce) {
        return Err(EvalError::shape(format!("{what} has dims {:?}, the new ones {:?}", p.dims, cur.dims)));
    }
    let total = ps + cs;
    let mut v = Vec::with_capacity(alloc_count(&[b, h, total, e])?);
    for bi in 0..b {
        for hi in 0..h {
            for s in 0..ps {
                v.extend_from_slice(p.at(bi, hi, s));
            }
            for s in 0..cs {
                v.extend_from_slice(cur.at(bi, hi, s));
            }
        }
    }
    Ok(Heads { dims: [b, h, total, e], v })
}

/// The mask as an additive bias over `[B, Hq, S, T]`, indexed by flat position; `None`: no mask.
fn mask_bias(mask: Option<&Array>, shape: [usize; 4]) -> Result<Option<Vec<f64>>, EvalError> {
    let Some(m) = mask else { return Ok(None) };
    if m.rank() > 4 || m.rank() == 0 {
        return Err(EvalError::shape(format!("attn_mask has rank {}; it must be 1-D to 4-D", m.rank())));
    }
    let boolean = m.domain()? == Domain::Bool;
    let vals: Vec<f64> = if boolean {
        m.to_bool()?.into_iter().map(|b| if b { 0.0 } else { f64::NEG_INFINITY }).collect()
    } else {
        floats(m, "attn_mask")?
    };
    let mut md = vec![1usize; 4 - m.rank()];
    md.extend_from_slice(&m.dims);
    if md[3] > shape[3] {
        return Err(EvalError::shape(format!(
            "attn_mask's last dim {} exceeds the key sequence length {}",
            md[3], shape[3]
        )));
    }
    for (d, s) in md.iter().zip(&shape).take(3) {
        if *d != 1 && d != s {
            return Err(EvalError::shape(format!(
                "attn_mask with dims {:?} does not broadcast to {shape:?}",
                m.dims
            )));
        }
    }
    let n = alloc_count(&shape)?;
    let mut out = Vec::with_capacity(n);
    for b in 0..shape[0] {
        for h in 0..shape[1] {
            for s in 0..shape[2] {
                for t in 0..shape[3] {
                    // A mask shorter than the keys is padded with -inf (false).
                    if t >= md[3] {
                        out.push(f64::NEG_INFINITY);
                        continue;
                    }
                    let pick = |i: usize, x: usize| if md[i] == 1 { 0 } else { x };
                    let f = ((pick(0, b) * md[1] + pick(1, h)) * md[2] + pick(2, s)) * md[3] + t;
                    out.push(vals[f]);
                }
            }
        }
    }
    Ok(Some(out))
}

fn attention(op: &Op, x: &Ins<'_>) -> Result<Vec<Array>, EvalError> {
    let (qa, ka, va) = (x.get(0)?, x.get(1)?, x.get(2)?);
    if x.opt(6).is_some() {
        return Err(EvalError::unsupported("Attention's nonpad_kv_seqlen (opset 24) is not evaluated"));
    }
    if qa.rank() != ka.rank() || qa.rank() != va.rank() {
        return Err(EvalError::shape(format!(
            "Q, K and V have ranks {}, {} and {}",
            qa.rank(),
            ka.rank(),
            va.rank()
        )));
    }
    let heads = |name: &str| -> Result<usize, EvalError> {
        let n = a_int(op, name, 0)?;
        usize::try_from(n).map_err(|_| EvalError::attr(format!("{name} is {n}; it must be positive")))
    };
    let (qh, kvh) = (heads("q_num_heads")?, heads("kv_num_heads")?);
    let q = heads_form(qa, qh, "Q")?;
    let k = prepend(x.opt(4), heads_form(ka, kvh, "K")?, "past_key")?;
    let v = prepend(x.opt(5), heads_form(va, kvh, "V")?, "past_value")?;
    let [b, hq, s, d] = q.dims;
    let [kb, hk, t, kd] = k.dims;
    let [vb, hv, vt, dv] = v.dims;
    if kb != b || vb != b || kd != d || vt != t || hv != hk {
        return Err(EvalError::shape(format!(
            "Q {:?}, K {:?} and V {:?} (with their past) do not fit together",
            q.dims, k.dims, v.dims
        )));
    }
    if hk == 0 || hq % hk != 0 {
        return Err(EvalError::shape(format!("{hq} query heads are not a multiple of {hk} key heads")));
    }
    let reps = hq / hk;
    let past = match x.opt(4) {
        Some(p) => p.dims.get(2).copied().unwrap_or(0),
        None => 0,
    };
    let scale = match op.attr("scale") {
        Some(_) => f64::from(a_float(op, "scale", 1.0)?),
        None => 1.0 / (d as f64).sqrt(),
    };
    let softcap = f64::from(a_float(op, "softcap", 0.0)?);
    let causal = a_int(op, "is_causal", 0)? != 0;
    let mode = a_int(op, "qk_matmul_output_mode", 0)?;
    if !(0..=3).contains(&mode) {
        return Err(EvalError::attr(format!("qk_matmul_output_mode is {mode}; it must be 0 to 3")));
    }
    let shape = [b, hq, s, t];
    let bias = mask_bias(x.opt(3), shape)?;
    let mut y = vec![0.0; alloc_count(&[b, hq, s, dv])?];
    let mut qk_out = vec![0.0; alloc_count(&shape)?];
    let mut row = vec![0.0; t];
    for bi in 0..b {
        for h in 0..hq {
            let kh = h / reps;
            for i in 0..s {
                let qrow = q.at(bi, h, i);
                let base = ((bi * hq + h) * s + i) * t;
                for (j, r) in row.iter_mut().enumerate() {
                    let dot: f64 = qrow.iter().zip(k.at(bi, kh, j)).map(|(a, c)| a * c).sum();
                    let mut e = dot * scale;
                    if softcap > 0.0 {
                        e = softcap * (e / softcap).tanh();
                    }
                    if mode <= 1 {
                        qk_out[base + j] = e;
                    }
                    if let Some(m) = &bias {
                        e += m[base + j];
                    }
                    if causal && j > i + past {
                        e += f64::NEG_INFINITY;
                    }
                    if mode == 2 {
                        qk_out[base + j] = e;
                    }
                    *r = e;
                }
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                for r in row.iter_mut() {
                    *r = (*r - max).exp();
                }
                let sum: f64 = row.iter().sum();
                for r in row.iter_mut() {
                    *r /= sum;
                }
                if mode == 3 {
                    qk_out[base..base + t].copy_from_slice(&row);
                }
                let out = ((bi * hq + h) * s + i) * dv;
                for (j, p) in row.iter().enumerate() {
                    for (o, vv) in y[out..out + dv].iter_mut().zip(v.at(bi, kh, j)) {
                        *o += p * vv;
                    }
                }
            }
        }
    }
    let y = if qa.rank() == 3 {
        // Back to [B, S, heads * size].
        let mut merged = vec![0.0; y.len()];
        for bi in 0..b {
            for h in 0..hq {
                for i in 0..s {
                    let from = ((bi * hq + h) * s + i) * dv;
                    let to = (bi * s + i) * hq * dv + h * dv;
                    merged[to..to + dv].copy_from_slice(&y[from..from + dv]);
                }
            }
        }
        Array::from_f64s(qa.elem, vec![b, s, hq * dv], merged)?
    } else {
        Array::from_f64s(qa.elem, vec![b, hq, s, dv], y)?
    };
    Ok(vec![
        y,
        Array::from_f64s(ka.elem, k.dims.to_vec(), k.v)?,
        Array::from_f64s(va.elem, v.dims.to_vec(), v.v)?,
        Array::from_f64s(qa.elem, shape.to_vec(), qk_out)?,
    ])
}

#[cfg(test)]
mod tests {
    use qc_ir::{AttrValue, Op};

    use crate::eval::{Array, eval_op};

    fn arr(dims: &[usize], v: &[f32]) -> Array {
        Array::from_f32(dims.to_vec(), v.to_vec()).unwrap()
    }

    fn run(op: &Op, ins: &[Option<&Array>]) -> Vec<f64> {
        eval_op(op, ins, 23).unwrap()[0].to_f64().unwrap()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{a:?} != {b:?}");
        }
    }

    /// V: three keys, two values each.
    const V: [f32; 6] = [1.0, 2.0, 3.0, 5.0, -4.0, 8.0];

    #[test]
    fn equal_scores_average_the_values_and_masks_and_causality_drop_keys() {
        let q = arr(&[1, 1, 2, 2], &[0.0; 4]);
        let k = arr(&[1, 1, 3, 2], &[0.5, -1.0, 2.0, 0.25, 1.5, 3.0]);
        let v = arr(&[1, 1, 3, 2], &V);
        let op = Op::new("Attention", None);
        close(&run(&op, &[Some(&q), Some(&k), Some(&v)]), &[0.0, 5.0, 0.0, 5.0]);
        // A boolean mask that hides key 0 from both queries.
        let mask = Array::from_bool(vec![3], vec![false, true, true]).unwrap();
        close(&run(&op, &[Some(&q), Some(&k), Some(&v), Some(&mask)]), &[-0.5, 6.5, -0.5, 6.5]);
        // Causal: query i sees keys 0..=i.
        let causal = Op::new("Attention", None).with_attr("is_causal", AttrValue::Int(1));
        close(&run(&causal, &[Some(&q), Some(&k), Some(&v)]), &[1.0, 2.0, 2.0, 3.5]);
        // A float mask shorter than the keys is padded with -inf: only key 0 and 1 count.
        let short = arr(&[2], &[0.0, 0.0]);
        close(&run(&op, &[Some(&q), Some(&k), Some(&v), Some(&short)]), &[2.0, 3.5, 2.0, 3.5]);
    }

    #[test]
    fn the_default_scale_is_one_over_the_root_of_the_head_size() {
        let q = arr(&[1, 1, 1, 2], &[1.0, 0.0]);
        let k = arr(&[1, 1, 2, 2], &[1.0, 0.0, 0.0, 0.0]);
        let v = arr(&[1, 1, 2, 1], &[1.0, 0.0]);
        let w = |s: f64| s.exp() / (s.exp() + 1.0);
        let op = Op::new("Attention", None);
        close(&run(&op, &[Some(&q), Some(&k), Some(&v)]), &[w(1.0 / 2f64.sqrt())]);
        let scaled = Op::new("Attention", None).with_attr("scale", AttrValue::Float(2.0));
        close(&run(&scaled, &[Some(&q), Some(&k), Some(&v)]), &[w(2.0)]);
    }

    #[test]
    fn three_d_inputs_split_heads_and_grouped_heads_share_keys() {
        // Two heads of size 1 packed as [B, S, 2].
        let q = arr(&[1, 1, 2], &[1.0, -1.0]);
        let k = arr(&[1, 2, 2], &[1.0, 2.0, 0.0, 0.0]);
        let v = arr(&[1, 2, 2], &[10.0, 20.0, 30.0, 40.0]);
        let op = Op::new("Attention", None)
            .with_attr("q_num_heads", AttrValue::Int(2))
            .with_attr("kv_num_heads", AttrValue::Int(2));
        let got = run(&op, &[Some(&q), Some(&k), Some(&v)]);
        // Head 0: scores [1, 0] on values [10, 30]; head 1: scores [-2, 0] on [20, 40].
        let h0 = (10.0 * 1f64.exp() + 30.0) / (1f64.exp() + 1.0);
        let h1 = (20.0 * (-2f64).exp() + 40.0) / ((-2f64).exp() + 1.0);
        close(&got, &[h0, h1]);
        // Two query heads on one key head: both read it.
        let q4 = arr(&[1, 2, 1, 1], &[1.0, 0.0]);
        let k4 = arr(&[1, 1, 2, 1], &[1.0, 0.0]);
        let v4 = arr(&[1, 1, 2, 1], &[10.0, 30.0]);
        let scaled = Op::new("Attention", None).with_attr("scale", AttrValue::Float(1.0));
        close(&run(&scaled, &[Some(&q4), Some(&k4), Some(&v4)]), &[h0, 20.0]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let q = arr(&[1, 1, 1, 2], &[1.0, 0.0]);
        let k = arr(&[1, 1, 2, 3], &[0.0; 6]);
        let v = arr(&[1, 1, 2, 1], &[1.0, 0.0]);
        let op = Op::new("Attention", None);
        assert!(eval_op(&op, &[Some(&q), Some(&k), Some(&v)], 23).is_err(), "head sizes differ");
        let q3 = arr(&[1, 1, 2], &[1.0, 0.0]);
        assert!(eval_op(&op, &[Some(&q3), Some(&q3), Some(&q3)], 23).is_err(), "3-D without head counts");
        let big_mask = arr(&[3], &[0.0; 3]);
        let k2 = arr(&[1, 1, 2, 2], &[0.0; 4]);
        assert!(
            eval_op(&op, &[Some(&q), Some(&k2), Some(&v), Some(&big_mask)], 23).is_err(),
            "mask too long"
        );
    }
}
