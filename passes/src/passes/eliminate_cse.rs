//! `eliminate-common-subexpressions`: merges ops and constants that compute the same thing.
//!
//! What it does, in the main graph:
//! - **Initializers**: two dense initializers with the same element type, dims, bytes and
//!   quantization spec are one; readers of the later one read the first, and the later one is
//!   dropped. Initializers that are graph inputs (overridable defaults) or graph outputs are
//!   left alone.
//! - **Ops**: walking in program order (or a topological order, if the program order is not), an op with the same domain, op type, overload,
//!   attributes (in any order) and inputs as an earlier op is merged into it: readers of each of
//!   its outputs read the earlier op's output in the same slot, and it is removed. Chains of
//!   duplicates merge in one run. Only deterministic ops qc knows are merged: not custom-domain
//!   ops qc has no schema for, not `Dropout`, `RandomNormal`, `RandomUniform`,
//!   `RandomNormalLike`, `RandomUniformLike`, `Multinomial`, `Bernoulli`, and not ops with
//!   If/Loop/Scan bodies.
//!
//! A duplicate is kept when one of its outputs (or the initializer itself) is a graph output,
//! since graph output names never change, or is read by name from an If/Loop/Scan body. Ops
//! inside bodies are not touched. `value_info` declarations of values no longer written are left
//! for `eliminate-dead`.
//!
//! Preconditions: none. Postconditions: the model computes the same outputs; no two remaining
//! mergeable ops or initializers are equal (except those kept above).
//!
//! Statistics: `ops-merged`, `initializers-merged`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use qc_ir::{AttrValue, Attribute, Model, Op, OpId, OpKind, ValueId};

use crate::eval::Array;
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{captured_names, redirect_uses, stable_order};

pub const INFO: PassInfo = PassInfo {
    name: "eliminate-common-subexpressions",
    summary: "merge ops with equal inputs and attributes, and equal constant initializers",
    options: &[],
    build: |_| Ok(Box::new(EliminateCse)),
};

/// The `eliminate-common-subexpressions` pass.
pub struct EliminateCse;

impl Pass for EliminateCse {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let captured = captured_names(&model.graph);
        let inits = merge_initializers(model, &captured);
        let ops = merge_ops(model, &captured);
        cx.count("ops-merged", ops);
        cx.count("initializers-merged", inits);
        Ok(Changed::from_bool(inits + ops > 0))
    }
}

const NONDETERMINISTIC: [&str; 7] = [
    "Dropout",
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
];

/// Whether `v` may disappear: not a graph input or output, not read by name from a body.
fn replaceable(model: &Model, v: ValueId, captured: &std::collections::HashSet<String>) -> bool {
    let g = &model.graph;
    !g.outputs.contains(&v) && !g.inputs.contains(&v) && !captured.contains(&g.value(v).name)
}

/// The element type, dims and bytes of a dense initializer (`None` if unreadable). The bytes
/// are the tensor's own (a cheap handle for raw and external data), in the `raw_data` layout
/// whichever field the tensor uses; strings go through the evaluator's array.
fn init_key(model: &Model, v: ValueId) -> Option<(i32, Vec<i64>, bytes::Bytes)> {
    let t = model.graph.value(v).tensor()?;
    let bytes = match model.tensor_bytes(t) {
        Ok(b) => b,
        Err(_) => bytes::Bytes::from(Array::from_tensor(t, model).ok()?.raw_bytes()),
    };
    Some((t.elem_type().code(), t.dims.clone(), bytes))
}

/// A hash of the length and of up to 64 KiB of samples spread over `bytes`: enough to tell
/// different weights apart, while merging compares every byte on a hit. Hashing every byte of a
/// multi-gigabyte model would cost seconds.
fn sample_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.len().hash(&mut h);
    const WINDOW: usize = 64;
    const WINDOWS: usize = 1024;
    if bytes.len() <= WINDOW * WINDOWS {
        bytes.hash(&mut h);
    } else {
        let step = (bytes.len() - WINDOW) / (WINDOWS - 1);
        for i in 0..WINDOWS {
            bytes[i * step..i * step + WINDOW].hash(&mut h);
        }
    }
    h.finish()
}

