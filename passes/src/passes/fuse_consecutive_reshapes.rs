//! `fuse-consecutive-reshapes`: a chain of `Reshape`/`Flatten`/`Squeeze`/`Unsqueeze` whose final
//! shape is known becomes one `Reshape` with a constant shape.
//!
//! What it does: each of these ops keeps the elements in row-major order and only changes the
//! dims, so a chain of two or more of them, each intermediate value read only by the next op,
//! equals one `Reshape(x, shape)` to the chain's final dims. The new Reshape writes the last op's
//! output and keeps its name; the shape is a new `i64` initializer named `<output>_shape`; the
//! chain's own shape and axes inputs are dropped when nothing else reads them.
//!
//! Preconditions: the main graph only. The last output's dims are all known numbers, none 0
//! (run `infer-shapes` first); every intermediate value has no other reader, is not a graph
//! output and is not read by a subgraph; the default-domain opset is at least 5 (shape as an
//! input).
//!
//! Postconditions: the model computes the same outputs; no such chain of two or more ops is
//! left where the final shape is known.
//!
//! Statistics: `chains-fused`, `ops-removed` (ops the chains had beyond the one Reshape),
//! `kept-unknown-shape` (chains whose final dims are not known).

use qc_ir::dims;
use qc_ir::{Graph, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, add_ints, input, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-consecutive-reshapes",
    summary: "merge Reshape/Flatten/Squeeze/Unsqueeze chains with a known final shape into one Reshape",
    options: &[],
    build: |_| Ok(Box::new(FuseConsecutiveReshapes)),
};

/// A chain found: last op, the ops before it, the chain's input, final output and dims.
type Chain = (OpId, Vec<OpId>, ValueId, ValueId, Vec<u64>);

/// The `fuse-consecutive-reshapes` pass.
pub struct FuseConsecutiveReshapes;

fn is_reshaping(op: &Op) -> bool {
    matches!(op.kind(), OpKind::Reshape | OpKind::Flatten | OpKind::Squeeze | OpKind::Unsqueeze)
        && is_onnx(op)
}

/// The op before `op` in a chain: the reshaping op that writes its data input, when nothing else
/// reads that value.
fn previous(g: &Graph, readers: &Readers, op: &Op) -> Option<OpId> {
    let d = input(op, 0)?;
    let p = g.value(d).producer()?;
    (is_reshaping(g.op(p))
        && sole_output(g.op(p)) == Some(d)
        && matches!(readers.sole_reader(g, d), Some((_, 0))))
    .then_some(p)
}

impl Pass for FuseConsecutiveReshapes {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        if model.onnx_opset() < 5 {
            return Ok(Changed::No);
        }
        let g = &model.graph;
        let readers = Readers::new(g);
        let mut chains: Vec<Chain> = Vec::new();
        for (id, op) in g.ops() {
            if !is_reshaping(op) {
                continue;
            }
            let Some(y) = sole_output(op) else { continue };
            // Not the end of a chain when the next op continues it.
            if let Some((r, 0)) = readers.sole_reader(g, y)
                && is_reshaping(g.op(r))
                && previous(g, &readers, g.op(r)) == Some(id)
            {
                continue;
            }
            let mut before = Vec::new();
            let mut cur = op;
            while let Some(p) = previous(g, &readers, cur) {
                if before.contains(&p) || p == id {
                    break;
                }
                before.push(p);
                cur = g.op(p);
            }
            if before.is_empty() {
                continue;
            }
            let Some(x) = input(cur, 0) else { continue };
            match dims::known(g, y) {
                Ok(dims) if !dims.contains(&0) => chains.push((id, before, x, y, dims)),
                _ => cx.count("kept-unknown-shape", 1),
            }
        }
        let mut rw = Rewrite::default();
        let g = &mut model.graph;
        for (last, before, x, y, dims) in chains {
            let Ok(shape) = dims.iter().map(|&d| i64::try_from(d)).collect::<Result<Vec<i64>, _>>() else {
                continue;
            };
            let name = format!("{}_shape", g.value(y).name);
            let Some(s) = add_ints(g, &name, shape) else { continue };
            let old = g.op(last);
            let mut op = Op::new("Reshape", old.domain_raw().map(String::from));
            op.name = old.name.clone();
            for &id in before.iter().chain([&last]) {
                let o = g.op(id);
                rw.drop_if_unused(o.inputs().iter().flatten().copied().filter(|&v| v != x));
            }
            rw.set(last, vec![(op, vec![Some(x), Some(s)], vec![Some(y)])]);
            for &id in &before {
                rw.set(id, vec![]);
            }
            cx.count("chains-fused", 1);
            cx.count("ops-removed", before.len() as u64);
        }
        let changed = !rw.is_empty();
        rw.apply(g);
        Ok(Changed::from_bool(changed))
    }
}
