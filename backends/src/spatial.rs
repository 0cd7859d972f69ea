//! Spatial mappings of one layer on one accelerator, as ZigZag 3.9.1's
//! `SpatialMappingGeneratorStage` makes them: [`generate`] reproduces the candidates it
//! generates, in its order, and [`fit_user_mapping`] fits a mapping file's `spatial_mapping` to
//! a layer (the same rules, without the search, leaving unlisted array dims unrolled once).
//!
//! The rules, in order:
//! 1. **Maximum unrolling** ([`max_unrollings`]): a layer dim unrolls on an array dim at most
//!    `min(layer dim size, array dim size)` times, and, when it is not irrelevant to an operand
//!    whose innermost memory serves that array dim, at most `bandwidth / precision` times (the
//!    memory's port to the array: read towards the array for inputs, written from it for the
//!    output, whose precision is the partial sum's).
//! 2. **The user's mapping** (ZigZag's `check_and_reduce`): layer dims the layer does not have
//!    are dropped; each unrolling is capped at its maximum; an array dim whose unrollings
//!    multiply past its size loses whole unrollings; a layer dim unrolled past its size in total
//!    loses unrollings on some array dim. Which ones go is what ZigZag's iteration order over
//!    Python sets picks; qc reproduces that order (see "Set order" below).
//! 3. **Candidates per array dim left to fill**: for each layer dim of the entry's
//!    `spatial_mapping_hint` for that array dim (all the layer's dims when there is no hint, or
//!    when none of the hinted dims is the layer's), every divisor of its maximum unrolling,
//!    largest first; with mixed unrolling ([`SpatialOptions::mixed`]), then every combination
//!    of two or more hinted dims at every combination of their non-trivial divisors whose
//!    product fits the array dim.
//! 4. **Ranking** (ZigZag's `get_performance_indicator`): a complete mapping (the user's part
//!    plus one candidate per array dim) is valid when no factor exceeds its maximum, no array
//!    dim is over-filled and no layer dim is unrolled past its size; it is scored
//!    `u + u / m - 1` for hardware utilization `u` (the product of all factors) and largest
//!    total unrolling of one layer dim `m`. The best [`SpatialOptions::count`] are kept, ties
//!    broken by the candidates' generation order (per array dim, in array dim order), as
//!    ZigZag's branch-and-bound `best_candidates` does.
//! 5. **Capacity** (ZigZag's `limit_unrolling_to_mem_capacity`): for each innermost memory and
//!    operand it holds, the product of the factors of the dims not irrelevant to the operand,
//!    over the array dims the memory serves, must not exceed the elements the memory holds
//!    (`size / precision`): the first largest factor is decreased by one until it does (and the
//!    new factors are given back by old value, as ZigZag does, so equal factors end up equal).
//!    ZigZag limits the candidates one after another *in place*, and candidates share the
//!    per-array-dim mappings they were built from: limiting one candidate can change an earlier
//!    one. [`generate`] reproduces that too.
//!
//! **Set order.** ZigZag keeps hints, the dims of one array dim and the array dims a memory
//! serves in Python sets, and its results depend on their iteration order (ties in the ranking
//! are broken by generation order, which follows the hint set). That order is deterministic:
//! a `LayerDim`'s hash is SHA-512 of its pickled name XOR SHA-512 of its pickled class, reduced
//! as Python reduces large integers, and a set's order follows from CPython's open addressing.
//! `python_set` reproduces both (a module of its own, with why it exists).
//!
//! Weight-diagonal mapping (`enable_weight_diagonal_mapping`, off by default in ZigZag) is not
//! reproduced.

use crate::arch::{Accelerator, Direction, MemOperand};
use crate::mapping::{MappingEntry, OperandLinks, SpatialMapping};
use crate::python_set::{PyKind, PySet, set_order};
use qc_ir::LoopNest;

/// The most candidates [`generate`] returns when [`SpatialOptions::count`] is `None`: the best
/// ranked this many (ZigZag's own top 3 first). Every divisor of every dim on every array dim
/// makes many low-utilization combinations: on tpu_like without hints, 15 of resnet18's 21
/// layers have more valid ones than this (the rest 167 to 478).
pub const SUPERSET_CAP: usize = 512;

