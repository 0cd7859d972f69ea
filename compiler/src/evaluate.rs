//! `qc evaluate WORKLOAD [--accelerator NAME|PATH] --mapping MAP.yaml --fixed-mapping`: energy and
//! latency of every layer under the mapping the mapping file gives, with ZigZag's cost model
//! (`qc_backends::cost`, `spec/accelerator.md`).
//!
//! For each layer, the mapping file's entry (by layer name, then operator type, then `default`)
//! gives the spatial mapping, fitted to the layer as ZigZag fits it
//! (`qc_backends::spatial::fit_user_mapping`), and a complete `temporal_ordering` (innermost
//! first), which ZigZag's bottom-up allocator places in the memory levels
//! (`qc_backends::cost::allocate`). The layers of an ONNX model that ZigZag costs (Conv,
//! QLinearConv, Gemm, MatMul) are costed by default, every lowered layer with `--all-layers`; a
//! ZigZag workload YAML is costed whole, as ZigZag costs it.

use std::path::PathBuf;

use qc_backends::arch::Accelerator;
use qc_backends::cost::{
    AllocOptions, CostOptions, Evaluator, LatencyModel, LayerCost, MappingType, allocate,
};
use qc_backends::explore::{ExploreOptions, LayerChoice};
use qc_backends::locality::{self, LocalityOptions, OperandTops};
use qc_backends::mapping::{
    MappingEntry, MappingFile, OperandLinks, OrderSize, SpatialMapping, TemporalLoop, TemporalMapping,
};
use qc_backends::search::{Objective, SearchError, TemporalOptions};
use qc_backends::spatial::SpatialOptions;
use qc_ir::{LoopNest, Workload};

use crate::formats::ReportFormat;
use crate::lower::WorkloadArgs;

mod output;
mod placement;

use placement::{LayerUnit, Placed};

/// The op types `qc evaluate` costs without `--all-layers`: those ZigZag's ONNX parser costs
/// (`PARSER_MAPPING`: Conv, QLinearConv, Gemm, MatMul), and the same products in the forms real
/// exporters write, which ZigZag's parser does not read: the integer forms of
/// `quantize_dynamic`, QLinearMatMul, onnxruntime's fused and quantized contrib ops, and the two
/// matrix-product layers of each recurrent op. A network costs the same in any of these forms.
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
];

/// Which ZigZag latency model to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyModelArg {
    /// ZigZag 3.9.1, the release on PyPI.
    #[value(name = "zigzag-3.9.1")]
    Zigzag391,
    /// ZigZag's repository at commit 3d12a96 (different on-loading, no systolic drain).
    #[value(name = "zigzag-3d12a96")]
    Zigzag3d12a96,
}

impl LatencyModelArg {
    fn model(self) -> LatencyModel {
        match self {
            LatencyModelArg::Zigzag391 => LatencyModel::Zigzag391,
            LatencyModelArg::Zigzag3d12a96 => LatencyModel::Zigzag3d12a96,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LatencyModelArg::Zigzag391 => "zigzag-3.9.1",
            LatencyModelArg::Zigzag3d12a96 => "zigzag-3d12a96",
        }
    }
}

/// The search objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptArg {
    Energy,
    Latency,
    Edp,
}

/// ZigZag's `temporal_mapping_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MappingTypeArg {
    Uneven,
    Even,
}

impl MappingTypeArg {
    fn mapping_type(self) -> MappingType {
        match self {
            MappingTypeArg::Uneven => MappingType::Uneven,
            MappingTypeArg::Even => MappingType::Even,
        }
    }
}

