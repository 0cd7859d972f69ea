//! The LOMA search loop: enumeration of the LPF orderings, allocation, evaluation, budget.

use std::collections::HashMap;
use std::time::Instant;

use qc_ir::LoopNest;

use super::lpf::{self, Constraints, LpfError, ResolvedConstraints};
use super::{Objective, SEED_LPF_LIMIT, SearchError, TemporalOptions, TemporalResult};
use crate::arch::Accelerator;
use crate::cost::{
    AllocOptions, AllocTrace, Allocation, Allocator, CostError, EvalScratch, Evaluator, Floors, LayerCost,
    MappingType, PrefixBounds,
};
use crate::mapping::{OperandLinks, OrderSize, SpatialMapping, TemporalLoop};

/// Searches the temporal mapping of `layer` under `spatial` (see the module documentation of
/// [`crate::search`]). `ordering` is the mapping entry's `temporal_ordering`, if any.
pub fn search_temporal(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    spatial: &SpatialMapping,
    ordering: Option<&[(String, OrderSize)]>,
    objective: Objective,
    opts: &TemporalOptions,
) -> Result<TemporalResult, SearchError> {
    search_temporal_observed(layer, acc, links, spatial, ordering, objective, opts, &|_| {})
}

/// How many orderings [`search_temporal`] would visit in all for these arguments: the
/// `space` of its result, known before searching (one [`Evaluator`] and the loop prime
/// factors, no allocation). The errors are those the search would return first.
pub fn temporal_space(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    spatial: &SpatialMapping,
    ordering: Option<&[(String, OrderSize)]>,
    opts: &TemporalOptions,
) -> Result<u64, SearchError> {
    let ev = Evaluator::new(layer, acc, links, spatial)?;
    Ok(match Space::of(layer, &ev, ordering, opts)? {
        Space::Complete(_) => 1,
        Space::Lpfs { fine, .. } => Multiset::new(&fine).count(),
    })
}

/// The orderings a search goes through: a complete `temporal_ordering`, or the permutations of
/// the loop prime factors under the ordering's constraints.
enum Space {
    Complete(Vec<(usize, u64)>),
    Lpfs {
        temporal: Vec<u64>,
        cons: Constraints,
        merge_order: Vec<usize>,
        fine: Vec<(usize, u64)>,
        fine_cons: ResolvedConstraints,
    },
}

impl Space {
    fn of(
        layer: &LoopNest,
        ev: &Evaluator,
        ordering: Option<&[(String, OrderSize)]>,
        opts: &TemporalOptions,
    ) -> Result<Space, SearchError> {
        let (names, temporal): (Vec<String>, Vec<u64>) = ev.temporal_sizes().into_iter().unzip();
        let dim_of = |n: &str| names.iter().position(|x| x == n);
        // A complete ordering is used as is (ZigZag allocates it without catching misfits).
        if let Some(loops) = ordering.and_then(|o| lpf::complete_order(o, dim_of, &temporal)) {
            return Ok(Space::Complete(loops));
        }
        let cons = ordering.map(|o| lpf::constraints(o, dim_of)).unwrap_or_default();
        // The layer's dims in ZigZag's order: the given names first, then the others in layer
        // order.
        let mut merge_order: Vec<usize> =
            opts.merge_order.iter().flatten().filter_map(|n| dim_of(n)).collect();
        merge_order.dedup();
        for d in 0..names.len() {
            if !merge_order.contains(&d) {
                merge_order.push(d);
            }
        }
        let lpf_err = |e: LpfError| match e {
            LpfError::StaticSize { dim, size } => SearchError::BadOrderingSize {
                layer: layer.name.clone(),
                dim: names[dim].clone(),
                size,
                temporal: temporal[dim],
            },
            LpfError::Inconsistent { dim } => SearchError::InconsistentOrdering {
                layer: layer.name.clone(),
                dim: names[dim].clone(),
                temporal: temporal[dim],
            },
        };
        let fine = lpf::lpfs(&temporal, opts.lpf_limit, &cons, &merge_order).map_err(lpf_err)?;
        let fine_cons = resolve(&cons, fine.len(), &layer.name)?;
        Ok(Space::Lpfs { temporal, cons, merge_order, fine, fine_cons })
    }
}

