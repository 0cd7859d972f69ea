//! `replace-avgpool-with-conv`: an `AveragePool` or `GlobalAveragePool` becomes a depthwise
//! `Conv` whose weights are all `1/window` (Kneron's `--replace-avgpool-with-conv`, for DLAs
//! that run Conv but not pooling, so the pool does not fall back to the CPU).
//!
//! What it does: `AveragePool(x)` over an input `[N, C, S...]` with kernel `k` becomes
//! `Conv(x, W)` with `group = C`, `W[C, 1, k...] = 1 / prod(k)` and the pool's `strides`, `pads`,
//! `dilations` and `auto_pad`. `GlobalAveragePool(x)` becomes the same Conv with the kernel
//! covering all of `S` (its dims must be known). The Conv keeps the pool's name and output.
//!
//! When the two are equal, and so when the pool is replaced:
//! - the pool counts the padding (`count_include_pad = 1`), or it pads nothing: explicit pads
//!   all zero, `VALID`, or `SAME_*` that works out to no padding for the known input dims;
//!   otherwise the border windows divide by fewer elements than the kernel has, which a Conv
//!   cannot do (statistic `kept-excludes-padding`);
//! - without `ceil_mode`, or with it when the known input dims give the same output size
//!   rounding up as down (a partial last window divides by fewer elements: `kept-ceil-mode`);
//! - the element type is f32, f64 or f16 (`kept-unsupported` otherwise) and the channel count is
//!   known (`kept-unknown-shape`: run `infer-shapes` first);
//! - the weight has at most 2^26 elements (`kept-too-large`), and the window fits the padded
//!   input when its dims are known (an invalid pool is `kept-unsupported`).
//!
//! The weights are `1/prod(k)` rounded to the element type, so results agree with the pool up
//! to float rounding (a sum times a reciprocal instead of a sum divided).
//!
//! Preconditions: the main graph only; ops in the default domain. Postconditions: no
//! replaceable AveragePool or GlobalAveragePool is left; the model computes the same outputs up
//! to rounding; the op count is unchanged (one new initializer per replaced pool).
//!
//! Statistics: `average-pool`, `global-average-pool` (pools replaced), and the `kept-*` reasons
//! above.

use qc_ir::dims;
use qc_ir::window::{AutoPad, Axis, Window};
use qc_ir::{AttrValue, ElemType, Graph, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Rewrite, add_float, elem_in, input, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "replace-avgpool-with-conv",
    summary: "replace AveragePool and GlobalAveragePool by a depthwise Conv of 1/window weights",
    options: &[],
    build: |_| Ok(Box::new(ReplaceAvgpoolWithConv)),
};

/// The `replace-avgpool-with-conv` pass.
pub struct ReplaceAvgpoolWithConv;

/// One pool to replace.
struct Plan {
    pool: OpId,
    x: ValueId,
    out: ValueId,
    elem: ElemType,
    channels: usize,
    kernel: Vec<usize>,
    /// The Conv's attributes besides `group` and `kernel_shape`.
    attrs: Vec<(&'static str, AttrValue)>,
    stat: &'static str,
}

impl Pass for ReplaceAvgpoolWithConv {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let g = &model.graph;
        let mut plans = Vec::new();
        for (id, op) in g.ops() {
            if !matches!(op.kind(), OpKind::AveragePool | OpKind::GlobalAveragePool) || !is_onnx(op) {
                continue;
            }
            match plan(g, id, op) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(reason) => cx.count(reason, 1),
            }
        }
        let mut rw = Rewrite::default();
        for p in plans {
            let pool = model.graph.op(p.pool);
            let base = format!(
                "{}_avg_weight",
                pool.name.clone().unwrap_or_else(|| model.graph.value(p.out).name.clone())
            );
            let mut conv = Op::new("Conv", pool.domain_raw().map(String::from));
            conv.name = pool.name.clone();
            let window: usize = p.kernel.iter().product();
            let mut dims = vec![p.channels, 1];
            dims.extend(&p.kernel);
            let n = p.channels * window;
            let Some(w) = add_float(&mut model.graph, &base, p.elem, dims, vec![1.0 / window as f64; n])
            else {
                cx.count("kept-unsupported", 1);
                continue;
            };
            conv.set_attr("group", AttrValue::Int(p.channels as i64));
            conv.set_attr("kernel_shape", AttrValue::Ints(p.kernel.iter().map(|&k| k as i64).collect()));
            for (name, value) in p.attrs {
                conv.set_attr(name, value);
            }
            rw.set(p.pool, vec![(conv, vec![Some(p.x), Some(w)], vec![Some(p.out)])]);
            cx.count(p.stat, 1);
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}

/// `Ok(None)`: not a pool this pass can read at all; `Err(reason)`: one it keeps.
fn plan(g: &Graph, id: OpId, op: &Op) -> Result<Option<Plan>, &'static str> {
    let (Some(x), Some(out)) = (input(op, 0), sole_output(op)) else { return Ok(None) };
    let elem = elem_in(g, x).ok_or("kept-unknown-shape")?;
    if !matches!(elem, ElemType::F32 | ElemType::F64 | ElemType::F16) {
        return Err("kept-unsupported");
    }
    let dims = dims::of(g, x).ok_or("kept-unknown-shape")?;
    if dims.len() < 3 {
        return Err("kept-unsupported");
    }
    let channels = match dims[1] {
        qc_ir::Dim::Known(c) if c > 0 => usize::try_from(c).map_err(|_| "kept-unsupported")?,
        _ => return Err("kept-unknown-shape"),
    };
    let spatial: Option<Vec<usize>> =
        dims::known(g, x).ok().and_then(|d| d[2..].iter().map(|&n| usize::try_from(n).ok()).collect());
    let s = dims.len() - 2;
    if op.kind() == OpKind::GlobalAveragePool {
        let kernel = spatial.ok_or("kept-unknown-shape")?;
        if kernel.contains(&0) {
            return Err("kept-unsupported");
        }
        weight_fits(channels, &kernel)?;
        return Ok(Some(Plan {
            pool: id,
            x,
            out,
            elem,
            channels,
            kernel,
            attrs: Vec::new(),
            stat: "global-average-pool",
        }));
    }

