//! Matrix products: `Gemm`, `MatMul`, `QLinearMatMul`, `MatMulInteger`, and onnxruntime's
//! `FusedGemm`, `QGemm` and `FusedMatMul` (see the module doc of
//! [`crate::lower`] for the form).

use qc_ir::{Compute, Op, OpKind, ValueId};

use super::{Cx, Draft, In, Res, idx};

/// `Gemm` (and `FusedGemm`, and onnxruntime's quantized `QGemm`, whose operands are inputs 0
/// and 3 with zero points 2 and 5): 2-D, `transA`/`transB`; the bias is not an operand.
pub(super) fn lower_gemm(cx: &Cx<'_>, op: &Op) -> Res<Draft> {
    let qgemm = op.kind() == OpKind::QGemm;
    let opt = |i: usize| op.inputs().get(i).copied().flatten();
    let (a, b, y) = (cx.input(op, 0)?, cx.input(op, if qgemm { 3 } else { 1 })?, cx.output(op)?);
    let (a_zp, b_zp, y_zp) = if qgemm { (opt(2), opt(5), opt(8)) } else { (None, None, None) };
    let attrs = op.gemm().map_err(|e| e.to_string())?;
    let (ad, bd, yd) = (cx.dims(a)?, cx.dims(b)?, cx.dims(y)?);
    if ad.len() != 2 || bd.len() != 2 || yd.len() != 2 {
        return Err(format!(
            "Gemm operands of rank {}, {} and {}: all must be 2-D",
            ad.len(),
            bd.len(),
            yd.len()
        ));
    }
    let (m, ka) = if attrs.trans_a { (ad[1], ad[0]) } else { (ad[0], ad[1]) };
    let (kb, n) = if attrs.trans_b { (bd[1], bd[0]) } else { (bd[0], bd[1]) };
    if ka != kb || yd != [m, n] {
        return Err(format!(
            "operand dims {ad:?} x {bd:?} -> {yd:?} disagree (transA {}, transB {})",
            attrs.trans_a, attrs.trans_b
        ));
    }
    Ok(Draft {
        compute: Compute::Mac,
        dims: vec![("D".into(), m), ("K".into(), n), ("C".into(), ka)],
        out_index: idx(&["d", "k"]),
        out: y,
        out_zp: y_zp,
        inputs: vec![
            In {
                role: "I",
                index: idx(if attrs.trans_a { &["c", "d"] } else { &["d", "c"] }),
                value: Some(a),
                zp: a_zp,
                grows: true,
            },
            In {
                role: "W",
                index: idx(if attrs.trans_b { &["k", "c"] } else { &["c", "k"] }),
                value: Some(b),
                zp: b_zp,
                grows: true,
            },
        ],
        relations: vec![],
        reduction: Some(ka),
        grows: true,
    })
}

/// `MatMul`, `QLinearMatMul`, `MatMulInteger`.
pub(super) fn lower_matmul(cx: &Cx<'_>, op: &Op) -> Res<Draft> {
    let opt = |i: usize| op.inputs().get(i).copied().flatten();
    let (a, b, a_zp, b_zp, y_zp) = match op.kind() {
        OpKind::QLinearMatMul => (cx.input(op, 0)?, cx.input(op, 3)?, opt(2), opt(5), opt(7)),
        OpKind::MatMulInteger => (cx.input(op, 0)?, cx.input(op, 1)?, opt(2), opt(3), None),
        _ => (cx.input(op, 0)?, cx.input(op, 1)?, None, None, None),
    };
    let y = cx.output(op)?;
    let (mut ad, mut bd, yd) = (cx.dims(a)?, cx.dims(b)?, cx.dims(y)?);
    // onnxruntime's FusedMatMul: a MatMul of transposed operands (alpha does not change the
    // loop nest); the transposes swap the last two index entries of the operand.
    let fused = op.kind() == OpKind::FusedMatMul;
    let flag = |name: &str| op.attr_int(name, 0).map(|v| fused && v != 0).map_err(|e| e.to_string());
    if flag("transBatchA")? || flag("transBatchB")? {
        return Err("FusedMatMul with transBatchA/transBatchB is not lowered".into());
    }
    let (ta, tb) = (flag("transA")?, flag("transB")?);
    for (t, dims, what) in [(ta, &mut ad, "A"), (tb, &mut bd, "B")] {
        if t {
            let r = dims.len();
            if r < 2 {
                return Err(format!("transposed operand {what} has rank {r}"));
            }
            dims.swap(r - 2, r - 1);
        }
    }
    let mut d = matmul_draft(&ad, &bd, &yd)?;
    for (t, slot) in [(ta, 0), (tb, 1)] {
        let index = &mut d.inputs[slot].index;
        if t && index.len() >= 2 {
            let r = index.len();
            index.swap(r - 2, r - 1);
        }
    }
    d.out = y;
    d.out_zp = y_zp;
    d.inputs[0].value = Some(a);
    d.inputs[0].zp = a_zp;
    d.inputs[1].value = Some(b);
    d.inputs[1].zp = b_zp;
    Ok(d)
}

