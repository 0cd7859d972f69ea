//! Helpers shared by the `fuse-*` passes: who reads a value, constants, and replacing ops in
//! place.

use std::collections::{HashMap, HashSet};

use qc_ir::{ElemType, Graph, Model, Op, OpId, ValueId};

use crate::eval::Array;
use crate::passes::eliminate_identity::captured_names;
use crate::passes::quant_to_qcdq::{NewOp, drop_unused, rebuild};
use crate::quant::const_array;

/// What a fusion needs to know about the main graph: the names its subgraphs read from it.
pub(crate) struct Readers {
    captured: HashSet<String>,
}

impl Readers {
    pub(crate) fn new(g: &Graph) -> Readers {
        Readers { captured: captured_names(g) }
    }

    /// Whether a subgraph reads `v` by name.
    pub(crate) fn captured(&self, g: &Graph, v: ValueId) -> bool {
        self.captured.contains(&g.value(v).name)
    }

    /// The one op input that reads `v`, when nothing else does: `v` is not a graph output and
    /// no subgraph reads it.
    pub(crate) fn sole_reader(&self, g: &Graph, v: ValueId) -> Option<(OpId, usize)> {
        let val = g.value(v);
        if g.outputs.contains(&v) || self.captured.contains(&val.name) || val.uses().len() != 1 {
            return None;
        }
        let (op, slot) = val.uses()[0];
        Some((op, slot as usize))
    }
}

/// Whether `op` is in the default ONNX domain.
pub(crate) fn is_onnx(op: &Op) -> bool {
    qc_ir::op::is_default_domain(op.domain())
}

/// Input `i` of `op`, when present.
pub(crate) fn input(op: &Op, i: usize) -> Option<ValueId> {
    op.inputs().get(i).copied().flatten()
}

/// The only output of `op`: output 0, with every other output absent.
pub(crate) fn sole_output(op: &Op) -> Option<ValueId> {
    let outs = op.outputs();
    if outs.iter().skip(1).any(Option::is_some) {
        return None;
    }
    outs.first().copied().flatten()
}

/// A float constant's element type, dims and values as `f64`.
pub(crate) fn float_const(model: &Model, v: Option<ValueId>) -> Option<(ElemType, Vec<usize>, Vec<f64>)> {
    let a: Array = const_array(model, v?)?;
    if !matches!(a.elem, ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16) {
        return None;
    }
    let vals = a.to_f64().ok()?;
    (vals.len() == a.dims.iter().product::<usize>()).then_some((a.elem, a.dims, vals))
}

/// An integer constant's values.
pub(crate) fn int_const(model: &Model, v: Option<ValueId>) -> Option<Vec<i64>> {
    const_array(model, v?)?.to_i64s().ok()
}

/// A batch of op replacements for the main graph, applied at once so program order is kept.
#[derive(Default)]
pub(crate) struct Rewrite {
    replace: HashMap<OpId, Vec<NewOp>>,
    /// Values that may have lost their last reader or writer.
    pub(crate) candidates: Vec<ValueId>,
}

impl Rewrite {
    /// Whether `op` is already part of this batch.
    pub(crate) fn touches(&self, op: OpId) -> bool {
        self.replace.contains_key(&op)
    }

    /// Replaces `op` by `new` (empty: removes it).
    pub(crate) fn set(&mut self, op: OpId, new: Vec<NewOp>) {
        self.replace.insert(op, new);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.replace.is_empty()
    }

    /// Applies the batch and drops the values nothing uses any more.
    pub(crate) fn apply(self, g: &mut Graph) {
        rebuild(g, self.replace);
        drop_unused(g, &self.candidates);
    }
}

/// Adds a new initializer holding `values` as `elem`, named after `base`.
pub(crate) fn add_float(
    g: &mut Graph,
    base: &str,
    elem: ElemType,
    dims: Vec<usize>,
    values: Vec<f64>,
) -> Option<ValueId> {
    let a = Array::from_f64s(elem, dims, values).ok()?;
    Some(crate::passes::quant_to_qcdq::add_const(g, base, &a))
}

