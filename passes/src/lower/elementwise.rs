//! Element-wise `Add`, `Sub`, `Mul` (and onnxruntime's `QLinearAdd`, `QLinearMul`) with broadcasting (see the module doc of [`crate::lower`]).

use qc_ir::{Compute, ElemType, Op, OpKind};

use super::{Cx, Draft, In, Res};

/// Dim names for an output of rank `r`.
pub(crate) fn elementwise_names(r: usize) -> Vec<String> {
    let fixed: &[&str] = match r {
        0 => &[],
        1 => &["K"],
        2 => &["D", "K"],
        3 => &["B", "D", "K"],
        4 => &["B", "G", "OY", "OX"],
        _ => return (0..r).map(|i| format!("D{i}")).collect(),
    };
    fixed.iter().map(|s| s.to_string()).collect()
}

/// The index of an operand of dims `own` placed at axis `offset` of an output of dims `out`.
pub(crate) fn broadcast_index(own: &[u64], offset: usize, out: &[u64], names: &[String]) -> Res<Vec<String>> {
    if offset.checked_add(own.len()).is_none_or(|end| end > out.len()) {
        return Err(format!("operand dims {own:?} do not fit the output {out:?}"));
    }
    let mut index = Vec::new();
    for (j, &s) in own.iter().enumerate() {
        if s == out[offset + j] {
            index.push(names[offset + j].to_ascii_lowercase());
        } else if s != 1 {
            return Err(format!("operand dims {own:?} do not broadcast to the output {out:?}"));
        }
    }
    Ok(index)
}

pub(super) fn lower_elementwise(cx: &Cx<'_>, op: &Op) -> Res<Draft> {
    // onnxruntime's QLinearAdd/QLinearMul: operands 0 and 3, zero points 2, 5 and 7.
    let qlinear = matches!(op.kind(), OpKind::QLinearAdd | OpKind::QLinearMul);
    let opt = |i: usize| op.inputs().get(i).copied().flatten();
    let (a, b, y) = (cx.input(op, 0)?, cx.input(op, if qlinear { 3 } else { 1 })?, cx.output(op)?);
    let (a_zp, b_zp, y_zp) = if qlinear { (opt(2), opt(5), opt(7)) } else { (None, None, None) };
    if [a, b, y].iter().any(|v| cx.elem(*v) == Some(ElemType::I64)) {
        return Err("int64 index or shape arithmetic, not a compute layer".into());
    }
    let (ad, bd, yd) = (cx.dims(a)?, cx.dims(b)?, cx.dims(y)?);
    let names = elementwise_names(yd.len());
    let r = yd.len();
    let legacy = op.attr_int("broadcast", 0).map_err(|e| e.to_string())? != 0;
    let b_offset = if legacy {
        let axis = op.attr_int("axis", r as i64 - bd.len() as i64).map_err(|e| e.to_string())?;
        let axis = if axis < 0 { axis.checked_add(r as i64) } else { Some(axis) };
        axis.and_then(|x| usize::try_from(x).ok()).ok_or("legacy broadcast axis out of range")?
    } else {
        r.checked_sub(bd.len()).ok_or("the second operand has a higher rank than the output")?
    };
    let a_offset = r.checked_sub(ad.len()).ok_or("the first operand has a higher rank than the output")?;
    let i_index = broadcast_index(&ad, a_offset, &yd, &names)?;
    let w_index = broadcast_index(&bd, b_offset, &yd, &names)?;
    let compute = match op.kind() {
        OpKind::Sub => Compute::Sub,
        OpKind::Mul | OpKind::QLinearMul => Compute::Mul,
        _ => Compute::Add,
    };
    Ok(Draft {
        compute,
        dims: names.iter().cloned().zip(yd.iter().copied()).collect(),
        out_index: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        out: y,
        out_zp: y_zp,
        inputs: vec![
            In { role: "I", index: i_index, value: Some(a), zp: a_zp, grows: false },
            In { role: "W", index: w_index, value: Some(b), zp: b_zp, grows: false },
        ],
        relations: vec![],
        reduction: None,
        grows: false,
    })
}
