//! Everything else: `Cast`, `Dropout`, `Softmax`/`LogSoftmax`/`Hardmax`, `Trilu`.

use qc_ir::{ElemType, OpKind};

use super::{Cx, Fail, Kind, R, TypeFact, bad, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::Cast => cast(cx),
        OpKind::Dropout => dropout(cx),
        OpKind::Softmax | OpKind::LogSoftmax | OpKind::Hardmax | OpKind::Trilu => {
            let f = cx.fact(0);
            f.and_then(|f| {
                if f.shape.is_none() && f.elem.is_none() {
                    return Err(Fail::Unknown);
                }
                one(TypeFact { elem: f.elem, shape: f.shape.clone(), value: None })
            })
        }
        _ => return None,
    })
}

fn cast(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let to = match cx.op.attr("to").map(|a| &a.value) {
        Some(qc_ir::AttrValue::Int(c)) => ElemType::from_code(*c as i32),
        Some(qc_ir::AttrValue::String(s)) => match String::from_utf8_lossy(s).to_ascii_uppercase().as_str() {
            "FLOAT" => ElemType::F32,
            "FLOAT16" => ElemType::F16,
            "DOUBLE" => ElemType::F64,
            "INT8" => ElemType::I8,
            "INT16" => ElemType::I16,
            "INT32" => ElemType::I32,
            "INT64" => ElemType::I64,
            "UINT8" => ElemType::U8,
            "UINT16" => ElemType::U16,
            "UINT32" => ElemType::U32,
            "UINT64" => ElemType::U64,
            "BOOL" => ElemType::Bool,
            other => return bad(Kind::Attribute, format!("unknown type `{other}` in `to`")),
        },
        _ => return bad(Kind::Attribute, "`to` is required"),
    };
    let f = cx.fact(0)?;
    let value = f.value.as_ref().and_then(|v| v.cast(to));
    one(TypeFact { elem: Some(to), shape: f.shape.clone(), value })
}

fn dropout(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let f = cx.fact(0)?;
    let y = TypeFact { elem: f.elem, shape: f.shape.clone(), value: None };
    let mask_elem = if cx.opset >= 10 { ElemType::Bool } else { f.elem.unwrap_or(ElemType::F32) };
    let mask = TypeFact { elem: Some(mask_elem), shape: f.shape.clone(), value: None };
    Ok(vec![Some(y), Some(mask)])
}
