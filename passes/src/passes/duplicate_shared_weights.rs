//! `duplicate-shared-weights`: gives every layer its own copy of a weight that several layers
//! share (Kneron's `--duplicate-shared-weights`). DLA compilers place each layer's weights
//! with the layer, and some cannot point two layers at one tensor.
//!
//! What it does: an initializer read as a weight by more than one op stays with the first such
//! reader in program order; every further reading slot gets a copy named `<name>_dup<k>` with
//! the same data, declaration and quantization. Weights are: every input but the data of Conv,
//! ConvTranspose, Gemm, BatchNormalization, InstanceNormalization, LayerNormalization and
//! PRelu; either operand of MatMul; the weight of ConvInteger and MatMulInteger; the weight and
//! bias of QLinearConv and the operands of QLinearMatMul (not their scales or zero points); and
//! the data input of `DequantizeLinear` and QONNX `Quant`, which sit between a weight and its
//! layer (not their scales, zero points or bit widths, which quantizers share freely). Other
//! readers keep reading the original. Initializers that are graph inputs or outputs, or are read by
//! name inside an If/Loop/Scan body, are left alone.
//!
//! It undoes what `eliminate-common-subexpressions` does to initializers, so the default
//! pipeline runs it once, after the fixpoint, when `qc optimize --duplicate-shared-weights` is
//! given; a second `qc optimize` with the flag merges and copies again to the same result.
//!
//! Preconditions: none (main graph only). Postconditions: no initializer is read by two
//! weighted ops; the model computes the same outputs.
//!
//! Statistics: `duplicated` (copies made), `shared-weights` (initializers that were shared).

use qc_ir::{Graph, Model, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{captured_names, new_value};

pub const INFO: PassInfo = PassInfo {
    name: "duplicate-shared-weights",
    summary: "give each weighted op its own copy of an initializer that several of them read",
    options: &[],
    build: |_| Ok(Box::new(DuplicateSharedWeights)),
};

/// The `duplicate-shared-weights` pass.
pub struct DuplicateSharedWeights;

/// Whether input `slot` of an op of this kind is a weight that a DLA places with the layer (not
/// a scale, zero point or bit width, which quantizers share freely).
fn weight_slot(kind: OpKind, slot: u32) -> bool {
    use OpKind::*;
    match kind {
        Conv
        | ConvTranspose
        | Gemm
        | BatchNormalization
        | InstanceNormalization
        | LayerNormalization
        | PRelu => slot >= 1,
        ConvInteger | MatMulInteger => slot == 1,
        MatMul => true,
        QLinearConv => slot == 3 || slot == 8,
        QLinearMatMul => slot == 0 || slot == 3,
        DequantizeLinear | Quant => slot == 0,
        _ => false,
    }
}

impl Pass for DuplicateSharedWeights {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let g = &mut model.graph;
        let captured = captured_names(g);
        let position: std::collections::HashMap<OpId, usize> =
            g.ops().enumerate().map(|(i, (id, _))| (id, i)).collect();
        let mut copies: Vec<(ValueId, Vec<(OpId, u32)>)> = Vec::new();
        for &v in &g.initializers {
            let val = g.value(v);
            if g.inputs.contains(&v) || g.outputs.contains(&v) || captured.contains(val.name.as_str()) {
                continue;
            }
            let mut readers: Vec<(OpId, u32)> =
                val.uses().iter().copied().filter(|&(op, slot)| weight_slot(g.op(op).kind(), slot)).collect();
            readers.sort_by_key(|&(op, slot)| (position.get(&op).copied(), slot));
            if readers.len() > 1 {
                copies.push((v, readers.split_off(1)));
            }
        }
        let changed = !copies.is_empty();
        for (v, readers) in copies {
            cx.count("shared-weights", 1);
            for (k, (op, slot)) in readers.into_iter().enumerate() {
                let copy = copy_initializer(g, v, k + 1);
                g.set_input(op, slot as usize, Some(copy));
                cx.count("duplicated", 1);
            }
        }
        Ok(Changed::from_bool(changed))
    }
}

/// A new initializer `<name>_dup<k>` equal to `v`, listed `k` places after it (copies are made
/// in order, so the `k`-th follows the one before).
fn copy_initializer(g: &mut Graph, v: ValueId, k: usize) -> ValueId {
    let base = format!("{}_dup{k}", g.value(v).name);
    let copy = new_value(g, &base);
    let src = g.value(v).clone();
    let name = g.value(copy).name.clone();
    let dst = g.value_mut(copy);
    dst.ty = src.ty;
    dst.doc_string = src.doc_string;
    dst.metadata = src.metadata;
    dst.quant = src.quant;
    dst.init = src.init.map(|c| match c {
        qc_ir::Const::Dense(mut t) => {
            t.name = Some(name);
            qc_ir::Const::Dense(t)
        }
        other => other,
    });
    let at = g.initializers.iter().position(|&i| i == v).map_or(g.initializers.len(), |i| i + k);
    g.initializers.insert(at, copy);
    copy
}
