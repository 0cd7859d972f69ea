//! The mapping search over a whole workload: for each layer, the spatial candidates
//! ([`crate::spatial::generate`]) times the temporal search ([`crate::search::search_temporal`]),
//! keeping the best under the objective. Work is spread over threads with rayon, one task per
//! (distinct layer, spatial candidate); identical layers (same loops, operands, precisions and
//! mapping entry, whatever their names) are searched once. The choice per layer is deterministic
//! whatever the thread count: the best by the objective, ties to the other metric, then to the
//! earlier spatial candidate.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::arch::Accelerator;
use crate::mapping::{MappingEntry, MappingFile, SpatialMapping};
use crate::search::{
    Cancel, Objective, SearchError, TemporalOptions, TemporalResult, search_temporal_observed,
    temporal_space, zigzag_onnx_dim_order,
};
use crate::spatial::{SpatialError, SpatialOptions, generate};
use qc_ir::{LoopNest, Source};

/// Options of [`search_workload`].
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    pub objective: Objective,
    pub spatial: SpatialOptions,
    pub temporal: TemporalOptions,
    /// Threads; `None` = rayon's default (one per core).
    pub jobs: Option<usize>,
    /// The layers were lowered from ONNX by qc (LOMA's factor merging then breaks ties in
    /// ZigZag's ONNX dim order, see [`zigzag_onnx_dim_order`]); `false` for ZigZag YAML layers.
    pub onnx_dim_order: bool,
    /// A wall-time budget for the whole search; each task gets its share.
    pub budget: Option<Duration>,
    /// Checked where the search checks its budget: once set, the search stops and returns
    /// [`ExploreError::Cancelled`].
    pub cancel: Option<Cancel>,
}

/// The best mapping found for one layer.
#[derive(Clone, Debug)]
pub struct LayerChoice {
    /// The mapping file entry used.
    pub entry: String,
    pub spatial: SpatialMapping,
    /// The best temporal mapping under that spatial mapping, with its cost.
    pub result: TemporalResult,
    /// Spatial candidates searched.
    pub candidates: usize,
    /// Orderings allocated over all candidates.
    pub evaluated: u64,
    /// Orderings excluded by the search's lower bounds over all candidates, without allocation.
    pub pruned: u64,
    /// Orderings of the candidates' temporal spaces visited (allocated, pruned, or excluded by
    /// the loop-order constraints), summed over all candidates, at most `space`.
    pub visited: u64,
    /// The sizes of the candidates' temporal spaces ([`TemporalResult::space`]) summed
    /// (saturating): what an uncut search visits.
    pub space: u64,
    /// Candidates whose temporal space was searched to the end: all of them unless the budget
    /// cut the search.
    pub complete: usize,
    /// Whether every candidate's temporal space was searched to the end (`complete ==
    /// candidates`).
    pub exhaustive: bool,
    /// Whether this layer's search was shared with an identical earlier layer.
    pub shared_with: Option<usize>,
    /// With `--optimal` ([`crate::search::optimal`]): what the exact search proves.
    pub certificate: Option<Box<crate::search::optimal::Certificate>>,
}

/// How far a running [`search_workload_each`] has got, for progress reports: per distinct layer,
/// its spatial candidates and the orderings of their temporal spaces, done of their totals. The
/// search's threads add to atomic counters (relaxed, one add per batch of about
/// [`crate::search::PROGRESS_BATCH`] orderings, no lock) and call the observer after each
/// batch and each finished candidate; the observer reads what it needs, when it needs it
/// ([`SearchProgress::snapshot`]).
#[derive(Debug)]
pub struct SearchProgress {
    start: Instant,
    budget: Option<Duration>,
    /// The layers searched for, shared ones included.
    layers_in: usize,
    /// The layers searched (identical layers share the first one's search and are left out),
    /// in workload order.
    layers: Vec<LayerProgress>,
}

/// One searched layer of a [`SearchProgress`].
#[derive(Debug)]
pub struct LayerProgress {
    /// The layer's index among the layers searched for (in workload order, shared ones included).
    pub index: usize,
    pub name: String,
    /// Spatial candidates, and the orderings of all their temporal spaces (saturating).
    pub candidates: u64,
    pub orderings: u64,
    candidates_done: AtomicU64,
    orderings_done: AtomicU64,
}