/// As [`search_temporal`], telling `progress` how far it got: it is called with the number of
/// orderings of the space (`space` of the result) visited since its last call, in batches of
/// about [`PROGRESS_BATCH`] and once at the end, so that the calls add up to the result's
/// `visited` (a search cut by its budget stops short of `space`). The calls cost nothing
/// measurable; the result is the same as without them.
#[allow(clippy::too_many_arguments)]
pub fn search_temporal_observed(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    spatial: &SpatialMapping,
    ordering: Option<&[(String, OrderSize)]>,
    objective: Objective,
    opts: &TemporalOptions,
    progress: &dyn Fn(u64),
) -> Result<TemporalResult, SearchError> {
    let ev = Evaluator::new(layer, acc, links, spatial)?;
    let names: Vec<String> = ev.temporal_sizes().into_iter().map(|(n, _)| n).collect();
    let mut s = Search {
        ev: &ev,
        objective,
        opts,
        alloc: AllocOptions { mapping_type: opts.mapping_type },
        deadline: opts.budget.map(|b| Instant::now() + b),
        out_of_budget: false,
        idx: Vec::new(),
        allocator: Allocator::default(),
        scratch: EvalScratch::default(),
        cost: LayerCost::default(),
        trace: AllocTrace::default(),
        floors: if opts.prune {
            Floors { streaming: opts.streaming_floor, ..ev.floors(&opts.cost)? }
        } else {
            Floors::default()
        },
        bounds: PrefixBounds::default(),
        best: None,
        evaluated: 0,
        skipped: 0,
        pruned: 0,
        pruned_capacity: 0,
        capacity_skip: false,
        dom: None,
        pruned_dominated: 0,
        dominated_skip: false,
        least_pruned_bound: None,
        first_misfit: None,
        progress,
        reported: 0,
    };
    let to_loops = |l: &[(usize, u64)]| -> Vec<TemporalLoop> {
        l.iter().map(|&(d, size)| TemporalLoop { dim: names[d].clone(), size }).collect()
    };

    let (temporal, cons, merge_order, fine, fine_cons) = match Space::of(layer, &ev, ordering, opts)? {
        Space::Complete(loops) => {
            let order = to_loops(&loops);
            let tm = ev.allocate(&order, &s.alloc)?;
            let cost = ev.evaluate(&tm, &opts.cost)?;
            progress(1);
            return Ok(TemporalResult {
                temporal: tm,
                order: order.clone(),
                cost,
                evaluated: 1,
                skipped: 0,
                pruned: 0,
                space_pruned: 0,
                pruned_capacity: 0,
                pruned_dominated: 0,
                states: 0,
                least_pruned_bound: None,
                visited: 1,
                space: 1,
                lpfs: order,
                exhaustive: true,
            });
        }
        Space::Lpfs { temporal, cons, merge_order, fine, fine_cons } => {
            (temporal, cons, merge_order, fine, fine_cons)
        }
    };
    let fine_perm = Multiset::new(&fine);
    let space = fine_perm.count();
    let n_dims = temporal.iter().filter(|&&t| t > 1).count();

    // Phases (a) and (b) for spaces beyond LOMA's default.
    if fine.len() > SEED_LPF_LIMIT.max(n_dims) {
        // The seed space is optional: skipped if ZigZag's merging fails on it.
        if let Ok(coarse) = lpf::lpfs(&temporal, Some(SEED_LPF_LIMIT), &cons, &merge_order)
            && let Ok(rc) = resolve(&cons, coarse.len(), &layer.name)
        {
            let mut m = Multiset::new(&coarse);
            s.run(&mut m, &rc, &mut 0, false)?;
        }
        if opts.lpf_limit.is_none()
            && let Some(Best { order, .. }) = &s.best
        {
            let seed: Vec<(usize, u64)> = order.clone();
            s.refine(&seed, &fine_cons)?;
        }
    }

    // Phase (c): the whole space, with the dominance test where it holds.
    if opts.dominance
        && opts.prune
        && opts.lpf_limit.is_none()
        && ordering.is_none()
        && objective == Objective::Energy
        && opts.mapping_type == MappingType::Uneven
        && fine.len() < 128
        // The precharge of deeper IMC cell groups depends on the innermost loops' order, which
        // a prefix state does not record.
        && !ev.charges_precharge()
    {
        s.dom = Some(Dominance::new(&fine_perm.classes));
    }
    let (pruned_before, capacity_before) = (s.pruned, s.pruned_capacity);
    let mut visited = 0u64;
    let mut m = fine_perm;
    s.run(&mut m, &fine_cons, &mut visited, true)?;
    if visited > s.reported {
        progress(visited - s.reported);
    }
    let exhaustive = !s.out_of_budget && visited == space;
    let (evaluated, skipped, pruned) = (s.evaluated, s.skipped, s.pruned);
    let space_pruned = s.pruned - pruned_before;
    let pruned_capacity = s.pruned_capacity - capacity_before;
    let (pruned_dominated, states) = (s.pruned_dominated, s.dom.as_ref().map_or(0, |d| d.states));
    let least_pruned_bound = s.least_pruned_bound;
    match s.best {
        Some(Best { cost, order, alloc }) => Ok(TemporalResult {
            temporal: ev.mapping(&order, &alloc),
            order: to_loops(&order),
            cost,
            evaluated,
            skipped,
            pruned,
            space_pruned,
            pruned_capacity,
            pruned_dominated,
            states,
            least_pruned_bound,
            visited,
            space,
            lpfs: to_loops(&fine),
            exhaustive,
        }),
        None => match s.first_misfit {
            // Only a search that went to the end knows that nothing fits.
            Some(e) if !s.out_of_budget => Err(nothing_fits(layer, e, evaluated)),
            _ => Err(SearchError::NoBudget { layer: layer.name.clone(), tried: evaluated }),
        },
    }
}

