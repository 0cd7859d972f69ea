//! The exact search (`qc evaluate --optimal`): the best mapping of one layer over the whole
//! space, by branch and bound, with a certificate (`spec/optimal.md`).
//!
//! **The space.** Every valid spatial unrolling ([`crate::spatial::all_valid`]: every divisor
//! of every layer dim on every array dim, mixed unrollings included, limited to the innermost
//! memories' capacity as ZigZag limits them) times every distinct order of the temporal loops'
//! prime factors, unmerged (no `lpf_limit`), each order cut into memory levels by the
//! allocator (uneven by default, as the cost model allows; even with [`MappingType::Even`]).
//! The mapping file only gives the operand links: its spatial mapping, hints and temporal
//! ordering do not narrow the space.
//!
//! **The branch and bound.**
//! 1. Per spatial candidate, a floor on every mapping under it ([`Evaluator::mapping_floor`]:
//!    the MAC energy plus the floors of the memory terms, and the larger of the temporal cycles
//!    and the streaming floor, plus the systolic drain plus the on-loading floor), from a few
//!    evaluations and the layer's bound, for every candidate in
//!    parallel. Candidates are visited in increasing floor of the objective (ties: the
//!    generation order), so that once one floor is above the best found, every later one is too
//!    and the rest of the candidates are excluded at once.
//! 2. Under a candidate, the temporal search without merging ([`super::search_temporal`] with
//!    `lpf_limit: None`), which prunes exactly: the orderings sharing innermost loops whose
//!    prefix bound ([`Evaluator::prefix_bounds`]) is above the best found so far, here or under
//!    another candidate (the incumbent), and those whose innermost loops already overflow a
//!    memory. It first walks ZigZag's LOMA space of the candidate (at most 720 orderings of
//!    merged loops) for a good incumbent; those mappings are valid too, outside the space.
//! 3. The starting incumbent is the caller's seed (`qc evaluate`'s LOMA-6 choice), so the
//!    result is never worse than it.
//!
//! **The certificate** ([`Certificate`]): the size of the space, the orderings evaluated,
//! pruned per reason with the bound that excluded them, the part the budget left unexplored,
//! and the proven gap: the best found over the least floor of what was left unexplored (0 when
//! nothing was). Every ordering of the space is counted once:
//! `orderings = evaluated_in_space + pruned (all reasons) + unexplored`.
//!
//! **Determinism.** One layer's branch and bound runs on one thread (the candidates' floors are
//! computed in parallel, each a pure function), and the budget counts allocations, not time,
//! so the result and the certificate are the same at any thread count.

use rayon::prelude::*;

use super::lpf;
use super::{Cancel, Objective, SearchError, TemporalOptions, TemporalResult, search_temporal};
use crate::arch::Accelerator;
use crate::bound::LayerBound;
use crate::cost::model::{PreparedLayer, Spatial};
use crate::cost::{CostOptions, Evaluator, LayerCost, MappingType};
use crate::mapping::{OperandLinks, SpatialMapping};
use qc_ir::LoopNest;

/// The default [`OptimalOptions::budget`]: orderings allocated per layer.
pub const DEFAULT_BUDGET: u64 = 2_000_000;

/// A bound excludes a class only when it is above the best found by more than the rounding of
/// sums taken in another order.
const MARGIN: f64 = 1.0 - 1e-12;

/// Options of [`search_optimal`].
#[derive(Clone, Debug, PartialEq)]
pub struct OptimalOptions {
    pub objective: Objective,
    pub mapping_type: MappingType,
    pub cost: CostOptions,
    /// Include mixed spatial unrollings (several layer dims on one array dim); default yes.
    pub mixed: bool,
    /// At most this many orderings allocated for the layer (`None`: no limit). A search cut
    /// by it says so in its certificate, with the proven gap.
    pub budget: Option<u64>,
    /// The dim order of LOMA's factor merging, for the seed phase of each temporal search
    /// ([`TemporalOptions::merge_order`]).
    pub merge_order: Option<Vec<String>>,
    /// Stop at once when set; the caller discards the result.
    pub cancel: Option<Cancel>,
    /// Exclude a class of mappings also when its lower bound is within this fraction below the
    /// best found (`bound * (1 + tolerance) > best`): the result is then proven at most this
    /// fraction above the optimum rather than optimal, usually much sooner. 0 (the default)
    /// is exact.
    pub tolerance: f64,
}