/// How many spatial mappings [`generate`] returns, and which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpatialOptions {
    /// ZigZag's `nb_spatial_mappings_generated` (its default is 3). `None`: every valid
    /// candidate, ranked, without duplicates, at most [`SUPERSET_CAP`]; ZigZag's top 3 come
    /// first, as ZigZag gives them.
    pub count: Option<usize>,
    /// ZigZag's `enable_mix_spatial_mapping`: also unroll several layer dims on one array dim.
    pub mixed: bool,
}

impl Default for SpatialOptions {
    /// ZigZag's defaults: 3 mappings, no mixed unrolling.
    fn default() -> Self {
        SpatialOptions { count: Some(3), mixed: false }
    }
}

/// Why no spatial mapping could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SpatialError {
    #[error("layer `{layer}`: no valid spatial mapping on `{accelerator}`")]
    #[diagnostic(
        code(qc::spatial::no_candidate),
        help(
            "every combination of the candidate unrollings over-fills an array dim or unrolls a \
             layer dim past its size; widen the entry's `spatial_mapping_hint`, or give a \
             `spatial_mapping`"
        )
    )]
    NoCandidate { layer: String, accelerator: String },

    #[error(
        "layer `{layer}`: the spatial mapping names array dim `{array_dim}`, which `{accelerator}` does not have"
    )]
    #[diagnostic(code(qc::spatial::unknown_array_dim), help("the operational array's dims are: {known}"))]
    UnknownArrayDim { layer: String, array_dim: String, accelerator: String, known: String },

    #[error("layer `{layer}`: `count` is 0")]
    #[diagnostic(
        code(qc::spatial::zero_count),
        help("ask for at least one spatial mapping, or for all (`None`)")
    )]
    ZeroCount { layer: String },
}

/// A fitted spatial mapping and what was changed to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub mapping: SpatialMapping,
    /// One line per change, for the user.
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Maximum unrolling

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

/// A layer operand as an inner memory holds it.
struct Held<'a> {
    index: &'a [String],
    /// Bits per element (the partial sum's for the output).
    precision: u32,
    is_output: bool,
    mem_operand: MemOperand,
}

/// The layer operands inner memory `mem` holds, in the memory's operand order.
fn held_operands<'a>(
    layer: &'a LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    mem: usize,
) -> Vec<Held<'a>> {
    acc.memories[mem]
        .operands
        .iter()
        .filter_map(|op| {
            let role = links.role(*op)?;
            if role == "O" {
                let precision = layer.psum_precision.or(layer.output.precision)?;
                Some(Held {
                    index: layer.output.index.as_slice(),
                    precision,
                    is_output: true,
                    mem_operand: *op,
                })
            } else {
                let o = layer.operand(role)?;
                Some(Held {
                    index: o.index.as_slice(),
                    precision: o.precision.unwrap_or(0),
                    is_output: false,
                    mem_operand: *op,
                })
            }
        })
        .collect()
}

/// The maximum unrolling of every layer dim on every array dim (rule 1 of the module
/// documentation; ZigZag's `get_max_unrolling`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxUnrollings {
    /// `(array dim, (layer dim, maximum) in the layer's dim order)`, in the array's dim order.
    pub dims: Vec<(String, Vec<(String, u64)>)>,
}

impl MaxUnrollings {
    /// The maximum unrolling of layer dim `dim` on array dim `oa`, if both exist.
    pub fn get(&self, oa: &str, dim: &str) -> Option<u64> {
        let (_, dims) = self.dims.iter().find(|(o, _)| o == oa)?;
        dims.iter().find(|(d, _)| d == dim).map(|(_, m)| *m)
    }
}

/// The maximum unrollings of `layer`'s dims on `acc`'s array dims.
pub fn max_unrollings(layer: &LoopNest, acc: &Accelerator, links: &OperandLinks) -> MaxUnrollings {
    let inner = inner_memories(acc);
    let dims = acc
        .array
        .dims
        .iter()
        .enumerate()
        .map(|(oa_index, oa)| {
            let per_dim = layer
                .dims
                .iter()
                .map(|d| {
                    let mut max = d.size.min(oa.size);
                    for &mem in inner.iter().filter(|&&m| acc.memories[m].served_dims.contains(&oa_index)) {
                        for h in held_operands(layer, acc, links, mem) {
                            if h.precision == 0 || irrelevant(layer, h.index, &d.name) {
                                continue;
                            }
                            let dir = if h.is_output { Direction::FromLow } else { Direction::ToLow };
                            if let Some(port) = acc.memories[mem].port_for(h.mem_operand, dir) {
                                max = max.min(port.bw_max / u64::from(h.precision));
                            }
                        }
                    }
                    (d.name.clone(), max)
                })
                .collect();
            (oa.name.clone(), per_dim)
        })
        .collect();
    MaxUnrollings { dims }
}