/// The search options `qc evaluate` and `qc sweep` share.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// The mapping file: ZigZag's mapping YAML (spatial mappings or hints, loop-order
    /// constraints, operand links per layer). Without it, every layer gets ZigZag's defaults:
    /// any unrolling, any order, links O->O, I->I1, W->I2.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// What the search minimises (ties go to the other metric).
    #[arg(long, value_enum, default_value_t = OptArg::Latency)]
    pub opt: OptArg,
    /// LOMA's loop-prime-factor limit (ZigZag's default 6), or `none` for no merging.
    #[arg(long, default_value = "6", value_name = "N|none")]
    pub lpf_limit: String,
    /// Spatial mappings searched per layer: ZigZag's best N (default 3), or `all` valid ones.
    #[arg(long, default_value = "3", value_name = "N|all")]
    pub spatial_mappings: String,
    /// Also generate mixed spatial unrollings (several layer dims on one array dim).
    #[arg(long)]
    pub mixed: bool,
    /// Stop searching after this wall time (for example `60s`, `2m`) and report how far it got.
    #[arg(long, value_name = "DURATION")]
    pub search_budget: Option<String>,
    /// How loops map to memory levels: `uneven` (each operand cuts the loop order at its own
    /// levels, ZigZag's default) or `even` (a loop sits at the same level for all operands
    /// sharing a memory).
    #[arg(long, value_enum, default_value_t = MappingTypeArg::Uneven)]
    pub mapping_type: MappingTypeArg,
    /// The latency model.
    #[arg(long, value_enum, default_value_t = LatencyModelArg::Zigzag391)]
    pub latency_model: LatencyModelArg,
    /// Also cost the pooling and element-wise layers of an ONNX model.
    #[arg(long)]
    pub all_layers: bool,
    /// Inter-layer data locality, as ZigZag's `exploit_data_locality`: a layer's output that
    /// fits in a lower memory stays there and the next layer reads it from there, instead of a
    /// round trip through the top memory (`spec/locality.md`).
    #[arg(long)]
    pub exploit_data_locality: bool,
    /// With `--exploit-data-locality`: the network's input is read from, and its output
    /// written to, the top memories (ZigZag's `workload_data_always_from_top_mem`).
    #[arg(long, requires = "exploit_data_locality")]
    pub data_from_top_memory: bool,
}

/// Arguments of `qc evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The accelerator: a built-in name (`qc accelerators list`) or the path of a file (qc's
    /// format or ZigZag's accelerator YAML); default: the built-in `tpu_like`.
    #[arg(long, value_name = "NAME|PATH")]
    pub accelerator: Option<String>,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Evaluate exactly the mapping file's spatial mapping and complete temporal ordering
    /// instead of searching.
    #[arg(long)]
    pub fixed_mapping: bool,
    /// Place the ops on a DLA target as `qc check --target` does (a built-in name, `qc targets
    /// list`, or a target YAML): only the ops placed on the DLA are costed on the accelerator,
    /// and the report gives the DLA/CPU split and every op that falls back to the CPU with the
    /// rule that sent it there.
    #[arg(long, value_name = "NAME|PATH")]
    pub target: Option<String>,
    /// Run `qc optimize`'s default pipeline on the model in memory first (folded constants,
    /// fused batch norms, ...); the report says what it changed.
    #[arg(long)]
    pub optimize: bool,
    /// Threads (default: one per core). Results do not depend on it.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress bar (set by the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Fit the text table to this many columns (default: the terminal's width, else `COLUMNS`,
    /// else 120).
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
    /// Also evaluate the workload on this accelerator (repeatable) with the same options, and
    /// report the designs side by side; `ACC.yaml,MAP.yaml` gives it its own mapping file
    /// (else `--mapping`'s); ACC is a built-in name or a path, as for `--accelerator`.
    #[arg(long, value_name = "ACC[,MAP.yaml]")]
    pub compare: Vec<String>,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// One costed layer.
struct Costed {
    layer: LoopNest,
    entry: String,
    spatial: SpatialMapping,
    temporal: TemporalMapping,
    cost: LayerCost,
    notes: Vec<String>,
    /// How the search found it (`None`: a fixed mapping).
    search: Option<LayerChoice>,
    /// With data locality: the accelerator the layer saw (its memories above each operand's
    /// placement removed), and the placement.
    local: Option<(Accelerator, OperandTops)>,
}

/// Parses a duration such as `60s`, `2m`, `500ms`, `1.5h`.
fn parse_duration(s: &str) -> Option<std::time::Duration> {
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
    std::time::Duration::try_from_secs_f64(secs).ok()
}

