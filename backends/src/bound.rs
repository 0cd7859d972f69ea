//! Lower bounds on a layer's energy and latency over every mapping (the physical limit), from
//! the layer and the accelerator alone: `spec/bounds.md` gives each term with its proof.
//!
//! The bounds are bounds of qc's cost model (ZigZag's, [`crate::cost`]), over every mapping it
//! can evaluate: any spatial unrolling the array allows (mixed and non-dividing ones included),
//! any loop order, any allocation of the loops to the memories (even or uneven). The traffic
//! floors hold for every temporal mapping; the refetch term and the bandwidth part of the latency
//! bound also use that every tile fits its memory and every loop has a size of 2 or more, which
//! the allocator and the loop orders qc makes guarantee.
//!
//! - **MAC energy**: exact (energy per MAC times the layer's iterations, whatever the mapping);
//!   on an in-memory-compute array, the floor of its operational energy over every mapping
//!   ([`crate::cost::ImcMacro::energy_floor`]).
//! - **Traffic floors** ([`TrafficFloor`]): every element of an operand crosses each boundary of
//!   its memory hierarchy at least once: written into each level from above and read out of
//!   each level towards the array (inputs), written into each level from below and read out of
//!   each non-top level towards the top (outputs). Into the output's lowest memory, one partial
//!   sum per cycle per group of array units that memory reduces over. Each floor is charged the
//!   exact per-word energy of the port that carries it.
//! - **Refetch** ([`Refetch`]): the outermost loop is irrelevant to some operand, which then
//!   either stays whole below a boundary (if it fits) or crosses it at least twice.
//! - **Latency**: the temporal cycles are at least the MACs over the array's units (times the
//!   cycles per MAC of a bit-serial IMC array); and when an
//!   operand cannot fit in a memory (per instance), it must stream through that memory's
//!   boundary during the computation, which the port's bandwidth bounds.
//!
//! The cost model rounds fractional tile sizes (non-dividing unrollings) to whole elements,
//! which can count fewer elements than exist; each floor carries the allowance that covers it
//! (`allowance`, 1 where no rounding can happen).

use crate::arch::{Accelerator, Direction, MemOperand};
use crate::cost::model::{PreparedLayer, Rel};
use crate::cost::{CostError, CostOptions, LatencyModel};
use crate::mapping::OperandLinks;
use qc_ir::LoopNest;

/// What a traffic floor stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorKind {
    /// Each element of the operand crosses the boundary once.
    Compulsory,
    /// One partial sum per cycle per group of array units the output's lowest memory reduces
    /// over (the accumulation of every MAC's product).
    Accumulation,
}

impl FloorKind {
    /// `compulsory`, `accumulation`.
    pub fn name(self) -> &'static str {
        match self {
            FloorKind::Compulsory => "compulsory",
            FloorKind::Accumulation => "accumulation",
        }
    }
}

/// The least traffic of one (operand, memory, direction) under every mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficFloor {
    /// The layer operand (`O`, `W`, `I`, ...).
    pub role: String,
    pub mem_operand: MemOperand,
    /// Index into [`Accelerator::memories`].
    pub memory: usize,
    pub direction: Direction,
    pub kind: FloorKind,
    /// Elements that must cross (all instances of the memory together).
    pub elements: f64,
    /// Bits per element (the smaller of the partial-sum and final precision for an output).
    pub bits: u32,
    /// The factor covering the cost model's rounding of fractional tiles (1: none can happen).
    pub allowance: f64,
    /// The least full-width word accesses: `floor(allowance * elements * bits / bw_max)`.
    pub words: u64,
    /// `words` times the port's per-word energy.
    pub energy: f64,
}

/// The outermost temporal loop is irrelevant to some operand (unless its dim indexes every
/// operand); that operand either stays whole below a boundary or crosses it at least twice. The
/// least such extra pass over the dims the outermost loop can have: `dim` is one that attains it.
#[derive(Clone, Debug, PartialEq)]
pub struct Refetch {
    pub dim: String,
    /// The operands that cross a boundary again, and where: `(role, memory)`.
    pub crossings: Vec<(String, usize)>,
    pub energy: f64,
}

/// A port that must carry streamed data during the computation.
#[derive(Clone, Debug, PartialEq)]
pub struct PortFloor {
    /// Index into [`Accelerator::memories`].
    pub memory: usize,
    /// Index into that memory's ports.
    pub port: usize,
    /// The operands that must stream through it: `(role, direction)`.
    pub links: Vec<(String, Direction)>,
    /// The least cycles the computation takes because of it.
    pub cycles: f64,
}

