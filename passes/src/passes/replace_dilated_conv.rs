//! `replace-dilated-conv`: a dilated `Conv` becomes a `Conv` without dilation (Kneron's
//! `replace_dilated_conv`), for DLAs whose convolution engine steps through the kernel densely.
//!
//! What it does: `Conv(x, W)` with `dilations = d` (some `d > 1`) and a constant weight
//! `W[M, C/g, k...]` becomes `Conv(x, W')` with `dilations` 1 and the inflated kernel
//! `W'[M, C/g, (k-1)*d+1 ...]`: `W'[.., i*d] = W[.., i]` and zeros between the taps. The
//! inflated kernel covers exactly the window the dilated one spans, so `pads`, `strides`,
//! `auto_pad` (SAME pads by that span), `group` and the bias stay, and the output shape is the
//! same. The new weight is an initializer `<W>_undilated`; the old one goes when nothing else
//! reads it. The Conv keeps its name and output.
//!
//! Space-to-batch (`SpaceToDepth`/`DepthToSpace` or Pad+Reshape+Transpose around a dense Conv) is
//! the other exact form; it needs six data-movement ops around each Conv and only works for
//! stride 1, where the inflated kernel is one op a DLA runs whenever the inflated size is within
//! its kernel limit (a 3x3 kernel with dilation 2 or 3 becomes 5x5 or 7x7). `max-kernel=N` keeps
//! the Convs whose inflated kernel would be larger than `N` on some axis (0: no limit).
//!
//! Exactness: the products of the extra taps are `0 * x`, which add nothing, and the others are
//! summed in the same order, so the outputs are the same for finite inputs (an infinite or NaN
//! input under a zero tap gives NaN, as `0 * inf` does).
//!
//! When a Conv is kept (statistics): its weight is not a constant float tensor
//! (`kept-not-constant`), its attributes are malformed or do not match the weight's rank
//! (`kept-unsupported`), or the inflated kernel is over `max-kernel` or over 2^26 weight elements
//! (`kept-too-large`).
//!
//! Preconditions: the main graph only; Convs in the default domain. Postconditions: no Conv with
//! a constant weight and a dilation over 1 is left, but those kept for size; the model computes
//! the same outputs; the op count is unchanged.
//!
//! Statistics: `conv` (Convs rewritten), `kept-not-constant`, `kept-unsupported`,
//! `kept-too-large`.

use qc_ir::{AttrValue, Model, OpKind};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Rewrite, add_float, float_const, input, is_onnx};

pub const INFO: PassInfo = PassInfo {
    name: "replace-dilated-conv",
    summary: "rewrite a dilated Conv as a Conv whose kernel has zeros between the taps",
    options: &[("max-kernel", "keep Convs whose inflated kernel exceeds this size on an axis (0: no limit)")],
    build: |o| Ok(Box::new(ReplaceDilatedConv { max_kernel: o.u64("max-kernel", 0)? })),
};

/// The most weight elements one rewrite may create (256 MiB of f32).
const MAX_WEIGHT_ELEMENTS: usize = 1 << 26;

/// The `replace-dilated-conv` pass.
pub struct ReplaceDilatedConv {
    /// The largest inflated kernel size allowed on an axis (0: any).
    pub max_kernel: u64,
}

impl Pass for ReplaceDilatedConv {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let convs: Vec<_> = model
            .graph
            .ops()
            .filter(|(_, op)| op.kind() == OpKind::Conv && is_onnx(op))
            .filter(|(_, op)| matches!(op.attr_ints("dilations"), Ok(Some(d)) if d.iter().any(|&x| x != 1)))
            .map(|(id, _)| id)
            .collect();
        let mut rw = Rewrite::default();
        for id in convs {
            let op = model.graph.op(id);
            let Some(w) = input(op, 1) else { continue };
            let Some((elem, wdims, values)) = float_const(model, Some(w)) else {
                cx.count("kept-not-constant", 1);
                continue;
            };
            let Some(d) = dilations(op, wdims.len()) else {
                cx.count("kept-unsupported", 1);
                continue;
            };
            let kernel = &wdims[2..];
            let inflated: Option<Vec<usize>> = kernel
                .iter()
                .zip(&d)
                .map(|(&k, &d)| k.checked_sub(1)?.checked_mul(d)?.checked_add(1))
                .collect();
            let Some(inflated) = inflated else {
                cx.count("kept-unsupported", 1);
                continue;
            };
            let over_limit = self.max_kernel > 0 && inflated.iter().any(|&k| k as u64 > self.max_kernel);
            let count = inflated.iter().try_fold(wdims[0] * wdims[1], |n, &k| n.checked_mul(k));
            let Some(count) = count.filter(|&n| n <= MAX_WEIGHT_ELEMENTS && !over_limit) else {
                cx.count("kept-too-large", 1);
                continue;
            };
            let new_values = inflate(&values, &wdims, &d, &inflated, count);
            let mut new_dims = wdims[..2].to_vec();
            new_dims.extend(&inflated);
            let mut new_op = op.clone();
            let (ins, outs) = (op.inputs().to_vec(), op.outputs().to_vec());
            let base = format!("{}_undilated", model.graph.value(w).name);
            let Some(w2) = add_float(&mut model.graph, &base, elem, new_dims, new_values) else {
                cx.count("kept-unsupported", 1);
                continue;
            };
            new_op.set_attr("dilations", AttrValue::Ints(vec![1; d.len()]));
            if new_op.attr("kernel_shape").is_some() {
                new_op
                    .set_attr("kernel_shape", AttrValue::Ints(inflated.iter().map(|&k| k as i64).collect()));
            }
            let mut ins = ins;
            ins[1] = Some(w2);
            rw.set(id, vec![(new_op, ins, outs)]);
            rw.drop_if_unused([w]);
            cx.count("conv", 1);
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}

/// The Conv's dilations, one per spatial axis of a weight of rank `rank`, all at least 1, and
/// its `kernel_shape` (when given) equal to the weight's.
fn dilations(op: &qc_ir::Op, rank: usize) -> Option<Vec<usize>> {
    let spatial = rank.checked_sub(2).filter(|&s| s > 0)?;
    let d = op.attr_ints("dilations").ok()??;
    if d.len() != spatial {
        return None;
    }
    d.iter().map(|&x| usize::try_from(x).ok().filter(|&x| x >= 1)).collect()
}

/// The weight with `d[i] - 1` zeros between neighbouring taps of spatial axis `i`.
fn inflate(values: &[f64], dims: &[usize], d: &[usize], inflated: &[usize], count: usize) -> Vec<f64> {
    let kernel = &dims[2..];
    let taps: usize = kernel.iter().product();
    let window: usize = inflated.iter().product();
    let mut out = vec![0.0; count];
    for (block, chunk) in values.chunks(taps.max(1)).enumerate() {
        for (t, &v) in chunk.iter().enumerate() {
            // The tap's position per axis, scaled by the dilation, in row-major order.
            let (mut rest, mut at, mut stride) = (t, 0, 1);
            for i in (0..kernel.len()).rev() {
                let pos = rest % kernel[i];
                rest /= kernel[i];
                at += pos * d[i] * stride;
                stride *= inflated[i];
            }
            out[block * window + at] = v;
        }
    }
    out
}
