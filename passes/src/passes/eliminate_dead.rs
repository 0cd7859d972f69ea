//! `eliminate-dead`: removes ops, initializers and declarations that no graph output needs.
//!
//! What it does: starting from the graph outputs, marks every value they depend on (through the
//! ops that produce them, their inputs, and the outer-scope names their subgraphs read), then
//! removes every op whose outputs are all unmarked, every initializer that is neither marked nor
//! a graph input, and every `value_info` declaration of a value that is no longer produced. The
//! bodies of If/Loop/Scan are cleaned the same way, from their own outputs.
//!
//! Preconditions: none (an invalid graph is cleaned as far as its def-use chains go).
//!
//! Postconditions: every op and initializer left contributes to a graph output; graph inputs and
//! outputs are unchanged; the model computes the same outputs.
//!
//! Statistics: `ops-removed`, `initializers-removed`, `declarations-removed`.

use std::collections::HashSet;

use qc_ir::{AttrValue, Graph, Model, OpId, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{outer_names, subgraphs};

pub const INFO: PassInfo = PassInfo {
    name: "eliminate-dead",
    summary: "remove ops, initializers and declarations no graph output needs",
    options: &[],
    build: |_| Ok(Box::new(EliminateDead)),
};

/// The `eliminate-dead` pass.
pub struct EliminateDead;

impl Pass for EliminateDead {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let changed = eliminate(&mut model.graph, cx);
        Ok(Changed::from_bool(changed))
    }
}

