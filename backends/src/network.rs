//! A whole workload on an accelerator: which layers to cost, the mapping search (or a fixed
//! mapping) of each layer with inter-layer data locality, and the typed results that `qc
//! evaluate` and `qc sweep` report (`spec/cli.md`). The front ends (the CLI, a binding) parse
//! their arguments into an [`EvaluateOptions`], read the files, and call [`Prepared::new`] then
//! [`evaluate`]; progress goes to a callback they supply, and a [`Cancel`] flag stops a call.

use std::time::{Duration, Instant};

use qc_ir::{LoopNest, Workload};

use crate::arch::Accelerator;
use crate::bound::{LayerBound, layer_bound};
use crate::cost::{
    AllocOptions, CostError, CostOptions, Evaluator, LatencyModel, LayerCost, MappingType, allocate,
};
use crate::explore::{ExploreError, ExploreOptions, LayerChoice, SearchProgress};
use crate::locality::{self, LocalityOptions, OperandTops};
use crate::mapping::{
    MappingEntry, MappingFile, OperandLinks, OrderSize, SpatialMapping, TemporalLoop, TemporalMapping,
};
pub use crate::search::Cancel;
use crate::search::{Objective, SearchError, TemporalOptions};
use crate::spatial::SpatialOptions;

/// The op types costed without `all_layers`: those ZigZag's ONNX parser costs
/// (`PARSER_MAPPING`: Conv, QLinearConv, Gemm, MatMul), and the same products in the forms real
/// exporters write, which ZigZag's parser does not read: the integer forms of
/// `quantize_dynamic`, QLinearMatMul, onnxruntime's fused and quantized contrib ops, and the two
/// matrix-product layers of each recurrent op and of each `Attention`. A network costs the same in
/// any of these forms.
pub const ZIGZAG_COSTED: &[&str] = &[
    "Conv",
    "QLinearConv",
    "Gemm",
    "MatMul",
    "ConvInteger",
    "MatMulInteger",
    "QLinearMatMul",
    "FusedConv",
    "FusedMatMul",
    "FusedGemm",
    "QGemm",
    "LSTM",
    "GRU",
    "RNN",
    "DynamicQuantizeLSTM",
    "Attention",
];

/// Why `layer` is left out on `acc` when it computes in memory: a layer with no second input has
/// no weights to keep in the array's cells (an ONNX model's pooling and element-wise layers,
/// costed with `all_layers`). `None` on any other array.
pub fn imc_skipped(layer: &LoopNest, acc: &Accelerator, is_yaml: bool) -> Option<String> {
    acc.array.imc.as_ref()?;
    if imc_place_only(layer, acc, is_yaml).is_some() {
        return None;
    }
    (layer.inputs.len() < 2)
        .then(|| "no weights to keep in the cells of an in-memory-compute array".to_string())
}

/// Why `layer` is placed but not costed on `acc` when it computes in memory: ZigZag's workload
/// iterator skips the `Pooling` and `Add` layers of a workload YAML on an IMC array, after its
/// data-locality search has placed them ([`Prepared::with_placed_only`]).
pub fn imc_place_only(layer: &LoopNest, acc: &Accelerator, is_yaml: bool) -> Option<String> {
    acc.array.imc.as_ref()?;
    (is_yaml && matches!(layer.op_type.as_str(), "Pooling" | "Add"))
        .then(|| "ZigZag does not cost pooling and Add layers on an in-memory-compute array".to_string())
}

/// The mapping search's settings (the defaults are ZigZag's and `qc evaluate`'s).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchSettings {
    /// What the search minimises (ties go to the other metric); default latency.
    pub objective: Objective,
    /// LOMA's loop-prime-factor limit (default 6); `None`: no merging.
    pub lpf_limit: Option<usize>,
    /// Spatial mappings searched per layer: ZigZag's best N (default 3); `None`: all valid ones.
    pub spatial_mappings: Option<usize>,
    /// Also generate mixed spatial unrollings (always, on an in-memory-compute accelerator).
    pub mixed: bool,
    /// Stop searching after this wall time.
    pub budget: Option<Duration>,
}

impl Default for SearchSettings {
    fn default() -> SearchSettings {
        SearchSettings {
            objective: Objective::Latency,
            lpf_limit: Some(6),
            spatial_mappings: Some(3),
            mixed: false,
            budget: None,
        }
    }
}

