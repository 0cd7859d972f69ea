//! qonnx's channels-last wrappers (domain `qonnx.custom_op.channels_last`): `Conv`, `MaxPool` and
//! `BatchNormalization` on data stored `N, spatial..., C`.
//!
//! As qonnx runs them (`ChannelsLastWrappedOp.execute_node`): input 0, and a Conv's input 1 (its
//! weight, stored `O, kH, kW, I/group`), are transposed to channels-first, the standard op runs
//! with the same attributes, and its output is transposed back to channels-last. A Conv's bias
//! and a BatchNormalization's scale, bias, mean and variance are per channel and read as they are.
//! The wrappers have exactly one output (qonnx checks it); a MaxPool's `Indices` output would
//! index the channels-first tensor, so it is refused rather than given in the wrong layout.

use qc_ir::{Op, OpKind};

use super::shape_ops::transpose;
use super::{Array, EvalError, Ins};

/// The permutation that turns a channels-last tensor of rank `r` into channels-first
/// (`N, C, spatial...`): `[0, r-1, 1, ..., r-2]`. The identity below rank 3.
pub fn to_first_perm(r: usize) -> Vec<usize> {
    if r < 3 {
        return (0..r).collect();
    }
    let mut p = vec![0, r - 1];
    p.extend(1..r - 1);
    p
}

/// The permutation that turns a channels-first tensor of rank `r` into channels-last:
/// `[0, 2, ..., r-1, 1]`, the inverse of [`to_first_perm`]. The identity below rank 3.
pub fn to_last_perm(r: usize) -> Vec<usize> {
    if r < 3 {
        return (0..r).collect();
    }
    let mut p = vec![0];
    p.extend(2..r);
    p.push(1);
    p
}

pub(crate) fn eval(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let moved = match op.kind() {
        OpKind::ChannelsLastConv => 2,
        OpKind::ChannelsLastMaxPool | OpKind::ChannelsLastBatchNormalization => 1,
        _ => return Ok(None),
    };
    if op.outputs().iter().skip(1).any(Option::is_some) {
        return Err(EvalError::unsupported(
            "a channels-last wrapper has exactly one output (qonnx's ChannelsLastWrappedOp); \
             the standard op's other outputs would be in channels-first layout",
        ));
    }
    let mut owned: Vec<Option<Array>> = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let a = match x.opt(i) {
            Some(a) if i < moved => Some(transpose(a, &to_first_perm(a.rank()))?),
            Some(a) => Some(a.clone()),
            None => None,
        };
        owned.push(a);
    }
    if owned.first().is_none_or(Option::is_none) {
        return Err(EvalError::Arity { node: String::new(), msg: "input 0 is required but missing".into() });
    }
    let refs: Vec<Option<&Array>> = owned.iter().map(Option::as_ref).collect();
    let standard = op.in_domain(None);
    let mut outs = super::dispatch(&standard, &Ins { v: &refs }, opset)?;
    outs.truncate(1);
    let y = outs.pop().ok_or_else(|| EvalError::unsupported("the standard op gave no output"))?;
    Ok(Some(vec![transpose(&y, &to_last_perm(y.rank()))?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::eval_op;
    use qc_ir::AttrValue;
    use qc_ir::op::CHANNELS_LAST_DOMAIN;

    fn arr(dims: Vec<usize>, f: impl Fn(usize) -> f32) -> Array {
        let n = dims.iter().product();
        Array::from_f32(dims, (0..n).map(f).collect()).unwrap()
    }

    #[test]
    fn perms_are_inverse() {
        for r in 0..6 {
            let (f, l) = (to_first_perm(r), to_last_perm(r));
            let composed: Vec<usize> = l.iter().map(|&i| f[i]).collect();
            assert_eq!(composed, (0..r).collect::<Vec<_>>(), "rank {r}");
        }
        assert_eq!(to_last_perm(4), vec![0, 2, 3, 1]);
        assert_eq!(to_first_perm(4), vec![0, 3, 1, 2]);
        assert_eq!(to_last_perm(3), vec![0, 2, 1]);
    }

    /// A channels-last Conv with a bias equals the standard Conv between layout transposes.
    #[test]
    fn conv_with_bias_matches_the_standard_op() {
        let x = arr(vec![1, 2, 4, 5], |i| (i % 7) as f32 - 3.0);
        let w = arr(vec![3, 2, 3, 3], |i| ((i * 5) % 11) as f32 / 4.0 - 1.0);
        let b = arr(vec![3], |i| i as f32 * 0.5 - 0.25);
        let conv = Op::new("Conv", None)
            .with_attr("pads", AttrValue::Ints(vec![1, 0, 1, 2]))
            .with_attr("strides", AttrValue::Ints(vec![1, 2]));
        let want = eval_op(&conv, &[Some(&x), Some(&w), Some(&b)], 13).unwrap();
        let wrapped = conv.in_domain(Some(CHANNELS_LAST_DOMAIN.into()));
        let xl = transpose(&x, &to_last_perm(4)).unwrap();
        let wl = transpose(&w, &to_last_perm(4)).unwrap();
        let got = eval_op(&wrapped, &[Some(&xl), Some(&wl), Some(&b)], 13).unwrap();
        assert_eq!(got[0], transpose(&want[0], &to_last_perm(4)).unwrap());
        assert_eq!(got[0].dims, vec![1, 4, 3, 3]);
    }

    #[test]
    fn max_pool_and_batch_norm_1d() {
        let x = arr(vec![2, 3, 6], |i| ((i * 13) % 17) as f32 - 8.0);
        let xl = transpose(&x, &to_last_perm(3)).unwrap();
        let pool = Op::new("MaxPool", None).with_attr("kernel_shape", AttrValue::Ints(vec![2]));
        let want = eval_op(&pool, &[Some(&x)], 13).unwrap();
        let got = eval_op(&pool.in_domain(Some(CHANNELS_LAST_DOMAIN.into())), &[Some(&xl)], 13).unwrap();
        assert_eq!(got[0], transpose(&want[0], &to_last_perm(3)).unwrap());
        let c = |v: [f32; 3]| Array::from_f32(vec![3], v.to_vec()).unwrap();
        let (s, b, m, v) = (c([1.0, 2.0, 0.5]), c([0.0, 1.0, -1.0]), c([0.5, 0.0, 1.0]), c([1.0, 4.0, 0.25]));
        let bn = Op::new("BatchNormalization", None);
        let ins = |a| [Some(a), Some(&s), Some(&b), Some(&m), Some(&v)];
        let want = eval_op(&bn, &ins(&x), 13).unwrap();
        let got = eval_op(&bn.in_domain(Some(CHANNELS_LAST_DOMAIN.into())), &ins(&xl), 13).unwrap();
        assert_eq!(got[0], transpose(&want[0], &to_last_perm(3)).unwrap());
    }
}
