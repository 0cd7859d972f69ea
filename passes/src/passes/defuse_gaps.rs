//! `defuse-gaps`: a `GlobalAveragePool` becomes the op a target runs instead (Kneron's
//! `defuse_gaps`): a `ReduceMean` over the spatial axes, or an `AveragePool` whose kernel is the
//! whole feature map.
//!
//! What it does: `GlobalAveragePool(x)` over `[N, C, S...]` becomes, with `form=reduce-mean`
//! (the default), `ReduceMean(x)` over the axes `2..rank` with `keepdims = 1` (the axes are an
//! attribute before opset 18 and a constant `i64` input from 18); with `form=average-pool`,
//! `AveragePool(x)` with `kernel_shape = S` (known dims), strides 1 and no padding. Both give
//! `[N, C, 1...]`, the mean of each channel's feature map. The new op keeps the pool's name
//! and output.
//!
//! When a pool is kept (statistics): its input's rank is unknown, or its spatial dims are
//! unknown for `form=average-pool` (`kept-unknown-shape`: run `infer-shapes` first); the input
//! has fewer than three dims (`kept-unsupported`).
//!
//! The three ops compute the same mean; the evaluator (and a runtime) may sum in another order,
//! so results agree up to float rounding.
//!
//! Preconditions: the main graph only; ops in the default domain. Postconditions: no
//! GlobalAveragePool with a known (spatial) shape is left; the model computes the same outputs
//! up to rounding; the op count is unchanged.
//!
//! Statistics: `reduce-mean`, `average-pool` (pools rewritten), `kept-unknown-shape`,
//! `kept-unsupported`.

use qc_ir::{AttrValue, Model, Op, OpKind, dims};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Rewrite, add_ints, input, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "defuse-gaps",
    summary: "rewrite GlobalAveragePool as ReduceMean over the spatial axes or a whole-map AveragePool",
    options: &[("form", "reduce-mean (default) or average-pool: the op a GlobalAveragePool becomes")],
    build: |o| Ok(Box::new(DefuseGaps { average_pool: o.choice("form", 0, &FORMS)? == 1 })),
};

const FORMS: [&str; 2] = ["reduce-mean", "average-pool"];

/// The `defuse-gaps` pass.
pub struct DefuseGaps {
    /// Rewrite into `AveragePool` instead of `ReduceMean`.
    pub average_pool: bool,
}

impl Pass for DefuseGaps {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let axes_as_input = model.opset_version("").unwrap_or(1) >= 18;
        let pools: Vec<_> = model
            .graph
            .ops()
            .filter(|(_, op)| op.kind() == OpKind::GlobalAveragePool && is_onnx(op))
            .map(|(id, _)| id)
            .collect();
        let mut rw = Rewrite::default();
        for id in pools {
            let g = &model.graph;
            let pool = g.op(id);
            let (Some(x), Some(out)) = (input(pool, 0), sole_output(pool)) else { continue };
            let Some(rank) = dims::rank(g, x) else {
                cx.count("kept-unknown-shape", 1);
                continue;
            };
            if rank < 3 {
                cx.count("kept-unsupported", 1);
                continue;
            }
            let (name, domain) = (pool.name.clone(), pool.domain_raw().map(String::from));
            let base = format!("{}_axes", g.value(out).name);
            if self.average_pool {
                let Ok(d) = dims::known(g, x) else {
                    cx.count("kept-unknown-shape", 1);
                    continue;
                };
                let kernel: Option<Vec<i64>> = d[2..].iter().map(|&n| i64::try_from(n).ok()).collect();
                let Some(kernel) = kernel.filter(|k| k.iter().all(|&n| n > 0)) else {
                    cx.count("kept-unsupported", 1);
                    continue;
                };
                let mut op = Op::new("AveragePool", domain);
                op.name = name;
                op.set_attr("kernel_shape", AttrValue::Ints(kernel));
                rw.set(id, vec![(op, vec![Some(x)], vec![Some(out)])]);
                cx.count("average-pool", 1);
            } else {
                let axes: Vec<i64> = (2..rank as i64).collect();
                let mut op = Op::new("ReduceMean", domain);
                op.name = name;
                op.set_attr("keepdims", AttrValue::Int(1));
                let inputs = if axes_as_input {
                    let Some(a) = add_ints(&mut model.graph, &base, axes) else { continue };
                    vec![Some(x), Some(a)]
                } else {
                    op.set_attr("axes", AttrValue::Ints(axes));
                    vec![Some(x)]
                };
                rw.set(id, vec![(op, inputs, vec![Some(out)])]);
                cx.count("reduce-mean", 1);
            }
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}
