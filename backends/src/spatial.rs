//! Fitting a user's spatial mapping (a mapping file's `spatial_mapping`) to one layer on one
//! accelerator, as ZigZag 3.9.1 does before it costs a layer (`SpatialMappingGeneratorStage`:
//! `get_max_unrolling`, `SpatialMapping.check_and_reduce`, `limit_unrolling_to_mem_capacity`).
//! A mapping file is written for a whole network, so a layer often has fewer iterations than the
//! file unrolls (`K, 32` on a layer with `K = 3`), or lacks the dim altogether.
//!
//! The rules, in order:
//! 1. Layer dims the layer does not have are dropped.
//! 2. Each unrolling is capped at its maximum: `min(layer dim size, array dim size)`, and, for a
//!    dim that is not irrelevant to an operand whose innermost memory serves that array dim,
//!    `bandwidth / precision` of that memory's port to the array (`tl` for inputs, `fl` for the
//!    output, whose precision is the partial sum's).
//! 3. An array dim whose unrollings multiply past its size loses unrollings, first listed first.
//! 4. A layer dim unrolled more than its size in total loses unrollings, last array dim first.
//! 5. For each innermost memory, the product of the unrollings of the dims relevant to one of its
//!    operands over the array dims it serves must not exceed the elements it can hold
//!    (`size / precision`): the largest factor is decreased by one until it does.
//!
//! Array dims the entry leaves out unroll nothing (ZigZag would search them; that is
//! `qc evaluate` without `--fixed-mapping`). Every change is reported as a note.

use crate::arch::{Accelerator, Direction};
use crate::mapping::{OperandLinks, SpatialMapping};
use qc_ir::LoopNest;

/// A fitted spatial mapping and what was changed to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub mapping: SpatialMapping,
    /// One line per change, for the user.
    pub notes: Vec<String>,
}

/// Whether layer dim `dim` (upper-case) is irrelevant to the operand with `index`: it indexes
/// the operand neither directly nor through a relation the index uses.
fn irrelevant(layer: &LoopNest, index: &[String], dim: &str) -> bool {
    let lower = dim.to_ascii_lowercase();
    !index
        .iter()
        .any(|i| *i == lower || layer.relation(i).is_some_and(|r| r.terms.iter().any(|(_, t)| *t == lower)))
}

/// The memories that are the lowest level of every operand they hold (ZigZag's
/// `get_inner_memories`).
fn inner_memories(acc: &Accelerator) -> Vec<usize> {
    (0..acc.memories.len())
        .filter(|&i| acc.memories[i].operands.iter().all(|op| acc.levels(*op).first() == Some(&i)))
        .collect()
}

/// The layer operands an inner memory holds: (index, precision in bits, is output).
fn held_operands<'a>(
    layer: &'a LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    mem: usize,
) -> Vec<(&'a [String], u32, bool, crate::arch::MemOperand)> {
    let m = &acc.memories[mem];
    m.operands
        .iter()
        .filter_map(|op| {
            let role = links.role(*op)?;
            if role == "O" {
                let prec = layer.psum_precision.or(layer.output.precision)?;
                Some((layer.output.index.as_slice(), prec, true, *op))
            } else {
                let o = layer.operand(role)?;
                Some((o.index.as_slice(), o.precision.unwrap_or(0), false, *op))
            }
        })
        .collect()
}