/// The search options from the command line.
pub(crate) fn search_options(args: &EvaluateArgs) -> miette::Result<ExploreOptions> {
    let bad = |flag: &str, value: &str, help: &str| {
        miette::miette!(
            code = "qc::evaluate::option",
            help = help.to_string(),
            "`{flag} {value}` is not valid"
        )
    };
    let lpf_limit = match args.search.lpf_limit.as_str() {
        "none" => None,
        n => Some(n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            bad(
                "--lpf-limit",
                n,
                "give a number of loop prime factors (1 or more; ZigZag's default is 6) or `none`",
            )
        })?),
    };
    let count = match args.search.spatial_mappings.as_str() {
        "all" => None,
        n => Some(n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            bad(
                "--spatial-mappings",
                n,
                "give how many of ZigZag's best spatial mappings to search (1 or more) or `all`",
            )
        })?),
    };
    let budget = match &args.search.search_budget {
        None => None,
        Some(b) => Some(
            parse_duration(b)
                .ok_or_else(|| bad("--search-budget", b, "give a duration such as 500ms, 60s, 2m or 1h"))?,
        ),
    };
    if args.jobs == Some(0) {
        return Err(bad("--jobs", "0", "give 1 or more threads"));
    }
    let objective = match args.search.opt {
        OptArg::Energy => Objective::Energy,
        OptArg::Latency => Objective::Latency,
        OptArg::Edp => Objective::Edp,
    };
    Ok(ExploreOptions {
        objective,
        spatial: SpatialOptions { count, mixed: args.search.mixed },
        temporal: TemporalOptions {
            lpf_limit,
            mapping_type: args.search.mapping_type.mapping_type(),
            ..TemporalOptions::default()
        },
        jobs: args.jobs,
        onnx_dim_order: true,
        budget,
        cancel: None,
    })
}

pub(crate) fn read(path: &std::path::Path) -> miette::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| miette::miette!(code = "qc::io::read", "cannot read `{}`: {e}", path.display()))
}

/// A layer's problem, as a diagnostic.
fn layer_error(layer: &str, message: String, help: &str) -> miette::Report {
    miette::miette!(code = "qc::evaluate::mapping", help = help.to_string(), "layer `{layer}`: {message}")
}

/// The loop order of a complete `temporal_ordering`, resolved against the temporal loop sizes
/// left by the spatial mapping: dims the layer lacks are dropped (as ZigZag drops them), `*`
/// takes what remains of its dim, loops of size 1 are dropped.
fn loop_order(
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
) -> miette::Result<LayerCost> {
    cost_layer(layer, acc, map, opts, mapping_type).map(|c| c.cost)
}

fn cost_layer(
    layer: &LoopNest,
    acc: &Accelerator,
    map: &qc_backends::mapping::MappingFile,
    opts: &CostOptions,
    mapping_type: MappingType,
) -> miette::Result<Costed> {
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
    let fitted = qc_backends::spatial::fit_user_mapping(user, layer, acc, &entry.links);
    let evaluator = Evaluator::new(layer, acc, &entry.links, &fitted.mapping).map_err(miette::Report::new)?;
    let order = loop_order(layer, entry, &evaluator.temporal_sizes()).map_err(|m| {
        layer_error(
            &layer.name,
            m,
            "give a complete temporal_ordering: every temporal loop, innermost first, with sizes whose product per dim is what the spatial mapping leaves (`*` takes the rest of a dim)",
        )
    })?;
    let temporal =
        allocate(layer, acc, &entry.links, &fitted.mapping, &order, &AllocOptions { mapping_type })
            .map_err(miette::Report::new)?;
    let cost = evaluator.evaluate(&temporal, opts).map_err(miette::Report::new)?;
    Ok(Costed {
        layer: layer.clone(),
        entry: entry.name.clone(),
        spatial: fitted.mapping,
        temporal,
        cost,
        notes: fitted.notes,
        search: None,
        local: None,
    })
}

/// `--accelerator NAME|PATH` (`None`: the default built-in), see [`crate::accelerators`].
pub(crate) fn read_accelerator(spec: Option<&str>) -> miette::Result<Accelerator> {
    crate::accelerators::resolve_accelerator(spec).map(|(acc, _)| acc)
}

/// The mapping file at `path`; without one, ZigZag's defaults for every layer (a search) or an
/// error (`--fixed-mapping`).
pub(crate) fn mapping_file(
    args: &EvaluateArgs,
    path: Option<&std::path::Path>,
) -> miette::Result<MappingFile> {
    match path {
        Some(path) => Ok(qc_backends::zigzag::read_mapping_yaml(&read(path)?, &path.display().to_string())?),
        None if args.fixed_mapping => Err(miette::miette!(
            code = "qc::evaluate::mapping",
            help =
                "give --mapping MAP.yaml with a spatial_mapping and a complete temporal_ordering per layer",
            "--fixed-mapping evaluates a given mapping, and there is no --mapping file"
        )),
        None => Ok(MappingFile {
            entries: vec![MappingEntry {
                name: "default".into(),
                spatial: None,
                spatial_hint: None,
                temporal_ordering: None,
                links: Default::default(),
            }],
        }),
    }
}