fn resolve(cons: &Constraints, n: usize, layer: &str) -> Result<ResolvedConstraints, SearchError> {
    cons.resolve(n).ok_or_else(|| {
        let position = cons
            .positions
            .iter()
            .map(|c| c.0)
            .chain(cons.sized.iter().map(|c| c.0))
            .max_by_key(|p| if *p < 0 { -p - 1 } else { *p })
            .unwrap_or(0);
        SearchError::OrderingTooLong { layer: layer.to_string(), position, loops: n }
    })
}

fn nothing_fits(layer: &LoopNest, e: CostError, tried: u64) -> SearchError {
    let memory = match &e {
        CostError::MemoryTooSmall { memory, .. } | CostError::HierarchyTooSmall { memory, .. } => {
            memory.clone()
        }
        _ => "?".into(),
    };
    SearchError::NothingFits { layer: layer.name.clone(), memory, reason: e.to_string(), tried }
}

/// The distinct permutations of a multiset, in lexicographic order of the element classes.
struct Multiset {
    /// The distinct `(dim, size)` elements, ascending.
    classes: Vec<(usize, u64)>,
    /// The current permutation as class indices.
    ids: Vec<u16>,
    /// Whether `ids` is a permutation not yet handed out.
    fresh: bool,
}

impl Multiset {
    fn new(elems: &[(usize, u64)]) -> Multiset {
        let mut classes = elems.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let mut ids: Vec<u16> =
            elems.iter().map(|e| classes.binary_search(e).unwrap_or_default() as u16).collect();
        ids.sort_unstable();
        Multiset { classes, ids, fresh: true }
    }

    fn count(&self) -> u64 {
        let mults: Vec<u64> = (0..self.classes.len())
            .map(|c| self.ids.iter().filter(|&&i| i as usize == c).count() as u64)
            .collect();
        lpf::multiset_permutations(&mults)
    }

    /// Advances to the next permutation; `false` when all were handed out.
    fn advance(&mut self) -> bool {
        if self.fresh {
            self.fresh = false;
            return true;
        }
        let v = &mut self.ids;
        let n = v.len();
        if n < 2 {
            return false;
        }
        let mut i = n - 1;
        while i > 0 && v[i - 1] >= v[i] {
            i -= 1;
        }
        if i == 0 {
            return false;
        }
        let mut j = n - 1;
        while v[j] <= v[i - 1] {
            j -= 1;
        }
        v.swap(i - 1, j);
        v[i..].reverse();
        true
    }