// ---------------------------------------------------------------------------------------------
// The user's mapping, validity, ranking, capacity

fn array_size(acc: &Accelerator, oa: &str) -> Option<u64> {
    acc.array.dim_index(oa).map(|i| acc.array.dims[i].size)
}

fn utilization(unrollings: &[(String, u64)]) -> u128 {
    unrollings.iter().map(|(_, f)| u128::from(*f)).product()
}

/// ZigZag's `check_and_reduce` (rule 2). Array dims `acc` does not have are left as they are.
fn check_and_reduce(
    user: &SpatialMapping,
    layer: &LoopNest,
    acc: &Accelerator,
    max: &MaxUnrollings,
    notes: &mut Vec<String>,
) -> SpatialMapping {
    let mut m = user.clone();
    for (oa, unrollings) in &mut m.dims {
        unrollings.retain(|(dim, factor)| {
            let keep = layer.size(dim).is_some();
            if !keep {
                notes.push(format!("{oa}: `{dim}, {factor}` dropped: the layer has no {dim}"));
            }
            keep
        });
    }
    for (oa, unrollings) in &mut m.dims {
        let Some(size) = array_size(acc, oa) else { continue };
        for (dim, factor) in unrollings.iter_mut() {
            let cap = max.get(oa, dim).unwrap_or(0);
            if *factor > cap {
                notes.push(format!(
                    "{oa}: `{dim}, {factor}` reduced to {cap} (layer, array or bandwidth limit)"
                ));
                *factor = cap;
            }
        }
        while utilization(unrollings) > u128::from(size) {
            // ZigZag drops the first dim of the set of this array dim's layer dims.
            let names: Vec<String> = unrollings.iter().map(|(d, _)| d.clone()).collect();
            let first = set_order(PyKind::LayerDim, names.iter().map(String::as_str))[0].to_string();
            let at = unrollings.iter().position(|(d, _)| *d == first).unwrap_or(0);
            let (dim, f) = unrollings.remove(at);
            notes.push(format!("{oa}: `{dim}, {f}` dropped: the unrollings exceed the array dim's {size}"));
        }
    }
    let contained: Vec<String> = m.dims.iter().flat_map(|(_, u)| u.iter().map(|(d, _)| d.clone())).collect();
    for dim in set_order(PyKind::LayerDim, contained.iter().map(String::as_str)) {
        let size = layer.size(dim).unwrap_or(0);
        while m.unrolling(dim) > size {
            // ZigZag drops it from the first array dim, in set order, of those unrolling it.
            let oas: Vec<String> = m.dims.iter().map(|(o, _)| o.clone()).collect();
            let holding: Vec<&str> = set_order(PyKind::OaDim, oas.iter().map(String::as_str))
                .into_iter()
                .filter(|o| m.dims.iter().any(|(x, u)| x == o && u.iter().any(|(d, _)| d == dim)))
                .collect();
            let Some(&oa) = set_order(PyKind::OaDim, holding).first() else { break };
            if let Some((_, u)) = m.dims.iter_mut().find(|(x, _)| x == oa) {
                u.retain(|(d, _)| d != dim);
            }
            notes.push(format!("{oa}: `{dim}` dropped: unrolled more than its size {size} in total"));
        }
    }
    m
}

/// ZigZag's `SpatialMapping.is_valid` for a mapping of every array dim (rule 4).
fn is_valid(m: &SpatialMapping, layer: &LoopNest, acc: &Accelerator, max: &MaxUnrollings) -> bool {
    let per_dim = m.dims.iter().all(|(oa, u)| {
        array_size(acc, oa).is_some_and(|size| utilization(u) <= u128::from(size))
            && u.iter().all(|(d, f)| max.get(oa, d).is_some_and(|cap| *f <= cap))
    });
    per_dim && layer.dims.iter().all(|d| m.unrolling(&d.name) <= d.size)
}

/// ZigZag's `get_performance_indicator` (rule 4).
fn performance_indicator(m: &SpatialMapping) -> f64 {
    let hw: u128 = m.dims.iter().map(|(_, u)| utilization(u)).product();
    let largest =
        m.dims.iter().flat_map(|(_, u)| u.iter().map(|(d, _)| m.unrolling(d))).max().unwrap_or(1).max(1);
    let hw = hw as f64;
    hw + (hw / largest as f64 - 1.0)
}

