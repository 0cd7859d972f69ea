//! Lower bounds on the cost of every loop ordering that shares its innermost loops with one
//! evaluated ordering: what the search prunes with.
//!
//! The allocator fills the memories bottom-up, so the loops of the lowest levels are decided by
//! the innermost loops of the order ([`AllocTrace`]). The cost model then charges each
//! (operand, memory level) for the data it moves; that charge reads the loops below the level's
//! upper boundary (tile sizes, refill periods) and only the product or the set of the loops
//! above it (the number of refills, whether partial sums remain). After the stationarity
//! merge-down, a boundary moves up past the irrelevant loops above it, so it is decided once the
//! next relevant loop is known. Hence a term whose boundary is decided by the first `j` loops is
//! the same for every ordering with those `j` innermost loops.
//!
//! A term not yet decided is bounded by its floor ([`Evaluator::term_floors`]): the data an
//! operand moves across a boundary per refill times the refills is smallest when every temporal
//! loop sits below the boundary (a relevant loop above multiplies the refills by its size and
//! the tile by at most that; an irrelevant one only the refills), so the mapping with all
//! temporal loops in the lowest level, irrelevant ones innermost, moves the least across every
//! boundary. Its per-term energies, less the rounding of accesses to whole words (one word per
//! instance) and, when the spatial unrolling is fractional, less half (the cost model rounds
//! fractional tiles to whole elements), are floors for every ordering. Partial sums of the
//! output (which may not move at all) get no floor; final outputs get one only when their
//! precision is at most the partial sums'.
//!
//! Latency (3.9.1's model): the ideal temporal cycles and the systolic drain are fixed; the
//! stall of a port is decided once all its links are (their boundaries and the double-buffering
//! decisions of the memories they touch); the combined stall is the maximum over ports and zero,
//! on-loading is at least its floor ([`Evaluator::onload_floor`], the same for every order) and
//! off-loading is never negative; the temporal cycles plus the stall are at least the streaming
//! floor the caller gives ([`Floors::streaming`]). The repository's model (`zigzag-3d12a96`)
//! can make on-loading negative (its balanced reduction), so it gets no latency bound.

use super::{Evaluator, FH, FL, TH, TL};
use crate::cost::CostError;
use crate::cost::model::{Operand, Rel};
use crate::cost::{AllocTrace, Allocation, CostOptions, LatencyModel, LayerCost};
use crate::mapping::{TemporalLoop, TemporalMapping};

/// Per prefix length `j` (`0..=n` innermost loops fixed), lower bounds on the energy and the
/// latency of every ordering with that prefix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrefixBounds {
    pub energy: Vec<f64>,
    pub latency: Vec<f64>,
    /// Per prefix length: the MAC energy plus the energy of the terms that prefix decides (the
    /// same for every ordering with that prefix), without the floors of the others.
    pub decided_energy: Vec<f64>,
    /// Per operand and boundary: the prefix deciding it (a buffer).
    decided: Vec<Vec<usize>>,
    /// Per prefix length: the worst port stall it decides (a buffer).
    stall_at: Vec<i64>,
}

/// Floors of the cost of every temporal mapping under one spatial mapping
/// ([`Evaluator::floors`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Floors {
    /// Per operand and memory level, a lower bound on that (operand, level)'s energy.
    pub terms: Vec<Vec<f64>>,
    /// A lower bound on the on-loading cycles (3.9.1's latency model; 0 otherwise): the loads
    /// every order makes whole, once ([`Evaluator::onload_floor`]).
    pub onload: f64,
    /// A lower bound on the temporal cycles plus the stall of every order, from the streaming
    /// the memories' capacities force ([`crate::bound::LayerBound::stall_floor`]); 0 unless the
    /// caller sets it ([`Evaluator::floors`] does not know the layer's bound).
    pub streaming: f64,
}

