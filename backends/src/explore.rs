//! The mapping search over a whole workload: for each layer, the spatial candidates
//! ([`crate::spatial::generate`]) times the temporal search ([`crate::search::search_temporal`]),
//! keeping the best under the objective. Work is spread over threads with rayon, one task per
//! (distinct layer, spatial candidate); identical layers (same loops, operands, precisions and
//! mapping entry, whatever their names) are searched once. The choice per layer is deterministic
//! whatever the thread count: the best by the objective, ties to the other metric, then to the
//! earlier spatial candidate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rayon::prelude::*;

use crate::arch::Accelerator;
use crate::mapping::{MappingEntry, MappingFile, SpatialMapping};
use crate::search::{
    Objective, SearchError, TemporalOptions, TemporalResult, search_temporal, zigzag_onnx_dim_order,
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
    /// Whether every candidate's temporal space was searched to the end.
    pub exhaustive: bool,
    /// Whether this layer's search was shared with an identical earlier layer.
    pub shared_with: Option<usize>,
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
/// `progress` is called with the number of tasks finished (one task is one spatial candidate of
/// one distinct layer) and the total. Results are in `layers` order.
pub fn search_workload(
    layers: &[&LoopNest],
    accs: &[&Accelerator],
    map: &MappingFile,
    opts: &ExploreOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
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
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<Result<LayerChoice, SearchError>>, ExploreError> {
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
    let total = tasks.len() as u64;
    let done = AtomicU64::new(0);
    let jobs = opts.jobs.unwrap_or_else(rayon::current_num_threads).max(1);
    // Each task's share of the budget: the budget times the threads, over the tasks.
    let share = opts.budget.map(|b| b.mul_f64(jobs as f64 / total.max(1) as f64));
    let run = |(i, k, sm): &(usize, usize, SpatialMapping)| {
        let layer = layers[*i];
        let mut t = opts.temporal.clone();
        if opts.onnx_dim_order && t.merge_order.is_none() {
            t.merge_order = Some(zigzag_onnx_dim_order(layer));
        }
        if let Some(s) = share {
            t.budget = Some(t.budget.map_or(s, |b| b.min(s)));
        }
        let ordering = entries[*i].temporal_ordering.as_deref();
        let r = search_temporal(layer, acc_of(*i), &entries[*i].links, sm, ordering, opts.objective, &t);
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        (*i, *k, sm.clone(), r)
    };
    let results: Vec<(usize, usize, SpatialMapping, Result<TemporalResult, SearchError>)> = match opts.jobs {
        // One job: this thread, no pool to start.
        Some(n) if n <= 1 => tasks.iter().map(run).collect(),
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(|| tasks.par_iter().map(run).collect()),
            Err(_) => tasks.iter().map(run).collect(),
        },
        None => tasks.par_iter().map(run).collect(),
    };
    // Best per layer, deterministic: results are in task order (layer, candidate).
    let mut best: Vec<Option<LayerChoice>> = vec![None; layers.len()];
    let mut first_error: Vec<Option<SearchError>> = (0..layers.len()).map(|_| None).collect();
    for (i, _k, sm, r) in results {
        match r {
            Ok(res) => {
                let (evaluated, pruned) = (res.evaluated, res.pruned);
                let exhaustive = res.exhaustive;
                match &mut best[i] {
                    Some(b) => {
                        b.evaluated += evaluated;
                        b.pruned += pruned;
                        b.exhaustive &= exhaustive;
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
                            exhaustive,
                            shared_with: None,
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