/// How to evaluate a workload: the search (or the mapping file's fixed mapping), the latency
/// model, which layers, data locality, threads, and a cancellation flag.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluateOptions {
    /// The search; `None`: evaluate the mapping file's spatial mapping and complete
    /// `temporal_ordering` as given (`--fixed-mapping`).
    pub search: Option<SearchSettings>,
    pub latency_model: LatencyModel,
    /// How loops map to memory levels (default uneven), for the search and a fixed mapping.
    pub mapping_type: MappingType,
    /// Also cost the pooling and element-wise layers of an ONNX model.
    pub all_layers: bool,
    /// Inter-layer data locality (ZigZag's `exploit_data_locality`), with whether the
    /// network's input and output go through the top memories. On an in-memory-compute
    /// accelerator it is always on (the defaults when `None`), as in ZigZag's IMC flow.
    pub locality: Option<LocalityOptions>,
    /// Threads (`None`: one per core). Results do not depend on it.
    pub jobs: Option<usize>,
    /// Once set, the evaluation stops and returns [`EngineError::Cancelled`].
    pub cancel: Option<Cancel>,
    /// With a search: then the exact search over the whole space from its choice, with a
    /// certificate per layer ([`crate::search::optimal`]).
    pub optimal: Option<crate::search::optimal::OptimalSettings>,
}

impl Default for EvaluateOptions {
    fn default() -> EvaluateOptions {
        EvaluateOptions {
            search: Some(SearchSettings::default()),
            latency_model: LatencyModel::Zigzag391,
            mapping_type: MappingType::Uneven,
            all_layers: false,
            locality: None,
            jobs: None,
            cancel: None,
            optimal: None,
        }
    }
}

impl EvaluateOptions {
    /// Whether the cancellation flag is set.
    pub fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(Cancel::is_cancelled)
    }

    /// The options of the search ([`crate::explore`]); `None` for a fixed mapping.
    pub fn explore_options(&self) -> Option<ExploreOptions> {
        let s = self.search.as_ref()?;
        Some(ExploreOptions {
            objective: s.objective,
            spatial: SpatialOptions { count: s.spatial_mappings, mixed: s.mixed },
            temporal: TemporalOptions {
                lpf_limit: s.lpf_limit,
                mapping_type: self.mapping_type,
                cost: CostOptions { latency_model: self.latency_model },
                ..TemporalOptions::default()
            },
            jobs: self.jobs,
            onnx_dim_order: true,
            budget: s.budget,
            cancel: self.cancel.clone(),
        })
    }
}

/// `energy`, `latency` or `edp`, as the reports write the objective.
pub fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::Energy => "energy",
        Objective::Latency => "latency",
        Objective::Edp => "edp",
    }
}

/// `zigzag-3.9.1` or `zigzag-3d12a96`.
pub fn latency_model_name(m: LatencyModel) -> &'static str {
    match m {
        LatencyModel::Zigzag391 => "zigzag-3.9.1",
        LatencyModel::Zigzag3d12a96 => "zigzag-3d12a96",
    }
}

/// `uneven` or `even`.
pub fn mapping_type_name(m: MappingType) -> &'static str {
    match m {
        MappingType::Uneven => "uneven",
        MappingType::Even => "even",
    }
}

/// Parses a duration such as `60s`, `2m`, `500ms`, `1.5h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    /// A layer's mapping entry cannot be used as asked.
    #[error("layer `{layer}`: {message}")]
    #[diagnostic(code(qc::evaluate::mapping))]
    Mapping {
        layer: String,
        message: String,
        #[help]
        help: String,
    },
    /// A layer no mapping fits, where the whole workload must run (a sweep's design).
    #[error("{reason} ({count} layer(s) do not fit)")]
    #[diagnostic(code(qc::search::nothing_fits))]
    NothingFits { reason: String, count: usize },
    /// The caller's cancellation flag was set.
    #[error("the evaluation was cancelled")]
    #[diagnostic(
        code(qc::search::cancelled),
        help("the evaluation was stopped before it finished; run it again to completion")
    )]
    Cancelled,
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cost(#[from] CostError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Search(ExploreError),
}

impl From<ExploreError> for EngineError {
    fn from(e: ExploreError) -> EngineError {
        match e {
            ExploreError::Cancelled => EngineError::Cancelled,
            e => EngineError::Search(e),
        }
    }
}

fn layer_error(layer: &str, message: String, help: &str) -> EngineError {
    EngineError::Mapping { layer: layer.to_string(), message, help: help.to_string() }
}

/// The mapping file used without one: ZigZag's defaults for every layer (any unrolling, any
/// order, links O->O, I->I1, W->I2), for a search.
pub fn default_mapping() -> MappingFile {
    MappingFile {
        entries: vec![MappingEntry {
            name: "default".into(),
            spatial: None,
            spatial_hint: None,
            temporal_ordering: None,
            links: Default::default(),
        }],
    }
}

/// A workload ready to evaluate on accelerators: the layers to cost and those left out, and the
/// data flow between the costed ones (indices into `chosen`, for data locality).
#[derive(Clone, Debug)]
pub struct Prepared<'w> {
    pub chosen: Vec<&'w LoopNest>,
    /// Layers left out, with the reason.
    pub skipped: Vec<(&'w LoopNest, String)>,
    /// Per chosen layer, the chosen layers it reads.
    pub preds: Vec<Vec<usize>>,
    /// The workload is a ZigZag workload YAML (costed whole, in its own dim order).
    pub is_yaml: bool,
    /// Per chosen layer: placed with data locality but not costed (it is also in `skipped`):
    /// the Pooling and Add layers of a workload YAML on an in-memory-compute array, which
    /// ZigZag's data-locality search places before its IMC flow skips them.
    pub place_only: Vec<bool>,
}