/// Fits `user` to `layer` on `acc` (see the module documentation).
pub fn fit_user_mapping(
    user: &SpatialMapping,
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
) -> Fitted {
    let mut notes = Vec::new();
    let inner = inner_memories(acc);
    let array_size = |oa: &str| acc.array.dim_index(oa).map_or(0, |i| acc.array.dims[i].size);
    // Maximum unrolling of a layer dim on an array dim.
    let max_unroll = |oa: &str, dim: &str| -> u64 {
        let mut max = layer.size(dim).unwrap_or(0).min(array_size(oa));
        let Some(oa_index) = acc.array.dim_index(oa) else { return max };
        for &mem in &inner {
            if !acc.memories[mem].served_dims.contains(&oa_index) {
                continue;
            }
            for (index, prec, is_output, op) in held_operands(layer, acc, links, mem) {
                if prec == 0 || irrelevant(layer, index, dim) {
                    continue;
                }
                let dir = if is_output { Direction::FromLow } else { Direction::ToLow };
                if let Some(port) = acc.memories[mem].port_for(op, dir) {
                    max = max.min(port.bw_max / u64::from(prec));
                }
            }
        }
        max
    };

    let mut dims: Vec<(String, Vec<(String, u64)>)> = Vec::new();
    for (oa, unrollings) in &user.dims {
        let mut kept = Vec::new();
        for (dim, factor) in unrollings {
            if layer.size(dim).is_none() {
                notes.push(format!("{oa}: `{dim}, {factor}` dropped: the layer has no {dim}"));
                continue;
            }
            let max = max_unroll(oa, dim);
            if *factor > max {
                notes.push(format!(
                    "{oa}: `{dim}, {factor}` reduced to {max} (layer, array or bandwidth limit)"
                ));
                kept.push((dim.clone(), max));
            } else {
                kept.push((dim.clone(), *factor));
            }
        }
        let size = array_size(oa);
        while kept.iter().map(|(_, f)| *f).product::<u64>() > size && !kept.is_empty() {
            let (dim, f) = kept.remove(0);
            notes.push(format!("{oa}: `{dim}, {f}` dropped: the unrollings exceed the array dim's {size}"));
        }
        dims.push((oa.clone(), kept));
    }
    // A layer dim unrolled past its size loses unrollings, last array dim first.
    for d in &layer.dims {
        let total = |dims: &[(String, Vec<(String, u64)>)]| -> u64 {
            dims.iter().flat_map(|(_, u)| u).filter(|(n, _)| *n == d.name).map(|(_, f)| *f).product()
        };
        while total(&dims) > d.size {
            let Some((oa, u)) = dims.iter_mut().rev().find(|(_, u)| u.iter().any(|(n, _)| *n == d.name))
            else {
                break;
            };
            u.retain(|(n, _)| *n != d.name);
            notes
                .push(format!("{oa}: `{}` dropped: unrolled more than its size {} in total", d.name, d.size));
        }
    }
    // Capacity of the innermost memories.
    for &mem in &inner {
        let m = &acc.memories[mem];
        for (index, prec, _, _) in held_operands(layer, acc, links, mem) {
            if prec == 0 {
                continue;
            }
            let capacity = m.size_bits / u64::from(prec);
            let mut slots: Vec<(usize, usize)> = Vec::new();
            for (i, (oa, u)) in dims.iter().enumerate() {
                let served = acc.array.dim_index(oa).is_some_and(|x| m.served_dims.contains(&x));
                if served {
                    for (j, (dim, _)) in u.iter().enumerate() {
                        if !irrelevant(layer, index, dim) {
                            slots.push((i, j));
                        }
                    }
                }
            }
            let product = |dims: &[(String, Vec<(String, u64)>)]| -> u64 {
                slots.iter().map(|&(i, j)| dims[i].1[j].1).product()
            };
            if product(&dims) <= capacity {
                continue;
            }
            while product(&dims) > capacity {
                // The first of the largest factors, as ZigZag picks it.
                let mut pick: Option<(usize, usize)> = None;
                for &(i, j) in &slots {
                    let f = dims[i].1[j].1;
                    if f > 1 && pick.is_none_or(|(pi, pj)| f > dims[pi].1[pj].1) {
                        pick = Some((i, j));
                    }
                }
                let Some((i, j)) = pick else { break };
                dims[i].1[j].1 -= 1;
            }
            notes.push(format!(
                "unrollings reduced to fit `{}` ({} elements of {prec} bits)",
                m.name, capacity
            ));
        }
    }
    Fitted { mapping: SpatialMapping { dims }, notes }
}
