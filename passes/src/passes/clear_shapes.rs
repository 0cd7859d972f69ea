//! `clear-shapes`: forgets every declared shape of an intermediate value (Kneron's
//! `clear_shapes`), so that shape inference derives them afresh instead of trusting stale or
//! contradictory `value_info` that an exporter or an earlier tool wrote.
//!
//! What it does: empties the `value_info` list of the main graph and of every If/Loop/Scan and
//! function body, and drops the declared type of every value that is not a graph input or
//! output or an initializer. The
//! declarations of graph inputs and outputs (their element types and shapes) stay, as do
//! initializers and everything that affects computation. `qc optimize --clear-shapes` runs it
//! first, and the pipeline's `infer-shapes` then declares every shape again.
//!
//! Preconditions: none. Postconditions: no graph or body has `value_info`; graph inputs and
//! outputs are declared as before; the model computes the same outputs.
//!
//! Statistics: `cleared` (declarations removed).

use qc_ir::{AttrValue, DeclList, Graph, Model};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "clear-shapes",
    summary: "drop every value_info declaration except those of graph inputs and outputs",
    options: &[],
    build: |_| Ok(Box::new(ClearShapes)),
};

/// The `clear-shapes` pass.
pub struct ClearShapes;

impl Pass for ClearShapes {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let mut n = clear_graph(&mut model.graph);
        for f in &mut model.functions {
            n += clear_graph(&mut f.body);
        }
        if n > 0 {
            cx.count("cleared", n);
        }
        Ok(Changed::from_bool(n > 0))
    }
}

/// Clears the `value_info` of `g` and of its bodies; returns how many declarations there were.
fn clear_graph(g: &mut Graph) -> u64 {
    g.value_info.clear();
    g.reindex_decl_overrides(DeclList::ValueInfo, &[]);
    // A value's declared type is its `value_info` entry, listed or not: every value but the
    // graph inputs and outputs and the initializers (whose data gives their type) forgets it.
    let ids: Vec<_> = g.values().map(|(id, _)| id).collect();
    let mut n = 0;
    for v in ids {
        let keep = g.inputs.contains(&v) || g.outputs.contains(&v) || g.value(v).init.is_some();
        if !keep && g.value_mut(v).ty.take().is_some() {
            n += 1;
        }
    }
    let ops: Vec<_> = g.ops().map(|(id, _)| id).collect();
    for id in ops {
        for a in &mut g.op_mut(id).attrs {
            match &mut a.value {
                AttrValue::Graph(b) => n += clear_graph(b),
                AttrValue::Graphs(bs) => n += bs.iter_mut().map(clear_graph).sum::<u64>(),
                _ => {}
            }
        }
    }
    n
}