impl<'w> Prepared<'w> {
    /// The layers to cost: all of a ZigZag workload YAML (`is_yaml`); of an ONNX model, those
    /// ZigZag costs ([`ZIGZAG_COSTED`], every layer with `all_layers`); and of those, the ones
    /// `extra` has no reason to leave out (a DLA placement, for example).
    pub fn new(
        workload: &'w Workload,
        is_yaml: bool,
        all_layers: bool,
        extra: &dyn Fn(&LoopNest) -> Option<String>,
    ) -> Prepared<'w> {
        Prepared::with_placed_only(workload, is_yaml, all_layers, extra, &|_| None)
    }

    /// [`Prepared::new`], where the layers `place_only` gives a reason for are chosen for the
    /// data-locality placement but not costed (listed in `skipped` with that reason).
    pub fn with_placed_only(
        workload: &'w Workload,
        is_yaml: bool,
        all_layers: bool,
        extra: &dyn Fn(&LoopNest) -> Option<String>,
        place_only: &dyn Fn(&LoopNest) -> Option<String>,
    ) -> Prepared<'w> {
        let why_not = |l: &LoopNest| -> Option<String> {
            if !(is_yaml || all_layers || ZIGZAG_COSTED.contains(&l.op_type.as_str())) {
                return Some("not a layer ZigZag costs (use --all-layers)".into());
            }
            extra(l)
        };
        let reasons: Vec<Option<String>> = workload.layers.iter().map(why_not).collect();
        let mut chosen = Vec::new();
        let mut skipped = Vec::new();
        let mut placed_only = Vec::new();
        for (l, why) in workload.layers.iter().zip(&reasons) {
            match why {
                None => {
                    chosen.push(l);
                    let only = place_only(l);
                    placed_only.push(only.is_some());
                    if let Some(why) = only {
                        skipped.push((l, why));
                    }
                }
                Some(why) => skipped.push((l, why.clone())),
            }
        }
        let kept: Vec<usize> = (0..workload.layers.len()).filter(|&i| reasons[i].is_none()).collect();
        let flow = workload.dataflow(|l| why_not(l).is_none());
        let preds = kept
            .iter()
            .map(|&i| flow[i].iter().filter_map(|j| kept.iter().position(|k| k == j)).collect())
            .collect();
        Prepared { chosen, skipped, preds, is_yaml, place_only: placed_only }
    }

    /// The layers left out, without their reasons.
    pub fn skipped_layers(&self) -> Vec<&'w LoopNest> {
        self.skipped.iter().map(|(l, _)| *l).collect()
    }
}

/// One costed layer.
#[derive(Clone, Debug)]
pub struct CostedLayer {
    pub layer: LoopNest,
    /// The mapping file entry used.
    pub entry: String,
    pub spatial: SpatialMapping,
    pub temporal: TemporalMapping,
    pub cost: LayerCost,
    /// What fitting the entry's spatial mapping to the layer changed (fixed mappings).
    pub notes: Vec<String>,
    /// How the search found it (`None`: a fixed mapping).
    pub search: Option<LayerChoice>,
    /// With data locality: the accelerator the layer saw (its memories above each operand's
    /// placement removed), and the placement.
    pub local: Option<(Accelerator, OperandTops)>,
    /// The lower bounds of the layer on the accelerator it was costed on, over every mapping
    /// ([`crate::bound`]); `None` only if they could not be computed.
    pub bound: Option<LayerBound>,
}

impl CostedLayer {
    /// The accelerator the layer was costed on: its own with data locality, else `acc`.
    pub fn accelerator<'a>(&'a self, acc: &'a Accelerator) -> &'a Accelerator {
        self.local.as_ref().map_or(acc, |(a, _)| a)
    }
}

/// A layer for which every mapping searched overflows a memory: it is listed, not costed, and
/// the other layers are costed.
#[derive(Clone, Debug, PartialEq)]
pub struct UnfitLayer {
    pub layer: String,
    pub op_type: String,
    /// The memory that is too small.
    pub memory: String,
    /// What overflows and by how much.
    pub reason: String,
}

impl UnfitLayer {
    /// The reason with what would make the layer fit.
    pub fn explain(&self) -> String {
        format!(
            "no mapping fits: {}; it fits with a larger `{}`, a smaller spatial unrolling, or (for a partial sum wider than its memory) --psum-bits zigzag",
            self.reason, self.memory
        )
    }
}

/// The sums over the costed layers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub energy: f64,
    pub latency: f64,
    pub mac_energy: f64,
    pub memory_energy: f64,
}

