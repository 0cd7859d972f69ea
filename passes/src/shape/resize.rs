//! `Resize` and `Upsample`: output sizes from `sizes` (with `axes` and
//! `keep_aspect_ratio_policy` from opset 18) or `floor(in * scale)`.
//!
//! Where the scales come from by opset: `Upsample` 7 an attribute, 9 the second input;
//! `Resize` 10 the second input, 11 and later the third input (`roi` is the second) with `sizes`
//! the fourth. `sizes` may hold dimension names ([`SymInt`]), which the output keeps.

use qc_ir::{Dim, OpKind};

use super::{Cx, Fail, Kind, R, SymInt, TypeFact, bad, norm_axis, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::Resize => resize(cx),
        OpKind::Upsample => upsample(cx),
        _ => return None,
    })
}

fn scaled(x: &[Dim], scales: &[f64]) -> R<Vec<Dim>> {
    if scales.len() != x.len() {
        return bad(Kind::Attribute, format!("{} scales for rank {}", scales.len(), x.len()));
    }
    Ok(x.iter()
        .zip(scales)
        .map(|(d, &s)| match d {
            Dim::Known(n) => Dim::Known(((*n as f32) * (s as f32)).floor().max(0.0) as u64),
            d if s == 1.0 => d.clone(),
            _ => Dim::Unknown,
        })
        .collect())
}

fn out(cx: &Cx, shape: Vec<Dim>) -> R<Vec<Option<TypeFact>>> {
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(shape), value: None })
}

fn upsample(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if cx.opset >= 9 {
        return out(cx, scaled(x, &cx.floats(1)?)?);
    }
    if let Some(s) = cx.op.attr("scales").and_then(|a| match &a.value {
        qc_ir::AttrValue::Floats(v) => Some(v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>()),
        _ => None,
    }) {
        return out(cx, scaled(x, &s)?);
    }
    if x.len() != 4 {
        return bad(Kind::Rank, "Upsample-1 needs a rank-4 input");
    }
    let h = f64::from(cx.attr_float("height_scale", 1.0)?);
    let w = f64::from(cx.attr_float("width_scale", 1.0)?);
    out(cx, scaled(x, &[1.0, 1.0, h, w])?)
}

fn resize(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if cx.opset < 11 {
        return out(cx, scaled(x, &cx.floats(1)?)?);
    }
    let r = x.len();
    let axes: Vec<usize> = match cx.attr_ints("axes")? {
        Some(a) if cx.opset >= 18 => a.into_iter().map(|a| norm_axis(a, r)).collect::<R<_>>()?,
        _ => (0..r).collect(),
    };
    let sizes = if cx.has(3) { Some(cx.sym_ints(3)?) } else { None };
    match sizes {
        Some(sizes) if !sizes.is_empty() => {
            if sizes.len() != axes.len() {
                return bad(Kind::Attribute, format!("{} sizes for {} axes", sizes.len(), axes.len()));
            }
            let policy = cx.attr_str("keep_aspect_ratio_policy", "stretch")?;
            let mut o = x.to_vec();
            if policy == "stretch" || cx.opset < 18 {
                for (k, &a) in axes.iter().enumerate() {
                    o[a] = match &sizes[k] {
                        SymInt::Int(n) => Dim::Known((*n).max(0) as u64),
                        s => s.to_dim().unwrap_or(Dim::Unknown),
                    };
                }
            } else {
                let mut scale: Option<f32> = None;
                for (k, &a) in axes.iter().enumerate() {
                    let (Dim::Known(n), Some(size)) = (&x[a], sizes[k].as_int()) else {
                        return Err(Fail::Unknown);
                    };
                    let s = size as f32 / *n as f32;
                    scale = Some(match (scale, policy.as_str()) {
                        (None, _) => s,
                        (Some(p), "not_larger") => p.min(s),
                        (Some(p), "not_smaller") => p.max(s),
                        _ => {
                            return bad(
                                Kind::Attribute,
                                format!("unknown keep_aspect_ratio_policy `{policy}`"),
                            );
                        }
                    });
                }
                let scale = scale.unwrap_or(1.0);
                for &a in &axes {
                    if let Dim::Known(n) = x[a] {
                        o[a] = Dim::Known((scale * n as f32).round().max(0.0) as u64);
                    }
                }
            }
            out(cx, o)
        }
        _ => {
            let scales = cx.floats(2)?;
            if scales.len() != axes.len() {
                return bad(Kind::Attribute, format!("{} scales for {} axes", scales.len(), axes.len()));
            }
            let mut full = vec![1.0; r];
            for (k, &a) in axes.iter().enumerate() {
                full[a] = scales[k];
            }
            out(cx, scaled(x, &full)?)
        }
    }
}