/// Lower bounds on one layer's energy and latency on one accelerator.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerBound {
    pub layer: String,
    pub macs: u64,
    /// Energy per MAC times the MACs (exact).
    pub mac_energy: f64,
    /// The traffic floors, per operand (output first), memory level (lowest first), direction.
    pub traffic: Vec<TrafficFloor>,
    /// The second pass the outermost loop forces (see [`Refetch`]), when every choice of it
    /// forces one.
    pub refetch: Option<Refetch>,
    /// `mac_energy` plus the traffic floors' and the refetch's energy: no mapping takes less.
    pub energy: f64,
    /// `ceil(MACs / MAC units)`, times the array cycles per MAC of a bit-serial IMC array: no
    /// mapping has fewer temporal cycles.
    pub ideal_cycles: u64,
    /// Ports whose streaming bounds the latency (3.9.1's latency model only).
    pub bandwidth: Vec<PortFloor>,
    /// The same ports' floor over the mappings whose spatial unrolling is integral (no
    /// fractional factor; 3.9.1's latency model only, else 0): no such mapping has fewer
    /// temporal plus stall cycles. Each streaming link counts its whole per-instance traffic
    /// over the port's bandwidth times `1 - 1/P`, `P >= ceil(per-instance operand / capacity of
    /// the memory below)` its forced transfers (`spec/bounds.md`); the largest port's sum.
    pub integral_streaming: f64,
    /// No mapping is faster; `None` under the repository's latency model
    /// ([`LatencyModel::Zigzag3d12a96`]), whose on-loading may be negative, so that no latency
    /// bound holds.
    pub latency: Option<f64>,
}

impl LayerBound {
    /// How many times `energy` is above the bound (`None` when the bound is not positive).
    pub fn energy_gap(&self, energy: f64) -> Option<f64> {
        gap(energy, self.energy)
    }

    /// A lower bound on the temporal plus stall cycles of every mapping (3.9.1's latency model;
    /// 0 under the repository's) whose spatial unrolling is integral when `integral`, of every
    /// mapping otherwise: the largest port's streaming floor.
    pub fn stall_floor(&self, integral: bool) -> f64 {
        if integral {
            self.integral_streaming
        } else {
            self.bandwidth.iter().map(|b| (b.cycles * (1.0 - 1e-12)).floor()).fold(0.0, f64::max)
        }
    }

    /// How many times `latency` is above the bound (`None` without a latency bound).
    pub fn latency_gap(&self, latency: f64) -> Option<f64> {
        self.latency.and_then(|b| gap(latency, b))
    }
}

/// `found / bound`, when the bound is positive.
pub fn gap(found: f64, bound: f64) -> Option<f64> {
    (bound > 0.0 && found.is_finite()).then(|| found / bound)
}

/// `N.NNx` for a gap.
pub fn gap_text(gap: Option<f64>) -> String {
    gap.map_or_else(|| "-".to_string(), |g| format!("{g:.2}x"))
}

/// The most a quantity the cost model rounds to whole elements (`round half to even`) can lose:
/// for `x >= 1`, `round(x) > 2x/3`.
const ROUND: f64 = 2.0 / 3.0;
/// Truncation to whole elements (partially relevant dims, integer unrollings): for `x >= 1`,
/// `trunc(x) > x/2`.
const TRUNC: f64 = 0.5;

