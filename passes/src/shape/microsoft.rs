//! onnxruntime's contrib ops (`com.microsoft`): the fused ops take the rule of the op they
//! fuse (`FusedConv` is `Conv`'s, `FusedGemm` `Gemm`'s, `FusedMatMul` `MatMul`'s after its
//! transposes), activations and normalisations keep their input's shape, and the quantized ops
//! take their float counterpart's rule on the quantized operands, with the element type of the
//! output zero point (uint8 when it is absent; float for a `QGemm` without `y_scale`).

use qc_ir::{Dim, ElemType, OpKind};

use super::channels_last::{to_first, to_last};
use super::elementwise::broadcast_r;
use super::matmul::matmul_shape_r;
use super::{Cx, Fail, Kind, R, TypeFact, bad, norm_axis, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::FusedConv => super::conv::conv(cx, 0, 1, cx.elem_opt(0)),
        OpKind::FusedGemm => super::matmul::gemm(cx),
        OpKind::FusedMatMul => fused_matmul(cx),
        OpKind::MsGelu | OpKind::FastGelu | OpKind::BiasGelu | OpKind::QuickGelu | OpKind::BiasAdd => {
            same(cx, 0, cx.elem_opt(0))
        }
        OpKind::SkipLayerNormalization | OpKind::SkipSimplifiedLayerNormalization => norm(cx, true),
        OpKind::QLinearAdd | OpKind::QLinearMul => {
            let elem = out_elem(cx, 7);
            cx.dims(0).and_then(|a| {
                let s = broadcast_r(a, cx.dims(3)?)?;
                one(TypeFact { elem, shape: Some(s), value: None })
            })
        }
        OpKind::QLinearSigmoid | OpKind::QLinearLeakyRelu | OpKind::QLinearSoftmax => {
            same(cx, 0, out_elem(cx, 4))
        }
        OpKind::QLinearGlobalAveragePool | OpKind::QLinearAveragePool => pool(cx),
        OpKind::QLinearConcat => concat(cx),
        OpKind::QGemm => {
            let elem = if cx.has(7) { out_elem(cx, 8) } else { Some(ElemType::F32) };
            let ins = [cx.ins.first().cloned().flatten(), cx.ins.get(3).cloned().flatten()];
            let sub = Cx { op: cx.op, ins: &ins, opset: cx.opset };
            super::matmul::gemm(&sub).map(|mut v| {
                if let Some(Some(f)) = v.first_mut() {
                    f.elem = elem;
                }
                v
            })
        }
        OpKind::MsQuantizeLinear => same(cx, 0, out_elem(cx, 2)),
        OpKind::MsDequantizeLinear => same(cx, 0, Some(cx.elem_opt(1).unwrap_or(ElemType::F32))),
        _ => return None,
    })
}

/// The element type of the zero point at input `i`, uint8 when it is absent.
fn out_elem(cx: &Cx, i: usize) -> Option<ElemType> {
    if cx.has(i) { cx.elem_opt(i) } else { Some(ElemType::U8) }
}

fn same(cx: &Cx, i: usize, elem: Option<ElemType>) -> R<Vec<Option<TypeFact>>> {
    one(TypeFact { elem, shape: Some(cx.dims(i)?.to_vec()), value: None })
}

/// `SimplifiedLayerNormalization` (`Y`, `inv_std_var`) and the skip forms (`output`, `mean`,
/// `inv_std_var`, `input_skip_bias_sum`), normalising from `axis` (the last for the skip forms).
pub(crate) fn norm(cx: &Cx, skip: bool) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if x.is_empty() {
        return bad(Kind::Rank, "the input must have rank 1 or more");
    }
    let axis = if skip { x.len() - 1 } else { norm_axis(cx.attr_int("axis", -1)?, x.len())? };
    let mut stat = x[..axis].to_vec();
    stat.extend(std::iter::repeat_n(Dim::Known(1), x.len() - axis));
    let y = TypeFact { elem: cx.elem_opt(0), shape: Some(x.to_vec()), value: None };
    let stat_elem =
        if skip { ElemType::F32 } else { ElemType::from_code(cx.attr_int("stash_type", 1)? as i32) };
    let st = TypeFact::new(stat_elem, stat);
    Ok(if skip {
        vec![Some(y.clone()), Some(st.clone()), Some(st), Some(y)]
    } else {
        vec![Some(y), Some(st)]
    })
}

fn fused_matmul(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let side = |i: usize, batch: &str, trans: &str| -> R<Vec<Dim>> {
        let mut d = cx.dims(i)?.to_vec();
        let r = d.len();
        if cx.attr_int(batch, 0)? != 0 && r >= 3 {
            let first = d.remove(0);
            d.insert(r - 2, first);
        }
        if cx.attr_int(trans, 0)? != 0 {
            if r < 2 {
                return bad(
                    Kind::Rank,
                    format!("input {i} has rank {r}; a transposed operand needs 2 or more"),
                );
            }
            d.swap(r - 2, r - 1);
        }
        Ok(d)
    };
    let a = side(0, "transBatchA", "transA")?;
    let b = side(1, "transBatchB", "transB")?;
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(matmul_shape_r(&a, &b)?), value: None })
}

fn pool(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let global = cx.op.kind() == OpKind::QLinearGlobalAveragePool;
    let last = cx.attr_int("channels_last", 0)? != 0;
    let x = cx.dims(0)?;
    if x.len() < 3 {
        return bad(Kind::Rank, format!("the input has rank {}, expected at least 3", x.len()));
    }
    let xf = if last { to_first(x) } else { x.to_vec() };
    let ins = [Some(TypeFact { elem: cx.elem_opt(0), shape: Some(xf), value: None })];
    let sub = Cx { op: cx.op, ins: &ins, opset: cx.opset };
    let r = if global { super::conv::global_pool(&sub)? } else { super::conv::pool(&sub)? };
    let mut y = r.into_iter().next().flatten().ok_or(Fail::Unknown)?;
    if last {
        y.shape = y.shape.map(|s| to_last(&s));
    }
    y.elem = out_elem(cx, 4);
    one(y)
}

/// `QLinearConcat(Y_scale, Y_zero_point, (X, X_scale, X_zero_point)...)`.
fn concat(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let n = cx.op.inputs().len();
    if n < 5 || !(n - 2).is_multiple_of(3) {
        return bad(
            Kind::Rank,
            format!("QLinearConcat takes Y_scale, Y_zero_point and triples, found {n} inputs"),
        );
    }
    let first = cx.dims(2)?;
    let axis = norm_axis(cx.attr_int("axis", 0)?, first.len())?;
    let mut out = first.to_vec();
    let mut total = Some(0u64);
    for i in (2..n).step_by(3) {
        let d = cx.dims(i)?;
        if d.len() != first.len() {
            return bad(Kind::Rank, format!("input {i} has rank {}, input 2 rank {}", d.len(), first.len()));
        }
        total = match (total, &d[axis]) {
            (Some(t), Dim::Known(v)) => t.checked_add(*v),
            _ => None,
        };
        for (k, dk) in d.iter().enumerate() {
            if k != axis && matches!(out[k], Dim::Unknown | Dim::Sym(_)) {
                out[k] = dk.clone();
            }
        }
    }
    out[axis] = total.map_or(Dim::Unknown, Dim::Known);
    one(TypeFact { elem: out_elem(cx, 1), shape: Some(out), value: None })
}