impl Default for OptimalOptions {
    fn default() -> OptimalOptions {
        OptimalOptions {
            objective: Objective::Latency,
            mapping_type: MappingType::Uneven,
            cost: CostOptions::default(),
            mixed: true,
            budget: Some(DEFAULT_BUDGET),
            merge_order: None,
            cancel: None,
            tolerance: 0.0,
        }
    }
}

/// Why a class of mappings was excluded without evaluating its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PruneReason {
    /// Spatial candidates whose floor ([`Evaluator::mapping_floor`]) is above the best found.
    SpatialFloor,
    /// Orderings sharing their innermost loops with an evaluated one, whose prefix bound
    /// ([`Evaluator::prefix_bounds`]) was above the best found at the time.
    PrefixBound,
    /// Orderings whose innermost loops already overflow a memory: no mapping at all.
    Capacity,
    /// Orderings whose innermost loops reach a state (their multiset and the allocation so
    /// far) that an earlier prefix reached with no more decided energy: every completion costs
    /// at least as much as the same completion of that prefix, evaluated or excluded already
    /// (the energy objective; [`TemporalOptions::dominance`]).
    Dominated,
}

impl PruneReason {
    /// The reports' name.
    pub fn name(self) -> &'static str {
        match self {
            PruneReason::SpatialFloor => "spatial-floor",
            PruneReason::PrefixBound => "prefix-bound",
            PruneReason::Capacity => "capacity",
            PruneReason::Dominated => "dominated",
        }
    }
}

/// One class of excluded mappings.
#[derive(Clone, Debug, PartialEq)]
pub struct PrunedClass {
    pub reason: PruneReason,
    /// Spatial candidates excluded whole.
    pub candidates: u64,
    /// Orderings excluded (saturating).
    pub orderings: u64,
    /// For [`PruneReason::SpatialFloor`] and [`PruneReason::PrefixBound`]: the least bound that
    /// excluded a class (in the objective's unit). With no tolerance it is above the best found
    /// (prefix bounds are checked against the best at the time, which is at least the final
    /// best); with one it may be below, down to `best / (1 + tolerance)`.
    pub least_bound: Option<f64>,
}

/// What [`search_optimal`] proves about its result.
#[derive(Clone, Debug, PartialEq)]
pub struct Certificate {
    pub objective: Objective,
    /// Spatial candidates in the space.
    pub spatial_candidates: u64,
    /// Orderings in the space: the sum over candidates of the distinct orders of their loop
    /// prime factors (saturating at `u64::MAX`).
    pub orderings: u64,
    /// Candidates whose temporal search ran (to the end or until the budget ran out).
    pub candidates_searched: u64,
    /// Orderings allocated, all searches together (with the seed orderings of merged loops).
    pub evaluated: u64,
    /// Of the space's orderings, those allocated (fitting or not).
    pub evaluated_in_space: u64,
    /// Orderings allocated that overflowed a memory.
    pub skipped: u64,
    /// Distinct prefix states the dominance test recorded, all temporal searches together.
    pub states: u64,
    /// Per reason (in [`PruneReason`] order), the classes excluded.
    pub pruned: Vec<PrunedClass>,
    /// Candidates the budget left unexplored, whole or in part.
    pub unexplored_candidates: u64,
    /// Orderings the budget left unexplored.
    pub unexplored: u64,
    /// The objective's value of the result (energy, cycles, or their product).
    pub best: f64,
    /// The least of the best, the lower bounds of what was left unexplored and the bounds that
    /// excluded classes (below the best only with a tolerance): no mapping of the space is
    /// below it. `None` when an unexplored candidate has no bound (the repository's latency
    /// model, under which on-loading can be negative).
    pub lower_bound: Option<f64>,
    /// `best / lower_bound - 1`: how far the result may be above the optimum. 0 when the whole
    /// space was searched or excluded with no tolerance; at most the tolerance when it was
    /// searched or excluded with one.
    pub gap: Option<f64>,
    /// Whether the whole space was searched or excluded.
    pub complete: bool,
    /// The tolerance the search ran under ([`OptimalOptions::tolerance`]).
    pub tolerance: f64,
    /// The budget the search ran under.
    pub budget: Option<u64>,
    /// The cost of the seed (the LOMA-6 choice), when there was one.
    pub seed: Option<LayerCost>,
}

