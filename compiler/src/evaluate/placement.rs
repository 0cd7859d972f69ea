//! `qc evaluate --target`: the ops a DLA target runs and those that fall back to the CPU, as
//! `qc check --target` places them, matched to the lowered layers.
//!
//! Only the layers of ops placed on the DLA are costed on the accelerator. The report gives the
//! split (ops and MACs per unit, the share of the model's MACs) and every CPU op with the rule
//! that sent it there, as Kneron's IP evaluator lists the ops its NPU does not run.

use std::collections::HashMap;

use qc_backends::report::{CpuOp, Split, UnitShare};
use qc_ir::{Compute, LoopNest, Workload};
use qc_passes::check::{CheckReport, Unit};

/// Where each layer of a workload runs.
pub(crate) struct Placed {
    pub split: Split,
    /// The unit of every placed op, by node name.
    unit_of: HashMap<String, Unit>,
    /// The rule that sent each CPU op there, by node name.
    rule_of: HashMap<String, String>,
    /// Ops the target absorbs (quantizers, constant subgraphs), by node name.
    absorbed: HashMap<String, &'static str>,
}

/// Where a layer runs.
pub(crate) enum LayerUnit<'a> {
    Dla,
    /// On the CPU, with the rule that sent it there.
    Cpu(&'a str),
    /// Absorbed by the target (a constant subgraph the DLA compiler folds).
    Absorbed(&'static str),
    /// No op of the check has the layer's node name.
    Unplaced,
}

impl Placed {
    /// The placement of `report` matched to the layers of `w`.
    pub fn new(report: &CheckReport, w: &Workload) -> Placed {
        let unit_of: HashMap<String, Unit> =
            report.placement.iter().map(|p| (p.node.clone(), p.unit)).collect();
        let absorbed = report.absorbed.iter().map(|a| (a.node.clone(), a.reason.name())).collect();
        // MACs per node: a recurrent op's layers (`node/part`) count for their node.
        let mut macs: HashMap<&str, u128> = HashMap::new();
        for l in w.layers.iter().filter(|l| l.compute == Compute::Mac) {
            if let Some(node) = node_of(&l.name, &unit_of) {
                // Saturating: layers past 2^64 MACs are refused by the cost model
                // (`qc::costmodel::too_large`), so a sum this large is never reported.
                let m = macs.entry(node).or_default();
                *m = m.saturating_add(l.iterations());
            }
        }
        let mut split = Split {
            target: report.target.clone(),
            dla: UnitShare::default(),
            cpu: UnitShare::default(),
            cpu_ops: Vec::new(),
            uncounted: Vec::new(),
        };
        // Compute ops the lowering left out have MACs nobody counted: said, not taken as 0.
        let unlowered: std::collections::HashSet<&str> = w
            .not_lowered
            .iter()
            .filter(|n| super::ZIGZAG_COSTED.contains(&n.op_type.as_str()))
            .map(|n| n.node.as_str())
            .collect();
        let mut rule_of = HashMap::new();
        for p in &report.placement {
            if unlowered.contains(p.node.as_str()) {
                split.uncounted.push(p.node.clone());
            }
            let m = macs.get(p.node.as_str()).copied().unwrap_or(0);
            let share = if p.unit == Unit::Dla { &mut split.dla } else { &mut split.cpu };
            share.ops += 1;
            share.macs = share.macs.saturating_add(m);
            if p.unit == Unit::Cpu {
                let (rule, reason) = match &p.because {
                    Some((rule, message)) => (rule.code().to_string(), message.clone()),
                    None => ("(no rule recorded)".to_string(), "the target places it on the CPU".to_string()),
                };
                rule_of.insert(p.node.clone(), rule.clone());
                split.cpu_ops.push(CpuOp {
                    node: p.node.clone(),
                    op_type: p.op_type.clone(),
                    macs: m,
                    rule,
                    reason,
                });
            }
        }
        Placed { split, unit_of, rule_of, absorbed }
    }

    /// Where `layer` runs.
    pub fn unit(&self, layer: &LoopNest) -> LayerUnit<'_> {
        match node_of(&layer.name, &self.unit_of) {
            Some(node) => match self.unit_of[node] {
                Unit::Dla => LayerUnit::Dla,
                Unit::Cpu => {
                    LayerUnit::Cpu(self.rule_of.get(node).map_or("no rule recorded", String::as_str))
                }
            },
            None => match node_of(&layer.name, &self.absorbed) {
                Some(node) => LayerUnit::Absorbed(self.absorbed[node]),
                None => LayerUnit::Unplaced,
            },
        }
    }
}

/// The node a layer comes from: its own name, else (for the layers of a recurrent op, named
/// `node/part`) the longest prefix before a `/` that names a node.
fn node_of<'n, V>(layer: &'n str, nodes: &HashMap<String, V>) -> Option<&'n str> {
    if nodes.contains_key(layer) {
        return Some(layer);
    }
    let mut end = layer.len();
    while let Some(i) = layer[..end].rfind('/') {
        if nodes.contains_key(&layer[..i]) {
            return Some(&layer[..i]);
        }
        end = i;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recurrent_layer_belongs_to_its_node() {
        let nodes: HashMap<String, ()> = [("/rnn/LSTM".to_string(), ()), ("conv".to_string(), ())].into();
        assert_eq!(node_of("/rnn/LSTM/input", &nodes), Some("/rnn/LSTM"));
        assert_eq!(node_of("conv", &nodes), Some("conv"));
        assert_eq!(node_of("/rnn/GRU/input", &nodes), None);
    }
}