impl LayerProgress {
    /// Candidates finished.
    pub fn candidates_done(&self) -> u64 {
        self.candidates_done.load(Ordering::Relaxed)
    }

    /// Orderings visited so far (at most `orderings`).
    pub fn orderings_done(&self) -> u64 {
        self.orderings_done.load(Ordering::Relaxed).min(self.orderings)
    }

    fn finished(&self) -> bool {
        self.candidates_done() >= self.candidates
    }
}

/// A [`SearchProgress`] at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressSnapshot {
    /// Layers searched for (shared ones included), distinct layers searched, and finished.
    pub layers: usize,
    pub searches: usize,
    pub searches_done: usize,
    /// Spatial candidates (one task each), and finished.
    pub candidates: u64,
    pub candidates_done: u64,
    /// Orderings of all temporal spaces (saturating), and visited.
    pub orderings: u64,
    pub orderings_done: u64,
    /// The first layer started and not finished.
    pub current: Option<CurrentLayer>,
    pub elapsed: Duration,
    /// The search's wall-time budget, if any.
    pub budget: Option<Duration>,
}

/// The layer a [`ProgressSnapshot`] names: its index among the layers searched for, name,
/// and orderings visited of its total.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CurrentLayer {
    pub index: usize,
    pub name: String,
    pub orderings_done: u64,
    pub orderings: u64,
}

impl SearchProgress {
    /// The distinct layers searched, in workload order.
    pub fn layers(&self) -> &[LayerProgress] {
        &self.layers
    }

    /// The counters now. Costs a pass over the layers: call it when about to draw, not on
    /// every observer call.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let mut p = ProgressSnapshot {
            layers: self.layers_in,
            searches: self.layers.len(),
            elapsed: self.start.elapsed(),
            budget: self.budget,
            ..ProgressSnapshot::default()
        };
        for l in &self.layers {
            let (c, o) = (l.candidates_done(), l.orderings_done());
            p.candidates += l.candidates;
            p.candidates_done += c.min(l.candidates);
            p.orderings = p.orderings.saturating_add(l.orderings);
            p.orderings_done = p.orderings_done.saturating_add(o);
            if l.finished() {
                p.searches_done += 1;
            } else if p.current.is_none() && (c > 0 || o > 0) {
                p.current = Some(CurrentLayer {
                    index: l.index,
                    name: l.name.clone(),
                    orderings_done: o,
                    orderings: l.orderings,
                });
            }
        }
        p
    }
}

/// How far one task's search got: orderings visited of its space.
struct Outcome {
    visited: u64,
    space: u64,
}

/// The temporal options of `layer`'s search (without the budget share).
fn temporal_options(layer: &LoopNest, opts: &ExploreOptions) -> TemporalOptions {
    let mut t = opts.temporal.clone();
    if t.cancel.is_none() {
        t.cancel.clone_from(&opts.cancel);
    }
    if opts.onnx_dim_order && t.merge_order.is_none() {
        t.merge_order = Some(zigzag_onnx_dim_order(layer));
    }
    t
}

/// Why a layer could not be mapped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExploreError {
    #[error("layer `{layer}`: no mapping entry applies")]
    #[diagnostic(code(qc::search::no_entry), help("add a `default` entry to the mapping file"))]
    NoEntry { layer: String },
    /// The spatial generator's error (it names the layer).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spatial(SpatialError),
    /// The temporal search's error (it names the layer).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Temporal(SearchError),
    /// The caller's cancellation flag was set.
    #[error("the search was cancelled")]
    #[diagnostic(
        code(qc::search::cancelled),
        help("the search was stopped before it finished; run it again to completion")
    )]
    Cancelled,
}

/// A key equal for layers that cost the same under the same entry.
fn signature(layer: &LoopNest, entry: &str) -> String {
    let mut l = layer.clone();
    l.name.clear();
    l.id = 0;
    l.output.value.clear();
    l.output.source = Source::Other;
    for o in &mut l.inputs {
        o.value.clear();
        o.source = Source::Other;
    }
    format!("{entry}\n{}", qc_ir::text::print_loop_nest(&l))
}

