//! `remove-static-inputs`: turns graph inputs that have an initializer into plain constants.
//!
//! What it does: ONNX files before IR version 4 had to list every initializer among the graph
//! inputs, and many exporters still do. Such an input is a default the caller may override, so
//! `fold-constants` does not treat it as constant. This pass removes those inputs from the graph's
//! input list (the initializer stays, and so does its declared type, which moves to
//! `value_info`), so that the weights are constants from then on. It is qonnx's
//! `RemoveStaticGraphInputs`, and `qc cost` runs it first.
//!
//! Preconditions: none. Postconditions: no graph input has an initializer; the model computes
//! the same outputs for every input it still takes. Models of IR version 3 or older are moved
//! to IR version 4, the first that allows initializers that are not inputs.
//!
//! Statistics: `inputs-removed`.

use qc_ir::Model;

use crate::opset::raise_ir_for_initializers;
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "remove-static-inputs",
    summary: "drop graph inputs that have an initializer, so the weights count as constants",
    options: &[],
    build: |_| Ok(Box::new(RemoveStaticInputs)),
};

/// The `remove-static-inputs` pass.
pub struct RemoveStaticInputs;

impl Pass for RemoveStaticInputs {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let g = &mut model.graph;
        let before = g.inputs.len();
        let (keep, drop): (Vec<_>, Vec<_>) = g.inputs.iter().partition(|v| g.value(**v).init.is_none());
        if drop.is_empty() {
            return Ok(Changed::No);
        }
        // Declaration overrides index into the input list: move them with their inputs.
        let old = std::mem::replace(&mut g.inputs, keep);
        let kept: Vec<usize> = g.inputs.iter().filter_map(|v| old.iter().position(|w| w == v)).collect();
        g.reindex_decl_overrides(qc_ir::DeclList::Inputs, &kept);
        for v in drop {
            if g.value(v).ty.is_some() && !g.value_info.contains(&v) {
                g.value_info.push(v);
            }
        }
        raise_ir_for_initializers(model);
        cx.count("inputs-removed", (before - model.graph.inputs.len()) as u64);
        Ok(Changed::Yes)
    }
}