/// Lower bounds on `layer`'s energy and latency on `acc` with the operand links `links`, over
/// every mapping (see the module documentation).
pub fn layer_bound(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    opts: &CostOptions,
) -> Result<LayerBound, CostError> {
    let model = PreparedLayer::new(layer, acc, links)?;
    let macs = model.total_macs;
    // An IMC array's operational energy depends on the spatial mapping (and its precharge on the
    // temporal one): its floor over all of them.
    let imc = crate::cost::ImcMacro::new(&acc.array);
    let mac_energy = match &imc {
        Some(m) => m.energy_floor(macs),
        None => acc.array.mac_energy * macs as f64,
    };
    let ndims = acc.array.dims.len();
    let mut traffic = Vec::new();
    let mut streams: Vec<(usize, usize, String, Direction, f64)> = Vec::new();
    // Per (memory, port): the streaming links' cycles under an integral unrolling.
    let mut integral: Vec<((usize, usize), f64)> = Vec::new();
    // Per operand, per level l >= 1: whether the whole operand (per instance) may fit in level
    // l - 1, and the compulsory energy of crossing boundary l once more.
    let mut boundaries: Vec<Vec<(bool, f64, usize)>> = Vec::new();
    // Per dim: the fractional factors it can get (see [`fractional_factors`]).
    let factors_of: Vec<Option<Vec<f64>>> =
        model.dim_sizes.iter().map(|&s| fractional_factors(acc, s)).collect();
    let can_split = |d: usize| factors_of[d].as_ref().is_none_or(|v| !v.is_empty());
    for op in &model.ops {
        boundaries.push(Vec::new());
        let levels = op.mems.len();
        // The architecture level each array dim's unrolling sits at for this operand: below the
        // lowest of its memories serving that dim, else above the top one.
        let arch: Vec<usize> = (0..ndims)
            .map(|a| op.mems.iter().position(|&m| acc.memories[m].served_dims.contains(&a)).unwrap_or(levels))
            .collect();
        // The dims relevant to the operand that can be unrolled by a factor not dividing them
        // (only these give the cost model fractional tiles of this operand).
        let has_pr = !op.prs.is_empty();
        let relevant: Vec<usize> = (0..model.dim_sizes.len())
            .filter(|&d| !matches!(op.rel[d], Rel::Ir | Rel::No) && can_split(d))
            .collect();
        let splittable = relevant.len();
        // How many fractional factors the unrollings at architecture levels `lo..=hi` can hold:
        // one per splittable dim, and at most one per factor of two of the array dims there.
        let any: Vec<usize> = (0..model.dim_sizes.len()).filter(|&d| can_split(d)).collect();
        let all_splittable = any.len();
        let fractions_of = |dims: usize, lo: usize, hi: usize| -> usize {
            if lo > hi {
                return 0;
            }
            let room: u32 = (0..ndims)
                .filter(|&a| arch[a] >= lo && arch[a] <= hi)
                .map(|a| acc.array.dims[a].size.max(1).ilog2())
                .sum();
            dims.min(room as usize)
        };
        let fractions = |lo: usize, hi: usize| fractions_of(splittable, lo, hi);
        // The energy's quantities are rounded once each; with partially relevant dims, ZigZag's
        // extent formula first truncates the two terms of each relation.
        let pr_terms: usize = op
            .prs
            .iter()
            .map(|&p| {
                let pr = &model.prs[p as usize];
                pr.dims[..pr.terms].iter().filter(|&&d| can_split(d)).count()
            })
            .sum();
        // Without partially relevant dims, a rounded quantity holds whole numbers and fractional
        // factors, one per dim at most: with one, the least ratio over the values it can take
        // ([`round_ratio`]); with two, over the products of two dims' factors; with three or
        // more, the product `x` is at least that of the three least factors, and
        // `round(x) >= x - 1/2`.
        let ratios = |dims: &[usize]| -> (f64, f64, f64) {
            let single = dims.iter().map(|&d| round_ratio(&[&factors_of[d]])).fold(1.0, f64::min);
            let mut pair: f64 = 1.0;
            for (i, &a) in dims.iter().enumerate() {
                for &b in &dims[i + 1..] {
                    pair = pair.min(round_ratio(&[&factors_of[a], &factors_of[b]]));
                }
            }
            let mut least: Vec<f64> = dims
                .iter()
                .map(|&d| factors_of[d].as_ref().and_then(|v| v.first().copied()).unwrap_or(1.0))
                .collect();
            least.sort_by(f64::total_cmp);
            let triple = match least.as_slice() {
                [a, b, c, ..] => (1.0 - 0.5 / (a * b * c)).max(ROUND),
                _ => 1.0,
            };
            (single, single.min(pair).min(triple), least.first().copied().unwrap_or(1.0))
        };
        let (single, several, least) = ratios(&relevant);
        let (all_single, all_several, _) = ratios(&any);
        let all_span = |g: usize| -> f64 {
            match g {
                0 => 1.0,
                1 => all_single,
                _ => all_several,
            }
        };
        let per_span = |g: usize| -> f64 {
            match (g, has_pr) {
                (0, _) => 1.0,
                (_, true) => ROUND * TRUNC.powi(pr_terms as i32),
                (1, false) => single,
                (_, false) => several,
            }
        };
        // The instance count also multiplies irrelevant unrolling, so it is not a whole number
        // times one factor; it is at least its relevant part `x >= v`, and `round >= x - 1/2`.
        let inst_span = |g: usize| -> f64 {
            match (g, has_pr) {
                (0, _) => 1.0,
                (_, true) => ROUND * TRUNC.powi(pr_terms as i32),
                (_, false) => (1.0 - 0.5 / least).max(ROUND),
            }
        };
        // The quantities of a floor: tiles and fan-outs at the levels of `spans`, then the
        // instances at `inst`.
        let allowance = |spans: &[(usize, usize)], inst: (usize, usize)| {
            spans.iter().fold(1.0, |a, &(lo, hi)| a * per_span(fractions(lo, hi)))
                * inst_span(fractions(inst.0, inst.1))
        };
        // The architecture levels below level `l` (none for the lowest).
        let below = |l: usize| if l == 0 { (1, 0) } else { (0, l - 1) };
        let n = op.size_elem;
        let bits_in = op.prec;
        let bits_out = op.prec.min(op.prec_final);
        for (l, &mi) in op.mems.iter().enumerate() {
            let mem = &acc.memories[mi];
            let top = l + 1 == levels;
            // (direction, kind, elements, bits, the rounded quantities' architecture levels)
            let mut here: Vec<(Direction, FloorKind, f64, u32, f64)> = Vec::new();
            // The lower side of level l: the tile of the level below (levels < l), this level's
            // fan-out (level l), the instances (levels > l). The upper side (not the top): the
            // tile (levels <= l) and the instances (levels > l).
            let low = allowance(&[below(l), (l, l)], (l + 1, levels));
            let high = allowance(&[(0, l)], (l + 1, levels));
            if op.is_output {
                here.push((Direction::FromLow, FloorKind::Compulsory, n, bits_out, low));
                if l == 0 {
                    // One write per cycle of each unit group the memory reduces over: the
                    // temporal cycles times the unrolling above the lowest level; the unrolling
                    // at the lowest level is at most the product of the array dims it serves.
                    let served: u64 =
                        (0..ndims).filter(|&a| arch[a] == 0).map(|a| acc.array.dims[a].size).product();
                    let every = macs as f64 / served.max(1) as f64;
                    // Here the instances count every unrolling, relevant or not.
                    let acc_allow = [(0, 0), (1, levels)]
                        .iter()
                        .fold(1.0, |a, &(lo, hi)| a * all_span(fractions_of(all_splittable, lo, hi)));
                    if every * acc_allow > n * low {
                        here.pop();
                        here.push((Direction::FromLow, FloorKind::Accumulation, every, bits_out, acc_allow));
                    }
                }
                if !top {
                    here.push((Direction::ToHigh, FloorKind::Compulsory, n, bits_out, high));
                }
            } else {
                here.push((Direction::ToLow, FloorKind::Compulsory, n, bits_in, low));
                if !top {
                    here.push((Direction::FromHigh, FloorKind::Compulsory, n, bits_in, high));
                }
            }
            for (dir, kind, elements, bits, allow) in here {
                if bits == 0 {
                    continue;
                }
                // A direction no port carries makes every mapping fail to evaluate; no floor.
                let Some(port) = mem.port_for(op.mem, dir) else { continue };
                let exact = allow * elements * bits as f64 / port.bw_max as f64;
                let words = (exact * (1.0 - 1e-12)).floor().max(0.0);
                let cost = if dir.is_read() { mem.r_cost } else { mem.w_cost };
                traffic.push(TrafficFloor {
                    role: op.role.clone(),
                    mem_operand: op.mem,
                    memory: mi,
                    direction: dir,
                    kind,
                    elements,
                    bits,
                    allowance: allow,
                    words: words as u64,
                    energy: words * cost,
                });
            }
            if l > 0 {
                let lower = op.mems[l - 1];
                let (dir_here, dir_below) = if op.is_output {
                    (Direction::FromLow, Direction::ToHigh)
                } else {
                    (Direction::ToLow, Direction::FromHigh)
                };
                let again: f64 = traffic
                    .iter()
                    .filter(|t| t.role == op.role && t.kind == FloorKind::Compulsory)
                    .filter(|t| {
                        (t.memory == mi && t.direction == dir_here)
                            || (t.memory == lower && t.direction == dir_below)
                    })
                    .map(|t| t.energy)
                    .sum();
                let whole = whole_bits(&model, op, if op.is_output { bits_out } else { bits_in });
                let fits = whole / acc.instances(lower) as f64 <= acc.memories[lower].size_bits as f64;
                if let Some(b) = boundaries.last_mut() {
                    b.push((fits, again, mi));
                }
            }
            // Streaming: if the whole operand (per instance of the level below) cannot fit
            // below this level, some relevant loop stays above it, and the boundary moves data
            // at least twice during the computation.
            if l == 0 || has_pr || opts.latency_model != LatencyModel::Zigzag391 {
                continue;
            }
            let lower = op.mems[l - 1];
            let fit_bits = if op.is_output { bits_out } else { bits_in } as f64;
            // The whole operand per instance of the memory below over its capacity: the least
            // number of transfers across the boundary (each moves at most a tile that fits).
            let transfers = n * fit_bits / acc.instances(lower) as f64 / acc.memories[lower].size_bits as f64;
            if fit_bits == 0.0 || transfers <= 1.0 {
                continue;
            }
            let least_transfers = (transfers * (1.0 - 1e-12)).ceil().max(2.0);
            // The integer unrolling (which latency reads) truncates fractional factors, then
            // rounds.
            let int_allow = |spans: &[(usize, usize)]| {
                spans.iter().fold(1.0, |a, &(lo, hi)| match fractions(lo, hi) {
                    0 => a,
                    g => a * ROUND * TRUNC.powi(g as i32),
                })
            };
            let (dir_here, dir_below) = if op.is_output {
                (Direction::FromLow, Direction::ToHigh)
            } else {
                (Direction::ToLow, Direction::FromHigh)
            };
            for (m, dir, allow) in [
                (mi, dir_here, int_allow(&[below(l), (l, l), (l + 1, levels)])),
                (lower, dir_below, int_allow(&[(0, l - 1), (l, levels)])),
            ] {
                let Some(pi) =
                    acc.memories[m].ports.iter().rposition(|p| p.allocation.contains(&(op.mem, dir)))
                else {
                    continue;
                };
                let bw = acc.memories[m].ports[pi].bw_max as f64;
                // Per instance: the boundary's elements over the instances, in port cycles;
                // with at least two transfers, all but the first count as stall or compute.
                let per_instance = allow * n * fit_bits / acc.instances(m) as f64 / bw;
                streams.push((m, pi, op.role.clone(), dir, per_instance / 2.0));
                // Integral unrolling: no rounding to allow for, and all but the first of at
                // least `least_transfers` transfers count.
                let exact = n * fit_bits / acc.instances(m) as f64 / bw * (1.0 - 1.0 / least_transfers);
                match integral.iter_mut().find(|(key, _)| *key == (m, pi)) {
                    Some((_, c)) => *c += exact,
                    None => integral.push(((m, pi), exact)),
                }
            }
        }
    }
    // The outermost loop: with more MACs than units there is a temporal loop (of size 2 or
    // more); its dim is irrelevant to some operands, each of which stays whole below a boundary
    // or crosses it again. The mapping chooses the dim: the least over the dims.
    let refetch = if macs > acc.array.units() {
        let mut best: Option<Refetch> = None;
        for (d, name) in model.dim_names.iter().enumerate() {
            if model.dim_sizes[d] < 2 {
                continue;
            }
            let mut r = Refetch { dim: name.clone(), crossings: Vec::new(), energy: 0.0 };
            for (k, op) in model.ops.iter().enumerate() {
                if op.rel[d] != Rel::Ir {
                    continue;
                }
                for &(fits, again, mi) in boundaries.get(k).map_or(&[][..], |b| &b[..]) {
                    if !fits && again > 0.0 {
                        r.energy += again;
                        r.crossings.push((op.role.clone(), mi));
                    }
                }
            }
            if best.as_ref().is_none_or(|b| r.energy < b.energy) {
                best = Some(r);
            }
        }
        best.filter(|r| r.energy > 0.0)
    } else {
        None
    };
    let energy = mac_energy
        + traffic.iter().map(|t| t.energy).sum::<f64>()
        + refetch.as_ref().map_or(0.0, |r| r.energy);
    let units = acc.array.units().max(1);
    // A bit-serial IMC array takes `cycles_per_mac` array cycles per temporal iteration.
    let ideal_cycles = macs.div_ceil(units).saturating_mul(imc.as_ref().map_or(1, |m| m.cycles_per_mac()));
    let mut bandwidth: Vec<PortFloor> = Vec::new();
    for (m, p, role, dir, cycles) in streams {
        match bandwidth.iter_mut().find(|b| b.memory == m && b.port == p) {
            Some(b) => {
                b.links.push((role, dir));
                b.cycles += cycles;
            }
            None => bandwidth.push(PortFloor { memory: m, port: p, links: vec![(role, dir)], cycles }),
        }
    }
    bandwidth.retain(|b| b.cycles > 0.0);
    let latency = (opts.latency_model == LatencyModel::Zigzag391).then(|| {
        bandwidth.iter().map(|b| (b.cycles * (1.0 - 1e-12)).floor()).fold(ideal_cycles as f64, f64::max)
    });
    Ok(LayerBound {
        layer: layer.name.clone(),
        macs,
        mac_energy,
        traffic,
        refetch,
        energy,
        ideal_cycles,
        bandwidth,
        integral_streaming: integral.iter().map(|&(_, c)| (c * (1.0 - 1e-12)).floor()).fold(0.0, f64::max),
        latency,
    })
}