fn merge_initializers(model: &mut Model, captured: &std::collections::HashSet<String>) -> u64 {
    // Bucket by a hash of the bytes, and compare the bytes again on a hit, so that the table
    // does not hold a second copy of every weight.
    let mut seen: HashMap<(i32, Vec<i64>, u64), Vec<ValueId>> = HashMap::new();
    let mut dropped = Vec::new();
    let inits = model.graph.initializers.clone();
    for v in inits {
        let Some((elem, dims, bytes)) = init_key(model, v) else { continue };
        let key = (elem, dims, sample_hash(&bytes));
        let candidates = seen.entry(key).or_default();
        let same = candidates.iter().copied().find(|&c| {
            model.graph.value(c).quant == model.graph.value(v).quant
                && init_key(model, c).is_some_and(|(_, _, b)| b == bytes)
        });
        match same {
            Some(keep) if replaceable(model, v, captured) => {
                redirect_uses(&mut model.graph, v, keep);
                dropped.push(v);
            }
            Some(_) => {}
            None => {
                if !model.graph.inputs.contains(&v) {
                    candidates.push(v);
                }
            }
        }
    }
    let g = &mut model.graph;
    let gone: std::collections::HashSet<ValueId> = dropped.iter().copied().collect();
    g.initializers.retain(|v| !gone.contains(v));
    for &v in &dropped {
        g.value_mut(v).init = None;
    }
    dropped.len() as u64
}

/// Whether `op` may be merged with an equal op.
fn mergeable(op: &Op) -> bool {
    op.kind() != OpKind::Custom
        && !NONDETERMINISTIC.contains(&op.op_type())
        && !op.attrs.iter().any(|a| matches!(a.value, AttrValue::Graph(_) | AttrValue::Graphs(_)))
        && op.outputs().iter().any(Option::is_some)
}

/// The attributes sorted by name, so that order does not matter.
fn sorted_attrs(op: &Op) -> Vec<&Attribute> {
    let mut attrs: Vec<&Attribute> = op.attrs.iter().collect();
    attrs.sort_by(|a, b| a.name.cmp(&b.name));
    attrs
}

fn equal_ops(a: &Op, b: &Op) -> bool {
    a.domain() == b.domain()
        && a.op_type() == b.op_type()
        && a.overload == b.overload
        && a.inputs() == b.inputs()
        && a.outputs().len() == b.outputs().len()
        && a.outputs().iter().zip(b.outputs()).all(|(x, y)| x.is_some() == y.is_some())
        && sorted_attrs(a) == sorted_attrs(b)
}

/// Domain, op type and inputs: the bucket in which equal ops are looked for.
type OpKey = (String, String, Vec<Option<ValueId>>);

fn merge_ops(model: &mut Model, captured: &std::collections::HashSet<String>) -> u64 {
    let Some(order) = stable_order(&model.graph) else { return 0 };
    let mut seen: HashMap<OpKey, Vec<OpId>> = HashMap::new();
    let mut merged = 0;
    for id in order {
        let op = model.graph.op(id);
        if !mergeable(op) {
            continue;
        }
        let key = (op.domain().to_string(), op.op_type().to_string(), op.inputs().to_vec());
        let keep = seen.get(&key).and_then(|c| c.iter().copied().find(|&k| equal_ops(model.graph.op(k), op)));
        let outs: Vec<Option<ValueId>> = op.outputs().to_vec();
        let Some(keep) = keep else {
            seen.entry(key).or_default().push(id);
            continue;
        };
        if !outs.iter().flatten().all(|&v| replaceable(model, v, captured)) {
            continue;
        }
        let kept: Vec<Option<ValueId>> = model.graph.op(keep).outputs().to_vec();
        for (from, to) in outs.iter().zip(&kept) {
            if let (Some(from), Some(to)) = (from, to) {
                redirect_uses(&mut model.graph, *from, *to);
            }
        }
        model.graph.remove_op(id);
        merged += 1;
    }
    merged
}