impl Evaluator {
    /// The energy terms' floors ([`Floors::terms`], see the module documentation) and the
    /// on-loading floor ([`Floors::onload`]).
    pub fn floors(&self, opts: &CostOptions) -> Result<Floors, CostError> {
        let terms = self.term_floors(opts)?;
        let onload = self.onload_floor(opts)?;
        Ok(Floors { terms, onload, streaming: 0.0 })
    }

    /// Per operand and memory level, a lower bound on that (operand, level)'s energy under every
    /// temporal mapping (see the module documentation).
    fn term_floors(&self, opts: &CostOptions) -> Result<Vec<Vec<f64>>, CostError> {
        let model = &self.model;
        // Each operand's irrelevant loops innermost (a stable sort: the layer's order otherwise).
        let lowest = self.all_in_lowest(|op, loops| loops.sort_by_key(|&(d, _)| op.rel[d] != Rel::Ir));
        let ideal = self.evaluate(&lowest, opts)?;
        let integral = self.spatial.frac.iter().all(|s| {
            s.levels.iter().flatten().all(|&(_, f)| f.fract() == 0.0)
                && s.boost.iter().all(|b| b.fract() == 0.0)
        });
        let scale = if integral { 1.0 - 1e-9 } else { 0.5 };
        Ok(model
            .ops
            .iter()
            .enumerate()
            .zip(&ideal.operands)
            .map(|((k, op), oc)| {
                let dirs: &[usize] = match (op.is_output, op.prec_final <= op.prec) {
                    (false, _) => &[FH, TL, FL, TH],
                    (true, true) => &[FL, TH],
                    (true, false) => &[],
                };
                let m_count = oc.levels.len();
                oc.levels
                    .iter()
                    .enumerate()
                    .map(|(m, lc)| {
                        // An input's refills from above a level its memory cannot hold whole.
                        let ratio = if integral && !op.is_output && m + 1 < m_count {
                            self.refill_ratio(k, m)
                        } else {
                            1.0
                        };
                        dirs.iter()
                            .filter(|&&i| lc.accesses[i] > 0)
                            .map(|&i| {
                                let per_access = lc.energy[i] / lc.accesses[i] as f64;
                                let words = (lc.accesses[i] as f64 - lc.instances as f64 - 1.0).max(0.0);
                                let refilled = if i == FH && ratio > 1.0 {
                                    ratio * (lc.accesses[i] as f64 - lc.instances as f64 - 2.0).max(0.0)
                                } else {
                                    0.0
                                };
                                words.max(refilled) * scale * per_access
                            })
                            .sum()
                    })
                    .collect()
            })
            .collect())
    }

    /// How many times at least input operand `k` crosses into its memory level `m` (not the
    /// top) from above, relative to once: under every temporal mapping, the data written into
    /// the level is its tile (the loops below the level's upper boundary, with the spatial
    /// unrolling up to the level) times the refills (the product of the loops above, at least
    /// that of the relevant ones), and the tile must fit the memory. So it is at least the least
    /// `tile(R) x prod(relevant loops not in R)` over the per-dim products `R` of relevant
    /// loops whose tile fits, over the whole operand's tile. 1 when none fits (the allocator
    /// then finds no mapping) or there is nothing to gain.
    fn refill_ratio(&self, k: usize, m: usize) -> f64 {
        let model = &self.model;
        let op = &model.ops[k];
        let nd = model.dim_names.len();
        let mut base = vec![1.0f64; nd];
        for lv in self.spatial.frac[k].levels.iter().take(m + 1) {
            for &(d, f) in lv {
                base[d] *= f;
            }
        }
        let temporal = &self.spatial.temporal_sizes;
        let mut whole = base.clone();
        for (d, w) in whole.iter_mut().enumerate() {
            *w *= temporal[d] as f64;
        }
        let all = model.tensor_size(k, &whole);
        let cap = self.levels[k][m].size_bits;
        if all.is_nan() || all <= 0.0 || all * op.prec as f64 <= cap {
            return 1.0;
        }
        // The relevant dims with temporal loops, and each one's divisors.
        let divs: Vec<(usize, Vec<u64>)> = (0..nd)
            .filter(|&d| temporal[d] > 1 && !matches!(op.rel[d], Rel::Ir | Rel::No))
            .map(|d| (d, (1..=temporal[d]).filter(|&x| temporal[d].is_multiple_of(x)).collect()))
            .collect();
        let combos = divs.iter().fold(1usize, |p, (_, v)| p.saturating_mul(v.len()));
        if combos > 1 << 16 {
            return 1.0;
        }
        let mut pick = vec![0usize; divs.len()];
        let mut dims = base.clone();
        let mut least = f64::INFINITY;
        loop {
            let mut above = 1.0;
            for ((d, v), &i) in divs.iter().zip(&pick) {
                dims[*d] = base[*d] * v[i] as f64;
                above *= (temporal[*d] / v[i]) as f64;
            }
            let tile = model.tensor_size(k, &dims);
            if tile * op.prec as f64 <= cap {
                least = least.min(tile * above);
            }
            let mut j = 0;
            loop {
                if j == pick.len() {
                    return if least.is_finite() { (least / all).max(1.0) } else { 1.0 };
                }
                pick[j] += 1;
                if pick[j] < divs[j].1.len() {
                    break;
                }
                pick[j] = 0;
                j += 1;
            }
        }
    }