/// A workload ready to evaluate on accelerators: the layers to cost and those left out, and the
/// data flow between the costed ones (indices into `chosen`, for data locality).
pub(crate) struct Prepared<'w> {
    pub chosen: Vec<&'w LoopNest>,
    /// Layers left out, with the reason.
    pub skipped: Vec<(&'w LoopNest, String)>,
    pub preds: Vec<Vec<usize>>,
    pub is_yaml: bool,
}

impl<'w> Prepared<'w> {
    /// The layers to cost: those ZigZag costs (all with `--all-layers`) and, with a DLA
    /// target, only those of ops it places on the DLA.
    pub fn new(args: &EvaluateArgs, workload: &'w Workload, placed: Option<&Placed>) -> Prepared<'w> {
        let is_yaml = args.workload.is_yaml();
        let why_not = |l: &LoopNest| -> Option<String> {
            if !(is_yaml || args.search.all_layers || ZIGZAG_COSTED.contains(&l.op_type.as_str())) {
                return Some("not a layer ZigZag costs (use --all-layers)".into());
            }
            let placed = placed?;
            match placed.unit(l) {
                LayerUnit::Dla => None,
                LayerUnit::Cpu(rule) => Some(format!("runs on the CPU of {} ({rule})", placed.split.target)),
                LayerUnit::Absorbed(how) => {
                    Some(format!("absorbed by {} ({how}): not run as a layer", placed.split.target))
                }
                LayerUnit::Unplaced => Some(format!(
                    "{} places no op of this name, so qc does not know where it runs",
                    placed.split.target
                )),
            }
        };
        let reasons: Vec<Option<String>> = workload.layers.iter().map(why_not).collect();
        let mut chosen = Vec::new();
        let mut skipped = Vec::new();
        for (l, why) in workload.layers.iter().zip(&reasons) {
            match why {
                None => chosen.push(l),
                Some(why) => skipped.push((l, why.clone())),
            }
        }
        let kept: Vec<usize> = (0..workload.layers.len()).filter(|&i| reasons[i].is_none()).collect();
        let flow = workload.dataflow(|l| why_not(l).is_none());
        let preds = kept
            .iter()
            .map(|&i| flow[i].iter().filter_map(|j| kept.iter().position(|k| k == j)).collect())
            .collect();
        Prepared { chosen, skipped, preds, is_yaml }
    }

    /// The layers left out, without their reasons.
    pub fn skipped_layers(&self) -> Vec<&'w LoopNest> {
        self.skipped.iter().map(|(l, _)| *l).collect()
    }
}

/// The network energy and latency of `p` on `acc` (the search or fixed mapping of `args`): what
/// `qc sweep` records per design.
pub(crate) fn network_cost(
    args: &EvaluateArgs,
    acc: Accelerator,
    map: &MappingFile,
    search: Option<&ExploreOptions>,
    p: &Prepared<'_>,
) -> miette::Result<(f64, f64)> {
    let e = evaluate_on(args, acc, map, search, &p.chosen, &p.preds, p.is_yaml)?;
    // A design that cannot run a layer cannot run the workload: its partial sum is no total.
    if let Some(u) = e.unfit.first() {
        // The cost model's reason may already name the layer.
        let named = format!("layer `{}`", u.layer);
        let reason =
            if u.reason.starts_with(&named) { u.reason.clone() } else { format!("{named}: {}", u.reason) };
        return Err(miette::miette!(
            code = "qc::search::nothing_fits",
            "{reason} ({} layer(s) do not fit)",
            e.unfit.len()
        ));
    }
    Ok((e.costed.iter().map(|c| c.cost.energy).sum(), e.costed.iter().map(|c| c.cost.latency).sum()))
}

/// One accelerator's evaluation: the accelerator, its costed layers, the layers no mapping
/// fits, and the search time.
struct Evaluated {
    acc: Accelerator,
    costed: Vec<Costed>,
    unfit: Vec<Unfit>,
    seconds: f64,
}

/// Mapping entries that do not fit the workload and accelerator they are used with.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`{file}` does not fit the workload on accelerator `{acc}`: {count} problems")]
#[diagnostic(
    code(qc::mapping::misfit),
    help("each problem below points at the mapping entry and key it is about")
)]
pub struct MappingMisfit {
    file: String,
    acc: String,
    count: usize,
    #[related]
    problems: Vec<qc_backends::zigzag::MappingError>,
}