/// The best mapping of one layer over the whole space.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimalResult {
    pub spatial: SpatialMapping,
    pub result: TemporalResult,
    pub certificate: Certificate,
}

/// The objective's value of a cost.
pub fn objective_value(objective: Objective, c: &LayerCost) -> f64 {
    match objective {
        Objective::Energy => c.energy,
        Objective::Latency => c.latency,
        Objective::Edp => c.energy * c.latency,
    }
}

/// One spatial candidate.
struct Candidate {
    spatial: SpatialMapping,
    /// Orderings of its unmerged loop prime factors.
    space: u64,
}

/// A candidate and the size of its space.
fn candidate(
    model: &PreparedLayer,
    acc: &Accelerator,
    spatial: SpatialMapping,
) -> Result<Candidate, SearchError> {
    let sp = Spatial::new(model, acc, &spatial)?;
    let mut mults: Vec<u64> = Vec::new();
    for &size in &sp.temporal_sizes {
        mults.extend(lpf::factorise(size).into_iter().map(|(_, m)| u64::from(m)));
    }
    Ok(Candidate { spatial, space: lpf::multiset_permutations(&mults) })
}

/// The floor of the objective over a candidate's mappings ([`Evaluator::mapping_floor`]), and
/// the streaming floor that went into it ([`LayerBound::stall_floor`] for its unrolling).
fn full_floor(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    c: &Candidate,
    bound: Option<&LayerBound>,
    opts: &OptimalOptions,
) -> Result<(Option<f64>, f64), SearchError> {
    let ev = Evaluator::new(layer, acc, links, &c.spatial)?;
    // Floors that cannot be computed are none: the MAC energy stays a floor.
    let mut floors = ev.floors(&opts.cost).unwrap_or_default();
    floors.streaming = bound.map_or(0.0, |b| b.stall_floor(ev.integral_unrolling()));
    let (energy, latency) = ev.mapping_floor(&floors, &opts.cost);
    let floor = match opts.objective {
        Objective::Energy => Some(energy),
        Objective::Latency => latency,
        Objective::Edp => latency.map(|l| l * energy),
    };
    Ok((floor, floors.streaming))
}