/// One accelerator's evaluation: the accelerator, its costed layers (in workload order), the
/// layers no mapping fits, and the wall time.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub accelerator: Accelerator,
    pub layers: Vec<CostedLayer>,
    pub unfit: Vec<UnfitLayer>,
    pub seconds: f64,
    /// The wall time of computing the layers' lower bounds (part of `seconds`).
    pub bound_seconds: f64,
}

impl Evaluation {
    /// Energy, latency, MAC and memory energy summed over the costed layers.
    pub fn total(&self) -> Totals {
        let energy: f64 = self.layers.iter().map(|c| c.cost.energy).sum();
        let latency: f64 = self.layers.iter().map(|c| c.cost.latency).sum();
        let mac_energy: f64 = self.layers.iter().map(|c| c.cost.mac_energy).sum();
        Totals { energy, latency, mac_energy, memory_energy: energy - mac_energy }
    }

    /// The network's lower bounds, `(energy, latency)`: the sums of the costed layers' bounds
    /// (a layer's cost is at least its bound, so the total is at least their sum). `None` when
    /// a layer has none; the latency `None` too when a layer has no latency bound.
    pub fn bound(&self) -> Option<(f64, Option<f64>)> {
        let mut energy = 0.0;
        let mut latency = Some(0.0);
        for c in &self.layers {
            let b = c.bound.as_ref()?;
            energy += b.energy;
            latency = latency.zip(b.latency).map(|(a, l)| a + l);
        }
        Some((energy, latency))
    }

    /// The network's energy and latency, or an error if a layer does not fit (a partial sum is
    /// no total): what a sweep records per design.
    pub fn network_cost(&self) -> Result<(f64, f64), EngineError> {
        if let Some(u) = self.unfit.first() {
            // The cost model's reason may already name the layer.
            let named = format!("layer `{}`", u.layer);
            let reason = if u.reason.starts_with(&named) {
                u.reason.clone()
            } else {
                format!("{named}: {}", u.reason)
            };
            return Err(EngineError::NothingFits { reason, count: self.unfit.len() });
        }
        let t = self.total();
        Ok((t.energy, t.latency))
    }
}

/// The loop order of a complete `temporal_ordering`, resolved against the temporal loop sizes
/// left by the spatial mapping: dims the layer lacks are dropped (as ZigZag drops them), `*`
/// takes what remains of its dim, loops of size 1 are dropped. The error names what is wrong.
pub fn loop_order(
    layer: &LoopNest,
    entry: &MappingEntry,
    sizes: &[(String, u64)],
) -> Result<Vec<TemporalLoop>, String> {
    let Some(ordering) = &entry.temporal_ordering else {
        let loops: Vec<String> =
            sizes.iter().filter(|(_, s)| *s > 1).map(|(d, s)| format!("[{d}, {s}]")).collect();
        return Err(format!(
            "the mapping entry `{}` has no temporal_ordering (the temporal loops to order: {})",
            entry.name,
            loops.join(", ")
        ));
    };
    let ordering: Vec<&(String, OrderSize)> =
        ordering.iter().filter(|(d, _)| layer.size(d).is_some()).collect();
    let need = |dim: &str| sizes.iter().find(|(d, _)| d == dim).map_or(1, |(_, s)| *s);
    let mut order = Vec::new();
    for (dim, size) in &ordering {
        let size = match size {
            OrderSize::Given(n) => *n,
            OrderSize::Rest => {
                let given = ordering
                    .iter()
                    .filter(|(d, s)| d == dim && matches!(s, OrderSize::Given(_)))
                    .map(|(_, s)| if let OrderSize::Given(n) = s { *n } else { 1 })
                    .try_fold(1u64, u64::checked_mul)
                    .ok_or_else(|| format!("the sizes given for `{dim}` multiply past 2^64"))?;
                if ordering.iter().filter(|(d, s)| d == dim && *s == OrderSize::Rest).count() > 1 {
                    return Err(format!("`{dim}` has `*` more than once"));
                }
                if given == 0 || need(dim) % given != 0 {
                    return Err(format!("`{dim}`: the given sizes ({given}) do not divide {}", need(dim)));
                }
                need(dim) / given
            }
        };
        if size > 1 {
            order.push(TemporalLoop { dim: dim.clone(), size });
        }
    }
    for (dim, size) in sizes.iter().filter(|(_, s)| *s > 1) {
        let got = order.iter().filter(|l| l.dim == *dim).map(|l| l.size).try_fold(1u64, u64::checked_mul);
        let Some(got) = got else {
            return Err(format!(
                "the temporal_ordering of `{}` gives `{dim}` sizes that multiply past 2^64",
                entry.name
            ));
        };
        if got != *size {
            return Err(format!(
                "the temporal_ordering of `{}` gives `{dim}` {got} iterations, but the spatial mapping leaves {size}",
                entry.name
            ));
        }
    }
    if let Some(extra) = order.iter().find(|l| need(&l.dim) <= 1) {
        return Err(format!(
            "the temporal_ordering has a loop over `{}`, which the spatial mapping leaves no iterations",
            extra.dim
        ));
    }
    Ok(order)
}

