//! ZigZag's (LOMA's) bottom-up memory allocator (`research/zigzag.md` 4.2): cuts one complete
//! loop order into per-operand, per-level temporal loops, filling each memory, lowest first, with
//! the combination of loop prefixes per operand that fits and minimises the traffic to the
//! level above.

use crate::arch::Accelerator;
use crate::cost::CostError;
use crate::cost::model::{Model, Rel, Spatial};
use crate::mapping::{OperandLinks, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::LoopNest;

/// ZigZag's `temporal_mapping_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MappingType {
    /// Each operand cuts the loop order at its own levels (ZigZag's default).
    #[default]
    Uneven,
    /// A loop sits at the same level index for all operands stored in one memory.
    Even,
}

/// Options of [`allocate`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AllocOptions {
    pub mapping_type: MappingType,
}

/// Allocates the loop order `order` (innermost first; the temporal loops left after the spatial
/// unrolling, see [`crate::cost::Evaluator::temporal_sizes`]) to the memory levels of each
/// operand, as ZigZag 3.9.1's `MemoryAllocator` does (double buffering of memories that force
/// it, shared memories filled jointly). Returns the mapping before stationarity merge-down.
pub fn allocate(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    spatial: &SpatialMapping,
    order: &[TemporalLoop],
    opts: &AllocOptions,
) -> Result<TemporalMapping, CostError> {
    let model = Model::new(layer, acc, links)?;
    let sp = Spatial::new(&model, acc, spatial)?;
    allocate_prepared(&model, &sp, acc, order, opts, None)
}

/// How much of the loop order each allocation decision looked at: what makes the allocation of
/// the lower levels the same for every ordering that shares a prefix (innermost loops) with this
/// one. Filled by [`crate::cost::Evaluator::allocate_traced`]; the search's lower bounds
/// ([`crate::cost::Evaluator::prefix_bounds`]) build on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocTrace {
    /// Per operand (the layer's operand order) and temporal level: the shortest prefix of the
    /// order (number of innermost loops) that decides where the level ends. A decision depends on
    /// the loops it tried (up to the first that did not fit) and on the earlier decisions of the
    /// same operands; what it reads of the loops above is their product or set, the same for
    /// every ordering of them.
    pub cut_req: Vec<Vec<usize>>,
    /// For an allocation that failed: the shortest prefix that decides the failure.
    pub fail_req: usize,
}

