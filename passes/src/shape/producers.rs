//! Shape-producing ops: `Shape`, `Size`, `ConstantOfShape`, `Range`, `Constant`.
//!
//! These are where data propagation starts: `Shape` and `Size` know their values from the
//! input's dimensions (a symbolic dimension gives a symbolic element, [`super::SymInt`]),
//! `Constant` always does. `ConstantOfShape` takes its dims from a possibly symbolic shape, and
//! `Range(0, N, 1)` has `N` elements.

use qc_ir::{AttrValue, Dim, ElemType, OpKind};

use super::{Cx, Fail, Kind, MAX_VALUES, R, SymInt, TypeFact, Values, bad, dim_product, is_int_like, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::Shape => shape(cx),
        OpKind::Size => size(cx),
        OpKind::ConstantOfShape => constant_of_shape(cx),
        OpKind::Range => range(cx),
        OpKind::Constant => constant(cx),
        _ => return None,
    })
}

fn shape(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let r = x.len() as i64;
    let clampi = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) };
    let (s, e) = if cx.opset >= 15 {
        (clampi(cx.attr_int("start", 0)?), clampi(cx.attr_int("end", r)?))
    } else {
        (0, r)
    };
    let part = if e > s { &x[s as usize..e as usize] } else { &[][..] };
    let f = TypeFact::new(ElemType::I64, vec![Dim::Known(part.len() as u64)])
        .with_value(Values::from_sym(part.iter().map(SymInt::of_dim).collect()));
    one(f)
}

fn size(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let mut f = TypeFact::new(ElemType::I64, vec![]);
    if let Ok(x) = cx.dims(0) {
        f.value = match dim_product(x) {
            Dim::Unknown => None,
            d => Some(Values::from_sym(vec![SymInt::of_dim(&d)])),
        };
    }
    one(f)
}

fn constant_of_shape(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let (elem, fill) = match cx.op.attr("value").map(|a| &a.value) {
        Some(AttrValue::Tensor(t)) => {
            let f = TypeFact::from_tensor(t, None);
            (t.elem.unwrap_or(ElemType::F32), f.value)
        }
        _ => (ElemType::F32, Some(Values::Float(vec![0.0]))),
    };
    let dims = match cx.sym_ints(0) {
        Ok(d) => d,
        Err(_) => {
            // The rank is still known from the length of the shape input.
            let s = cx.dims(0)?;
            if let Some(Dim::Known(n)) = s.first() {
                return one(TypeFact {
                    elem: Some(elem),
                    shape: Some(vec![Dim::Unknown; *n as usize]),
                    value: None,
                });
            }
            return Err(Fail::Unknown);
        }
    };
    let Some(shape) = dims.iter().map(SymInt::to_dim).collect::<Option<Vec<Dim>>>() else {
        return bad(Kind::Attribute, "the shape has a negative entry");
    };
    let mut f = TypeFact::new(elem, shape.clone());
    if let (Dim::Known(n), Some(v)) = (dim_product(&shape), fill)
        && n as usize <= MAX_VALUES
        && v.len() == 1
    {
        let n = n as usize;
        f.value = Some(match v {
            Values::Int(v) => Values::Int(vec![v[0]; n]),
            Values::Float(v) => Values::Float(vec![v[0]; n]),
            Values::Sym(v) => Values::Sym(vec![v[0].clone(); n]),
        });
    }
    one(f)
}

fn range(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let elem = cx.elem_opt(0).or(cx.elem_opt(1));
    let get = |i: usize| -> R<f64> {
        let v = cx.floats(i)?;
        if v.len() != 1 {
            return bad(Kind::Rank, format!("Range input {i} must be a scalar"));
        }
        Ok(v[0])
    };
    let (start, limit, delta) = match (get(0), get(1), get(2)) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(Fail::Bad(k, m)), _, _) | (_, Err(Fail::Bad(k, m)), _) | (_, _, Err(Fail::Bad(k, m))) => {
            return Err(Fail::Bad(k, m));
        }
        (Ok(start), Err(_), Ok(delta)) if start == 0.0 && delta == 1.0 => {
            // `Range(0, N, 1)` has N elements.
            let n = match cx.sym_ints(1).as_deref() {
                Ok([SymInt::Sym(s)]) => Dim::Sym(s.clone()),
                _ => Dim::Unknown,
            };
            return one(TypeFact { elem, shape: Some(vec![n]), value: None });
        }
        _ => return one(TypeFact { elem, shape: Some(vec![Dim::Unknown]), value: None }),
    };
    if delta == 0.0 {
        return bad(Kind::Attribute, "Range's delta is 0");
    }
    let int = elem.is_some_and(is_int_like);
    let n = if int {
        let (s, l, d) = (start as i64, limit as i64, delta as i64);
        let num = l - s;
        let q = num / d + i64::from(num % d != 0 && ((num < 0) == (d < 0)));
        q.max(0) as u64
    } else {
        // Computed in the element type, as the reference does.
        let n = if elem == Some(ElemType::F32) {
            f64::from((((limit as f32) - (start as f32)) / (delta as f32)).ceil())
        } else {
            ((limit - start) / delta).ceil()
        };
        if n.is_finite() { n.max(0.0) as u64 } else { return Err(Fail::Unknown) }
    };
    let mut f = TypeFact { elem, shape: Some(vec![Dim::Known(n)]), value: None };
    if n as usize <= MAX_VALUES {
        f.value = Some(if int {
            Values::Int((0..n as i64).map(|k| start as i64 + k * delta as i64).collect())
        } else {
            Values::Float((0..n).map(|k| start + k as f64 * delta).collect())
        });
    }
    one(f)
}

fn constant(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let Some(a) = cx.op.attrs.first() else {
        return bad(Kind::Attribute, "Constant has no value attribute");
    };
    let f = match &a.value {
        AttrValue::Tensor(t) => TypeFact::from_tensor(t, None),
        AttrValue::SparseTensor(s) => TypeFact {
            elem: s.values.as_ref().and_then(|v| v.elem),
            shape: Some(qc_ir::dims::written(&s.dims)),
            value: None,
        },
        AttrValue::Float(x) => {
            TypeFact::new(ElemType::F32, vec![]).with_value(Values::Float(vec![f64::from(*x)]))
        }
        AttrValue::Int(x) => TypeFact::new(ElemType::I64, vec![]).with_value(Values::Int(vec![*x])),
        AttrValue::Floats(v) => TypeFact::new(ElemType::F32, vec![Dim::Known(v.len() as u64)])
            .with_value(Values::Float(v.iter().map(|x| f64::from(*x)).collect())),
        AttrValue::Ints(v) => {
            TypeFact::new(ElemType::I64, vec![Dim::Known(v.len() as u64)]).with_value(Values::Int(v.clone()))
        }
        AttrValue::String(_) => TypeFact::new(ElemType::String, vec![]),
        AttrValue::Strings(v) => TypeFact::new(ElemType::String, vec![Dim::Known(v.len() as u64)]),
        _ => return bad(Kind::Attribute, format!("Constant's attribute `{}` is not a value", a.name)),
    };
    one(f)
}