/// Checks the mapping file at `path` (if any) against the layers it is applied to and `acc`
/// (`qc_backends::zigzag::check_mapping_fit`): an error for a misfit, the warnings otherwise.
pub(crate) fn check_mapping(
    path: Option<&std::path::Path>,
    map: &MappingFile,
    acc: &Accelerator,
    p: &Prepared<'_>,
) -> miette::Result<Vec<miette::Report>> {
    let Some(path) = path else { return Ok(Vec::new()) };
    let file = path.display().to_string();
    let fit =
        qc_backends::zigzag::check_mapping_fit(&read(path)?, &file, map, &p.chosen, &p.skipped_layers(), acc);
    let mut errors = fit.errors;
    match errors.len() {
        0 => Ok(fit.warnings.into_iter().map(miette::Report::new).collect()),
        1 => Err(miette::Report::new(errors.remove(0))),
        count => Err(MappingMisfit { file, acc: acc.name.clone(), count, problems: errors }.into()),
    }
}

/// A layer for which every mapping searched overflows a memory: it is listed, not costed, and
/// the other layers are costed.
pub(crate) struct Unfit {
    pub(crate) layer: String,
    pub(crate) op_type: String,
    /// The memory that is too small.
    pub(crate) memory: String,
    /// What overflows and by how much.
    pub(crate) reason: String,
}

impl Unfit {
    /// The reason with what would make the layer fit.
    pub(crate) fn explain(&self) -> String {
        format!(
            "no mapping fits: {}; it fits with a larger `{}`, a smaller spatial unrolling, or (for a partial sum wider than its memory) --psum-bits zigzag",
            self.reason, self.memory
        )
    }
}

