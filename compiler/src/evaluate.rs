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
//!
//! The evaluation itself is `qc_backends::network` (the layers to cost, the search or fixed
//! mapping, data locality) and its reports `qc_backends::report`; this module turns the command
//! line into their options, reads the files, places the ops on a DLA target and writes the
//! report.

use std::path::PathBuf;

use qc_backends::arch::Accelerator;
use qc_backends::cost::{LatencyModel, MappingType};
use qc_backends::explore::SearchProgress;
use qc_backends::locality::LocalityOptions;
use qc_backends::mapping::MappingFile;
use qc_backends::network::{EvaluateOptions, Evaluation, Prepared, SearchSettings, parse_duration};
pub use qc_backends::network::{ZIGZAG_COSTED, cost_fixed_mapping};
use qc_backends::report::{AcceleratorSource, ReportContext};
use qc_backends::search::Objective;
use qc_ir::{LoopNest, Workload};

use crate::formats::ReportFormat;
use crate::lower::WorkloadArgs;

mod output;
mod placement;

use placement::{LayerUnit, Placed};

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
    /// After the search, find the best mapping over the whole space (every valid spatial
    /// unrolling, mixed included, every order of the unmerged loop prime factors) by branch and
    /// bound, from the search's choice, with a certificate per layer (`spec/optimal.md`).
    #[arg(long, conflicts_with = "fixed_mapping")]
    pub optimal: bool,
    /// With `--optimal`: at most this many orderings allocated per layer (default 2000000), or
    /// `none`; a layer cut by it reports the best found and its proven gap.
    #[arg(long, value_name = "N|none", requires = "optimal")]
    pub optimal_budget: Option<String>,
    /// With `--optimal`: stop proving once each layer's result is within this of its optimum,
    /// as a percentage (`1%`) or a fraction (`0.01`); default 0, exact. A layer's certificate
    /// then gives how far above the optimum its result may be, at most this.
    #[arg(long, value_name = "PCT%|FRACTION", requires = "optimal", allow_hyphen_values = true)]
    pub optimal_gap: Option<String>,
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

/// The evaluation options from the command line (`--lpf-limit`, `--spatial-mappings`,
/// `--search-budget` and `--jobs` checked), without the search for `--fixed-mapping`.
pub(crate) fn evaluate_options(args: &EvaluateArgs) -> miette::Result<EvaluateOptions> {
    if args.fixed_mapping {
        // A fixed mapping reads no search option (nor --jobs).
        return Ok(EvaluateOptions { search: None, jobs: None, ..common_options(&args.search) });
    }
    let mut opts = search_options(&args.search, args.jobs)?;
    if args.optimal {
        let budget = match args.optimal_budget.as_deref() {
            None => Some(qc_backends::search::optimal::DEFAULT_BUDGET),
            Some("none") => None,
            Some(n) => Some(n.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                miette::miette!(
                    code = "qc::evaluate::option",
                    help = "give a number of orderings per layer (1 or more) or `none`",
                    "`--optimal-budget {n}` is not valid"
                )
            })?),
        };
        let tolerance = match args.optimal_gap.as_deref() {
            None => 0.0,
            Some(g) => parse_gap(g).ok_or_else(|| {
                miette::miette!(
                    code = "qc::evaluate::option",
                    help =
                        "give a percentage such as `1%` or a fraction such as `0.01` (0 or more; 0 is exact)",
                    "`--optimal-gap {g}` is not valid"
                )
            })?,
        };
        opts.optimal = Some(qc_backends::search::optimal::OptimalSettings { budget, mixed: true, tolerance });
    }
    Ok(opts)
}

/// `--optimal-gap`'s value (and `qc.evaluate`'s `optimal_gap` as text) as a fraction: `1%` or
/// `0.01`, finite and not negative.
pub fn parse_gap(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim_end(), 0.01),
        None => (t, 1.0),
    };
    let x = number.parse::<f64>().ok()? * scale;
    (x.is_finite() && x >= 0.0).then_some(x)
}