    /// Moves to the last permutation that shares the first `j` elements with the current one
    /// (so that [`Multiset::advance`] leaves them), returning how many permutations that skips.
    fn skip_subtree(&mut self, j: usize) -> u64 {
        let suffix = &mut self.ids[j..];
        let mut count = vec![0u64; self.classes.len()];
        for &c in suffix.iter() {
            count[c as usize] += 1;
        }
        let total = lpf::multiset_permutations(&count);
        // The rank of the current suffix among the permutations of its elements.
        let mut rank = 0u64;
        for &c in suffix.iter() {
            for smaller in 0..c as usize {
                if count[smaller] > 0 {
                    count[smaller] -= 1;
                    rank = rank.saturating_add(lpf::multiset_permutations(&count));
                    count[smaller] += 1;
                }
            }
            count[c as usize] -= 1;
        }
        suffix.sort_unstable_by(|a, b| b.cmp(a));
        total.saturating_sub(rank).saturating_sub(1)
    }

    fn at(&self, p: usize) -> (usize, u64) {
        self.classes[self.ids[p] as usize]
    }
}

/// What [`Search::try_order`] tells the enumeration.
enum Step {
    /// The budget is spent.
    Stop,
    /// Go on; with `Some(j)`, skip the other orderings that share the first `j` loops.
    Next(Option<usize>),
}

/// The best ordering so far: its cost, loops `(dim, size)` and allocation.
struct Best {
    cost: LayerCost,
    order: Vec<(usize, u64)>,
    alloc: Allocation,
}

struct Search<'a> {
    ev: &'a Evaluator,
    objective: Objective,
    opts: &'a TemporalOptions,
    alloc: AllocOptions,
    deadline: Option<Instant>,
    out_of_budget: bool,
    /// The ordering being tried (reused between orderings), its allocation (with the memo of
    /// the allocator's decisions), the evaluation's buffers, and its cost.
    idx: Vec<(usize, u64)>,
    allocator: Allocator,
    scratch: EvalScratch,
    cost: LayerCost,
    trace: AllocTrace,
    /// [`Evaluator::floors`] (when pruning).
    floors: Floors,
    bounds: PrefixBounds,
    best: Option<Best>,
    evaluated: u64,
    skipped: u64,
    pruned: u64,
    /// Of `pruned`, the orderings skipped for overflowing a memory; whether the last skip was one.
    pruned_capacity: u64,
    capacity_skip: bool,
    /// The dominance test between prefixes (phase (c) only); the orderings it skipped, and
    /// whether the last skip was one.
    dom: Option<Dominance>,
    pruned_dominated: u64,
    dominated_skip: bool,
    /// [`TemporalResult::least_pruned_bound`].
    least_pruned_bound: Option<f64>,
    first_misfit: Option<CostError>,
    /// Told how many orderings of the full space were visited, in batches; `reported` of them
    /// were told so far.
    progress: &'a dyn Fn(u64),
    reported: u64,
}

/// About how many visited orderings [`search_temporal_observed`] reports at a time (some
/// milliseconds of search).
pub const PROGRESS_BATCH: u64 = 1024;

/// The most prefix states one temporal search records (some hundreds of megabytes at most);
/// past it, states are still looked up but no more are added (fewer orderings skipped, the same
/// result).
const MAX_STATES: usize = 1 << 21;

/// The dominance test (`spec/optimal.md`, "Dominance"): per prefix state
/// ([`Evaluator::prefix_state`]), the least decided energy of the prefixes that reached it.
/// The enumeration visits the prefixes depth first, so when a prefix reaches a recorded state,
/// every completion of the prefix that recorded it was evaluated or excluded already; its own
/// completions cost the same plus the difference of the decided energies, so with no less
/// decided energy none of them can be better.
struct Dominance {
    classes: Vec<(usize, u64)>,
    memo: HashMap<Vec<u16>, f64>,
    /// The last ordering evaluated: the prefixes it shares with the next were looked at.
    last: Vec<(usize, u64)>,
    /// Per prefix length, the multiset of the prefix (counts per class).
    counts: Vec<u16>,
    key: Vec<u16>,
    states: u64,
}

impl Dominance {
    fn new(classes: &[(usize, u64)]) -> Dominance {
        Dominance {
            classes: classes.to_vec(),
            memo: HashMap::new(),
            last: Vec::new(),
            counts: Vec::new(),
            key: Vec::new(),
            states: 0,
        }
    }
}