/// ZigZag's `limit_unrolling_to_mem_capacity` (rule 5), in place. Array dims the mapping does not
/// list are skipped.
fn limit_to_capacity(
    m: &mut SpatialMapping,
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    notes: &mut Vec<String>,
) {
    for mem in inner_memories(acc) {
        let memory = &acc.memories[mem];
        let served_names: Vec<&str> = memory
            .served_dims
            .iter()
            .filter_map(|&i| acc.array.dims.get(i))
            .map(|d| d.name.as_str())
            .collect();
        let served: Vec<usize> = set_order(PyKind::OaDim, served_names)
            .into_iter()
            .filter_map(|oa| m.dims.iter().position(|(o, _)| o == oa))
            .collect();
        for h in held_operands(layer, acc, links, mem) {
            if h.precision == 0 {
                continue;
            }
            let mut limited = PySet::new(PyKind::LayerDim);
            let mut total: u128 = 1;
            for &i in &served {
                for (dim, f) in &m.dims[i].1 {
                    if !irrelevant(layer, h.index, dim) {
                        limited.add(dim);
                        total *= u128::from(*f);
                    }
                }
            }
            let capacity = memory.size_bits as f64 / f64::from(h.precision);
            if capacity >= total as f64 {
                continue;
            }
            let limited: Vec<String> = limited.order().into_iter().map(str::to_string).collect();
            let mut old: Vec<u64> = Vec::new();
            for dim in &limited {
                for &i in &served {
                    if let Some((_, f)) = m.dims[i].1.iter().find(|(d, _)| d == dim) {
                        old.push(*f);
                    }
                }
            }
            let mut new = old.clone();
            while new.iter().map(|&f| u128::from(f)).product::<u128>() as f64 > capacity
                && new.iter().any(|&f| f > 1)
            {
                let top = new.iter().copied().max().unwrap_or(1);
                if let Some(i) = new.iter().position(|&f| f == top) {
                    new[i] -= 1;
                }
            }
            // ZigZag maps old factors to new ones by value: equal old factors get the last new one.
            let by_value = |f: u64| old.iter().zip(&new).rev().find(|(o, _)| **o == f).map_or(f, |(_, n)| *n);
            for &i in &served {
                for (dim, f) in m.dims[i].1.iter_mut() {
                    if limited.contains(dim) {
                        *f = by_value(*f);
                    }
                }
            }
            notes.push(format!(
                "unrollings reduced to fit `{}` ({} elements of {} bits)",
                memory.name,
                memory.size_bits / u64::from(h.precision),
                h.precision
            ));
        }
    }
}

/// Fits a mapping file's `spatial_mapping` to `layer` on `acc`: rules 1, 2 and 5 of the module
/// documentation, as ZigZag applies them to a complete user mapping. Array dims the entry leaves
/// out unroll nothing (ZigZag would search them: that is [`generate`]). Every change is
/// reported as a note.
pub fn fit_user_mapping(
    user: &SpatialMapping,
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
) -> Fitted {
    let mut notes = Vec::new();
    let max = max_unrollings(layer, acc, links);
    let mut mapping = check_and_reduce(user, layer, acc, &max, &mut notes);
    limit_to_capacity(&mut mapping, layer, acc, links, &mut notes);
    Fitted { mapping, notes }
}

// ---------------------------------------------------------------------------------------------
// Generation

/// At most this many candidates are generated for one array dim (mixed unrolling on very
/// large arrays); ZigZag has no limit.
const PER_ARRAY_DIM_CAP: usize = 1 << 20;

/// The divisors of `n`, ascending (none for 0).
fn divisors(n: u64) -> Vec<u64> {
    let mut low = Vec::new();
    let mut high = Vec::new();
    let mut i = 1;
    while i * i <= n {
        if n.is_multiple_of(i) {
            low.push(i);
            if i * i != n {
                high.push(n / i);
            }
        }
        i += 1;
    }
    low.extend(high.into_iter().rev());
    low
}