    /// A lower bound on the on-loading cycles of every temporal mapping under this spatial
    /// mapping (3.9.1's latency model; 0 under the repository's, where on-loading can be
    /// negative). An input whose lowest memory is one where every order's allocation gives each
    /// operand everything it has left (`Plan::whole_memories`) holds its whole tile there in
    /// every mapping, written once from the memory above: the two links of that boundary carry
    /// the same data in every mapping, once (a period count of 1). 3.9.1 charges such a link its
    /// transfer cycles less a share of the port's spare bandwidth, never below the lowest
    /// level's tile over the port's bandwidth (`reduce_ordered`), and here that tile is the
    /// whole one: so at least the lesser of the two, less a cycle for the rounding of tiles
    /// built in another order. The other links count 0; on-loading is non-decreasing in every
    /// link's cycles ([`super::onload_cycles`]), with the ports' sharing flags the same for
    /// every mapping.
    ///
    /// The values are read from the mapping with every temporal loop in the lowest level (where
    /// those inputs are whole too).
    pub fn onload_floor(&self, opts: &CostOptions) -> Result<f64, CostError> {
        if opts.latency_model != LatencyModel::Zigzag391 {
            return Ok(0.0);
        }
        let model = &self.model;
        let whole = self.plan.whole_memories(model, &self.spatial);
        let forced = |k: usize| {
            k > 0
                && self.levels[k].len() >= 2
                && self.levels[k].first().is_some_and(|l| whole.contains(&l.memory))
        };
        if !(1..model.ops.len()).any(forced) {
            return Ok(0.0);
        }
        let mut s = super::EvalScratch::default();
        let total = self.temporal(&self.all_in_lowest(|_, _| {}), &mut s.temps)?;
        let mut ideal = LayerCost::default();
        self.evaluate_prepared(total, opts, &mut s, &mut ideal)?;
        let int = if self.spatial.greedy { &s.int } else { &s.frac };
        let out_mem = model.ops[0].mem;
        let mut cc: super::LoadCycles = self.levels.iter().map(|lv| vec![[None; 4]; lv.len()]).collect();
        for port in &self.ports {
            for pl in &port.links {
                let Some(k) = pl.op else { continue };
                if pl.mem_op == out_mem && (pl.dir == TL || pl.dir == FH) {
                    continue;
                }
                let link = &int[k].links[pl.level][pl.dir];
                if link.pc == 0 {
                    continue;
                }
                let known = forced(k) && link.pc == 1 && matches!((pl.level, pl.dir), (0, FH) | (1, TL));
                let cycles = match self.levels[k][pl.level].bw[pl.dir] {
                    Some((_, bmax)) if known && bmax > 0 && port.bw_max > 0 => {
                        let real = (link.amount * link.prec as f64 / bmax as f64).ceil();
                        let least = (int[k].bits[1] / port.bw_max as f64).ceil();
                        (real.min(least) - 1.0).max(0.0)
                    }
                    _ => 0.0,
                };
                cc[k][pl.level][pl.dir] = Some((cycles, port.shared_by_two_inputs));
            }
        }
        Ok(super::onload_cycles(&cc, &mut Vec::new()))
    }