    let window = Window::pool(op).map_err(|_| "kept-unsupported")?;
    if window.rank() != s {
        return Err("kept-unsupported");
    }
    let include_pad = op.pool().map_err(|_| "kept-unsupported")?.count_include_pad;
    let same = window.auto_pad.is_same();
    let needs_shape = (!include_pad && same) || window.ceil_mode;
    let spatial = match (needs_shape, spatial) {
        (true, None) => return Err("kept-unknown-shape"),
        (_, sp) => sp,
    };
    // Each axis resolved over the known input dims, as the pool and as the Conv (no ceil_mode).
    let floor = Window { ceil_mode: false, ..window.clone() };
    let resolve = |w: &Window, i: usize| spatial.as_ref().map(|sp| w.resolve_axis(i, sp[i] as u64));
    if !include_pad {
        let pads_nothing = match window.auto_pad {
            AutoPad::Valid => true,
            _ if same => {
                (0..s).all(|i| matches!(resolve(&window, i), Some(Ok(r)) if r.pad_begin + r.pad_end == 0))
            }
            _ => window.axes.iter().all(|a| a.pad_begin == 0 && a.pad_end == 0),
        };
        if !pads_nothing {
            return Err("kept-excludes-padding");
        }
    }
    if window.ceil_mode {
        // ceil_mode only matters when some dim rounds up to an extra window.
        let rounds = (0..s).any(|i| match (resolve(&window, i), resolve(&floor, i)) {
            (Some(Ok(c)), Some(Ok(f))) => c.output != f.output,
            _ => false,
        });
        if rounds {
            return Err("kept-ceil-mode");
        }
    }
    // A window larger than the padded input is an invalid pool: leave it for the checker.
    if (0..s).any(|i| matches!(resolve(&floor, i), Some(Err(_)))) {
        return Err("kept-unsupported");
    }
    let ints = |f: &dyn Fn(&Axis) -> u64| -> Vec<i64> {
        window.axes.iter().map(|a| i64::try_from(f(a)).unwrap_or(i64::MAX)).collect()
    };
    let strides = ints(&|a| a.stride);
    let dilations = ints(&|a| a.dilation);
    let mut pads = ints(&|a| a.pad_begin);
    pads.extend(ints(&|a| a.pad_end));
    let mut attrs: Vec<(&'static str, AttrValue)> = vec![("strides", AttrValue::Ints(strides))];
    if dilations.iter().any(|&d| d != 1) {
        attrs.push(("dilations", AttrValue::Ints(dilations)));
    }
    if window.auto_pad == AutoPad::NotSet {
        attrs.push(("pads", AttrValue::Ints(pads)));
    } else {
        attrs.push(("auto_pad", AttrValue::String(window.auto_pad.as_str().as_bytes().to_vec().into())));
    }
    let kernel: Vec<usize> = window
        .kernel()
        .iter()
        .map(|&k| usize::try_from(k).map_err(|_| "kept-unsupported"))
        .collect::<Result<_, _>>()?;
    weight_fits(channels, &kernel)?;
    Ok(Some(Plan { pool: id, x, out, elem, channels, kernel, attrs, stat: "average-pool" }))
}

/// The most weight elements one replacement may create (256 MiB of f32).
const MAX_WEIGHT_ELEMENTS: usize = 1 << 26;

/// Whether a `[channels, 1, kernel...]` weight is small enough to create.
fn weight_fits(channels: usize, kernel: &[usize]) -> Result<(), &'static str> {
    kernel
        .iter()
        .try_fold(channels, |n, &k| n.checked_mul(k))
        .filter(|&n| n <= MAX_WEIGHT_ELEMENTS)
        .map(|_| ())
        .ok_or("kept-too-large")
}
