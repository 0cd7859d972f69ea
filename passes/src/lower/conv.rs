//! Convolutions: `Conv`, `QLinearConv`, `ConvInteger` and `ConvTranspose` (see the module doc
//! of [`crate::lower`] for the forms).

use qc_ir::window::{Window, WindowError};
use qc_ir::{Compute, Op, OpKind, Relation};

use super::{Cx, Draft, In, Layout, Res, dims_of, idx, window_axes, window_relation};

/// Group count, checked against the channel counts.
fn groups(op: &Op, c_in: u64, c_out: u64) -> Res<u64> {
    let g = op.attr_int("group", 1).map_err(|e| e.to_string())?;
    let g = u64::try_from(g).ok().filter(|g| *g >= 1).ok_or_else(|| format!("group {g} is not positive"))?;
    if !c_in.is_multiple_of(g) || !c_out.is_multiple_of(g) {
        return Err(format!("group {g} does not divide the channels ({c_in} in, {c_out} out)"));
    }
    Ok(g)
}

/// The kernel's spatial dims: `kernel_shape`, checked against the weight's.
fn kernel(op: &Op, w_spatial: &[u64]) -> Res<Vec<u64>> {
    let attrs = op.conv().map_err(|e| e.to_string())?;
    if let Some(k) = attrs.kernel_shape {
        let k: Vec<u64> = k.iter().map(|&x| u64::try_from(x).unwrap_or(0)).collect();
        if k != w_spatial {
            return Err(format!("kernel_shape {k:?} disagrees with the weight's spatial dims {w_spatial:?}"));
        }
    }
    Ok(w_spatial.to_vec())
}

