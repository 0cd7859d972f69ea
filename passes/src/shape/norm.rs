//! Normalisation: `BatchNormalization`, `InstanceNormalization`, `LayerNormalization`,
//! `RMSNormalization` (one output, the input's shape), `LRN`, and onnxruntime's
//! `SimplifiedLayerNormalization` (its rule is with the contrib ops').

use qc_ir::{Dim, ElemType, OpKind};

use super::{Cx, R, TypeFact, norm_axis, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::BatchNormalization => batch_norm(cx),
        OpKind::InstanceNormalization | OpKind::LRN | OpKind::RmsNormalization => same(cx),
        OpKind::LayerNormalization => layer_norm(cx),
        OpKind::SimplifiedLayerNormalization => super::microsoft::norm(cx, false),
        _ => return None,
    })
}

fn same(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(cx.dims(0)?.to_vec()), value: None })
}

fn batch_norm(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let y = TypeFact { elem: cx.elem_opt(0), shape: Some(x.to_vec()), value: None };
    let mut outs = vec![Some(y)];
    let c = x.get(1).cloned().unwrap_or(Dim::Unknown);
    for i in 1..cx.n_out() {
        let elem = cx.elem_opt(if i <= 2 { i + 2 } else { 1 }).or(cx.elem_opt(0));
        outs.push(Some(TypeFact { elem, shape: Some(vec![c.clone()]), value: None }));
    }
    Ok(outs)
}

fn layer_norm(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let axis = norm_axis(cx.attr_int("axis", -1)?, x.len())?;
    let stash = cx.attr_int("stash_type", 1)?;
    let y = TypeFact { elem: cx.elem_opt(0), shape: Some(x.to_vec()), value: None };
    let mut stat = x[..axis].to_vec();
    stat.extend(std::iter::repeat_n(Dim::Known(1), x.len() - axis));
    let stat_elem = ElemType::from_code(stash as i32);
    Ok(vec![Some(y), Some(TypeFact::new(stat_elem, stat.clone())), Some(TypeFact::new(stat_elem, stat))])
}