/// The candidates for one array dim (rule 3), in ZigZag's generation order. `hints` are in set
/// order; `None` maximum = a hinted dim the layer does not have.
fn array_dim_candidates(hints: &[(&str, Option<u64>)], size: u64, mixed: bool) -> Vec<Vec<(String, u64)>> {
    let mut out: Vec<Vec<(String, u64)>> = Vec::new();
    for &(dim, max) in hints {
        if let Some(max) = max {
            out.extend(divisors(max).into_iter().rev().map(|f| vec![(dim.to_string(), f)]));
        }
    }
    if !mixed {
        return out;
    }
    // Non-trivial divisors per hinted dim; combinations with a dim the layer lacks are never
    // valid (ZigZag gives them factor 0), so they are left out.
    let pools: Vec<Option<Vec<u64>>> = hints
        .iter()
        .map(|(_, max)| max.map(|m| divisors(m).into_iter().filter(|&f| f > 1).collect()))
        .collect();
    let n = hints.len();
    for len in 2..=n {
        // itertools.combinations: index tuples in lexicographic order.
        let mut combo: Vec<usize> = (0..len).collect();
        loop {
            if let Some(lists) = combo.iter().map(|&i| pools[i].as_deref()).collect::<Option<Vec<&[u64]>>>()
                && lists.iter().all(|l| !l.is_empty())
            {
                // itertools.product: the last position varies fastest.
                let mut at = vec![0usize; len];
                'product: loop {
                    let factors: Vec<u64> = at.iter().zip(&lists).map(|(&j, l)| l[j]).collect();
                    if factors.iter().map(|&f| u128::from(f)).product::<u128>() <= u128::from(size) {
                        out.push(
                            combo.iter().zip(factors).map(|(&i, f)| (hints[i].0.to_string(), f)).collect(),
                        );
                        if out.len() >= PER_ARRAY_DIM_CAP {
                            return out;
                        }
                    }
                    let mut p = len;
                    loop {
                        if p == 0 {
                            break 'product;
                        }
                        p -= 1;
                        at[p] += 1;
                        if at[p] < lists[p].len() {
                            break;
                        }
                        at[p] = 0;
                    }
                }
            }
            // Next combination.
            let mut p = len;
            loop {
                if p == 0 {
                    break;
                }
                p -= 1;
                if combo[p] < n - len + p {
                    break;
                }
                if p == 0 {
                    p = usize::MAX;
                    break;
                }
            }
            if p == usize::MAX || combo[p] >= n - len + p {
                break;
            }
            combo[p] += 1;
            for q in p + 1..len {
                combo[q] = combo[q - 1] + 1;
            }
        }
    }
    out
}

/// The layer's dims in the order of ZigZag's `layer_dims`, which a hint-less array dim's set
/// of candidate dims is built from (the order matters when two dims share a hash slot, as `OX`
/// and `C` do). ZigZag's ONNX parsers write `B, K, G, OX, OY, C, FX, FY` (Conv) and
/// `C, D, K, B, H` (Gemm, MatMul); a layer with exactly those dims is given that order, any other
/// keeps its own (a YAML workload's `loop_dims` order, which ZigZag keeps too).
fn zigzag_dim_order(layer: &LoopNest) -> Vec<&str> {
    let own: Vec<&str> = layer.dims.iter().map(|d| d.name.as_str()).collect();
    let has = |names: &[&str]| names.len() == own.len() && names.iter().all(|n| own.contains(n));
    const CONV: [&str; 8] = ["B", "K", "G", "OX", "OY", "C", "FX", "FY"];
    if has(&CONV) {
        return CONV.to_vec();
    }
    let gemm: Vec<&str> = ["C", "D", "K", "B", "H"].into_iter().filter(|n| own.contains(n)).collect();
    if gemm.starts_with(&["C", "D", "K"]) && has(&gemm) {
        return gemm;
    }
    own
}

/// A complete mapping: the user's part, then one candidate per array dim to fill.
fn assemble(template: &SpatialMapping, fill: &[String], parts: &[&Vec<(String, u64)>]) -> SpatialMapping {
    let mut m = template.clone();
    for (oa, part) in fill.iter().zip(parts) {
        m.dims.push((oa.clone(), (*part).clone()));
    }
    m
}

/// ZigZag's `best_candidates`: the `keep` best valid combinations (one candidate index per
/// array dim to fill), best first, ties broken by the indices; found by branch-and-bound on
/// the bound "indicator <= 2 x utilization - 1".
struct Search<'a> {
    template: &'a SpatialMapping,
    fill: &'a [String],
    options: Vec<Vec<(usize, u128)>>,
    candidates: &'a [Vec<Vec<(String, u64)>>],
    best_remaining: Vec<u128>,
    layer: &'a LoopNest,
    acc: &'a Accelerator,
    max: &'a MaxUnrollings,
    keep: usize,
    kept: Vec<(f64, Vec<usize>)>,
}

