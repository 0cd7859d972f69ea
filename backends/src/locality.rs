//! Inter-layer data locality, as ZigZag 3.9.1 does it (`SearchInterLayerDataLocalityStage` and
//! `ExploitInterLayerDataLocalityStage`; `research/zigzag.md` 4.4, `spec/locality.md`).
//!
//! Without it every layer reads its inputs from, and writes its output to, each operand's top
//! memory (normally DRAM). With it, [`place`] walks the network in topological order and keeps
//! a layer's output, when it fits, in a lower memory that the next layer reads its input from;
//! weights go to the lowest single-instance memory that holds all of the network's weights
//! with some layer's input and output. [`restrict`] then gives each layer the accelerator it
//! sees: per operand, the memories above its placement are gone (the placement becomes the
//! operand's top level), so the cost model charges no DRAM round trip between the two layers.
//!
//! [`place`] follows ZigZag's rules exactly, including their limits: only the first
//! predecessor of a layer is looked at, a tensor read by more than one layer (a branch start)
//! or joining another (a branch end) always goes back to the top memory, the capacity test
//! counts the layer's own input and output (and all weights when the memory holds weights),
//! and nothing is reserved across more than the producer and its consumer.

use crate::arch::{Accelerator, MemOperand};
use crate::cost::CostError;
use crate::cost::model::PreparedLayer;
use crate::mapping::OperandLinks;
use qc_ir::{LoopNest, Source};

/// Options of [`place`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalityOptions {
    /// ZigZag's `workload_data_always_from_top_mem`: the network's input is read from, and its
    /// output written to, the top memory (by default they too are placed by capacity, as if the
    /// input were already on chip and the output left there).
    pub data_from_top_memory: bool,
}

/// Where one layer's operands live: per layer operand role, the memory (an index into
/// [`Accelerator::memories`]) that is the top of its hierarchy for this layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperandTops {
    pub tops: Vec<(String, usize)>,
}

impl OperandTops {
    /// The top memory of operand `role`.
    pub fn top(&self, role: &str) -> Option<usize> {
        self.tops.iter().find(|(r, _)| r == role).map(|(_, g)| *g)
    }
}

/// One layer's operands as the placement sees them.
struct Roles {
    /// The activation input (the non-constant input; of a layer with no constant input, its
    /// second input), its memory operand and size in bits (of such a layer: both inputs).
    act: (String, MemOperand, f64),
    /// The weights (the constant input; of a layer with no constant input, its first input).
    w: Option<(String, MemOperand, f64)>,
    out: (String, MemOperand, f64),
    /// Whether an input is constant (its weights count towards all the network's weights).
    has_constant: bool,
}

fn roles(layer: &LoopNest, acc: &Accelerator, links: &OperandLinks) -> Result<Roles, CostError> {
    let model = PreparedLayer::new(layer, acc, links)?;
    let bits = |role: &str| {
        model
            .ops
            .iter()
            .find(|o| o.role == role)
            .map_or((MemOperand::I1, 0.0), |o| (o.mem, o.size_elem * o.prec as f64))
    };
    let entry = |role: &str| {
        let (mem, size) = bits(role);
        (role.to_string(), mem, size)
    };
    let out = entry(&layer.output.role);
    // ZigZag's `get_act_layer_op` and `get_weight_layer_op`, inputs in the equation's order.
    let inputs: Vec<&str> = layer.inputs.iter().map(|o| o.role.as_str()).collect();
    let constant: Vec<&str> =
        layer.inputs.iter().filter(|o| o.source == Source::Constant).map(|o| o.role.as_str()).collect();
    let (act, w) = match constant.as_slice() {
        [w] => (inputs.iter().rev().find(|r| *r != w).copied(), Some(*w)),
        [] => match inputs.as_slice() {
            [first, second, ..] => (Some(*second), Some(*first)),
            [only] => (Some(*only), None),
            [] => (None, None),
        },
        // Several constants (a first layer reading the network input as a constant): the
        // activation is the input indexed by the first relation (or the first input).
        _ => {
            let act = match layer.relations.first() {
                None => inputs.first().copied(),
                Some(rel) => layer
                    .inputs
                    .iter()
                    .rev()
                    .find(|o| o.index.contains(&rel.name))
                    .map(|o| o.role.as_str())
                    .or(inputs.first().copied()),
            };
            (act, constant.iter().rev().find(|r| Some(**r) != act).copied())
        }
    };
    let mut act = entry(act.unwrap_or(&layer.output.role));
    if constant.is_empty() {
        // Both inputs are activations: their sizes add up.
        act.2 = inputs.iter().map(|r| bits(r).1).sum();
    }
    let w = w.map(entry);
    Ok(Roles { act, w, out, has_constant: !constant.is_empty() })
}