    /// Whether the spatial unrolling is integral (no fractional factor): the mappings that
    /// [`crate::bound::LayerBound::stall_floor`] with `integral` bounds.
    pub fn integral_unrolling(&self) -> bool {
        !self.spatial.greedy
    }

    /// The temporal mapping with every temporal loop (of size 2 or more) in each operand's lowest
    /// level, in the layer's dim order as `arrange` leaves it for that operand: the mapping the
    /// floors read. The energy floors arrange each operand's irrelevant loops innermost (so no
    /// irrelevant loop sits above a relevant one); the on-loading floor keeps the layer's order,
    /// the one its tests enumerate against. Two orders, so two evaluations per candidate.
    fn all_in_lowest(&self, arrange: impl Fn(&Operand, &mut Vec<(usize, u64)>)) -> TemporalMapping {
        let model = &self.model;
        let loops: Vec<(usize, u64)> =
            self.spatial.temporal_sizes.iter().copied().enumerate().filter(|&(_, s)| s > 1).collect();
        let operands = model
            .ops
            .iter()
            .map(|op| {
                let mut lowest = loops.clone();
                arrange(op, &mut lowest);
                let mut levels = vec![Vec::new(); op.mems.len()];
                levels[0] = lowest
                    .into_iter()
                    .map(|(d, size)| TemporalLoop { dim: model.dim_names[d].clone(), size })
                    .collect();
                (op.role.clone(), levels)
            })
            .collect();
        TemporalMapping { operands }
    }

    /// Lower bounds on the energy and the latency of every temporal mapping under this spatial
    /// mapping (the root of a branch and bound over its loop orders): the MAC energy plus the
    /// energy terms' floors, and, with 3.9.1's latency model, the larger of the temporal cycles
    /// (the product of the temporal loops, the same for every order) and the streaming floor
    /// (which bounds them plus the stall), plus the systolic drain plus the on-loading floor
    /// (stalls and off-loading are never negative there). The repository's latency model can
    /// make on-loading negative: no latency bound (`None`).
    pub fn mapping_floor(&self, floors: &Floors, opts: &CostOptions) -> (f64, Option<f64>) {
        let energy = self.mac_energy + floors.terms.iter().flatten().sum::<f64>();
        let latency = (opts.latency_model == LatencyModel::Zigzag391).then(|| {
            let cycles = self.spatial.temporal_sizes.iter().fold(1u64, |p, &s| p.saturating_mul(s));
            (cycles as f64).max(floors.streaming) + self.spatial.drain as f64 + floors.onload
        });
        (energy, latency)
    }

