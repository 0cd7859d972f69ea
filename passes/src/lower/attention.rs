//! `Attention` (opset 23) lowered as the two matrix products it stands for, in MatMul's form
//! (see the module doc of [`crate::lower`]), so that it costs what the unfused
//! `MatMul(Q, Transpose(K))` and `MatMul(softmax(..), V)` cost:
//!
//! - `NODE/qk`: `O[b][h][d][k] += I[b][h][d][c] * W[b][h][k][c]`, `I = Q [B, H, S, D]`,
//!   `W = K [B, H, T, D]` read transposed (its storage order), `D = S`, `K = T`, `C = D`; its
//!   output is the intermediate `NODE/scores`;
//! - `NODE/pv`: `O[b][h][d][k] += I[b][h][d][c] * W[b][h][c][k]`, `I` the attention weights
//!   `NODE/probabilities` `[B, H, S, T]` (from `NODE/qk`, through the softmax), `W = V`
//!   `[B, H, T, Dv]`, `D = S`, `K = Dv`, `C = T`; it writes `Y`.
//!
//! Both operands are activations, so `W` has the batch dims `B, H`, as ZigZag maps the
//! attention products. The scale, mask, softcap and softmax are element-wise work that is not
//! costed on the MAC array. Lowered: 4-D inputs with as many key heads as query heads and no
//! past key or value; 3-D inputs (heads packed in the hidden dim), grouped-query attention and a
//! past are not lowered, with the reason.

use qc_ir::{Op, Source};

use super::matmul::matmul_draft;
use super::recurrent::Part;
use super::{Cx, Res};

/// The two layers of `op` (named `name` in the graph).
pub(crate) fn lower(cx: &Cx<'_>, op: &Op, name: &str) -> Res<Vec<Part>> {
    let (q, k, v) = (cx.input(op, 0)?, cx.input(op, 1)?, cx.input(op, 2)?);
    let y = cx.output(op)?;
    if [4, 5, 6].iter().any(|&i| op.inputs().get(i).copied().flatten().is_some()) {
        return Err("Attention with a past key or value (or nonpad_kv_seqlen) is not lowered: \
                    the product over the past sequence is not costed"
            .into());
    }
    let (qd, kd, vd, yd) = (cx.dims(q)?, cx.dims(k)?, cx.dims(v)?, cx.dims(y)?);
    let four = |dims: &[u64]| <[u64; 4]>::try_from(dims).map_err(|_| rank_reason(dims));
    let [b, h, s, d] = four(&qd)?;
    let [kb, kh, t, kd_] = four(&kd)?;
    let [vb, vh, vt, dv] = four(&vd)?;
    if kh != h || vh != h {
        return Err(format!(
            "grouped-query Attention ({h} query heads, {kh} key heads) is not lowered: a key head \
             serves several query heads, which MatMul's form cannot index"
        ));
    }
    if kb != b || vb != b || kd_ != d || vt != t || yd != [b, h, s, dv] {
        return Err(format!("Q {qd:?}, K {kd:?}, V {vd:?} and Y {yd:?} do not fit together"));
    }
    let mut qk = matmul_draft(&[b, h, s, d], &[b, h, d, t], &[b, h, s, t])?;
    // K is stored [B, H, T, D]: the product reads it transposed.
    let w = &mut qk.inputs[1].index;
    let r = w.len();
    w.swap(r - 2, r - 1);
    qk.inputs[0].value = Some(q);
    qk.inputs[1].value = Some(k);
    qk.out = y;
    let mut pv = matmul_draft(&[b, h, s, t], &[b, h, t, dv], &[b, h, s, dv])?;
    pv.inputs[0].value = Some(q);
    pv.inputs[1].value = Some(v);
    pv.out = y;
    Ok(vec![
        Part {
            suffix: "qk",
            draft: qk,
            out_name: Some(format!("{name}/scores")),
            i_source: None,
            i_value: None,
        },
        Part {
            suffix: "pv",
            draft: pv,
            out_name: None,
            // The attention weights: the scores of `NODE/qk` through the softmax.
            i_source: Some(Source::Layer(format!("{name}/qk"))),
            i_value: Some(format!("{name}/probabilities")),
        },
    ])
}

fn rank_reason(dims: &[u64]) -> String {
    format!(
        "Attention on inputs of rank {} is not lowered: only the 4-D form [B, heads, seq, size] is \
         (3-D inputs pack the heads in the hidden dim)",
        dims.len()
    )
}