/// A lower bound on the bits of the whole operand in one tile, as the allocator sizes it (all
/// of its loops below; the unrolling above divides it, by at most the memory's instances, which
/// the caller divides by). A partially relevant index counts at least the values of its first
/// term's dim, which ZigZag's extent formula may truncate (to at least half), clipped to the
/// index's extent.
fn whole_bits(model: &PreparedLayer, op: &crate::cost::model::Operand, bits: u32) -> f64 {
    let mut elems: f64 = op.r_dims.iter().map(|&d| model.dim_sizes[d] as f64).product();
    for &p in &op.prs {
        let pr = &model.prs[p as usize];
        elems *= pr.extent.min(model.dim_sizes[pr.dims[0]] as f64 / 2.0).max(1.0);
    }
    elems * bits as f64
}

/// Beyond this, `round(x) / x >= 1 - 0.5 / X_MAX`.
const X_MAX: f64 = 40.0;

/// The fractional factors ZigZag's greedy mapping can give a dim of `size` on `acc`: a factor
/// `f` on one array dim (its largest unrolling), `e` the unrolling on the array dims before it
/// (each at most `f`, `e f <= size`), the temporal remainder `q = ceil(size / (e f))`, and
/// `v = size / (e q)` when that is not a whole number. Sorted, without duplicates; `None` when
/// the dim is too large to list them (then only `v > 1` is known).
fn fractional_factors(acc: &Accelerator, size: u64) -> Option<Vec<f64>> {
    if size > 1 << 16 {
        return None;
    }
    let mut out = Vec::new();
    let dims: Vec<u64> = acc.array.dims.iter().map(|d| d.size).collect();
    for (a, &sa) in dims.iter().enumerate() {
        for f in 2..=sa.min(size) {
            let cap = (size / f) as usize;
            let mut reach = vec![false; cap + 1];
            reach[1] = true;
            for (b, &sb) in dims.iter().enumerate() {
                if b == a {
                    continue;
                }
                let mut next = reach.clone();
                for (p, _) in reach.iter().enumerate().filter(|&(p, r)| p > 0 && *r) {
                    for g in 2..=sb.min(f) as usize {
                        match p.checked_mul(g) {
                            Some(q) if q <= cap => next[q] = true,
                            _ => break,
                        }
                    }
                }
                reach = next;
            }
            for (e, _) in reach.iter().enumerate().filter(|(_, r)| **r) {
                let s = size as f64 / e as f64;
                let v = s / (s / f as f64).ceil();
                if v.fract() != 0.0 {
                    out.push(v);
                }
            }
        }
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Some(out)
}

/// The least `round(x) / x` (half to even, as the cost model rounds) over `x = w n`, `w` a
/// product of one factor of each list, `n` a whole number; `2/3` if a list is unknown.
fn round_ratio(lists: &[&Option<Vec<f64>>]) -> f64 {
    let mut worst = 1.0 - 0.5 / X_MAX;
    let mut products = vec![1.0f64];
    for l in lists {
        let Some(l) = l else { return ROUND };
        let mut next = Vec::new();
        for &p in &products {
            for &v in l.iter().take_while(|&&v| p * v <= X_MAX) {
                next.push(p * v);
            }
        }
        products = next;
    }
    for w in products {
        let mut x = w;
        while x <= X_MAX {
            worst = worst.min(x.round_ties_even() / x);
            x += w;
        }
    }
    worst.max(ROUND)
}