/// Searches every layer, layer `i` on accelerator `accs[i]` (or all on `accs[0]` when there is
/// one; with inter-layer data locality each layer sees its own, [`crate::locality::restrict`]);
/// `progress` is called from the searching threads after each batch of orderings and each
/// finished (distinct layer, spatial candidate), with the counters ([`SearchProgress`]) to read.
/// Results are in `layers` order.
pub fn search_workload(
    layers: &[&LoopNest],
    accs: &[&Accelerator],
    map: &MappingFile,
    opts: &ExploreOptions,
    progress: &(dyn Fn(&SearchProgress) + Sync),
) -> Result<Vec<LayerChoice>, ExploreError> {
    search_workload_each(layers, accs, map, opts, progress)?
        .into_iter()
        .map(|r| r.map_err(ExploreError::Temporal))
        .collect()
}

/// As [`search_workload`], with each layer's own outcome: a layer whose every candidate failed
/// (no ordering fits the memories, the budget ran out) has its first error, and the other
/// layers are still searched. A missing mapping entry or a spatial error fails the whole run.
pub fn search_workload_each(
    layers: &[&LoopNest],
    accs: &[&Accelerator],
    map: &MappingFile,
    opts: &ExploreOptions,
    progress: &(dyn Fn(&SearchProgress) + Sync),
) -> Result<Vec<Result<LayerChoice, SearchError>>, ExploreError> {
    let cancelled = || opts.cancel.as_ref().is_some_and(Cancel::is_cancelled);
    if cancelled() {
        return Err(ExploreError::Cancelled);
    }
    let acc_of = |i: usize| if accs.len() == 1 { accs[0] } else { accs[i] };
    // Distinct layers and their entries (and accelerators: the first equal one's index).
    let mut entries: Vec<&MappingEntry> = Vec::with_capacity(layers.len());
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut shared: Vec<Option<usize>> = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let entry = map
            .entry_for(&layer.name, &layer.op_type)
            .ok_or_else(|| ExploreError::NoEntry { layer: layer.name.clone() })?;
        entries.push(entry);
        let acc_id = (0..=i).find(|&j| acc_of(j) == acc_of(i)).unwrap_or(i);
        let key = format!("{acc_id}\n{}", signature(layer, &entry.name));
        match first_of.get(&key) {
            Some(&j) => shared.push(Some(j)),
            None => {
                first_of.insert(key, i);
                shared.push(None);
            }
        }
    }
    // Spatial candidates of each distinct layer.
    let mut tasks: Vec<(usize, usize, SpatialMapping)> = Vec::new();
    let mut counts = vec![0usize; layers.len()];
    for (i, layer) in layers.iter().enumerate() {
        if shared[i].is_some() {
            continue;
        }
        let sms = generate(layer, acc_of(i), entries[i], &opts.spatial).map_err(ExploreError::Spatial)?;
        // ZigZag's top-k may repeat a mapping; searching it twice changes nothing.
        let mut seen: Vec<&SpatialMapping> = Vec::new();
        let mut unique = Vec::new();
        for sm in &sms {
            if !seen.contains(&sm) {
                seen.push(sm);
                unique.push(sm.clone());
            }
        }
        counts[i] = unique.len();
        tasks.extend(unique.into_iter().enumerate().map(|(k, sm)| (i, k, sm)));
    }
    // The size of each task's temporal space, for the progress totals and the reports (a task
    // whose space cannot be built fails at once in the search, with the same error).
    let spaces: Vec<u64> = tasks
        .iter()
        .map(|(i, _, sm)| {
            let t = temporal_options(layers[*i], opts);
            let ordering = entries[*i].temporal_ordering.as_deref();
            temporal_space(layers[*i], acc_of(*i), &entries[*i].links, sm, ordering, &t).unwrap_or(0)
        })
        .collect();
    let mut slot = vec![usize::MAX; layers.len()];
    let mut tracked: Vec<LayerProgress> = Vec::new();
    for (t, (i, _, _)) in tasks.iter().enumerate() {
        if slot[*i] == usize::MAX {
            slot[*i] = tracked.len();
            tracked.push(LayerProgress {
                index: *i,
                name: layers[*i].name.clone(),
                candidates: counts[*i] as u64,
                orderings: 0,
                candidates_done: AtomicU64::new(0),
                orderings_done: AtomicU64::new(0),
            });
        }
        let l = &mut tracked[slot[*i]];
        l.orderings = l.orderings.saturating_add(spaces[t]);
    }
    let state = SearchProgress {
        start: Instant::now(),
        budget: opts.budget,
        layers_in: layers.len(),
        layers: tracked,
    };
    let total = tasks.len() as u64;
    let jobs = opts.jobs.unwrap_or_else(rayon::current_num_threads).max(1);
    // Each task's share of the budget: the budget times the threads, over the tasks.
    let share = opts.budget.map(|b| b.mul_f64(jobs as f64 / total.max(1) as f64));
    let run = |(t, (i, k, sm)): (usize, &(usize, usize, SpatialMapping))| {
        let layer = layers[*i];
        let mut o = temporal_options(layer, opts);
        if let Some(s) = share {
            o.budget = Some(o.budget.map_or(s, |b| b.min(s)));
        }
        let ordering = entries[*i].temporal_ordering.as_deref();
        let counter = &state.layers[slot[*i]];
        let visited = Cell::new(0u64);
        let observe = |n: u64| {
            visited.set(visited.get() + n);
            counter.orderings_done.fetch_add(n, Ordering::Relaxed);
            progress(&state);
        };
        let r = search_temporal_observed(
            layer,
            acc_of(*i),
            &entries[*i].links,
            sm,
            ordering,
            opts.objective,
            &o,
            &observe,
        );
        counter.candidates_done.fetch_add(1, Ordering::Relaxed);
        progress(&state);
        let outcome = Outcome { visited: visited.get(), space: spaces[t] };
        (*i, *k, sm.clone(), r, outcome)
    };
    type Done = (usize, usize, SpatialMapping, Result<TemporalResult, SearchError>, Outcome);
    let results: Vec<Done> = match opts.jobs {
        // One job: this thread, no pool to start.
        Some(n) if n <= 1 => tasks.iter().enumerate().map(run).collect(),
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(|| tasks.par_iter().enumerate().map(run).collect()),
            Err(_) => tasks.iter().enumerate().map(run).collect(),
        },
        None => tasks.par_iter().enumerate().map(run).collect(),
    };
    // A cancelled search's results are partial: none of them is returned.
    if cancelled() {
        return Err(ExploreError::Cancelled);
    }
    // Best per layer, deterministic: results are in task order (layer, candidate).
    let mut best: Vec<Option<LayerChoice>> = vec![None; layers.len()];
    let mut first_error: Vec<Option<SearchError>> = (0..layers.len()).map(|_| None).collect();
    // Per layer: orderings visited and in all, candidates searched to the end (failed ones too).
    let mut reach: Vec<(u64, u64, usize)> = vec![(0, 0, 0); layers.len()];
    for (i, _k, sm, r, outcome) in results {
        let complete = match &r {
            Ok(res) => res.exhaustive,
            Err(_) => outcome.visited >= outcome.space,
        };
        let e = &mut reach[i];
        e.0 = e.0.saturating_add(outcome.visited);
        e.1 = e.1.saturating_add(outcome.space);
        e.2 += usize::from(complete);
        match r {
            Ok(res) => {
                let (evaluated, pruned) = (res.evaluated, res.pruned);
                match &mut best[i] {
                    Some(b) => {
                        b.evaluated += evaluated;
                        b.pruned += pruned;
                        if opts.objective.better(&res.cost, &b.result.cost) {
                            b.spatial = sm;
                            b.result = res;
                        }
                    }
                    None => {
                        best[i] = Some(LayerChoice {
                            entry: entries[i].name.clone(),
                            spatial: sm,
                            result: res,
                            candidates: counts[i],
                            evaluated,
                            pruned,
                            visited: 0,
                            space: 0,
                            complete: 0,
                            exhaustive: false,
                            shared_with: None,
                            certificate: None,
                        });
                    }
                }
            }
            Err(e) => {
                if first_error[i].is_none() {
                    first_error[i] = Some(e);
                }
            }
        }
    }
    for (b, &(visited, space, complete)) in best.iter_mut().zip(&reach) {
        if let Some(b) = b {
            (b.visited, b.space, b.complete) = (visited, space, complete);
            b.exhaustive = complete == b.candidates;
        }
    }
    let mut out: Vec<Result<LayerChoice, SearchError>> = Vec::with_capacity(layers.len());
    for i in 0..layers.len() {
        let choice = match shared[i] {
            Some(j) => out[j].clone().map(|mut c| {
                c.shared_with = Some(j);
                c
            }),
            None => match best[i].take() {
                Some(c) => Ok(c),
                None => Err(first_error[i].take().expect("a layer without results has an error")),
            },
        };
        out.push(choice);
    }
    Ok(out)
}