impl Search<'_> {
    fn reachable(&self, utilization: u128, depth: usize) -> bool {
        match self.kept.last() {
            Some((worst, _)) if self.kept.len() >= self.keep => {
                (2 * utilization * self.best_remaining[depth]) as f64 - 1.0 >= -worst
            }
            _ => true,
        }
    }

    fn visit(&mut self, depth: usize, utilization: u128, chosen: &mut Vec<usize>) {
        if depth == self.options.len() {
            let parts: Vec<&Vec<(String, u64)>> =
                chosen.iter().enumerate().map(|(d, &i)| &self.candidates[d][i]).collect();
            let m = assemble(self.template, self.fill, &parts);
            if !is_valid(&m, self.layer, self.acc, self.max) {
                return;
            }
            let key = (-performance_indicator(&m), chosen.clone());
            let better = |a: &(f64, Vec<usize>), b: &(f64, Vec<usize>)| {
                a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)) == std::cmp::Ordering::Less
            };
            if self.kept.len() < self.keep || self.kept.last().is_some_and(|last| better(&key, last)) {
                let at = self.kept.partition_point(|k| better(k, &key));
                self.kept.insert(at, key);
                self.kept.truncate(self.keep);
            }
            return;
        }
        for k in 0..self.options[depth].len() {
            let (index, u) = self.options[depth][k];
            if !self.reachable(utilization * u, depth + 1) {
                break;
            }
            // No layer dim may be unrolled past its size so far.
            let fits = self.layer.dims.iter().all(|d| {
                let mut total = u128::from(self.template.unrolling(&d.name));
                for (dd, &i) in chosen.iter().enumerate() {
                    total *= self.candidates[dd][i]
                        .iter()
                        .filter(|(n, _)| *n == d.name)
                        .map(|(_, f)| u128::from(*f))
                        .product::<u128>();
                }
                total *= self.candidates[depth][index]
                    .iter()
                    .filter(|(n, _)| *n == d.name)
                    .map(|(_, f)| u128::from(*f))
                    .product::<u128>();
                total <= u128::from(d.size)
            }) && chosen
                .iter()
                .enumerate()
                .map(|(dd, &i)| &self.candidates[dd][i])
                .chain(std::iter::once(&self.candidates[depth][index]))
                .all(|c| c.iter().all(|(n, _)| self.layer.size(n).is_some()));
            if fits {
                chosen.push(index);
                self.visit(depth + 1, utilization * u, chosen);
                chosen.pop();
            }
        }
    }
}

/// Renders a mapping as ZigZag prints a `SpatialMapping`: `{D1: {K: 32}, D2: {C: 2, FX: 3}}`.
pub fn zigzag_string(m: &SpatialMapping) -> String {
    let dims: Vec<String> = m
        .dims
        .iter()
        .map(|(oa, u)| {
            let inner: Vec<String> = u.iter().map(|(d, f)| format!("{d}: {f}")).collect();
            format!("{oa}: {{{}}}", inner.join(", "))
        })
        .collect();
    format!("{{{}}}", dims.join(", "))
}