/// The cost of `layer` on `acc` under its entry of `map` as written: what `qc evaluate
/// --fixed-mapping` computes for one layer (the spatial mapping fitted to the layer, the complete
/// `temporal_ordering` allocated to the memories, then the cost model).
pub fn cost_fixed_mapping(
    layer: &LoopNest,
    acc: &Accelerator,
    map: &MappingFile,
    opts: &CostOptions,
    mapping_type: MappingType,
) -> Result<LayerCost, EngineError> {
    cost_layer(layer, acc, map, opts, mapping_type).map(|c| c.cost)
}

/// [`cost_fixed_mapping`] with everything the reports need.
pub fn cost_layer(
    layer: &LoopNest,
    acc: &Accelerator,
    map: &MappingFile,
    opts: &CostOptions,
    mapping_type: MappingType,
) -> Result<CostedLayer, EngineError> {
    let entry = map.entry_for(&layer.name, &layer.op_type).ok_or_else(|| {
        layer_error(&layer.name, "no mapping entry applies".into(), "add a `default` entry")
    })?;
    let Some(user) = &entry.spatial else {
        return Err(layer_error(
            &layer.name,
            format!("the mapping entry `{}` has no spatial_mapping", entry.name),
            "--fixed-mapping evaluates a given mapping: give the entry a spatial_mapping",
        ));
    };
    let fitted = crate::spatial::fit_user_mapping(user, layer, acc, &entry.links);
    let evaluator = Evaluator::new(layer, acc, &entry.links, &fitted.mapping)?;
    let order = loop_order(layer, entry, &evaluator.temporal_sizes()).map_err(|m| {
        layer_error(
            &layer.name,
            m,
            "give a complete temporal_ordering: every temporal loop, innermost first, with sizes whose product per dim is what the spatial mapping leaves (`*` takes the rest of a dim)",
        )
    })?;
    let temporal =
        allocate(layer, acc, &entry.links, &fitted.mapping, &order, &AllocOptions { mapping_type })?;
    let cost = evaluator.evaluate(&temporal, opts)?;
    Ok(CostedLayer {
        layer: layer.clone(),
        entry: entry.name.clone(),
        spatial: fitted.mapping,
        temporal,
        cost,
        notes: fitted.notes,
        search: None,
        local: None,
        bound: None,
    })
}