/// `Conv`, `QLinearConv`, `ConvInteger`.
pub(super) fn lower_conv(cx: &Cx<'_>, op: &Op, layout: Layout) -> Res<Draft> {
    let (x, w, x_zp, w_zp, y_zp) = match op.kind() {
        OpKind::QLinearConv => {
            (cx.input(op, 0)?, cx.input(op, 3)?, op.inputs().get(2), op.inputs().get(5), op.inputs().get(7))
        }
        OpKind::ConvInteger => {
            (cx.input(op, 0)?, cx.input(op, 1)?, op.inputs().get(2), op.inputs().get(3), None)
        }
        _ => (cx.input(op, 0)?, cx.input(op, 1)?, None, None, None),
    };
    let zp = |z: Option<&Option<qc_ir::ValueId>>| z.copied().flatten();
    let y = cx.output(op)?;
    let (xd, wd, yd) = (
        layout.channels_first(cx.dims(x)?),
        layout.channels_first(cx.dims(w)?),
        layout.channels_first(cx.dims(y)?),
    );
    let n = xd.len().saturating_sub(2);
    if !(1..=2).contains(&n) || xd.len() != wd.len() || yd.len() != xd.len() {
        return Err(format!(
            "input rank {}, weight rank {}, output rank {}: only 1-D and 2-D convolutions are lowered",
            xd.len(),
            wd.len(),
            yd.len()
        ));
    }
    let (b, c_in, c_out) = (xd[0], xd[1], wd[0]);
    if yd[0] != b || yd[1] != c_out {
        return Err(format!("output dims {yd:?} disagree with the input {xd:?} and weight {wd:?}"));
    }
    let g = groups(op, c_in, c_out)?;
    if wd[1] != c_in / g {
        return Err(format!(
            "the weight has {} input channels per group, the input {} / group {g}",
            wd[1], c_in
        ));
    }
    let kern = kernel(op, &wd[2..])?;
    let window = Window::conv(op, Some(&kern)).map_err(|e| e.to_string())?.ok_or("no kernel")?;
    let axes = window_axes(&window, &xd[2..], &yd[2..])?;
    let (k, c) = (c_out / g, c_in / g);
    let (dims, out_index, w_index, i_index, relations, spatial): (_, _, _, _, Vec<Relation>, u64) = if n == 2
    {
        let ry = window_relation("iy", "oy", "fy", yd[2], xd[2], axes[0])?;
        let rx = window_relation("ix", "ox", "fx", yd[3], xd[3], axes[1])?;
        (
            dims_of(
                &["B", "G", "K", "C", "OY", "OX", "FY", "FX"],
                &[b, g, k, c, yd[2], yd[3], kern[0], kern[1]],
            ),
            idx(&["b", "g", "k", "oy", "ox"]),
            idx(&["g", "k", "c", "fy", "fx"]),
            idx(&["b", "g", "c", "iy", "ix"]),
            vec![ry, rx],
            kern[0].saturating_mul(kern[1]),
        )
    } else {
        let rx = window_relation("ix", "ox", "fx", yd[2], xd[2], axes[0])?;
        (
            dims_of(&["B", "G", "K", "C", "OX", "FX"], &[b, g, k, c, yd[2], kern[0]]),
            idx(&["b", "g", "k", "ox"]),
            idx(&["g", "k", "c", "fx"]),
            idx(&["b", "g", "c", "ix"]),
            vec![rx],
            kern[0],
        )
    };
    Ok(Draft {
        compute: Compute::Mac,
        dims,
        out_index,
        out: y,
        out_zp: zp(y_zp),
        inputs: vec![
            In { role: "W", index: w_index, value: Some(w), zp: zp(w_zp), grows: true },
            In { role: "I", index: i_index, value: Some(x), zp: zp(x_zp), grows: true },
        ],
        relations,
        reduction: Some(c.saturating_mul(spatial)),
        grows: true,
    })
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `ConvTranspose`: loops over the input positions, the output index derived.
pub(super) fn lower_conv_transpose(cx: &Cx<'_>, op: &Op) -> Res<Draft> {
    let (x, w, y) = (cx.input(op, 0)?, cx.input(op, 1)?, cx.output(op)?);
    let (xd, wd, yd) = (cx.dims(x)?, cx.dims(w)?, cx.dims(y)?);
    let n = xd.len().saturating_sub(2);
    if !(1..=2).contains(&n) || xd.len() != wd.len() || yd.len() != xd.len() {
        return Err(format!(
            "input rank {}, weight rank {}, output rank {}: only 1-D and 2-D transposed convolutions are lowered",
            xd.len(),
            wd.len(),
            yd.len()
        ));
    }
    let (b, c_in) = (xd[0], xd[1]);
    let g = groups(op, c_in, c_in)?;
    let k = wd[1];
    let c_out = k.checked_mul(g).ok_or("group too large")?;
    if wd[0] != c_in || yd[0] != b || yd[1] != c_out {
        return Err(format!(
            "output dims {yd:?} disagree with the input {xd:?}, weight {wd:?} and group {g}"
        ));
    }
    let kern = kernel(op, &wd[2..])?;
    let window = Window::conv(op, Some(&kern)).map_err(|e| e.to_string())?.ok_or("no kernel")?;
    let t = window.transpose_attrs(op).map_err(|e| e.to_string())?;
    let big = || "attribute values too large".to_string();
    let (names_o, names_i, names_f) = if n == 2 {
        (["oy", "ox"], ["iy", "ix"], ["fy", "fx"])
    } else {
        (["ox", ""], ["ix", ""], ["fx", ""])
    };
    let mut relations = Vec::new();
    let mut taps: u64 = 1;
    for (i, a) in window.axes.iter().enumerate() {
        let (s, d, kk, inp, out) = (a.stride, a.dilation, a.kernel, xd[2 + i], yd[2 + i]);
        let r = window.resolve_transposed(&t, i, inp).map_err(|e| e.to_string())?;
        if r.output != out {
            return Err(format!(
                "the output size {out} disagrees with the attributes (input {inp}, kernel {kk}, stride {s}, pads {}+{})",
                r.pad_begin, r.pad_end
            ));
        }
        let (Ok(pb), Ok(_)) = (u64::try_from(r.pad_begin), u64::try_from(r.pad_end)) else {
            let full = u64::try_from(i128::from(out) + r.pad_begin + r.pad_end).unwrap_or(0);
            return Err(WindowError::Uncovered { output: out, full }.to_string());
        };
        let reach = r.reach;
        let coef = |x: u64| i64::try_from(x).map_err(|_| big());
        relations.push(Relation {
            name: names_o[i].into(),
            terms: vec![(coef(s)?, names_i[i].into()), (coef(d)?, names_f[i].into())],
            offset: -coef(pb)?,
            extent: out,
            padding: (pb, reach.saturating_sub(pb).saturating_sub(out)),
        });
        let period = s / gcd(s, d);
        taps = taps.saturating_mul(kk.div_ceil(period));
    }
    let (dims, out_index, w_index, i_index) = if n == 2 {
        (
            dims_of(
                &["B", "G", "K", "C", "IY", "IX", "FY", "FX"],
                &[b, g, k, c_in / g, xd[2], xd[3], kern[0], kern[1]],
            ),
            idx(&["b", "g", "k", "oy", "ox"]),
            idx(&["g", "c", "k", "fy", "fx"]),
            idx(&["b", "g", "c", "iy", "ix"]),
        )
    } else {
        (
            dims_of(&["B", "G", "K", "C", "IX", "FX"], &[b, g, k, c_in / g, xd[2], kern[0]]),
            idx(&["b", "g", "k", "ox"]),
            idx(&["g", "c", "k", "fx"]),
            idx(&["b", "g", "c", "ix"]),
        )
    };
    Ok(Draft {
        compute: Compute::Mac,
        dims,
        out_index,
        out: y,
        out_zp: None,
        inputs: vec![
            In { role: "W", index: w_index, value: Some(w), zp: None, grows: true },
            In { role: "I", index: i_index, value: Some(x), zp: None, grows: true },
        ],
        relations,
        reduction: Some((c_in / g).saturating_mul(taps)),
        grows: true,
    })
}