/// The spatial mappings ZigZag 3.9.1's `SpatialMappingGeneratorStage` evaluates for `layer` on
/// `acc` under mapping-file `entry` (see the module documentation): with `count = Some(k)`,
/// ZigZag's list for `nb_spatial_mappings_generated = k`, in its order (duplicates included, as
/// ZigZag gives them); with `count = None`, ZigZag's list for 3 followed by every other valid
/// candidate in ranking order, each limited to the memories' capacity on its own, without
/// duplicates, at most [`SUPERSET_CAP`]. A complete user `spatial_mapping` gives one mapping.
pub fn generate(
    layer: &LoopNest,
    acc: &Accelerator,
    entry: &MappingEntry,
    opts: &SpatialOptions,
) -> Result<Vec<SpatialMapping>, SpatialError> {
    if opts.count == Some(0) {
        return Err(SpatialError::ZeroCount { layer: layer.name.clone() });
    }
    let links = &entry.links;
    let no_candidate =
        || SpatialError::NoCandidate { layer: layer.name.clone(), accelerator: acc.name.clone() };
    if let Some(user) = &entry.spatial
        && let Some((oa, _)) = user.dims.iter().find(|(oa, _)| acc.array.dim_index(oa).is_none())
    {
        return Err(SpatialError::UnknownArrayDim {
            layer: layer.name.clone(),
            array_dim: oa.clone(),
            accelerator: acc.name.clone(),
            known: acc.array.dims.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "),
        });
    }
    let max = max_unrollings(layer, acc, links);
    let mut notes = Vec::new();
    let template = check_and_reduce(&entry.spatial.clone().unwrap_or_default(), layer, acc, &max, &mut notes);
    let fill: Vec<String> = acc
        .array
        .dims
        .iter()
        .filter(|d| !template.dims.iter().any(|(oa, _)| *oa == d.name))
        .map(|d| d.name.clone())
        .collect();
    if fill.is_empty() {
        if !is_valid(&template, layer, acc, &max) {
            return Err(no_candidate());
        }
        let mut m = template;
        limit_to_capacity(&mut m, layer, acc, links, &mut notes);
        return Ok(vec![m]);
    }

    // Candidates per array dim to fill, from the hints (ZigZag's `clear_invalid_hits` and
    // `complete_with_defaults`).
    let layer_dims = zigzag_dim_order(layer);
    let candidates: Vec<Vec<Vec<(String, u64)>>> = fill
        .iter()
        .map(|oa| {
            let given = entry
                .spatial_hint
                .as_ref()
                .and_then(|h| h.iter().find(|(o, _)| o == oa))
                .map(|(_, dims)| dims.iter().map(String::as_str).collect::<Vec<_>>())
                .filter(|dims| dims.iter().any(|d| layer.size(d).is_some()));
            let hints = set_order(PyKind::LayerDim, given.unwrap_or_else(|| layer_dims.clone()));
            let hints: Vec<(&str, Option<u64>)> = hints.into_iter().map(|d| (d, max.get(oa, d))).collect();
            array_dim_candidates(&hints, array_size(acc, oa).unwrap_or(0), opts.mixed)
        })
        .collect();

    let ranked = |keep: usize| -> Vec<Vec<usize>> {
        let options: Vec<Vec<(usize, u128)>> = candidates
            .iter()
            .map(|c| {
                let mut o: Vec<(usize, u128)> = c.iter().map(|u| utilization(u)).enumerate().collect();
                o.sort_by_key(|x| std::cmp::Reverse(x.1));
                o
            })
            .collect();
        let mut best_remaining: Vec<u128> = (0..options.len())
            .map(|i| options[i..].iter().map(|o| o.first().map_or(0, |x| x.1)).product())
            .collect();
        best_remaining.push(1);
        let mut search = Search {
            template: &template,
            fill: &fill,
            options,
            candidates: &candidates,
            best_remaining,
            layer,
            acc,
            max: &max,
            keep,
            kept: Vec::new(),
        };
        let start: u128 = template.dims.iter().map(|(_, u)| utilization(u)).product();
        search.visit(0, start, &mut Vec::new());
        search.kept.into_iter().map(|(_, c)| c).collect()
    };

    // ZigZag's list: candidates limited one after another, in place, sharing their parts.
    let zigzag = |chosen: &[Vec<usize>]| -> Vec<SpatialMapping> {
        let mut store = candidates.clone();
        let mut templates = Vec::new();
        for c in chosen {
            let parts: Vec<&Vec<(String, u64)>> = c.iter().enumerate().map(|(d, &i)| &store[d][i]).collect();
            let mut m = assemble(&template, &fill, &parts);
            limit_to_capacity(&mut m, layer, acc, links, &mut Vec::new());
            let own = template.dims.len();
            for (d, &i) in c.iter().enumerate() {
                store[d][i] = m.dims[own + d].1.clone();
            }
            m.dims.truncate(own);
            templates.push(m);
        }
        templates
            .into_iter()
            .zip(chosen)
            .map(|(t, c)| {
                let parts: Vec<&Vec<(String, u64)>> =
                    c.iter().enumerate().map(|(d, &i)| &store[d][i]).collect();
                assemble(&t, &fill, &parts)
            })
            .collect()
    };

    let out = match opts.count {
        Some(k) => zigzag(&ranked(k)),
        None => {
            let all = ranked(SUPERSET_CAP);
            let mut out: Vec<SpatialMapping> = Vec::new();
            let first = zigzag(&all[..all.len().min(3)]);
            let rest = all.iter().map(|c| {
                let parts: Vec<&Vec<(String, u64)>> =
                    c.iter().enumerate().map(|(d, &i)| &candidates[d][i]).collect();
                let mut m = assemble(&template, &fill, &parts);
                limit_to_capacity(&mut m, layer, acc, links, &mut Vec::new());
                m
            });
            for m in first.into_iter().chain(rest) {
                if out.len() < SUPERSET_CAP && !out.contains(&m) {
                    out.push(m);
                }
            }
            out
        }
    };
    if out.is_empty() {
        return Err(no_candidate());
    }
    Ok(out)
}