/// Costs the layers of `p` on `acc` under `map`: the search of `opts` (or the fixed mapping),
/// with data locality if asked. A layer no mapping fits is listed in
/// [`Evaluation::unfit`]; any other problem is an error. `progress` is called from the
/// searching threads ([`crate::explore::search_workload_each`]).
pub fn evaluate(
    p: &Prepared<'_>,
    acc: Accelerator,
    map: &MappingFile,
    opts: &EvaluateOptions,
    progress: &(dyn Fn(&SearchProgress) + Sync),
) -> Result<Evaluation, EngineError> {
    if opts.cancelled() {
        return Err(EngineError::Cancelled);
    }
    let chosen = &p.chosen;
    let cost_opts = CostOptions { latency_model: opts.latency_model };
    let start = Instant::now();
    // ZigZag's IMC flow always keeps data between layers in the lowest memories it can, and
    // generates mixed spatial unrollings.
    let imc = acc.array.imc.is_some();
    let imc_locality = (imc && opts.locality.is_none()).then(LocalityOptions::default);
    // With data locality, each layer's own accelerator.
    let local: Option<Vec<(Accelerator, OperandTops)>> =
        match opts.locality.as_ref().or(imc_locality.as_ref()) {
            Some(lopts) => {
                let links: Vec<&OperandLinks> = chosen
                    .iter()
                    .map(|l| {
                        map.entry_for(&l.name, &l.op_type).map(|e| &e.links).ok_or_else(|| {
                            layer_error(&l.name, "no mapping entry applies".into(), "add a `default` entry")
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let placed = locality::place(chosen, &p.preds, &acc, &links, lopts)?;
                Some(
                    placed
                        .into_iter()
                        .zip(&links)
                        .map(|(p, l)| (locality::restrict_placed(&acc, l, &p), p))
                        .collect(),
                )
            }
            None => None,
        };
    let acc_of = |i: usize| local.as_ref().map_or(&acc, |v| &v[i].0);
    // The chosen layers to cost (the others are only placed).
    let to_cost: Vec<usize> =
        (0..chosen.len()).filter(|&i| !p.place_only.get(i).copied().unwrap_or(false)).collect();
    let mut unfit: Vec<UnfitLayer> = Vec::new();
    // The costed layers with their indices among the chosen ones (unfit layers are left out).
    let costed: Vec<(usize, CostedLayer)> = match opts.explore_options() {
        None => to_cost
            .iter()
            .map(|&i| {
                if opts.cancelled() {
                    return Err(EngineError::Cancelled);
                }
                Ok((i, cost_layer(chosen[i], acc_of(i), map, &cost_opts, opts.mapping_type)?))
            })
            .collect::<Result<_, _>>()?,
        Some(mut o) => {
            o.onnx_dim_order = !p.is_yaml;
            o.spatial.mixed |= imc;
            let layers: Vec<&LoopNest> = to_cost.iter().map(|&i| chosen[i]).collect();
            let accs: Vec<&Accelerator> = to_cost.iter().map(|&i| acc_of(i)).collect();
            let choices = crate::explore::search_workload_each(&layers, &accs, map, &o, progress)?;
            let choices = match &opts.optimal {
                Some(s) => crate::search::optimal::optimise_choices(&layers, &accs, map, choices, &o, s)?,
                None => choices,
            };
            let mut fitted = Vec::with_capacity(layers.len());
            // A layer's position among the fitted ones (`shared_with` indexes the costed list).
            let mut position: Vec<Option<usize>> = Vec::with_capacity(layers.len());
            for (j, (l, c)) in layers.iter().zip(choices).enumerate() {
                let i = to_cost[j];
                position.push(c.is_ok().then_some(fitted.len()));
                match c {
                    Ok(mut c) => {
                        c.shared_with = c.shared_with.and_then(|j| position[j]);
                        fitted.push((i, *l, c));
                    }
                    Err(SearchError::NothingFits { memory, reason, .. }) => unfit.push(UnfitLayer {
                        layer: l.name.clone(),
                        op_type: l.op_type.clone(),
                        memory,
                        reason,
                    }),
                    Err(e) => return Err(EngineError::Search(ExploreError::Temporal(e))),
                }
            }
            fitted
                .into_iter()
                .map(|(i, l, c)| {
                    let layer = CostedLayer {
                        layer: l.clone(),
                        entry: c.entry.clone(),
                        spatial: c.spatial.clone(),
                        temporal: c.result.temporal.clone(),
                        cost: c.result.cost.clone(),
                        notes: Vec::new(),
                        search: Some(c),
                        local: None,
                        bound: None,
                    };
                    (i, layer)
                })
                .collect()
        }
    };
    // Each costed layer gets the placement of its own chosen layer (an unfit layer before it
    // must not shift them).
    let mut layers: Vec<CostedLayer> = costed
        .into_iter()
        .map(|(i, mut c)| {
            c.local = local.as_ref().map(|v| v[i].clone());
            c
        })
        .collect();
    // The lower bounds, on the accelerator each layer was costed on, with its entry's links.
    let bound_start = Instant::now();
    for c in &mut layers {
        let links = map.entry_for(&c.layer.name, &c.layer.op_type).map(|e| &e.links);
        let layer_acc = c.local.as_ref().map_or(&acc, |(a, _)| a);
        c.bound = links.and_then(|l| layer_bound(&c.layer, layer_acc, l, &cost_opts).ok());
    }
    let bound_seconds = bound_start.elapsed().as_secs_f64();
    Ok(Evaluation { accelerator: acc, layers, unfit, seconds: start.elapsed().as_secs_f64(), bound_seconds })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// ZigZag's gemm_l1.yaml: 8x8x8 MACs, a 32-bit output register serving D2, a 512 KiB L1.
    const ACCELERATOR: &str = r#"
name: gemm_l1
operational_array:
  input_precision: [8, 8]
  unit_energy: 0.04
  unit_area: 1
  dimensions: [D1, D2, D3]
  sizes: [8, 8, 8]
memories:
  reg_O:
    size: 32
    r_cost: 0.02
    w_cost: 0.02
    area: 0
    latency: 1
    operands: [O]
    ports:
      - {name: w_port_1, type: write, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, fh"]}
      - {name: r_port_1, type: read, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, tl"]}
      - {name: w_port_2, type: write, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, fl"]}
      - {name: r_port_2, type: read, bandwidth_min: 32, bandwidth_max: 32, allocation: ["O, th"]}
    served_dimensions: [D2]
  l1:
    size: 4194304
    r_cost: 22.9
    w_cost: 52.01
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - {name: rw_port_1, type: read_write, bandwidth_min: 64, bandwidth_max: 512, allocation: ["I1, tl"]}
      - {name: rw_port_2, type: read_write, bandwidth_min: 64, bandwidth_max: 512, allocation: ["I2, tl"]}
      - {name: rw_port_3, type: read_write, bandwidth_min: 64, bandwidth_max: 2048, allocation: ["O, tl", "O, fl"]}
    served_dimensions: [D1, D2, D3]
"#;

    const MAPPING: &str = r#"
- name: default
  spatial_mapping:
    D1: ["D0, 8"]
    D2: ["D2, 8"]
    D3: ["D1, 8"]
  temporal_ordering:
    - [D1, "*"]
    - [D2, "*"]
    - [D0, "*"]
"#;

    /// ZigZag's gemm_layer.yaml: a 128x128x128 GEMM.
    const WORKLOAD: &str = r#"
- id: 0
  name: gemm
  operator_type: Gemm
  equation: O[d0][d1]+=I[d0][d2]*W[d2][d1]
  loop_dims: [D0, D1, D2]
  loop_sizes: [128, 128, 128]
  operand_precision:
    W: 8
    I: 8
    O: 32
    O_final: 8
  operand_source:
    W: 0
    I: 0
"#;

    /// A 128x128x128 GEMM on ZigZag's gemm_l1, and a fixed mapping for it.
    pub(crate) fn inputs() -> (Workload, Accelerator, MappingFile) {
        let w = crate::zigzag::read_workload_yaml(WORKLOAD, "gemm.yaml").unwrap();
        let a = crate::zigzag::read_accelerator_yaml(ACCELERATOR, "acc.yaml").unwrap();
        let m = crate::zigzag::read_mapping_yaml(MAPPING, "map.yaml").unwrap();
        (w, a, m)
    }

    fn fixed() -> EvaluateOptions {
        EvaluateOptions { search: None, ..EvaluateOptions::default() }
    }

    #[test]
    fn a_fixed_mapping_costs_what_the_cli_reports() {
        let (w, acc, map) = inputs();
        let p = Prepared::new(&w, true, false, &|_| None);
        assert_eq!((p.chosen.len(), p.skipped.len()), (1, 0));
        let e = evaluate(&p, acc, &map, &fixed(), &|_| {}).unwrap();
        // `qc evaluate --fixed-mapping` on these files: 511,349.76 pJ and 8,191 cycles (ZigZag's
        // numbers for gemm_layer.yaml on gemm_l1.yaml).
        let t = e.total();
        assert!((t.energy - 511_349.76).abs() < 1e-6, "{t:?}");
        assert_eq!(t.latency, 8191.0);
        assert_eq!(t.mac_energy, 83_886.08);
        assert_eq!(t.memory_energy, t.energy - t.mac_energy);
        assert_eq!(e.network_cost().unwrap(), (t.energy, t.latency));
        let l = &e.layers[0];
        assert_eq!((l.layer.name.as_str(), l.entry.as_str()), ("gemm", "default"));
        assert!(l.search.is_none() && l.local.is_none() && e.unfit.is_empty());
        // The same through the one-layer function.
        let one = cost_fixed_mapping(
            &w.layers[0],
            &e.accelerator,
            &map,
            &CostOptions::default(),
            MappingType::Uneven,
        )
        .unwrap();
        assert_eq!(one, l.cost);
    }

    #[test]
    fn a_search_finds_the_fixed_mapping_or_a_better_one_and_reports_progress() {
        let (w, acc, map) = inputs();
        let p = Prepared::new(&w, true, false, &|_| None);
        let calls = std::sync::atomic::AtomicU64::new(0);
        let e = evaluate(&p, acc, &map, &EvaluateOptions::default(), &|_| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert!(e.total().latency <= 8191.0, "{:?}", e.total());
        let s = e.layers[0].search.as_ref().expect("a searched layer says how");
        assert!(s.evaluated >= 1 && s.exhaustive, "{s:?}");
        assert!(calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    }

    #[test]
    fn a_cancelled_evaluation_is_an_error_of_its_own() {
        let (w, acc, map) = inputs();
        let p = Prepared::new(&w, true, false, &|_| None);
        let cancel = Cancel::new();
        cancel.cancel();
        for search in [Some(SearchSettings::default()), None] {
            let opts = EvaluateOptions { search, cancel: Some(cancel.clone()), ..EvaluateOptions::default() };
            let e = evaluate(&p, acc.clone(), &map, &opts, &|_| {}).unwrap_err();
            assert!(matches!(e, EngineError::Cancelled), "{e:?}");
            let code = miette::Diagnostic::code(&e).map(|c| c.to_string());
            assert_eq!(code.as_deref(), Some("qc::search::cancelled"));
        }
        // The search itself stops on the flag.
        let o =
            EvaluateOptions { cancel: Some(cancel), ..EvaluateOptions::default() }.explore_options().unwrap();
        let r = crate::explore::search_workload_each(&p.chosen, &[&acc], &map, &o, &|_| {});
        assert!(matches!(r, Err(ExploreError::Cancelled)));
        // A flag not set changes nothing.
        let opts = EvaluateOptions { cancel: Some(Cancel::new()), ..fixed() };
        assert!(evaluate(&p, acc.clone(), &map, &opts, &|_| {}).is_ok());
        // A flag set while the search runs (here by its first progress report) stops it.
        let cancel = Cancel::new();
        let opts = EvaluateOptions { cancel: Some(cancel.clone()), ..EvaluateOptions::default() };
        let e = evaluate(&p, acc, &default_mapping(), &opts, &|_| cancel.cancel()).unwrap_err();
        assert!(matches!(e, EngineError::Cancelled), "{e:?}");
    }

    #[test]
    fn a_fixed_mapping_error_names_the_layer_with_the_cli_code() {
        let (w, acc, _) = inputs();
        let p = Prepared::new(&w, true, false, &|_| None);
        let e = evaluate(&p, acc, &default_mapping(), &fixed(), &|_| {}).unwrap_err();
        assert_eq!(e.to_string(), "layer `gemm`: the mapping entry `default` has no spatial_mapping");
        let code = miette::Diagnostic::code(&e).map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("qc::evaluate::mapping"));
    }

    #[test]
    fn layers_are_chosen_by_op_type_and_the_extra_filter() {
        let (mut w, _, _) = inputs();
        let mut pool = w.layers[0].clone();
        pool.name = "pool".into();
        pool.op_type = "MaxPool".into();
        w.layers.push(pool);
        let p = Prepared::new(&w, false, false, &|_| None);
        assert_eq!(p.chosen.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["gemm"]);
        assert_eq!(p.skipped[0].1, "not a layer ZigZag costs (use --all-layers)");
        let p = Prepared::new(&w, false, true, &|l| (l.name == "gemm").then(|| "on the CPU".to_string()));
        assert_eq!(p.chosen.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["pool"]);
        assert_eq!((p.skipped[0].0.name.as_str(), p.skipped[0].1.as_str()), ("gemm", "on the CPU"));
        assert_eq!(p.preds.len(), 1);
    }

    /// Three independent GEMMs, the middle one too big for the accelerator's memories.
    fn gemm(id: usize, n: u64) -> String {
        WORKLOAD
            .replace("id: 0", &format!("id: {id}"))
            .replace("name: gemm", &format!("name: gemm{n}"))
            .replace("[128, 128, 128]", &format!("[{n}, {n}, {n}]"))
            .replace("W: 0", &format!("W: {id}"))
            .replace("I: 0", &format!("I: {id}"))
    }

    #[test]
    fn with_data_locality_each_layer_keeps_its_own_placement_past_an_unfit_one() {
        let yaml = [gemm(0, 8), gemm(1, 128), gemm(2, 4)].concat();
        let w = crate::zigzag::read_workload_yaml(&yaml, "three.yaml").unwrap();
        // gemm_l1 with a 4096-bit L1 (the 128^3 GEMM fits nowhere) and a 2048-bit L0 below it
        // for inputs and outputs (the 4^3 GEMM's fit there, the 8^3 one's do not).
        let l0 = r#"  l0:
    size: 2048
    r_cost: 1.0
    w_cost: 1.0
    area: 0
    latency: 1
    operands: [I1, O]
    ports:
      - {name: rw_port_1, type: read_write, bandwidth_min: 64, bandwidth_max: 512, allocation: ["I1, fh", "I1, tl", "O, fh", "O, tl", "O, fl", "O, th"]}
    served_dimensions: [D1, D2, D3]
  l1:
"#;
        let text = ACCELERATOR.replace("size: 4194304", "size: 4096").replace("  l1:\n", l0);
        let acc = crate::zigzag::read_accelerator_yaml(&text, "acc.yaml").unwrap();
        let p = Prepared::new(&w, true, false, &|_| None);
        let map = default_mapping();
        let opts =
            EvaluateOptions { locality: Some(LocalityOptions::default()), ..EvaluateOptions::default() };
        let e = evaluate(&p, acc.clone(), &map, &opts, &|_| {}).unwrap();
        assert_eq!(
            e.unfit.iter().map(|u| u.layer.as_str()).collect::<Vec<_>>(),
            ["gemm128"],
            "{:?}",
            e.unfit
        );
        assert_eq!(e.layers.iter().map(|l| l.layer.name.as_str()).collect::<Vec<_>>(), ["gemm8", "gemm4"]);
        let links: Vec<&OperandLinks> = p.chosen.iter().map(|_| &map.entries[0].links).collect();
        let placed = locality::place(&p.chosen, &p.preds, &acc, &links, &LocalityOptions::default()).unwrap();
        // The placements differ, so a layer given another's would show.
        assert_ne!(placed[1], placed[2]);
        for (c, i) in e.layers.iter().zip([0, 2]) {
            let (local_acc, tops) = c.local.as_ref().expect("a placement per costed layer");
            assert_eq!(*tops, placed[i], "{}", c.layer.name);
            assert_eq!(*local_acc, locality::restrict_placed(&acc, links[i], &placed[i]));
        }
    }

    #[test]
    fn durations_parse_as_the_cli_writes_them() {
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("3 weeks"), None);
    }
}