/// The best mapping of `layer` on `acc` over the whole space (see the module documentation),
/// starting from `seed` (a mapping found otherwise, e.g. by LOMA, which the result is never
/// worse than). Errors: the cost model's, [`SearchError::NothingFits`] when no mapping of the
/// space fits the memories, [`SearchError::NoBudget`] when the budget ran out before one that
/// fits was found.
pub fn search_optimal(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    seed: Option<(SpatialMapping, TemporalResult)>,
    opts: &OptimalOptions,
) -> Result<OptimalResult, SearchError> {
    let objective = opts.objective;
    let model = PreparedLayer::new(layer, acc, links)?;
    let all = crate::spatial::all_valid(layer, acc, links, opts.mixed);
    let cands: Vec<Candidate> =
        all.into_par_iter().map(|sm| candidate(&model, acc, sm)).collect::<Result<_, _>>()?;
    // The layer's streaming floors (none if its bound cannot be computed: the other floors
    // still hold).
    let bound = crate::bound::layer_bound(layer, acc, links, &opts.cost).ok();
    // Every candidate's floor (one evaluation each, in parallel), so that they are visited in
    // increasing floor and what is left unexplored has its own floor.
    let floors: Vec<(Option<f64>, f64)> = cands
        .par_iter()
        .map(|c| full_floor(layer, acc, links, c, bound.as_ref(), opts))
        .collect::<Result<_, _>>()?;
    let floor_of = |i: usize| floors[i].0;
    // Increasing floor (no floor first: it is never excluded), then generation order.
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| {
        let f = |i: usize| floor_of(i).unwrap_or(f64::NEG_INFINITY);
        f(a).total_cmp(&f(b)).then(a.cmp(&b))
    });

    let seed_cost = seed.as_ref().map(|(_, r)| r.cost.clone());
    let mut best: Option<(SpatialMapping, TemporalResult)> = seed;
    let mut pruned =
        [PruneReason::SpatialFloor, PruneReason::PrefixBound, PruneReason::Capacity, PruneReason::Dominated]
            .map(|reason| PrunedClass { reason, candidates: 0, orderings: 0, least_bound: None });
    let (mut evaluated, mut in_space, mut skipped, mut searched) = (0u64, 0u64, 0u64, 0u64);
    let mut states = 0u64;
    let (mut unexplored, mut unexplored_candidates) = (0u64, 0u64);
    // The least floor of what was left unexplored (`Some(None)`: one without a floor).
    let mut unexplored_floor: Option<Option<f64>> = None;
    let mut leave = |c: &Candidate, floor: Option<f64>, visited: u64| {
        unexplored_candidates += 1;
        unexplored = unexplored.saturating_add(c.space.saturating_sub(visited));
        unexplored_floor = Some(match (unexplored_floor, floor) {
            (None, f) => f,
            (Some(Some(a)), Some(b)) => Some(a.min(b)),
            _ => None,
        });
    };
    let mut first_misfit: Option<SearchError> = None;
    let cancelled = || opts.cancel.as_ref().is_some_and(Cancel::is_cancelled);

    for (pos, &ci) in order.iter().enumerate() {
        let c = &cands[ci];
        let best_value = best.as_ref().map(|(_, r)| objective_value(objective, &r.cost));
        let tolerated = MARGIN * (1.0 + opts.tolerance);
        let above = |f: Option<f64>| matches!((best_value, f), (Some(b), Some(f)) if f * tolerated > b);
        let floor = floor_of(ci);
        if above(floor) {
            // Sorted by floor: this candidate and every later one are excluded.
            let class = &mut pruned[0];
            for &cj in &order[pos..] {
                let f = floor_of(cj);
                class.least_bound = min_bound(class.least_bound, f);
                class.candidates += 1;
                class.orderings = class.orderings.saturating_add(cands[cj].space);
            }
            break;
        }
        let left = opts.budget.map(|b| b.saturating_sub(evaluated));
        if left == Some(0) || cancelled() {
            for &cj in &order[pos..] {
                leave(&cands[cj], floor_of(cj), 0);
            }
            break;
        }
        let t = TemporalOptions {
            lpf_limit: None,
            mapping_type: opts.mapping_type,
            budget: None,
            max_evaluations: left,
            cost: opts.cost,
            merge_order: opts.merge_order.clone(),
            prune: true,
            cancel: opts.cancel.clone(),
            incumbent: best.as_ref().map(|(_, r)| r.cost.clone()),
            dominance: true,
            tolerance: opts.tolerance,
            streaming_floor: floors[ci].1,
        };
        searched += 1;
        match search_temporal(layer, acc, links, &c.spatial, None, objective, &t) {
            Ok(r) => {
                evaluated = evaluated.saturating_add(r.evaluated);
                skipped = skipped.saturating_add(r.skipped);
                in_space = in_space.saturating_add(r.visited.saturating_sub(r.space_pruned));
                let by_bound = r.space_pruned - r.pruned_capacity - r.pruned_dominated;
                pruned[1].orderings = pruned[1].orderings.saturating_add(by_bound);
                pruned[2].orderings = pruned[2].orderings.saturating_add(r.pruned_capacity);
                pruned[3].orderings = pruned[3].orderings.saturating_add(r.pruned_dominated);
                pruned[1].least_bound = min_bound(pruned[1].least_bound, r.least_pruned_bound);
                states = states.saturating_add(r.states);
                if !r.exhaustive {
                    leave(c, floor, r.visited);
                }
                if best.as_ref().is_none_or(|(_, b)| objective.better(&r.cost, &b.cost)) {
                    best = Some((c.spatial.clone(), r));
                }
            }
            Err(SearchError::NothingFits { layer: l, memory, reason, tried }) => {
                // Every ordering of this candidate overflows a memory (the search went to the
                // end to know it): the whole candidate counts as excluded by capacity.
                evaluated = evaluated.saturating_add(tried);
                skipped = skipped.saturating_add(tried);
                pruned[2].candidates += 1;
                pruned[2].orderings = pruned[2].orderings.saturating_add(c.space);
                if first_misfit.is_none() {
                    first_misfit = Some(SearchError::NothingFits { layer: l, memory, reason, tried });
                }
            }
            Err(SearchError::NoBudget { tried, .. }) => {
                // Cut before anything fitted: the whole candidate counts as unexplored.
                evaluated = evaluated.saturating_add(tried);
                skipped = skipped.saturating_add(tried);
                leave(c, floor, 0);
            }
            Err(e) => return Err(e),
        }
    }

    let Some((spatial, result)) = best else {
        return Err(match first_misfit {
            Some(e) if unexplored_candidates == 0 => e,
            _ => SearchError::NoBudget { layer: layer.name.clone(), tried: evaluated },
        });
    };
    let best_value = objective_value(objective, &result.cost);
    let complete = unexplored_candidates == 0;
    // What the bounds excluded is at least their least bound: above the best with no
    // tolerance, at least `best / (1 + tolerance)` with one. Dominated prefixes cost at least as
    // much as others that were evaluated or excluded.
    let excluded = min_bound(pruned[0].least_bound, pruned[1].least_bound);
    let lower_bound = match unexplored_floor {
        None => Some(best_value),
        Some(Some(f)) => Some(f.min(best_value)),
        Some(None) => None,
    }
    .map(|lb| excluded.map_or(lb, |x| x.min(lb)));
    let gap = match lower_bound {
        Some(lb) if lb == best_value => Some(0.0),
        Some(lb) if lb > 0.0 => Some(best_value / lb - 1.0),
        _ => None,
    };
    let orderings = cands.iter().fold(0u64, |a, c| a.saturating_add(c.space));
    Ok(OptimalResult {
        spatial,
        result,
        certificate: Certificate {
            objective,
            spatial_candidates: cands.len() as u64,
            orderings,
            candidates_searched: searched,
            evaluated,
            evaluated_in_space: in_space,
            skipped,
            states,
            pruned: pruned.to_vec(),
            unexplored_candidates,
            unexplored,
            best: best_value,
            lower_bound,
            gap,
            complete,
            tolerance: opts.tolerance,
            budget: opts.budget,
            seed: seed_cost,
        },
    })
}