/// The unrollings on one array dim: `(layer dim, factor)`.
type Unrollings = Vec<(String, u64)>;

/// An array dim and its candidate unrollings.
type ArrayDimCandidates = (String, Vec<Unrollings>);

/// Every valid spatial mapping of `layer` on `acc`, for the exact search
/// ([`crate::search::optimal`]): rules 1, 3 and 5 without a user mapping, hints, ranking or
/// cap. Per array dim, every divisor of every layer dim's maximum unrolling and, with `mixed`,
/// every combination of several layer dims at non-trivial divisors whose product fits; of
/// their combinations over the array dims, those that unroll no layer dim past its size, each
/// limited to the innermost memories' capacity (rule 5), with unrollings by 1 dropped and
/// duplicates removed, in generation order (array dims in the array's order, the first
/// varying slowest). Every array dim is listed, possibly with no unrolling.
pub fn all_valid(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    mixed: bool,
) -> Vec<SpatialMapping> {
    let max = max_unrollings(layer, acc, links);
    let dims = zigzag_dim_order(layer);
    let per_array: Vec<ArrayDimCandidates> = acc
        .array
        .dims
        .iter()
        .map(|oa| {
            let hints: Vec<(&str, Option<u64>)> = dims.iter().map(|d| (*d, max.get(&oa.name, d))).collect();
            let mut c = array_dim_candidates(&hints, oa.size, mixed);
            // Unrolling by 1 is no unrolling: one candidate for all of them.
            for u in &mut c {
                u.retain(|(_, f)| *f > 1);
            }
            let mut seen = std::collections::HashSet::new();
            c.retain(|u| seen.insert(u.clone()));
            (oa.name.clone(), c)
        })
        .collect();
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut pick: Vec<usize> = Vec::with_capacity(per_array.len());
    let mut totals: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    all_valid_visit(layer, acc, links, &per_array, &mut pick, &mut totals, &mut seen, &mut out);
    out
}

#[allow(clippy::too_many_arguments)]
fn all_valid_visit<'a>(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    per_array: &'a [ArrayDimCandidates],
    pick: &mut Vec<usize>,
    totals: &mut std::collections::HashMap<&'a str, u64>,
    seen: &mut std::collections::HashSet<Vec<(String, Unrollings)>>,
    out: &mut Vec<SpatialMapping>,
) {
    let a = pick.len();
    if a == per_array.len() {
        let mut m = SpatialMapping {
            dims: per_array.iter().zip(pick.iter()).map(|((oa, c), &i)| (oa.clone(), c[i].clone())).collect(),
        };
        limit_to_capacity(&mut m, layer, acc, links, &mut Vec::new());
        for (_, u) in &mut m.dims {
            u.retain(|(_, f)| *f > 1);
        }
        if seen.insert(m.dims.clone()) {
            out.push(m);
        }
        return;
    }
    for (i, u) in per_array[a].1.iter().enumerate() {
        // A layer dim unrolled past its size in total is no valid mapping, and stays so.
        let fits = u.iter().all(|(d, f)| {
            let size = layer.size(d).unwrap_or(0);
            u128::from(totals.get(d.as_str()).copied().unwrap_or(1)) * u128::from(*f) <= u128::from(size)
        });
        if !fits {
            continue;
        }
        for (d, f) in u {
            *totals.entry(d.as_str()).or_insert(1) *= f;
        }
        pick.push(i);
        all_valid_visit(layer, acc, links, per_array, pick, totals, seen, out);
        pick.pop();
        for (d, f) in u {
            if let Some(t) = totals.get_mut(d.as_str()) {
                *t /= f;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_in_zigzag_order() {
        let hints = [("K", Some(4)), ("C", Some(2)), ("FX", None)];
        let c = array_dim_candidates(&hints, 4, true);
        let s: Vec<String> = c.iter().map(|u| format!("{u:?}")).collect();
        assert_eq!(
            s,
            [
                r#"[("K", 4)]"#,
                r#"[("K", 2)]"#,
                r#"[("K", 1)]"#,
                r#"[("C", 2)]"#,
                r#"[("C", 1)]"#,
                r#"[("K", 2), ("C", 2)]"#,
            ]
        );
    }
}