/// [`allocate`] with the per-layer tables already built (by [`crate::cost::Evaluator`]),
/// recording the decisions' dependence on the order in `trace` if given.
pub(crate) fn allocate_prepared(
    model: &Model,
    sp: &Spatial,
    acc: &Accelerator,
    order: &[TemporalLoop],
    opts: &AllocOptions,
    mut trace: Option<&mut AllocTrace>,
) -> Result<TemporalMapping, CostError> {
    let nd = model.dim_names.len();
    let mut order_idx = Vec::with_capacity(order.len());
    let mut per_dim = vec![1u64; nd];
    for l in order {
        let d = model.dim_or_err(&l.dim)?;
        per_dim[d] = per_dim[d].saturating_mul(l.size);
        order_idx.push((d, l.size));
    }
    for (d, &p) in per_dim.iter().enumerate() {
        if p != sp.temporal_sizes[d] {
            return Err(CostError::TemporalMismatch {
                layer: model.layer_name.clone(),
                role: "*".into(),
                dim: model.dim_names[d].clone(),
                product: p,
                expected: sp.temporal_sizes[d],
            });
        }
    }
    let nops = model.ops.len();
    // Per operand: loops allocated so far (spatial and temporal), next unallocated index,
    // current level, result.
    let mut allocated: Vec<Vec<(usize, f64)>> = (0..nops).map(|k| sp.frac[k].levels[0].clone()).collect();
    let mut next = vec![0usize; nops];
    let mut level = vec![1usize; nops];
    let mut result: Vec<Vec<Vec<TemporalLoop>>> = vec![Vec::new(); nops];
    let mut temporal_allocated = vec![0usize; nops];
    // Per operand: the prefix length its decisions so far depend on.
    let n = order_idx.len();
    let mut dep = vec![0usize; nops];
    if let Some(t) = trace.as_deref_mut() {
        t.cut_req.clear();
        t.cut_req.resize(nops, Vec::new());
        t.fail_req = n;
    }

    for (mi, mem) in acc.memories.iter().enumerate() {
        let ops: Vec<usize> =
            mem.operands.iter().filter_map(|mo| model.ops.iter().position(|o| o.mem == *mo)).collect();
        if ops.is_empty() {
            continue;
        }
        let cap = mem.size_bits as f64;
        let mut sizes: Vec<Vec<f64>> = Vec::with_capacity(ops.len());
        // The decision depends on the operands' earlier decisions and on the loops tried.
        let mut req = ops.iter().map(|&k| dep[k]).max().unwrap_or(0);
        for &k in &ops {
            let op = &model.ops[k];
            let rest = &order_idx[next[k]..];
            let prec = if op.is_output {
                let ir = |d: usize| op.rel[d] == Rel::Ir;
                let spatial_left = sp.frac[k].levels[level[k]..].iter().flatten().any(|&(d, _)| ir(d));
                if spatial_left || rest.iter().any(|&(d, _)| ir(d)) { op.prec } else { op.prec_final }
            } else {
                op.prec
            } as f64;
            let size_of = |extra: &[(usize, u64)]| {
                let mut dims = vec![1.0f64; nd];
                for &(d, s) in &allocated[k] {
                    dims[d] *= s;
                }
                for &(d, s) in extra {
                    dims[d] *= s as f64;
                }
                model.tensor_size(k, &dims) * prec
            };
            let all = if mem.double_buffering { size_of(rest) } else { 0.0 };
            let mut list = Vec::new();
            for i in 0..=rest.len() {
                let mut size = size_of(&rest[..i]);
                if mem.double_buffering && i < rest.len() && size < all {
                    size *= 2.0;
                }
                if size <= cap {
                    list.push(size);
                } else {
                    if i == 0 {
                        return failed(
                            &mut trace,
                            dep[k],
                            CostError::MemoryTooSmall {
                                layer: model.layer_name.clone(),
                                memory: mem.name.clone(),
                                role: op.role.clone(),
                                needed_bits: size,
                                capacity_bits: mem.size_bits,
                            },
                        );
                    }
                    break;
                }
            }
            // The prefixes `rest[..i]` with `i < list.len()` fit; `rest[..list.len()]`, if any, was
            // tried and did not.
            req = req.max(if list.len() > rest.len() { n } else { next[k] + list.len() });
            sizes.push(list);
        }
        // Top level of an operand: it must take everything left.
        let is_top: Vec<bool> = ops.iter().map(|&k| *model.ops[k].mems.last().unwrap() == mi).collect();
        let mut offsets = vec![0usize; ops.len()];
        for (j, &k) in ops.iter().enumerate() {
            if is_top[j] {
                let last = *sizes[j].last().unwrap();
                offsets[j] = sizes[j].len() - 1;
                sizes[j] = vec![last];
                let _ = k;
            }
        }
        let accesses: Vec<Vec<f64>> = ops
            .iter()
            .enumerate()
            .map(|(j, &k)| {
                sizes[j]
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| {
                        if is_top[j] {
                            0.0
                        } else {
                            let left: u64 =
                                order_idx[next[k] + i + offsets[j]..].iter().map(|l| l.1).product();
                            left as f64 * s
                        }
                    })
                    .collect()
            })
            .collect();
        let counts: Vec<usize> = sizes.iter().map(|s| s.len()).collect();
        let combos: usize = counts.iter().product();
        let mut best: Vec<usize> = vec![0; ops.len()];
        let mut best_acc = f64::INFINITY;
        let mut cur = vec![0usize; ops.len()];
        for i in 0..combos {
            let mut size = 0.0;
            let mut accs = 0.0;
            for j in 0..ops.len() {
                let div: usize = counts[j + 1..].iter().product();
                let c = (i / div) % counts[j];
                cur[j] = c + offsets[j];
                size += sizes[j][c];
                accs += accesses[j][c];
            }
            if size > cap {
                if i == 0 {
                    return failed(
                        &mut trace,
                        ops.iter().map(|&k| dep[k]).max().unwrap_or(0),
                        CostError::MemoryTooSmall {
                            layer: model.layer_name.clone(),
                            memory: mem.name.clone(),
                            role: ops
                                .iter()
                                .map(|&k| model.ops[k].role.as_str())
                                .collect::<Vec<_>>()
                                .join("+"),
                            needed_bits: size,
                            capacity_bits: mem.size_bits,
                        },
                    );
                }
                continue;
            }
            if accs <= best_acc
                && (opts.mapping_type == MappingType::Uneven
                    || even_ok(&ops, &cur, &next, &temporal_allocated, &order_idx))
            {
                best_acc = accs;
                best.clone_from(&cur);
            }
        }
        for (j, &k) in ops.iter().enumerate() {
            let take = &order_idx[next[k]..next[k] + best[j]];
            result[k].push(
                take.iter()
                    .map(|&(d, s)| TemporalLoop { dim: model.dim_names[d].clone(), size: s })
                    .collect(),
            );
            for &(d, s) in take {
                allocated[k].push((d, s as f64));
            }
            next[k] += best[j];
            temporal_allocated[k] += best[j];
            if let Some(lv) = sp.frac[k].levels.get(level[k]) {
                allocated[k].extend(lv.iter().copied());
            }
            if is_top[j] && next[k] < order_idx.len() {
                return failed(
                    &mut trace,
                    req,
                    CostError::HierarchyTooSmall {
                        layer: model.layer_name.clone(),
                        memory: mem.name.clone(),
                        role: model.ops[k].role.clone(),
                    },
                );
            }
            level[k] += 1;
            dep[k] = req;
            if let Some(t) = trace.as_deref_mut() {
                t.cut_req[k].push(if is_top[j] { n } else { req });
            }
        }
    }
    Ok(TemporalMapping {
        operands: model.ops.iter().zip(result).map(|(op, lv)| (op.role.clone(), lv)).collect(),
    })
}

/// Records what a failed allocation depended on, and fails.
fn failed(
    trace: &mut Option<&mut AllocTrace>,
    req: usize,
    e: CostError,
) -> Result<TemporalMapping, CostError> {
    if let Some(t) = trace.as_deref_mut() {
        t.fail_req = req;
    }
    Err(e)
}

/// ZigZag's check for the even mapping type: no loop position is allocated for one operand and
/// left unallocated for another.
fn even_ok(ops: &[usize], cur: &[usize], next: &[usize], done: &[usize], order: &[(usize, u64)]) -> bool {
    let _ = order;
    let mut to_alloc: Vec<usize> = Vec::new();
    let mut to_keep: Vec<usize> = Vec::new();
    for (j, &k) in ops.iter().enumerate() {
        let base = done[k];
        let left = order.len() - next[k];
        for i in 0..cur[j].min(left) {
            to_alloc.push(base + i);
        }
        for i in cur[j]..left {
            to_keep.push(base + i);
        }
    }
    !to_alloc.iter().any(|p| to_keep.contains(p))
}