/// `qc evaluate --optimal`'s settings ([`crate::network::EvaluateOptions::optimal`]); the
/// objective, mapping type and latency model are the search's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimalSettings {
    /// Orderings allocated per layer at most (`None`: no limit).
    pub budget: Option<u64>,
    /// Include mixed spatial unrollings.
    pub mixed: bool,
    /// [`OptimalOptions::tolerance`].
    pub tolerance: f64,
}

impl Default for OptimalSettings {
    fn default() -> OptimalSettings {
        OptimalSettings { budget: Some(DEFAULT_BUDGET), mixed: true, tolerance: 0.0 }
    }
}

/// Replaces each layer's choice of a workload search ([`crate::explore::search_workload_each`],
/// same `layers`, `accs`, `map` and `o`) by the optimum over the whole space, seeded with it,
/// with its certificate ([`crate::explore::LayerChoice::certificate`]). Layers run in parallel
/// (`o.jobs` threads), each on one thread: the results do not depend on the thread count. A
/// layer that shares another's search shares its optimum.
pub fn optimise_choices(
    layers: &[&LoopNest],
    accs: &[&Accelerator],
    map: &crate::mapping::MappingFile,
    choices: Vec<Result<crate::explore::LayerChoice, SearchError>>,
    o: &crate::explore::ExploreOptions,
    settings: &OptimalSettings,
) -> Result<Vec<Result<crate::explore::LayerChoice, SearchError>>, crate::explore::ExploreError> {
    use crate::explore::{ExploreError, LayerChoice};
    let acc_of = |i: usize| if accs.len() == 1 { accs[0] } else { accs[i] };
    let shared: Vec<Option<usize>> =
        choices.iter().map(|c| c.as_ref().ok().and_then(|c| c.shared_with)).collect();
    let run = |(i, choice): (usize, Result<LayerChoice, SearchError>)| {
        if shared[i].is_some() {
            return Ok(choice);
        }
        let layer = layers[i];
        let entry = map
            .entry_for(&layer.name, &layer.op_type)
            .ok_or_else(|| ExploreError::NoEntry { layer: layer.name.clone() })?;
        let opts = OptimalOptions {
            objective: o.objective,
            mapping_type: o.temporal.mapping_type,
            cost: o.temporal.cost,
            mixed: settings.mixed,
            budget: settings.budget,
            merge_order: o.onnx_dim_order.then(|| super::zigzag_onnx_dim_order(layer)),
            cancel: o.cancel.clone(),
            tolerance: settings.tolerance,
        };
        let seed = choice.as_ref().ok().map(|c| (c.spatial.clone(), c.result.clone()));
        let r = match search_optimal(layer, acc_of(i), &entry.links, seed, &opts) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let c = &r.certificate;
        let pruned = c.pruned.iter().fold(0u64, |a, p| a.saturating_add(p.orderings));
        Ok(Ok(LayerChoice {
            entry: entry.name.clone(),
            spatial: r.spatial,
            result: r.result,
            candidates: usize::try_from(c.spatial_candidates).unwrap_or(usize::MAX),
            evaluated: c.evaluated,
            pruned,
            visited: c.orderings.saturating_sub(c.unexplored),
            space: c.orderings,
            complete: usize::try_from(c.spatial_candidates - c.unexplored_candidates).unwrap_or(usize::MAX),
            exhaustive: c.complete,
            shared_with: None,
            certificate: Some(Box::new(r.certificate)),
        }))
    };
    let indexed: Vec<(usize, Result<LayerChoice, SearchError>)> = choices.into_iter().enumerate().collect();
    let done: Vec<Result<Result<LayerChoice, SearchError>, ExploreError>> = match o.jobs {
        Some(n) if n <= 1 => indexed.into_iter().map(run).collect(),
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(|| indexed.into_par_iter().map(run).collect()),
            Err(_) => indexed.into_iter().map(run).collect(),
        },
        None => indexed.into_par_iter().map(run).collect(),
    };
    if o.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
        return Err(ExploreError::Cancelled);
    }
    let mut out: Vec<Result<LayerChoice, SearchError>> = Vec::with_capacity(done.len());
    for (i, d) in done.into_iter().enumerate() {
        let c = match (d?, shared[i]) {
            (Ok(_), Some(j)) => out[j].clone().map(|mut c| {
                c.shared_with = Some(j);
                c
            }),
            (c, _) => c,
        };
        out.push(c);
    }
    Ok(out)
}

