//! `fuse-transpose-into-gemm`: a 2-D `Transpose` (perm `[1, 0]`) feeding input A or B of a
//! `Gemm` becomes the Gemm's `transA`/`transB` flag.
//!
//! What it does: `Gemm(Transpose(a), b)` equals `Gemm(a, b)` with `transA` toggled, and the same
//! for B. The Gemm reads the Transpose's input and the Transpose goes.
//!
//! Preconditions: the main graph only. The Transpose's output is read only by that Gemm input,
//! is not a graph output and is not read by a subgraph; its `perm` is `[1, 0]`, or absent with
//! an input of rank 2.
//!
//! Postconditions: the model computes the same outputs; one op fewer per fusion.
//!
//! Statistics: `fused`, `kept-shared`.

use qc_ir::dims;
use qc_ir::{AttrValue, Model, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, drop_unused, input, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-transpose-into-gemm",
    summary: "turn a 2-D Transpose feeding Gemm's A or B into transA/transB",
    options: &[],
    build: |_| Ok(Box::new(FuseTransposeIntoGemm)),
};

/// The `fuse-transpose-into-gemm` pass.
pub struct FuseTransposeIntoGemm;

impl Pass for FuseTransposeIntoGemm {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let g = &model.graph;
        let readers = Readers::new(g);
        // (gemm, slot, transpose, its input, its output)
        let mut plans: Vec<(OpId, usize, OpId, ValueId, ValueId)> = Vec::new();
        for (id, op) in g.ops() {
            if op.kind() != OpKind::Gemm || !is_onnx(op) {
                continue;
            }
            for slot in 0..2 {
                let Some(v) = input(op, slot) else { continue };
                let Some(t) = g.value(v).producer() else { continue };
                let top = g.op(t);
                if top.kind() != OpKind::Transpose || !is_onnx(top) || sole_output(top) != Some(v) {
                    continue;
                }
                let Some(x) = input(top, 0) else { continue };
                let swap = match top.attr_ints("perm") {
                    Ok(Some(p)) => p == [1, 0],
                    Ok(None) => dims::rank(g, x) == Some(2),
                    Err(_) => false,
                };
                if !swap {
                    continue;
                }
                if readers.sole_reader(g, v) != Some((id, slot)) {
                    cx.count("kept-shared", 1);
                    continue;
                }
                plans.push((id, slot, t, x, v));
            }
        }
        let changed = !plans.is_empty();
        let g = &mut model.graph;
        for (gemm, slot, t, x, v) in plans {
            let flag = if slot == 0 { "transA" } else { "transB" };
            let on = g.op(gemm).attr_int(flag, 0).unwrap_or(0) != 0;
            g.set_input(gemm, slot, Some(x));
            g.op_mut(gemm).set_attr(flag, AttrValue::Int(i64::from(!on)));
            g.remove_op(t);
            drop_unused(g, &[v]);
            cx.count("fused", 1);
        }
        Ok(Changed::from_bool(changed))
    }
}