/// Places every layer's operands (see the module documentation). `layers` are the costed
/// layers in topological order, `preds[i]` the indices (into `layers`) of the layers whose
/// outputs layer `i` reads ([`qc_ir::Workload::dataflow`]), `links[i]` its operand links.
pub fn place(
    layers: &[&LoopNest],
    preds: &[Vec<usize>],
    acc: &Accelerator,
    links: &[&OperandLinks],
    opts: &LocalityOptions,
) -> Result<Vec<OperandTops>, CostError> {
    let n = layers.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let roles: Vec<Roles> =
        layers.iter().zip(links).map(|(l, k)| roles(l, acc, k)).collect::<Result<_, _>>()?;
    let w_all: f64 = roles.iter().filter(|r| r.has_constant).filter_map(|r| r.w.as_ref()).map(|w| w.2).sum();
    let top = |m: MemOperand| acc.levels(m).last().copied();
    let (top_act, top_o) = (top(roles[0].act.1), top(roles[0].out.1));
    let top_w = roles[0].w.as_ref().and_then(|w| top(w.1));
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in preds.iter().enumerate() {
        for &j in p {
            succs[j].push(i);
        }
    }
    // Per layer: (activation, output) levels, `None` until set; a level only goes down.
    let mut lvl: Vec<[Option<usize>; 2]> = vec![[None, None]; n];
    let set = |e: &mut Option<usize>, g: Option<usize>| {
        if let Some(g) = g
            && e.is_none_or(|x| x > g)
        {
            *e = Some(g);
        }
    };
    let mut lvl_w = top_w;
    for i in 0..n {
        let r = &roles[i];
        if i > 0
            && let Some(&p) = preds[i].first()
        {
            let from = lvl[p][1];
            set(&mut lvl[i][0], from);
        }
        let branch_start = succs[i].len() > 1;
        let branch_end = succs[i].len() == 1 && preds[succs[i][0]].len() > 1;
        if branch_start || branch_end {
            set(&mut lvl[i][1], top_o);
            if i == 0 {
                set(&mut lvl[i][0], top_act);
            }
            continue;
        }
        let next_act = succs[i].first().map_or(r.act.1, |&s| roles[s].act.1);
        for g in (0..acc.memories.len()).rev() {
            let mem = &acc.memories[g];
            let io_ok = mem.holds(r.out.1) && mem.holds(next_act);
            let w_ok = r.w.as_ref().is_some_and(|w| mem.holds(w.1));
            if !(io_ok || w_ok) {
                continue;
            }
            let w_mem = r.w.as_ref().map(|w| w.1);
            let mut need: f64 = mem
                .operands
                .iter()
                .filter(|&&op| Some(op) != w_mem)
                .map(|&op| {
                    let mut s = 0.0;
                    if op == r.act.1 {
                        s += r.act.2;
                    }
                    if op == r.out.1 {
                        s += r.out.2;
                    }
                    s
                })
                .sum();
            if w_ok {
                need += w_all;
            }
            let cap = mem.size_bits as f64 * acc.instances(g) as f64;
            if need > cap {
                continue;
            }
            if io_ok {
                set(&mut lvl[i][1], Some(g));
                if i == 0 {
                    set(&mut lvl[i][0], Some(g));
                }
            }
            if w_ok && mem.served_dims.len() == acc.array.dims.len() && lvl_w.is_none_or(|x| g < x) {
                lvl_w = Some(g);
            }
        }
    }
    if opts.data_from_top_memory {
        lvl[0][0] = top_act;
        lvl[n - 1][1] = top_o;
    }
    Ok(roles
        .iter()
        .zip(&lvl)
        .map(|(r, l)| {
            // An entry ZigZag leaves unset (it asserts) stays at the operand's top.
            let act = l[0].or_else(|| top(r.act.1)).unwrap_or(0);
            let out = l[1].or_else(|| top(r.out.1)).unwrap_or(0);
            let mut tops = vec![(r.out.0.clone(), out), (r.act.0.clone(), act)];
            if let Some(w) = &r.w {
                // Of a layer with no constant input, both inputs go where the activation goes.
                let g = if r.has_constant { lvl_w.or_else(|| top(w.1)).unwrap_or(0) } else { act };
                tops.push((w.0.clone(), g));
            }
            OperandTops { tops }
        })
        .collect())
}

/// The accelerator one layer sees: of each memory, only the memory operands in `tops` at or
/// below their top (`(memory operand, memory index)`), with their port allocations; memories
/// left with no operand are dropped. The array is unchanged.
pub fn restrict(acc: &Accelerator, tops: &[(MemOperand, usize)]) -> Accelerator {
    let mut out = acc.clone();
    for (g, m) in out.memories.iter_mut().enumerate() {
        m.operands.retain(|op| tops.iter().any(|(o, t)| o == op && g <= *t));
        let kept = m.operands.clone();
        for p in &mut m.ports {
            p.allocation.retain(|(op, _)| kept.contains(op));
        }
    }
    out.memories.retain(|m| !m.operands.is_empty());
    out
}

/// [`restrict`] for a layer placed by [`place`], whose operands reach memory through `links`:
/// each memory operand's top is the highest placement of the layer operands linked to it.
pub fn restrict_placed(acc: &Accelerator, links: &OperandLinks, placement: &OperandTops) -> Accelerator {
    let mut tops: Vec<(MemOperand, usize)> = Vec::new();
    for (role, g) in &placement.tops {
        let Some(m) = links.mem(role) else { continue };
        match tops.iter_mut().find(|(o, _)| *o == m) {
            Some(e) => e.1 = e.1.max(*g),
            None => tops.push((m, *g)),
        }
    }
    restrict(acc, &tops)
}