/// Runs `qc evaluate`; returns the warnings to print and whether every layer was costed (a
/// layer that no mapping fits makes the exit code 1).
pub fn run(args: &EvaluateArgs, out: &mut dyn std::io::Write) -> miette::Result<(Vec<miette::Report>, bool)> {
    let map = mapping_file(args, args.search.mapping.as_deref())?;
    // The designs: `--accelerator` with `--mapping`, then each `--compare`.
    let mut accs = vec![(read_accelerator(args.accelerator.as_deref())?, map)];
    let mut map_paths = vec![args.search.mapping.as_deref()];
    for c in &args.compare {
        let (acc, map) = match c.split_once(',') {
            Some((acc, map)) => (acc, Some(std::path::Path::new(map))),
            None => (c.as_str(), args.search.mapping.as_deref()),
        };
        accs.push((read_accelerator(Some(acc))?, mapping_file(args, map)?));
        map_paths.push(map);
    }
    let search = if args.fixed_mapping { None } else { Some(search_options(args)?) };
    let target = args.target.as_deref().map(crate::targets::resolve).transpose().map_err(|e| *e)?;
    let before = crate::lower::Before { optimize: args.optimize, target };
    let crate::lower::Lowered { workload, mut warnings, assumed, placement, optimized } =
        crate::lower::workload_with(&args.workload, &before)?;
    let placed = placement.as_ref().map(|r| Placed::new(r, &workload));
    let p = Prepared::new(args, &workload, placed.as_ref());
    if p.chosen.is_empty() {
        // Nothing to cost is not a cost of 0: say why.
        let mut why: Vec<String> =
            p.skipped.iter().map(|(l, why)| format!("`{}` ({}): {why}", l.name, l.op_type)).collect();
        why.extend(
            workload
                .not_lowered
                .iter()
                .filter(|n| {
                    n.reason.contains("control flow")
                        || n.reason.contains("compute op")
                        || n.reason.contains("2^128")
                })
                .map(|n| format!("`{}`: {}", n.node, n.reason)),
        );
        if why.is_empty() {
            why.push(format!("none of its {} node(s) is a compute layer", workload.not_lowered.len()));
        }
        return Err(miette::miette!(
            code = "qc::evaluate::nothing_to_cost",
            help = "qc evaluate costs convolutions and matrix products (--all-layers adds pooling and element-wise layers); `qc lower` lists every node with the reason it is not lowered",
            "`{}` has no layer to cost: {}",
            args.workload.model.display(),
            why.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    for (i, ((acc, map), path)) in accs.iter().zip(&map_paths).enumerate() {
        let found = check_mapping(*path, map, acc, &p)?;
        // A mapping file's warnings do not depend on the accelerator: once per file.
        if !map_paths[..i].contains(path) {
            warnings.extend(found);
        }
    }
    let designs = accs
        .into_iter()
        .map(|(acc, map)| evaluate_on(args, acc, &map, search.as_ref(), &p.chosen, &p.preds, p.is_yaml))
        .collect::<miette::Result<Vec<Evaluated>>>()?;
    let context = output::Context {
        skipped: &p.skipped,
        assumed: &assumed,
        split: placed.as_ref().map(|p| &p.split),
        optimized: &optimized,
    };
    let text = output::render(args, &workload, &designs, &context);
    crate::write::emit(args.output.as_deref(), &text, out)?;
    let all_fit = designs.iter().all(|d| d.unfit.is_empty());
    Ok((warnings, all_fit))
}

/// Costs the `chosen` layers on `acc`: the fixed mapping, or the search with `search`;
/// `preds[i]`: the chosen layers layer `i` reads (for data locality).
fn evaluate_on(
    args: &EvaluateArgs,
    acc: Accelerator,
    map: &MappingFile,
    search: Option<&ExploreOptions>,
    chosen: &[&LoopNest],
    preds: &[Vec<usize>],
    is_yaml: bool,
) -> miette::Result<Evaluated> {
    let opts = CostOptions { latency_model: args.search.latency_model.model() };
    let start = std::time::Instant::now();
    // With data locality, each layer's own accelerator.
    let local: Option<Vec<(Accelerator, OperandTops)>> = if args.search.exploit_data_locality {
        let links: Vec<&OperandLinks> = chosen
            .iter()
            .map(|l| {
                map.entry_for(&l.name, &l.op_type).map(|e| &e.links).ok_or_else(|| {
                    layer_error(&l.name, "no mapping entry applies".into(), "add a `default` entry")
                })
            })
            .collect::<miette::Result<_>>()?;
        let lopts = LocalityOptions { data_from_top_memory: args.search.data_from_top_memory };
        let placed = locality::place(chosen, preds, &acc, &links, &lopts).map_err(miette::Report::new)?;
        Some(
            placed
                .into_iter()
                .zip(&links)
                .map(|(p, l)| (locality::restrict_placed(&acc, l, &p), p))
                .collect(),
        )
    } else {
        None
    };
    let acc_of = |i: usize| local.as_ref().map_or(&acc, |v| &v[i].0);
    let mut unfit: Vec<Unfit> = Vec::new();
    let costed: Vec<Costed> = match search {
        None => chosen
            .iter()
            .enumerate()
            .map(|(i, l)| cost_layer(l, acc_of(i), map, &opts, args.search.mapping_type.mapping_type()))
            .collect::<miette::Result<_>>()?,
        Some(o) => {
            let mut o = o.clone();
            o.temporal.cost = opts;
            o.onnx_dim_order = !is_yaml;
            let bar = crate::progress::Progress::new(0, "searches", !args.quiet);
            let accs: Vec<&Accelerator> = (0..chosen.len()).map(acc_of).collect();
            let choices =
                qc_backends::explore::search_workload_each(chosen, &accs, map, &o, &|p| bar.search(p))
                    .map_err(miette::Report::new)?;
            bar.finish();
            let mut fitted = Vec::with_capacity(chosen.len());
            // A layer's position among the fitted ones (`shared_with` indexes the costed list).
            let mut position: Vec<Option<usize>> = Vec::with_capacity(chosen.len());
            for (l, c) in chosen.iter().zip(choices) {
                position.push(c.is_ok().then_some(fitted.len()));
                match c {
                    Ok(mut c) => {
                        c.shared_with = c.shared_with.and_then(|j| position[j]);
                        fitted.push((*l, c));
                    }
                    Err(SearchError::NothingFits { memory, reason, .. }) => unfit.push(Unfit {
                        layer: l.name.clone(),
                        op_type: l.op_type.clone(),
                        memory,
                        reason,
                    }),
                    Err(e) => return Err(miette::Report::new(e)),
                }
            }
            fitted
                .into_iter()
                .map(|(l, c)| Costed {
                    layer: (*l).clone(),
                    entry: c.entry.clone(),
                    spatial: c.spatial.clone(),
                    temporal: c.result.temporal.clone(),
                    cost: c.result.cost.clone(),
                    notes: Vec::new(),
                    search: Some(c),
                    local: None,
                })
                .collect()
        }
    };
    let mut costed = costed;
    if let Some(local) = local {
        for (c, l) in costed.iter_mut().zip(local) {
            c.local = Some(l);
        }
    }
    Ok(Evaluated { acc, costed, unfit, seconds: start.elapsed().as_secs_f64() })
}
