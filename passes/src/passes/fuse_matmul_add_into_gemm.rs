//! `fuse-matmul-add-into-gemm`: rewrites `Add(MatMul(A, B), C)` into `Gemm(A, B, C)`.
//!
//! What it does: a `MatMul` whose first input has rank 2 and whose second input is a constant
//! 2-D `[K, N]` tensor, followed by an `Add` (either operand order) of a constant bias that
//! broadcasts to `[N]` or `[M, N]` without growing the output (dims `[]`, `[1]`, `[N]`, `[1, N]`,
//! `[M, 1]`, `[M, N]`), becomes one `Gemm(A, B, C)` (alpha = beta = 1) that writes the Add's
//! output and keeps the MatMul's name.
//!
//! Preconditions: the main graph only. The MatMul's output has no other reader, is not a graph
//! output and is not read by a subgraph; `A`'s rank is known to be 2 (run `infer-shapes` first);
//! the weight is a float tensor; the default-domain opset is at least 7 (Gemm without
//! `broadcast`).
//!
//! Postconditions: the model computes the same outputs; one op fewer per fusion.
//!
//! Statistics: `fused`, `kept-shared` (the MatMul output has another reader),
//! `kept-not-constant` (the weight or bias is not a constant), `kept-shape` (ranks or bias dims
//! that Gemm cannot take).

use qc_ir::dims;
use qc_ir::{Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, float_const, input, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-matmul-add-into-gemm",
    summary: "rewrite a 2-D MatMul with a constant weight and an Add of a constant bias into a Gemm",
    options: &[],
    build: |_| Ok(Box::new(FuseMatmulAddIntoGemm)),
};

/// The `fuse-matmul-add-into-gemm` pass.
pub struct FuseMatmulAddIntoGemm;

struct Plan {
    mm: OpId,
    add: OpId,
    a: ValueId,
    w: ValueId,
    bias: ValueId,
    out: ValueId,
    mid: ValueId,
}

impl Pass for FuseMatmulAddIntoGemm {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        if model.onnx_opset() < 7 {
            return Ok(Changed::No);
        }
        let g = &model.graph;
        let readers = Readers::new(g);
        let mut plans = Vec::new();
        for (id, op) in g.ops() {
            if op.kind() != OpKind::MatMul || !is_onnx(op) {
                continue;
            }
            match plan(model, &readers, id, op) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(reason) => cx.count(reason, 1),
            }
        }
        let mut rw = Rewrite::default();
        for p in plans {
            let mm = model.graph.op(p.mm);
            let mut gemm = Op::new("Gemm", mm.domain_raw().map(String::from));
            gemm.name = mm.name.clone();
            rw.set(p.mm, vec![]);
            rw.set(p.add, vec![(gemm, vec![Some(p.a), Some(p.w), Some(p.bias)], vec![Some(p.out)])]);
            rw.drop_if_unused([p.mid]);
            cx.count("fused", 1);
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}

/// `Ok(None)`: no MatMul + Add here; `Err(reason)`: one this pass keeps.
fn plan(model: &Model, readers: &Readers, mm_id: OpId, mm: &Op) -> Result<Option<Plan>, &'static str> {
    let g = &model.graph;
    let (Some(mid), Some(a), Some(w)) = (sole_output(mm), input(mm, 0), input(mm, 1)) else {
        return Ok(None);
    };
    let uses = g.value(mid).uses();
    let Some(&(add_id, slot)) = uses.first() else { return Ok(None) };
    let add = g.op(add_id);
    if add.kind() != OpKind::Add || !is_onnx(add) {
        return Ok(None);
    }
    if readers.sole_reader(g, mid).is_none() {
        return Err("kept-shared");
    }
    let (Some(out), Some(bias)) = (sole_output(add), input(add, 1 - slot as usize)) else {
        return Ok(None);
    };
    if bias == mid || add.inputs().len() != 2 {
        return Ok(None);
    }
    let (_, wd, _) = float_const(model, Some(w)).ok_or("kept-not-constant")?;
    let (_, bd, _) = float_const(model, Some(bias)).ok_or("kept-not-constant")?;
    if dims::rank(g, a) != Some(2) || wd.len() != 2 {
        return Err("kept-shape");
    }
    let n = wd[1];
    let m = dims::known(g, a).ok().and_then(|d| usize::try_from(d[0]).ok());
    let ok = match bd.as_slice() {
        [] => true,
        [d1] => *d1 == 1 || *d1 == n,
        [d0, d1] => (*d1 == 1 || *d1 == n) && (*d0 == 1 || Some(*d0) == m),
        _ => false,
    };
    if !ok {
        return Err("kept-shape");
    }
    Ok(Some(Plan { mm: mm_id, add: add_id, a, w, bias, out, mid }))
}