impl Certificate {
    /// The seed's value of the objective (`qc evaluate`'s LOMA-6 choice), if there was one.
    pub fn seed_value(&self) -> Option<f64> {
        self.seed.as_ref().map(|s| objective_value(self.objective, s))
    }

    /// How far the seed is above the result: `seed / best - 1` (0 when the seed was optimal).
    pub fn seed_excess(&self) -> Option<f64> {
        self.seed_value().filter(|_| self.best > 0.0).map(|s| s / self.best - 1.0)
    }

    /// One line for the reports: `optimal (whole space searched): 12,345 of 6,789,012 orderings
    /// evaluated, the rest excluded (spatial floor 6,000,000 in 410 candidates, prefix bounds
    /// 700,000, capacity 76,667); LOMA-6 is 4.20% above`.
    pub fn summary(&self) -> String {
        let n = |x: u64| {
            if x == u64::MAX {
                "more than 18 quintillion".to_string()
            } else {
                crate::report::group_digits(&x.to_string())
            }
        };
        let head = if self.complete && self.gap == Some(0.0) {
            "optimal (whole space searched)".to_string()
        } else if self.complete {
            format!(
                "at most {}% above the optimum (whole space searched, with a tolerance of {}%)",
                percent(self.gap.unwrap_or(self.tolerance)),
                percent(self.tolerance)
            )
        } else {
            match self.gap {
                Some(g) => format!(
                    "best found, at most {}% above the optimum (the budget of {} orderings left {} orderings in {} spatial candidates unexplored)",
                    percent(g),
                    self.budget.map_or("no".into(), n),
                    n(self.unexplored),
                    self.unexplored_candidates
                ),
                None => format!(
                    "best found, gap unknown (the budget left {} orderings in {} spatial candidates unexplored, some without a lower bound under this latency model)",
                    n(self.unexplored),
                    self.unexplored_candidates
                ),
            }
        };
        let of = |reason: PruneReason| {
            let hit = self.pruned.iter().filter(|p| p.reason == reason);
            hit.fold((0u64, 0u64), |(c, o), p| (c + p.candidates, o.saturating_add(p.orderings)))
        };
        let (floor, prefix, capacity, dominated) = (
            of(PruneReason::SpatialFloor),
            of(PruneReason::PrefixBound),
            of(PruneReason::Capacity),
            of(PruneReason::Dominated),
        );
        let seed = match self.seed_excess() {
            Some(x) if x > 0.0 => format!("; the search's choice (LOMA) is {:.2}% above", 100.0 * x),
            Some(_) => "; the search's choice (LOMA) is optimal".to_string(),
            None => String::new(),
        };
        format!(
            "{head}: {} of {} orderings in {} spatial candidates evaluated, excluded: spatial floor {} in {} candidates, prefix bounds {}, capacity {}, dominated {} ({} prefix states){seed}",
            n(self.evaluated_in_space),
            n(self.orderings),
            self.spatial_candidates,
            n(floor.1),
            floor.0,
            n(prefix.1),
            n(capacity.1),
            n(dominated.1),
            n(self.states),
        )
    }