/// Cleans `g` and its subgraphs; returns whether anything was removed.
fn eliminate(g: &mut Graph, cx: &mut PassContext) -> bool {
    let mut live_values = vec![false; g.value_count()];
    let mut live_ops: HashSet<OpId> = HashSet::new();
    let mut work: Vec<ValueId> = g.outputs.clone();
    while let Some(v) = work.pop() {
        if std::mem::replace(&mut live_values[v.index()], true) {
            continue;
        }
        // Every op that writes the value is live (an invalid graph may have several).
        let writers: Vec<OpId> = match g.value(v).producer() {
            Some(p) => vec![p],
            None => Vec::new(),
        };
        for op_id in writers {
            if !live_ops.insert(op_id) {
                continue;
            }
            let op = g.op(op_id);
            work.extend(op.inputs().iter().flatten().copied());
            let captured: HashSet<String> = subgraphs(op).flat_map(outer_names).collect();
            work.extend(captured.iter().filter_map(|n| g.find(n)));
        }
    }
    let dead: Vec<OpId> = g.ops().map(|(id, _)| id).filter(|id| !live_ops.contains(id)).collect();
    for &id in &dead {
        g.remove_op(id);
    }
    let inputs: HashSet<ValueId> = g.inputs.iter().copied().collect();
    let keep = |v: &ValueId| live_values[v.index()] || inputs.contains(v);
    let before = g.initializers.len() + g.sparse_initializers.len();
    let dropped: Vec<ValueId> =
        g.initializers.iter().chain(&g.sparse_initializers).copied().filter(|v| !keep(v)).collect();
    g.initializers.retain(keep);
    g.sparse_initializers.retain(keep);
    // Release the data of removed initializers.
    for v in dropped {
        g.value_mut(v).init = None;
    }
    let inits_removed = before - g.initializers.len() - g.sparse_initializers.len();
    let defined: HashSet<ValueId> = g
        .ops()
        .flat_map(|(_, op)| op.outputs().iter().flatten().copied().collect::<Vec<_>>())
        .chain(g.inputs.iter().copied())
        .chain(g.initializers.iter().copied())
        .chain(g.sparse_initializers.iter().copied())
        .collect();
    let decls_before = g.value_info.len();
    let value_info = std::mem::take(&mut g.value_info);
    let mut kept_positions = Vec::new();
    for (i, v) in value_info.into_iter().enumerate() {
        if defined.contains(&v) {
            kept_positions.push(i);
            g.value_info.push(v);
        } else if !g.outputs.contains(&v) {
            let value = g.value_mut(v);
            value.ty = None;
            value.doc_string = None;
            value.metadata.clear();
        }
    }
    // Keep overrides of value_info entries aligned with their new positions.
    let decls_removed = decls_before - g.value_info.len();
    if decls_removed > 0 {
        g.reindex_decl_overrides(qc_ir::DeclList::ValueInfo, &kept_positions);
    }
    let mut changed = !dead.is_empty() || inits_removed > 0 || decls_removed > 0;
    let ids: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
    for id in ids {
        for a in &mut g.op_mut(id).attrs {
            match &mut a.value {
                AttrValue::Graph(sub) => changed |= eliminate(sub, cx),
                AttrValue::Graphs(subs) => {
                    for sub in subs {
                        changed |= eliminate(sub, cx);
                    }
                }
                _ => {}
            }
        }
    }
    cx.count("ops-removed", dead.len() as u64);
    cx.count("initializers-removed", inits_removed as u64);
    cx.count("declarations-removed", decls_removed as u64);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use qc_ir::{AttrValue, Const, ElemType, Op, Tensor, TensorData};

    fn weight(name: &str) -> Const {
        Const::Dense(Box::new(Tensor {
            name: Some(name.into()),
            elem: Some(ElemType::F32),
            dims: vec![1],
            data: TensorData::Floats(vec![1.0]),
            segment: None,
            doc_string: None,
            metadata: vec![],
            explicit_default_location: false,
        }))
    }

    /// x -> Relu -> y (output); x, w -> Add -> dead; an unused initializer `u`; a value_info of
    /// the dead value; an If whose branch reads the outer `cap`, produced by a live op.
    fn model() -> Model {
        let mut g = Graph::new();
        let [x, y, w, dead, u, cap, z, cond] =
            ["x", "y", "w", "dead", "u", "cap", "z", "cond"].map(|n| g.value_named(n));
        g.inputs = vec![x, cond];
        g.outputs = vec![y, z];
        for (v, n) in [(w, "w"), (u, "u")] {
            g.value_mut(v).init = Some(weight(n));
            g.initializers.push(v);
        }
        g.value_info.push(dead);
        g.add_op(Op::new("Relu", None).with_name("live"), vec![Some(x)], vec![Some(y)]);
        g.add_op(Op::new("Add", None).with_name("gone"), vec![Some(x), Some(w)], vec![Some(dead)]);
        g.add_op(Op::new("Neg", None).with_name("captured"), vec![Some(x)], vec![Some(cap)]);
        let mut branch = Graph::new();
        let (c, o, d) = (branch.value_named("cap"), branch.value_named("o"), branch.value_named("d"));
        branch.outputs.push(o);
        branch.add_op(Op::new("Identity", None), vec![Some(c)], vec![Some(o)]);
        branch.add_op(Op::new("Identity", None).with_name("inner-dead"), vec![Some(c)], vec![Some(d)]);
        let iff = Op::new("If", None)
            .with_attr("then_branch", AttrValue::Graph(Box::new(branch.clone())))
            .with_attr("else_branch", AttrValue::Graph(Box::new(branch)));
        g.add_op(iff, vec![Some(cond)], vec![Some(z)]);
        Model { graph: g, ..Default::default() }
    }

    #[test]
    fn removes_what_no_output_needs_and_keeps_captured_values() {
        let mut m = model();
        assert!(qc_ir::verify_model(&m).is_empty());
        let mut cx = PassContext::default();
        assert_eq!(EliminateDead.run(&mut m, &mut cx).unwrap(), Changed::Yes);
        let names: Vec<String> = m.graph.ops().map(|(id, _)| m.graph.op_label(id)).collect();
        assert_eq!(names, ["live", "captured", "If#2"]);
        assert_eq!(cx.stats["ops-removed"], 3, "`gone` and the dead op of each branch");
        assert_eq!(cx.stats["initializers-removed"], 2);
        assert_eq!(cx.stats["declarations-removed"], 1);
        let AttrValue::Graph(b) = &m.graph.ops().nth(2).unwrap().1.attr("then_branch").unwrap().value else {
            panic!()
        };
        assert_eq!(b.op_count(), 1, "the dead op inside the branch is gone too");
        assert!(qc_ir::verify_model(&m).is_empty());
        let mut cx = PassContext::default();
        assert_eq!(EliminateDead.run(&mut m, &mut cx).unwrap(), Changed::No, "a second run changes nothing");
    }

    #[test]
    fn a_value_a_body_returns_by_name_is_live() {
        let mut m = qc_ir::text::parse_model(
            "ir_version 8\nopset_import \"\" 13\n\ngraph @g(%x: f32[2], %c: bool[]) -> (%z: ?) {
  %b = \"\"::Relu(%x)
  %z = \"\"::If(%c) {
    else_branch = graph @else() -> (%e: ?) {
      %e = \"\"::Neg(%x)
    },
    then_branch = graph @then() -> (%b: ?) {
    }
  }
}
",
        )
        .unwrap();
        let mut cx = PassContext::default();
        assert_eq!(EliminateDead.run(&mut m, &mut cx).unwrap(), Changed::No);
        assert_eq!(m.graph.op_count(), 2, "the Relu that `then` returns stays");
        assert!(qc_ir::verify_model(&m).is_empty());
    }
}
