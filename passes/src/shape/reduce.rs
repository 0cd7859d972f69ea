//! Reductions: `Reduce*`, `ArgMax`, `ArgMin`, `TopK` (whose `K` may be a dimension name).
//!
//! `ReduceSum` takes its axes as an input from opset 13, the other `Reduce*` ops from opset 18.

use qc_ir::{Dim, ElemType, OpKind};

use super::{Cx, Fail, Kind, R, SymInt, TypeFact, bad, norm_axis, one};

const REDUCE: &[OpKind] = &[
    OpKind::ReduceL1,
    OpKind::ReduceL2,
    OpKind::ReduceLogSum,
    OpKind::ReduceLogSumExp,
    OpKind::ReduceMax,
    OpKind::ReduceMean,
    OpKind::ReduceMin,
    OpKind::ReduceProd,
    OpKind::ReduceSum,
    OpKind::ReduceSumSquare,
];

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    let t = cx.op.kind();
    Some(if REDUCE.contains(&t) {
        reduce(cx)
    } else if t == OpKind::ArgMax || t == OpKind::ArgMin {
        arg(cx)
    } else if t == OpKind::TopK {
        topk(cx)
    } else {
        return None;
    })
}

fn reduce(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let from_input = if cx.op.kind() == OpKind::ReduceSum { cx.opset >= 13 } else { cx.opset >= 18 };
    let axes = if from_input {
        if cx.has(1) { cx.ints(1)? } else { vec![] }
    } else {
        cx.attr_ints("axes")?.unwrap_or_default()
    };
    let keep = cx.attr_int("keepdims", 1)? != 0;
    let noop = from_input && cx.attr_int("noop_with_empty_axes", 0)? != 0;
    if axes.is_empty() && noop {
        return one(TypeFact { elem: cx.elem_opt(0), shape: Some(x.to_vec()), value: None });
    }
    let mut red = vec![axes.is_empty(); x.len()];
    for a in axes {
        red[norm_axis(a, x.len())?] = true;
    }
    let out = x
        .iter()
        .zip(&red)
        .filter_map(|(d, &r)| {
            if !r {
                Some(d.clone())
            } else if keep {
                Some(Dim::Known(1))
            } else {
                None
            }
        })
        .collect();
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None })
}

fn arg(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let axis = norm_axis(cx.attr_int("axis", 0)?, x.len().max(1))?;
    let keep = cx.attr_int("keepdims", 1)? != 0;
    let mut out = x.to_vec();
    if axis < out.len() {
        if keep {
            out[axis] = Dim::Known(1);
        } else {
            out.remove(axis);
        }
    }
    one(TypeFact::new(ElemType::I64, out))
}

fn topk(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if x.is_empty() {
        return bad(Kind::Rank, "TopK needs rank at least 1");
    }
    let axis = norm_axis(cx.attr_int("axis", -1)?, x.len())?;
    let k = if cx.opset >= 10 {
        let v = cx.sym_ints(1)?;
        v.first().cloned().ok_or_else(|| Fail::Bad(Kind::Attribute, "K is empty".into()))?
    } else {
        SymInt::Int(cx.attr_int("k", -1)?)
    };
    let k = match k {
        SymInt::Int(n) if n < 0 => return bad(Kind::Attribute, format!("k is {n}")),
        k => k.to_dim().unwrap_or(Dim::Unknown),
    };
    if let (Dim::Known(k), Dim::Known(d)) = (&k, &x[axis])
        && k > d
    {
        return bad(Kind::Incompatible, format!("k {k} exceeds the axis size {d}"));
    }
    let mut out = x.to_vec();
    out[axis] = k;
    Ok(vec![
        Some(TypeFact { elem: cx.elem_opt(0), shape: Some(out.clone()), value: None }),
        Some(TypeFact::new(ElemType::I64, out)),
    ])
}