    /// The JSON report's `certificate` object (`spec/optimal.md`).
    pub fn to_json(&self) -> serde_json::Value {
        let cost = |c: &LayerCost| serde_json::json!({"energy": c.energy, "latency": c.latency});
        serde_json::json!({
            "objective": crate::network::objective_name(self.objective),
            "complete": self.complete,
            "spatial_candidates": self.spatial_candidates,
            "orderings": self.orderings,
            "candidates_searched": self.candidates_searched,
            "orderings_evaluated": self.evaluated,
            "orderings_evaluated_in_space": self.evaluated_in_space,
            "orderings_skipped": self.skipped,
            "states": self.states,
            "pruned": self.pruned.iter().map(|p| serde_json::json!({
                "reason": p.reason.name(),
                "candidates": p.candidates,
                "orderings": p.orderings,
                "least_bound": p.least_bound,
            })).collect::<Vec<_>>(),
            "unexplored_candidates": self.unexplored_candidates,
            "orderings_unexplored": self.unexplored,
            "best": self.best,
            "lower_bound": self.lower_bound,
            "gap": self.gap,
            "tolerance": self.tolerance,
            "budget": self.budget,
            "seed": self.seed.as_ref().map(cost),
            "seed_value": self.seed_value(),
            "seed_excess": self.seed_excess(),
        })
    }
}

/// The lesser of two bounds, `None` (no bound yet) giving way.
fn min_bound(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// A fraction as a percentage with two decimals, or two significant digits below 0.1%
/// (`0.1403` as `14.03`, `2.17e-5` as `0.0022`): a small gap does not read as 0.
fn percent(x: f64) -> String {
    let p = 100.0 * x;
    let decimals = if p > 0.0 && p < 0.1 { (1 - p.log10().floor() as i32).clamp(2, 12) as usize } else { 2 };
    format!("{p:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages_keep_small_gaps_visible() {
        assert_eq!(percent(0.140_359_383), "14.04");
        assert_eq!(percent(0.01), "1.00");
        assert_eq!(percent(0.006_405_9), "0.64");
        assert_eq!(percent(0.000_5), "0.050");
        assert_eq!(percent(2.174_180_8e-5), "0.0022");
        assert_eq!(percent(0.0), "0.00");
    }
}
