//! Pooling: `MaxPool`, `AveragePool`, `GlobalAveragePool`, `GlobalMaxPool`, in ZigZag's
//! pooling form with a free zero-size `W` (see the module doc of [`crate::lower`]).

use qc_ir::{Compute, Op, OpKind, Window};

use super::{Axis, Cx, Draft, In, Layout, Res, dims_of, idx, window_axes, window_relation};

pub(super) fn lower_pool(cx: &Cx<'_>, op: &Op, layout: Layout) -> Res<Draft> {
    let (x, y) = (cx.input(op, 0)?, cx.output(op)?);
    let (xd, yd) = (layout.channels_first(cx.dims(x)?), layout.channels_first(cx.dims(y)?));
    let n = xd.len().saturating_sub(2);
    if !(1..=2).contains(&n) || yd.len() != xd.len() {
        return Err(format!(
            "input rank {}, output rank {}: only 1-D and 2-D pooling is lowered",
            xd.len(),
            yd.len()
        ));
    }
    if yd[..2] != xd[..2] {
        return Err(format!("output dims {yd:?} disagree with the input {xd:?}"));
    }
    let global = matches!(op.kind(), OpKind::GlobalAveragePool | OpKind::GlobalMaxPool);
    let compute = if matches!(op.kind(), OpKind::MaxPool | OpKind::GlobalMaxPool) {
        Compute::Max
    } else {
        Compute::Avg
    };
    let (kernel, out, axes): (Vec<u64>, Vec<u64>, Vec<Axis>) = if global {
        if yd[2..].iter().any(|d| *d != 1) {
            return Err(format!("a global pool's output {yd:?} must be 1 on every spatial axis"));
        }
        let axes = xd[2..]
            .iter()
            .map(|&k| Axis { kernel: k, stride: 1, dilation: 1, pad_begin: 0, pad_end: 0 })
            .collect();
        (xd[2..].to_vec(), vec![1; n], axes)
    } else {
        let window = Window::pool(op).map_err(|e| e.to_string())?;
        let kernel = window.kernel();
        if kernel.len() != n {
            return Err(format!("kernel_shape has {} values for {n} spatial axes", kernel.len()));
        }
        let axes = window_axes(&window, &xd[2..], &yd[2..])?;
        (kernel, yd[2..].to_vec(), axes)
    };
    let (b, g) = (xd[0], xd[1]);
    let (dims, out_index, w_index, i_index, relations) = if n == 2 {
        (
            dims_of(&["B", "G", "OY", "OX", "FY", "FX"], &[b, g, out[0], out[1], kernel[0], kernel[1]]),
            idx(&["b", "g", "oy", "ox"]),
            idx(&["fy", "fx"]),
            idx(&["b", "g", "iy", "ix"]),
            vec![
                window_relation("iy", "oy", "fy", out[0], xd[2], axes[0])?,
                window_relation("ix", "ox", "fx", out[1], xd[3], axes[1])?,
            ],
        )
    } else {
        (
            dims_of(&["B", "G", "OX", "FX"], &[b, g, out[0], kernel[0]]),
            idx(&["b", "g", "ox"]),
            idx(&["fx"]),
            idx(&["b", "g", "ix"]),
            vec![window_relation("ix", "ox", "fx", out[0], xd[2], axes[0])?],
        )
    };
    Ok(Draft {
        compute,
        dims,
        out_index,
        out: y,
        out_zp: None,
        inputs: vec![
            In { role: "W", index: w_index, value: None, zp: None, grows: false },
            In { role: "I", index: i_index, value: Some(x), zp: None, grows: true },
        ],
        relations,
        reduction: Some(kernel.iter().fold(1u64, |a, k| a.saturating_mul(*k))),
        grows: compute == Compute::Avg,
    })
}