/// Names of `n` batch dims: `B`, `B, H`, or `B0, B1, ...`.
fn batch_names(n: usize) -> Vec<String> {
    match n {
        0 => vec![],
        1 => vec!["B".into()],
        2 => vec!["B".into(), "H".into()],
        _ => (0..n).map(|i| format!("B{i}")).collect(),
    }
}

/// The loop nest of a (batched, broadcast) matrix product of operands with dims `ad` and `bd`
/// giving `yd` (numpy `matmul` semantics); values are filled in by the caller.
pub(crate) fn matmul_draft(ad: &[u64], bd: &[u64], yd: &[u64]) -> Res<Draft> {
    if ad.is_empty() || bd.is_empty() {
        return Err("a MatMul operand is a scalar".into());
    }
    let c = ad[ad.len() - 1];
    let (cb, k) = if bd.len() == 1 { (bd[0], None) } else { (bd[bd.len() - 2], Some(bd[bd.len() - 1])) };
    let d = if ad.len() >= 2 { Some(ad[ad.len() - 2]) } else { None };
    if c != cb {
        return Err(format!("the reduction dims differ: {ad:?} x {bd:?}"));
    }
    let a_batch = &ad[..ad.len().saturating_sub(2)];
    let b_batch = &bd[..bd.len().saturating_sub(2)];
    let nb = a_batch.len().max(b_batch.len());
    let matrix: Vec<u64> = d.into_iter().chain(k).collect();
    if yd.len() != nb + matrix.len() || yd[nb..] != matrix[..] {
        return Err(format!("output dims {yd:?} disagree with {ad:?} x {bd:?}"));
    }
    let out_batch = &yd[..nb];
    let names = batch_names(nb);
    // An operand's batch axes, right-aligned to the output's: indexed when the sizes agree,
    // omitted when broadcast from 1.
    let batch_index = |own: &[u64]| -> Res<Vec<String>> {
        let off = nb - own.len();
        let mut index = Vec::new();
        for (j, &s) in own.iter().enumerate() {
            let o = out_batch[off + j];
            if s == o {
                index.push(names[off + j].to_ascii_lowercase());
            } else if s != 1 {
                return Err(format!(
                    "batch dims {a_batch:?} and {b_batch:?} do not broadcast to {out_batch:?}"
                ));
            }
        }
        Ok(index)
    };
    let mut i_index = batch_index(a_batch)?;
    let mut w_index = batch_index(b_batch)?;
    let mut out_index: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let mut dims: Vec<(String, u64)> = names.into_iter().zip(out_batch.iter().copied()).collect();
    if let Some(d) = d {
        dims.push(("D".into(), d));
        out_index.push("d".into());
        i_index.push("d".into());
    }
    i_index.push("c".into());
    w_index.push("c".into());
    if let Some(k) = k {
        dims.push(("K".into(), k));
        out_index.push("k".into());
        w_index.push("k".into());
    }
    dims.push(("C".into(), c));
    let placeholder = ValueId::from_index(0);
    Ok(Draft {
        compute: Compute::Mac,
        dims,
        out_index,
        out: placeholder,
        out_zp: None,
        inputs: vec![
            In { role: "I", index: i_index, value: None, zp: None, grows: true },
            In { role: "W", index: w_index, value: None, zp: None, grows: true },
        ],
        relations: vec![],
        reduction: Some(c),
        grows: true,
    })
}
