//! `clear-descriptions`: removes the free-text documentation of a model (Kneron's
//! `--clear-descriptions`), which exporters fill with stack traces and source lines.
//!
//! What it does: clears the `doc_string` of the model, the main graph, every op, every value and
//! every initializer tensor, recursively in If/Loop/Scan bodies and function bodies. Names,
//! metadata properties and everything that affects computation are kept.
//!
//! Preconditions: none. Postconditions: no `doc_string` is left; the model computes the same
//! outputs.
//!
//! Statistics: `cleared` (doc strings removed).

use qc_ir::{AttrValue, Const, Graph, Model};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "clear-descriptions",
    summary: "remove doc strings from the model, graphs, ops, values and tensors",
    options: &[],
    build: |_| Ok(Box::new(ClearDescriptions)),
};

/// The `clear-descriptions` pass.
pub struct ClearDescriptions;

impl Pass for ClearDescriptions {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let mut n = u64::from(model.doc_string.take().is_some());
        n += clear_graph(&mut model.graph);
        for f in &mut model.functions {
            n += u64::from(f.doc_string.take().is_some());
            n += clear_graph(&mut f.body);
        }
        if n > 0 {
            cx.count("cleared", n);
        }
        Ok(Changed::from_bool(n > 0))
    }
}

/// Clears the doc strings of `g` and its bodies; returns how many there were.
fn clear_graph(g: &mut Graph) -> u64 {
    let mut n = u64::from(g.doc_string.take().is_some());
    let ids: Vec<_> = g.values().map(|(id, _)| id).collect();
    for id in ids {
        let v = g.value_mut(id);
        n += u64::from(v.doc_string.take().is_some());
        if let Some(Const::Dense(t)) = &mut v.init {
            n += u64::from(t.doc_string.take().is_some());
        }
    }
    for d in &mut g.decl_overrides {
        n += u64::from(d.doc_string.take().is_some());
    }
    let ops: Vec<_> = g.ops().map(|(id, _)| id).collect();
    for id in ops {
        let op = g.op_mut(id);
        n += u64::from(op.doc_string.take().is_some());
        for a in &mut op.attrs {
            n += u64::from(a.doc_string.take().is_some());
            match &mut a.value {
                AttrValue::Graph(b) => n += clear_graph(b),
                AttrValue::Graphs(bs) => n += bs.iter_mut().map(clear_graph).sum::<u64>(),
                _ => {}
            }
        }
    }
    n
}