/// The options of a search with `search` and `jobs` threads.
pub(crate) fn search_options(search: &SearchArgs, jobs: Option<usize>) -> miette::Result<EvaluateOptions> {
    let bad = |flag: &str, value: &str, help: &str| {
        miette::miette!(
            code = "qc::evaluate::option",
            help = help.to_string(),
            "`{flag} {value}` is not valid"
        )
    };
    let lpf_limit = match search.lpf_limit.as_str() {
        "none" => None,
        n => Some(n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            bad(
                "--lpf-limit",
                n,
                "give a number of loop prime factors (1 or more; ZigZag's default is 6) or `none`",
            )
        })?),
    };
    let count = match search.spatial_mappings.as_str() {
        "all" => None,
        n => Some(n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            bad(
                "--spatial-mappings",
                n,
                "give how many of ZigZag's best spatial mappings to search (1 or more) or `all`",
            )
        })?),
    };
    let budget = match &search.search_budget {
        None => None,
        Some(b) => Some(
            parse_duration(b)
                .ok_or_else(|| bad("--search-budget", b, "give a duration such as 500ms, 60s, 2m or 1h"))?,
        ),
    };
    if jobs == Some(0) {
        return Err(bad("--jobs", "0", "give 1 or more threads"));
    }
    let objective = match search.opt {
        OptArg::Energy => Objective::Energy,
        OptArg::Latency => Objective::Latency,
        OptArg::Edp => Objective::Edp,
    };
    Ok(EvaluateOptions {
        search: Some(SearchSettings {
            objective,
            lpf_limit,
            spatial_mappings: count,
            mixed: search.mixed,
            budget,
        }),
        jobs,
        ..common_options(search)
    })
}

/// The options a search and a fixed mapping share.
fn common_options(search: &SearchArgs) -> EvaluateOptions {
    EvaluateOptions {
        search: None,
        latency_model: search.latency_model.model(),
        mapping_type: search.mapping_type.mapping_type(),
        all_layers: search.all_layers,
        locality: search
            .exploit_data_locality
            .then_some(LocalityOptions { data_from_top_memory: search.data_from_top_memory }),
        jobs: None,
        cancel: None,
        optimal: None,
    }
}

pub(crate) fn read(path: &std::path::Path) -> miette::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| miette::miette!(code = "qc::io::read", "cannot read `{}`: {e}", path.display()))
}

/// `--accelerator NAME|PATH` (`None`: the default built-in), see [`crate::accelerators`].
pub(crate) fn read_accelerator(spec: Option<&str>) -> miette::Result<Accelerator> {
    crate::accelerators::resolve_accelerator(spec).map(|(acc, _)| acc)
}

/// A lowered workload ready to evaluate on designs: the workload with what the reports say
/// beside it (the assumed input dims, what `--optimize` changed, the DLA placement). Owned, so a
/// front end can keep it with its evaluations; [`Plan::prepared`] gives the layers to cost.
pub struct Plan {
    pub workload: Workload,
    /// The workload as the reports name it (the model's path).
    pub name: String,
    /// A ZigZag workload YAML (costed whole) rather than a lowered ONNX model.
    pub is_yaml: bool,
    /// Cost every lowered layer, not only those ZigZag costs.
    pub all_layers: bool,
    pub assumed: Vec<crate::input_shapes::Assumption>,
    pub optimized: Vec<String>,
    placed: Option<Placed>,
}

/// One design to evaluate a [`Plan`] on: the accelerator, its mapping file, where both came from.
pub struct DesignInput {
    pub accelerator: Accelerator,
    pub mapping: MappingFile,
    /// The mapping file's name and text when one was given: its fit to the workload and the
    /// accelerator is checked before the evaluation ([`Plan::check_mapping`]).
    pub mapping_file: Option<(String, String)>,
    pub source: AcceleratorSource,
}

