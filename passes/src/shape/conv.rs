//! Convolutions and pooling: `Conv`, `ConvInteger`, `QLinearConv`, `ConvTranspose`,
//! `MaxPool`, `AveragePool`, `LpPool`, `GlobalAveragePool`, `GlobalMaxPool`.
//!
//! Output sizes follow ONNX, as [`qc_ir::window`] resolves them for every part of qc.

use qc_ir::{Dim, ElemType, OpKind, Window, WindowError};

use super::{Cx, Kind, R, TypeFact, bad, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::Conv => conv(cx, 0, 1, cx.elem_opt(0)),
        OpKind::ConvInteger => conv(cx, 0, 1, Some(ElemType::I32)),
        OpKind::QLinearConv => conv(cx, 0, 3, Some(cx.elem_opt(7).unwrap_or(ElemType::U8))),
        OpKind::ConvTranspose => conv_transpose(cx),
        OpKind::MaxPool | OpKind::AveragePool | OpKind::LpPool => pool(cx),
        OpKind::GlobalAveragePool | OpKind::GlobalMaxPool | OpKind::GlobalLpPool => global_pool(cx),
        _ => return None,
    })
}

fn attribute(e: WindowError) -> super::Fail {
    super::Fail::Bad(Kind::Attribute, e.to_string())
}

/// The output dims of `window` over the spatial dims `x`: known where the input is.
fn spatial(window: &Window, x: &[Dim], out: &mut Vec<Dim>) -> R<()> {
    for (i, d) in x.iter().enumerate() {
        match d {
            Dim::Known(d) => out.push(Dim::Known(window.resolve_axis(i, *d).map_err(attribute)?.output)),
            _ => out.push(Dim::Unknown),
        }
    }
    Ok(())
}

pub(crate) fn conv(cx: &Cx, xi: usize, wi: usize, elem: Option<ElemType>) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(xi)?;
    if x.len() < 3 {
        return bad(Kind::Rank, format!("the input has rank {}, expected at least 3", x.len()));
    }
    let n = x.len() - 2;
    let w = cx.dims(wi).ok();
    let weight_kernel = match w {
        Some(w) if cx.op.attr_ints("kernel_shape").ok().flatten().is_none() => {
            if w.len() != x.len() {
                return bad(Kind::Rank, format!("the weight has rank {}, the input {}", w.len(), x.len()));
            }
            let mut k = Vec::new();
            for d in &w[2..] {
                match d {
                    Dim::Known(v) => k.push(*v),
                    _ => return Err(super::Fail::Unknown),
                }
            }
            Some(k)
        }
        _ => None,
    };
    let window =
        Window::conv(cx.op, weight_kernel.as_deref()).map_err(attribute)?.ok_or(super::Fail::Unknown)?;
    if window.rank() != n {
        return Err(attribute(WindowError::Length { attr: "kernel_shape", found: window.rank(), n }));
    }
    let m = w.map(|w| w[0].clone()).unwrap_or(Dim::Unknown);
    let mut out = vec![x[0].clone(), m];
    spatial(&window, &x[2..], &mut out)?;
    one(TypeFact { elem, shape: Some(out), value: None })
}

fn conv_transpose(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let w = cx.dims(1)?;
    if x.len() < 3 || w.len() != x.len() {
        return bad(Kind::Rank, format!("input rank {} and weight rank {} do not fit", x.len(), w.len()));
    }
    let n = x.len() - 2;
    let group = cx.attr_int("group", 1)?;
    if group <= 0 {
        return bad(Kind::Attribute, "group must be positive");
    }
    let weight_kernel: Option<Vec<u64>> = w[2..]
        .iter()
        .map(|d| match d {
            Dim::Known(v) => Some(*v),
            _ => None,
        })
        .collect();
    let has_kernel_shape = cx.attr_ints("kernel_shape")?.is_some();
    let m = super::dim_mul(&w[1], group as u64);
    let mut out = vec![x[0].clone(), m];
    // Without a known kernel only `output_shape` gives the output.
    let window = match Window::conv(cx.op, weight_kernel.as_deref()).map_err(attribute)? {
        Some(window) => window,
        None if !has_kernel_shape => {
            let os = cx.attr_ints("output_shape")?.ok_or(super::Fail::Unknown)?;
            let os = if os.len() == n + 2 { &os[2..] } else { &os[..] };
            if os.len() != n || os.iter().any(|&v| v < 0) {
                return bad(Kind::Attribute, "output_shape has the wrong length or a negative value");
            }
            out.extend(os.iter().map(|&v| Dim::Known(v as u64)));
            return one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None });
        }
        None => return Err(super::Fail::Unknown),
    };
    if window.rank() != n {
        return Err(attribute(WindowError::Length { attr: "kernel_shape", found: window.rank(), n }));
    }
    let t = window.transpose_attrs(cx.op).map_err(attribute)?;
    for i in 0..n {
        match (&t.output_shape, &x[2 + i]) {
            (Some(os), _) => out.push(Dim::Known(os[i])),
            (None, Dim::Known(d)) => {
                out.push(Dim::Known(window.resolve_transposed(&t, i, *d).map_err(attribute)?.output))
            }
            (None, _) => out.push(Dim::Unknown),
        }
    }
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None })
}

pub(crate) fn pool(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if x.len() < 3 {
        return bad(Kind::Rank, format!("the input has rank {}, expected at least 3", x.len()));
    }
    let n = x.len() - 2;
    let window = Window::pool(cx.op).map_err(attribute)?;
    if window.rank() != n {
        return Err(attribute(WindowError::Length { attr: "kernel_shape", found: window.rank(), n }));
    }
    let mut out = vec![x[0].clone(), x[1].clone()];
    spatial(&window, &x[2..], &mut out)?;
    let y = TypeFact { elem: cx.elem_opt(0), shape: Some(out.clone()), value: None };
    let idx = TypeFact::new(ElemType::I64, out);
    Ok(vec![Some(y), Some(idx)])
}

pub(crate) fn global_pool(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    if x.len() < 2 {
        return bad(Kind::Rank, format!("the input has rank {}, expected at least 2", x.len()));
    }
    let mut out = x[..2].to_vec();
    out.extend(std::iter::repeat_n(Dim::Known(1), x.len() - 2));
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None })
}