impl Search<'_> {
    fn budget_left(&mut self) -> bool {
        if self.out_of_budget {
            return false;
        }
        // The time budget stops a search only once it has an ordering that fits: a search cut
        // short still has a mapping (only a search that went to the end says nothing fits).
        // A cancelled search stops at once, with or without a mapping.
        let over = self.opts.max_evaluations.is_some_and(|m| self.evaluated >= m)
            || (self.best.is_some() && self.deadline.is_some_and(|d| Instant::now() >= d))
            || self.opts.cancel.as_ref().is_some_and(super::Cancel::is_cancelled);
        self.out_of_budget = over;
        !over
    }

    /// Allocates and evaluates one ordering.
    fn try_order(&mut self, order: impl ExactSizeIterator<Item = (usize, u64)>) -> Result<Step, SearchError> {
        if !self.budget_left() {
            return Ok(Step::Stop);
        }
        self.dominated_skip = false;
        let n = order.len();
        self.idx.clear();
        self.idx.extend(order);
        self.evaluated += 1;
        let prune = self.opts.prune;
        let trace = if prune { Some(&mut self.trace) } else { None };
        match self.ev.allocate_order(&self.idx, &self.alloc, &mut self.allocator, trace) {
            Ok(()) => {}
            Err(e @ (CostError::MemoryTooSmall { .. } | CostError::HierarchyTooSmall { .. })) => {
                self.skipped += 1;
                if self.first_misfit.is_none() {
                    self.first_misfit = Some(e);
                }
                // Every ordering with the loops the failure depended on fails the same way.
                let from = self.trace.fail_req;
                self.capacity_skip = true;
                return Ok(Step::Next((prune && from < n).then_some(from)));
            }
            Err(e) => return Err(e.into()),
        }
        let alloc = self.allocator.allocation();
        self.ev.evaluate_order(&self.idx, alloc, &self.opts.cost, &mut self.scratch, &mut self.cost)?;
        if prune {
            self.ev.prefix_bounds(
                &self.idx,
                &self.floors,
                alloc,
                &self.trace,
                &self.cost,
                &self.opts.cost,
                &mut self.bounds,
            );
        }
        match &mut self.best {
            Some(b) if !self.objective.better(&self.cost, &b.cost) => {}
            Some(b) => {
                b.cost.clone_from(&self.cost);
                b.order.clone_from(&self.idx);
                b.alloc.clone_from(alloc);
            }
            None => {
                self.best =
                    Some(Best { cost: self.cost.clone(), order: self.idx.clone(), alloc: alloc.clone() })
            }
        }
        if !prune {
            return Ok(Step::Next(None));
        }
        self.capacity_skip = false;
        // The better of the best so far and the incumbent found elsewhere.
        let best = match (self.best.as_ref().map(|b| &b.cost), self.opts.incumbent.as_ref()) {
            (Some(b), Some(i)) if self.objective.better(i, b) => Some(i),
            (Some(b), _) => Some(b),
            (None, i) => i,
        };
        let mut from = best.and_then(|b| (0..n).find(|&j| self.excluded(j, b)));
        if let Some(j) = from {
            let bound = self.bound(j);
            self.least_pruned_bound = Some(self.least_pruned_bound.map_or(bound, |l| l.min(bound)));
        }
        if let Some(d) = self.dom.as_mut() {
            // The prefixes not shared with the last ordering evaluated are new: look up their
            // states, shortest first, up to the one the bounds exclude.
            let common = d.last.iter().zip(&self.idx).take_while(|(a, b)| a == b).count();
            let nc = d.classes.len();
            d.counts.clear();
            d.counts.resize((n + 1) * nc, 0);
            for (p, e) in self.idx.iter().enumerate() {
                d.counts.copy_within(p * nc..(p + 1) * nc, (p + 1) * nc);
                if let Ok(c) = d.classes.binary_search(e) {
                    d.counts[(p + 1) * nc + c] += 1;
                }
            }
            for j in (common + 1)..from.unwrap_or(n) {
                if !self.ev.prefix_state(&self.idx, alloc, &self.trace, &d.counts, nc, j, &mut d.key) {
                    continue;
                }
                let value = self.bounds.decided_energy[j];
                let room = d.memo.len() < MAX_STATES;
                match d.memo.get_mut(&d.key) {
                    Some(least) if *least <= value => {
                        from = Some(j);
                        self.dominated_skip = true;
                        break;
                    }
                    Some(least) => *least = value,
                    None if room => {
                        d.memo.insert(d.key.clone(), value);
                        d.states += 1;
                    }
                    None => {}
                }
            }
            d.last.clone_from(&self.idx);
        }
        Ok(Step::Next(from))
    }

    /// Whether the bounds for prefix length `j` show that no ordering with that prefix is better
    /// than `best` (with a margin for the rounding of sums taken in another order), or better by
    /// more than the tolerance.
    fn excluded(&self, j: usize, best: &LayerCost) -> bool {
        const MARGIN: f64 = 1.0 - 1e-12;
        self.bound(j) * MARGIN * (1.0 + self.opts.tolerance)
            > super::optimal::objective_value(self.objective, best)
    }

    /// The objective's lower bound on the orderings with the current ordering's first `j` loops.
    fn bound(&self, j: usize) -> f64 {
        let (e, l) = (self.bounds.energy[j], self.bounds.latency[j]);
        match self.objective {
            Objective::Energy => e,
            Objective::Latency => l,
            Objective::Edp => e * l,
        }
    }

    /// Tries every permutation of `m` that satisfies `cons`, counting permutations visited (and
    /// reporting them to `progress` if `report`).
    fn run(
        &mut self,
        m: &mut Multiset,
        cons: &ResolvedConstraints,
        visited: &mut u64,
        report: bool,
    ) -> Result<(), SearchError> {
        while m.advance() {
            if report && *visited - self.reported >= PROGRESS_BATCH {
                (self.progress)(*visited - self.reported);
                self.reported = *visited;
            }
            *visited += 1;
            if !cons.accepts(|p| m.at(p)) {
                continue;
            }
            match self.try_order((0..m.ids.len()).map(|p| m.at(p)))? {
                Step::Stop => {
                    *visited -= 1;
                    return Ok(());
                }
                Step::Next(Some(j)) => {
                    let skipped = m.skip_subtree(j);
                    *visited = visited.saturating_add(skipped);
                    self.pruned = self.pruned.saturating_add(skipped);
                    if self.capacity_skip {
                        self.pruned_capacity = self.pruned_capacity.saturating_add(skipped);
                    } else if self.dominated_skip {
                        self.pruned_dominated = self.pruned_dominated.saturating_add(skipped);
                    }
                }
                Step::Next(None) => {}
            }
        }
        Ok(())
    }

    /// Phase (b): every ordering that splits each loop of `seed` into its prime factors, in
    /// every arrangement, in place.
    fn refine(&mut self, seed: &[(usize, u64)], cons: &ResolvedConstraints) -> Result<(), SearchError> {
        // Per seed loop, all distinct arrangements of its prime factors.
        let blocks: Vec<Vec<Vec<(usize, u64)>>> = seed
            .iter()
            .map(|&(d, size)| {
                let primes: Vec<(usize, u64)> = lpf::factorise(size)
                    .into_iter()
                    .flat_map(|(p, k)| std::iter::repeat_n((d, p), k as usize))
                    .collect();
                let mut m = Multiset::new(&primes);
                let mut all = Vec::new();
                while m.advance() {
                    all.push((0..m.ids.len()).map(|p| m.at(p)).collect());
                }
                if all.is_empty() {
                    all.push(vec![(d, size)]);
                }
                all
            })
            .collect();
        if blocks.iter().all(|b| b.len() == 1 && b[0].len() == 1) {
            return Ok(());
        }
        let mut pick = vec![0usize; blocks.len()];
        let mut order: Vec<(usize, u64)> = Vec::new();
        loop {
            order.clear();
            for (b, &i) in blocks.iter().zip(&pick) {
                order.extend_from_slice(&b[i]);
            }
            if cons.accepts(|p| order[p]) && matches!(self.try_order(order.iter().copied())?, Step::Stop) {
                return Ok(());
            }
            // Odometer, innermost block fastest.
            let mut k = 0;
            loop {
                if k == blocks.len() {
                    return Ok(());
                }
                pick[k] += 1;
                if pick[k] < blocks[k].len() {
                    break;
                }
                pick[k] = 0;
                k += 1;
            }
        }
    }
}