/// Adds a new `i64` initializer, named after `base`.
pub(crate) fn add_ints(g: &mut Graph, base: &str, values: Vec<i64>) -> Option<ValueId> {
    let a = Array::from_i64(vec![values.len()], values).ok()?;
    Some(crate::passes::quant_to_qcdq::add_const(g, base, &a))
}

#[cfg(test)]
mod tests {
    use crate::pass::{Changed, PassContext};
    use crate::registry::{PassOptions, lookup};

    /// The fusions, and the Kneron-style rewrites that read the same kinds of ops.
    const FUSIONS: [&str; 9] = [
        "duplicate-shared-weights",
        "replace-avgpool-with-conv",
        "fuse-bn-into-conv",
        "fuse-consecutive-reshapes",
        "fuse-consecutive-transposes",
        "fuse-matmul-add-into-gemm",
        "fuse-mul-add-into-bn",
        "fuse-pad-into-conv",
        "fuse-transpose-into-gemm",
    ];

    /// Malformed ops of every pattern: wrong arity, bad attributes, mismatched dims, huge pads.
    const MALFORMED: &str = r#"
ir_version 8
opset_import "" 13

graph @g(%x: f32[1,2,3,3], %v: f32[2,3]) -> (%y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12) {
  init %w = f32[2,2,1,1] floats [0.1, -0.2, 0.3, 0.4]
  init %s3 = f32[3] floats [1.0, 2.0, 3.0]
  init %pads = i64[3] int64s [0, 0, 9223372036854775807]
  init %big = i64[8] int64s [0, 0, 9223372036854775807, 0, 0, 0, 0, 0]
  init %m = f32[3,4] floats [0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, 1.0, 1.1, -1.2]
  %c = ""::Conv(%x, %w)
  %y1 = ""::BatchNormalization(%c, %s3, %s3)
  %c2 = ""::Conv(%x, %w) {group = "two"}
  %y2 = ""::BatchNormalization(%c2, %s3, %s3, %s3, %s3)
  %t = ""::Transpose(%v) {perm = [5, 0]}
  %y3 = ""::Transpose(%t) {perm = [0, 0]}
  %p = ""::Pad(%x, %pads)
  %y4 = ""::Conv(%p, %w) {pads = [9223372036854775807, 0, 0, 0]}
  %p2 = ""::Pad(%x, %big)
  %y5 = ""::Conv(%p2, %w) {pads = [9223372036854775807, 0, 0, 0]}
  %mm = ""::MatMul(%v, %m)
  %y6 = ""::Add(%mm, %s3)
  %mu = ""::Mul(%x, %s3)
  %y7 = ""::Add(%mu, %s3)
  %tg = ""::Transpose(%v) {perm = "x"}
  %y8 = ""::Gemm(%tg, %m)
  %y9 = ""::AveragePool(%x) {kernel_shape = [0, -1], strides = [0, 0], pads = [-1, 0, 0, 0]}
  %y10 = ""::AveragePool(%x) {kernel_shape = [9223372036854775807, 1], auto_pad = "SAME_UPPER"}
  %y11 = ""::GlobalAveragePool(%v)
  %y12 = ""::AveragePool(%x) {kernel_shape = "k", ceil_mode = 1, dilations = [9223372036854775807, 1]}
}
"#;

    #[test]
    fn malformed_patterns_do_not_panic_and_a_second_run_changes_nothing() {
        for name in FUSIONS {
            let mut model = qc_ir::text::parse_model(MALFORMED).unwrap();
            // The model is invalid on purpose (arity, attribute kinds); a pass adds no problem.
            let before: Vec<String> = qc_ir::verify_model(&model).iter().map(ToString::to_string).collect();
            let info = lookup(name).unwrap();
            let mut pass = (info.build)(&mut PassOptions::new(info.name, &[])).unwrap();
            let mut cx = PassContext::default();
            pass.run(&mut model, &mut cx).unwrap();
            let after: Vec<String> = qc_ir::verify_model(&model).iter().map(ToString::to_string).collect();
            assert_eq!(before, after, "{name}");
            let mut cx = PassContext::default();
            assert_eq!(pass.run(&mut model, &mut cx).unwrap(), Changed::No, "{name}");
        }
    }
}