impl Plan {
    /// The plan of `lowered` (named `name`); `qc::evaluate::nothing_to_cost` when no layer is
    /// left to cost (nothing to cost is not a cost of 0).
    pub fn new(
        lowered: crate::lower::Lowered,
        name: String,
        is_yaml: bool,
        all_layers: bool,
    ) -> miette::Result<(Plan, Vec<miette::Report>)> {
        let crate::lower::Lowered { workload, warnings, assumed, placement, optimized } = lowered;
        let placed = placement.as_ref().map(|r| Placed::new(r, &workload));
        let plan = Plan { workload, name, is_yaml, all_layers, assumed, optimized, placed };
        plan.refuse_empty()?;
        Ok((plan, warnings))
    }

    /// The layers to cost: those ZigZag costs (all with `all_layers`) and, with a DLA target,
    /// only those of ops it places on the DLA.
    pub fn prepared(&self) -> Prepared<'_> {
        self.prepared_on(None)
    }

    /// [`Plan::prepared`] on accelerator `acc`: also leaves out the layers ZigZag does not cost
    /// there ([`qc_backends::network::imc_skipped`]; those it places but does not cost,
    /// [`qc_backends::network::imc_place_only`], stay in for the data-locality placement).
    pub fn prepared_on(&self, acc: Option<&Accelerator>) -> Prepared<'_> {
        let placed = self.placed.as_ref();
        let on_dla = |l: &LoopNest| -> Option<String> {
            if let Some(why) = acc.and_then(|a| qc_backends::network::imc_skipped(l, a, self.is_yaml)) {
                return Some(why);
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
        let place_only =
            |l: &LoopNest| acc.and_then(|a| qc_backends::network::imc_place_only(l, a, self.is_yaml));
        Prepared::with_placed_only(&self.workload, self.is_yaml, self.all_layers, &on_dla, &place_only)
    }

    fn refuse_empty(&self) -> miette::Result<()> {
        let p = self.prepared();
        if !p.chosen.is_empty() {
            return Ok(());
        }
        let mut why: Vec<String> =
            p.skipped.iter().map(|(l, why)| format!("`{}` ({}): {why}", l.name, l.op_type)).collect();
        why.extend(
            self.workload
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
            why.push(format!("none of its {} node(s) is a compute layer", self.workload.not_lowered.len()));
        }
        Err(miette::miette!(
            code = "qc::evaluate::nothing_to_cost",
            help = "qc evaluate costs convolutions and matrix products (--all-layers adds pooling and element-wise layers); `qc lower` lists every node with the reason it is not lowered",
            "`{}` has no layer to cost: {}",
            self.name,
            why.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ))
    }

    /// Checks `design`'s mapping file (if any) against the layers it is applied to and its
    /// accelerator (`qc_backends::zigzag::check_mapping_fit`): an error for a misfit, the
    /// warnings otherwise.
    pub fn check_mapping(&self, design: &DesignInput) -> miette::Result<Vec<miette::Report>> {
        let Some((file, text)) = &design.mapping_file else { return Ok(Vec::new()) };
        let p = self.prepared_on(Some(&design.accelerator));
        let acc = &design.accelerator;
        let fit = qc_backends::zigzag::check_mapping_fit(
            text,
            file,
            &design.mapping,
            &p.chosen,
            &p.skipped_layers(),
            acc,
        );
        let mut errors = fit.errors;
        match errors.len() {
            0 => Ok(fit.warnings.into_iter().map(miette::Report::new).collect()),
            1 => Err(miette::Report::new(errors.remove(0))),
            count => {
                Err(MappingMisfit { file: file.clone(), acc: acc.name.clone(), count, problems: errors }
                    .into())
            }
        }
    }

    /// Evaluates the layers to cost on `design` (`qc_backends::network::evaluate`), reporting the
    /// search's counters to `progress`.
    pub fn evaluate(
        &self,
        design: DesignInput,
        opts: &EvaluateOptions,
        progress: &(dyn Fn(&SearchProgress) + Sync),
    ) -> miette::Result<(Evaluation, AcceleratorSource)> {
        let p = self.prepared_on(Some(&design.accelerator));
        let e = qc_backends::network::evaluate(&p, design.accelerator, &design.mapping, opts, progress)
            .map_err(miette::Report::new)?;
        Ok((e, design.source))
    }
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

/// A plan evaluated on its designs (the first the main accelerator, the others compared with
/// it): what `qc evaluate` reports, in every format.
pub struct Evaluated {
    pub plan: Plan,
    pub designs: Vec<(Evaluation, AcceleratorSource)>,
    pub options: EvaluateOptions,
    /// The search budget as the user wrote it (`60s`).
    pub budget_text: Option<String>,
    /// Whether a mapping file was given (the reports say when the spatial mappings were
    /// searched from ZigZag's defaults).
    pub mapping_given: bool,
}

impl Evaluated {
    /// Calls `f` with the designs and the reports' context.
    fn with_context<R>(
        &self,
        f: impl FnOnce(&[(&Evaluation, &AcceleratorSource)], &ReportContext<'_>) -> R,
    ) -> R {
        // The layers left out are those of the main design's accelerator.
        let p = self.plan.prepared_on(self.designs.first().map(|(e, _)| &e.accelerator));
        let cx = ReportContext {
            workload: &self.plan.name,
            skipped: &p.skipped,
            not_lowered: &self.plan.workload.not_lowered,
            assumed: &self.plan.assumed,
            split: self.plan.placed.as_ref().map(|p| &p.split),
            optimized: &self.plan.optimized,
            budget_text: self.budget_text.as_deref(),
            mapping_given: self.mapping_given,
        };
        let designs: Vec<(&Evaluation, &AcceleratorSource)> =
            self.designs.iter().map(|(e, s)| (e, s)).collect();
        f(&designs, &cx)
    }

    /// The JSON report (`qc evaluate --format json`).
    pub fn json(&self) -> String {
        self.with_context(|d, cx| qc_backends::report::evaluation_json(d, &self.options, cx))
    }

    /// The reports' designs, for the text, Markdown and HTML reports.
    pub fn report_designs(&self) -> Vec<qc_backends::report::Design> {
        self.with_context(|d, cx| qc_backends::report::evaluation_designs(d, &self.options, cx))
    }

    /// The HTML page (`qc evaluate --format html`).
    pub fn html(&self) -> String {
        qc_backends::report::html(&self.report_designs())
    }

    /// The Markdown report (`qc evaluate --format md`).
    pub fn markdown(&self) -> String {
        qc_backends::report::markdown(&self.report_designs())
    }

    /// The text table, `width` columns wide.
    pub fn text(&self, width: usize, color: bool) -> String {
        qc_backends::report::text(&self.report_designs(), width, color)
    }

    /// Whether every layer fits on every design (a layer no mapping fits makes the exit code 1).
    pub fn all_fit(&self) -> bool {
        self.designs.iter().all(|(d, _)| d.unfit.is_empty())
    }
}

/// The designs of `qc evaluate`: `--accelerator` with `--mapping`, then each `--compare`.
fn designs(args: &EvaluateArgs) -> miette::Result<Vec<DesignInput>> {
    let mut specs: Vec<(Option<&str>, Option<&std::path::Path>)> =
        vec![(args.accelerator.as_deref(), args.search.mapping.as_deref())];
    for c in &args.compare {
        specs.push(match c.split_once(',') {
            Some((acc, map)) => (Some(acc), Some(std::path::Path::new(map))),
            None => (Some(c.as_str()), args.search.mapping.as_deref()),
        });
    }
    specs.into_iter().map(|(acc, map)| design_input(acc, map, args.fixed_mapping)).collect()
}

/// A design from an accelerator argument (`None`: the default built-in; else a built-in name or
/// a path) and a mapping file path.
pub fn design_input(
    accelerator: Option<&str>,
    mapping: Option<&std::path::Path>,
    fixed_mapping: bool,
) -> miette::Result<DesignInput> {
    let kind = match accelerator {
        None => "built-in default",
        Some(s) if crate::accelerators::is_path(s) => "file",
        Some(_) => "built-in",
    };
    let source = AcceleratorSource {
        kind: kind.to_string(),
        default_note: accelerator.is_none().then(|| crate::accelerators::source_of(None)),
    };
    let mapping_file =
        mapping.map(|p| Ok::<_, miette::Report>((p.display().to_string(), read(p)?))).transpose()?;
    Ok(DesignInput {
        accelerator: read_accelerator(accelerator)?,
        mapping: mapping_file_of(fixed_mapping, mapping_file.as_ref())?,
        mapping_file,
        source,
    })
}

/// The mapping file `file` (name, text); without one, ZigZag's defaults for every layer (a
/// search) or an error (`--fixed-mapping`).
fn mapping_file_of(fixed_mapping: bool, file: Option<&(String, String)>) -> miette::Result<MappingFile> {
    match file {
        Some((name, text)) => Ok(qc_backends::zigzag::read_mapping_yaml(text, name)?),
        None if fixed_mapping => Err(miette::miette!(
            code = "qc::evaluate::mapping",
            help =
                "give --mapping MAP.yaml with a spatial_mapping and a complete temporal_ordering per layer",
            "--fixed-mapping evaluates a given mapping, and there is no --mapping file"
        )),
        None => Ok(qc_backends::network::default_mapping()),
    }
}

/// Evaluates `plan` on `designs` with `opts`: the mapping files checked first (their warnings
/// once per file), then each design; `progress(i, p)` gets design `i`'s search counters and
/// `done(i)` its end.
pub fn evaluate_plan(
    plan: Plan,
    designs: Vec<DesignInput>,
    opts: EvaluateOptions,
    budget_text: Option<String>,
    progress: &(dyn Fn(usize, &SearchProgress) + Sync),
    done: &dyn Fn(usize),
) -> miette::Result<(Evaluated, Vec<miette::Report>)> {
    let mut warnings = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for d in &designs {
        let found = plan.check_mapping(d)?;
        // A mapping file's warnings do not depend on the accelerator: once per file.
        if let Some((file, _)) = &d.mapping_file
            && !seen.contains(&file.as_str())
        {
            seen.push(file);
            warnings.extend(found);
        }
    }
    let mapping_given = designs.first().is_some_and(|d| d.mapping_file.is_some());
    let mut evaluated = Vec::with_capacity(designs.len());
    for (i, d) in designs.into_iter().enumerate() {
        evaluated.push(plan.evaluate(d, &opts, &|p| progress(i, p))?);
        done(i);
    }
    Ok((Evaluated { plan, designs: evaluated, options: opts, budget_text, mapping_given }, warnings))
}

/// Runs `qc evaluate`; returns the warnings to print and whether every layer was costed (a
/// layer that no mapping fits makes the exit code 1).
pub fn run(args: &EvaluateArgs, out: &mut dyn std::io::Write) -> miette::Result<(Vec<miette::Report>, bool)> {
    let designs = designs(args)?;
    let opts = evaluate_options(args)?;
    let target = args.target.as_deref().map(crate::targets::resolve).transpose().map_err(|e| *e)?;
    let before = crate::lower::Before { optimize: args.optimize, target };
    let lowered = crate::lower::workload_with(&args.workload, &before)?;
    let name = args.workload.model.display().to_string();
    let (plan, mut warnings) = Plan::new(lowered, name, args.workload.is_yaml(), args.search.all_layers)?;
    // One progress bar per design's search, started when its search starts.
    let bars: Vec<std::sync::OnceLock<crate::progress::Progress>> =
        designs.iter().map(|_| std::sync::OnceLock::new()).collect();
    let progress = |i: usize, s: &SearchProgress| {
        if let Some(cell) = bars.get(i) {
            cell.get_or_init(|| crate::progress::Progress::new(0, "searches", !args.quiet)).search(s);
        }
    };
    let done = |i: usize| {
        if let Some(bar) = bars.get(i).and_then(|c| c.get()) {
            bar.finish();
        }
    };
    let (evaluated, found) =
        evaluate_plan(plan, designs, opts, args.search.search_budget.clone(), &progress, &done)?;
    warnings.extend(found);
    let text = output::render(args, &evaluated);
    crate::write::emit(args.output.as_deref(), &text, out)?;
    Ok((warnings, evaluated.all_fit()))
}
