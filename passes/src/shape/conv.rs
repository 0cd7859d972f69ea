//! Convolutions and pooling: `Conv`, `ConvInteger`, `QLinearConv`, `ConvTranspose`,
//! `MaxPool`, `AveragePool`, `LpPool`, `GlobalAveragePool`, `GlobalMaxPool`.
//!
//! Output sizes follow ONNX: with explicit pads, `floor((in + pads - dil*(k-1) - 1) / stride) + 1`
//! (ceil for pools with `ceil_mode`, dropping a last window that would start in the right
//! padding); with `SAME_UPPER`/`SAME_LOWER`, `ceil(in / stride)`; with `VALID`,
//! `ceil((in - dil*(k-1)) / stride)`.

use qc_ir::{Dim, ElemType, OpKind};

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

/// Per spatial axis geometry.
pub struct Window {
    pub kernel: u64,
    pub stride: u64,
    pub dilation: u64,
    pub pad_begin: u64,
    pub pad_end: u64,
}

/// The output size of one spatial axis.
pub fn output_size(input: u64, w: &Window, auto_pad: &str, ceil_mode: bool) -> Result<u64, String> {
    if w.stride == 0 {
        return Err("stride 0".into());
    }
    let eff = w.dilation * (w.kernel.max(1) - 1) + 1;
    match auto_pad {
        "SAME_UPPER" | "SAME_LOWER" => Ok(input.div_ceil(w.stride)),
        "VALID" => {
            if input < eff {
                return Err(format!("the window {eff} is larger than the input {input}"));
            }
            Ok((input - eff + 1).div_ceil(w.stride))
        }
        "NOTSET" | "" => {
            let padded = input + w.pad_begin + w.pad_end;
            if padded < eff {
                return Err(format!("the window {eff} is larger than the padded input {padded}"));
            }
            let span = padded - eff;
            if ceil_mode {
                let mut out = span.div_ceil(w.stride) + 1;
                if (out - 1) * w.stride >= input + w.pad_begin {
                    out -= 1;
                }
                Ok(out)
            } else {
                Ok(span / w.stride + 1)
            }
        }
        other => Err(format!("unknown auto_pad `{other}`")),
    }
}

fn list(v: Option<Vec<i64>>, n: usize, default: i64, what: &str) -> R<Vec<u64>> {
    let v = v.unwrap_or_else(|| vec![default; n]);
    if v.len() != n {
        return bad(Kind::Attribute, format!("`{what}` has {} entries, expected {n}", v.len()));
    }
    if v.iter().any(|&x| x < 0) {
        return bad(Kind::Attribute, format!("`{what}` has a negative entry"));
    }
    Ok(v.into_iter().map(|x| x as u64).collect())
}

fn spatial(cx: &Cx, x: &[Dim], kernel: &[u64], ceil_mode: bool, out: &mut Vec<Dim>) -> R<()> {
    let n = kernel.len();
    let strides = list(cx.attr_ints("strides")?, n, 1, "strides")?;
    let dil = list(cx.attr_ints("dilations")?, n, 1, "dilations")?;
    let pads = list(cx.attr_ints("pads")?, 2 * n, 0, "pads")?;
    let auto_pad = cx.attr_str("auto_pad", "NOTSET")?;
    for i in 0..n {
        let w = Window {
            kernel: kernel[i],
            stride: strides[i],
            dilation: dil[i],
            pad_begin: pads[i],
            pad_end: pads[i + n],
        };
        match &x[2 + i] {
            Dim::Known(d) => {
                let o = output_size(*d, &w, &auto_pad, ceil_mode)
                    .map_err(|m| super::Fail::Bad(Kind::Attribute, m))?;
                out.push(Dim::Known(o));
            }
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
    let kernel = match cx.attr_ints("kernel_shape")? {
        Some(k) => list(Some(k), n, 1, "kernel_shape")?,
        None => {
            let w = w.ok_or(super::Fail::Unknown)?;
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
            k
        }
    };
    let m = w.map(|w| w[0].clone()).unwrap_or(Dim::Unknown);
    let mut out = vec![x[0].clone(), m];
    spatial(cx, x, &kernel, false, &mut out)?;
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
    let kernel = match cx.attr_ints("kernel_shape")? {
        Some(k) => list(Some(k), n, 1, "kernel_shape")?.into_iter().map(Dim::Known).collect(),
        None => w[2..].to_vec(),
    };
    let strides = list(cx.attr_ints("strides")?, n, 1, "strides")?;
    let dil = list(cx.attr_ints("dilations")?, n, 1, "dilations")?;
    let pads = list(cx.attr_ints("pads")?, 2 * n, 0, "pads")?;
    let outpad = list(cx.attr_ints("output_padding")?, n, 0, "output_padding")?;
    let auto_pad = cx.attr_str("auto_pad", "NOTSET")?;
    let m = super::dim_mul(&w[1], group as u64);
    let mut out = vec![x[0].clone(), m];
    if let Some(os) = cx.attr_ints("output_shape")? {
        let os = if os.len() == n + 2 { os[2..].to_vec() } else { os };
        if os.len() != n {
            return bad(Kind::Attribute, "output_shape has the wrong length");
        }
        out.extend(os.into_iter().map(|v| Dim::Known(v.max(0) as u64)));
    } else {
        for i in 0..n {
            match (&x[2 + i], &kernel[i]) {
                (Dim::Known(d), Dim::Known(k)) => {
                    let o = if auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER" {
                        d * strides[i]
                    } else {
                        let full = strides[i] * (d.max(&1) - 1) + outpad[i] + (k.max(&1) - 1) * dil[i] + 1;
                        let p = if auto_pad == "VALID" { 0 } else { pads[i] + pads[i + n] };
                        full.saturating_sub(p)
                    };
                    out.push(Dim::Known(o));
                }
                _ => out.push(Dim::Unknown),
            }
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
    let kernel = list(cx.attr_ints("kernel_shape")?, n, 1, "kernel_shape")?;
    if cx.attr_ints("kernel_shape")?.is_none() {
        return bad(Kind::Attribute, "kernel_shape is required");
    }
    let ceil_mode = cx.attr_int("ceil_mode", 0)? != 0;
    let mut out = vec![x[0].clone(), x[1].clone()];
    spatial(cx, x, &kernel, ceil_mode, &mut out)?;
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