    /// The bounds for the prefixes of `order` (dim indices in the layer's dim order, innermost
    /// first), given its allocation `alloc`, the allocator's `trace` and its `cost` (all for this
    /// ordering, with the same `opts`), and the [`Evaluator::floors`] (default: no floors).
    #[allow(clippy::too_many_arguments)]
    pub fn prefix_bounds(
        &self,
        order: &[(usize, u64)],
        floors: &Floors,
        alloc: &Allocation,
        trace: &AllocTrace,
        cost: &LayerCost,
        opts: &CostOptions,
        out: &mut PrefixBounds,
    ) {
        let n = order.len();
        let model = &self.model;
        // decided[k][a]: the prefix that decides operand k's boundary `a` after merge-down
        // (a = 0 ..= levels; boundary `a` is where temporal level `a` starts).
        let PrefixBounds { energy, latency, decided_energy, decided, stall_at } = out;
        decided.resize(model.ops.len(), Vec::new());
        for (k, (op, dec)) in model.ops.iter().zip(decided.iter_mut()).enumerate() {
            let starts = alloc.starts.get(k).map_or(&[0][..], |s| &s[..]);
            let m_count = starts.len() - 1;
            dec.clear();
            dec.extend((0..=m_count).map(|a| {
                if a == m_count {
                    return n;
                }
                let by_alloc = if a == 0 { 0 } else { trace.cut_req[k].get(a - 1).copied().unwrap_or(n) };
                let mut i = starts[a];
                while i < n && op.rel[order[i].0] == Rel::Ir {
                    i += 1;
                }
                by_alloc.max(if i >= n { n } else { i + 1 })
            }));
        }
        let decided: &[Vec<usize>] = decided;

        // Undecided terms count their floor; a decided one its value.
        energy.clear();
        energy.resize(n + 1, 0.0);
        decided_energy.clear();
        decided_energy.resize(n + 1, 0.0);
        let mut acc = cost.mac_energy;
        for (k, oc) in cost.operands.iter().enumerate() {
            let m_count = oc.levels.len();
            for (m, lc) in oc.levels.iter().enumerate() {
                let floor = floors.terms.get(k).and_then(|f| f.get(m)).copied().unwrap_or(0.0);
                let req = if m + 1 < m_count { decided[k][m + 1] } else { decided[k][m] };
                acc += floor;
                let value = lc.energy.iter().sum::<f64>();
                energy[req.min(n)] += value - floor;
                decided_energy[req.min(n)] += value;
            }
        }
        for e in energy.iter_mut() {
            acc += *e;
            *e = acc;
        }
        let mut dec = cost.mac_energy;
        for e in decided_energy.iter_mut() {
            dec += *e;
            *e = dec;
        }

        latency.clear();
        if opts.latency_model != LatencyModel::Zigzag391 {
            latency.resize(n + 1, 0.0);
            return;
        }
        // The prefix deciding the double-buffering flag of a memory: every operand it holds.
        let mem_req = |mem: usize| -> usize {
            let mut r = 0;
            for (k, lv) in self.levels.iter().enumerate() {
                for (l, li) in lv.iter().enumerate() {
                    if li.memory == mem {
                        r = r.max(decided[k][l + 1]);
                    }
                }
            }
            r
        };
        stall_at.clear();
        stall_at.resize(n + 1, 0);
        for port in &self.ports {
            let mut req = 0;
            for pl in &port.links {
                let Some(k) = pl.op else { continue };
                let m_count = self.levels[k].len();
                let (boundary, flag_level) = match pl.dir {
                    TL | FL => (decided[k][pl.level], pl.level.checked_sub(1)),
                    FH | TH if pl.level + 1 < m_count => (decided[k][pl.level + 1], Some(pl.level)),
                    _ => continue, // the top level sends nothing up
                };
                req = req.max(boundary);
                if let Some(l) = flag_level {
                    req = req.max(mem_req(self.levels[k][l].memory));
                }
            }
            let ss = cost
                .port_stalls
                .iter()
                .find(|p| p.memory == port.memory && p.port == port.port)
                .map_or(0, |p| p.stall_slack);
            let slot = &mut stall_at[req.min(n)];
            *slot = (*slot).max(ss);
        }
        // The on-loading floor holds for every order: a term of its own, beside the stall. The
        // temporal cycles plus the stall are at least the decided stall's and the streaming
        // floor.
        let ideal = cost.ideal_temporal_cycle as f64;
        let rest = self.spatial.drain as f64 + floors.onload;
        let mut worst = 0i64;
        for &s in stall_at.iter() {
            worst = worst.max(s);
            latency.push((ideal + worst as f64).max(floors.streaming) + rest);
        }
    }
}
