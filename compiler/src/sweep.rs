//! `qc sweep`: evaluates a workload on every design of an accelerator parameter sweep
//! (`qc_backends::sweep`, `spec/sweep.md`), in parallel, writing one JSON line per design as it
//! finishes, then the Pareto front of energy and latency (and area, when the accelerator file
//! gives areas) as text or JSON, and optionally an HTML page with the scatter plot.
//! `--shard I/N` evaluates one of N disjoint slices of the designs, for batch schedulers;
//! `qc sweep merge` joins the slices' lines and computes the front.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use qc_backends::sweep::{
    DesignResult, Pinned, Sweep, SweepOptionsKey, fingerprint, pareto_front, pinned_by_mapping,
    read_sweep_yaml, run_sweep, shard_designs, unpin,
};
use serde_json::{Value, json};

use qc_backends::mapping::MappingFile;
use qc_backends::network::EvaluateOptions;

use crate::evaluate::{Plan, SearchArgs, read, read_accelerator, search_options};
use crate::formats::TextOrJson;
use crate::lower::WorkloadArgs;

/// Arguments of `qc sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub merge: Option<SweepCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum SweepCommand {
    /// Join the JSON lines of a sweep's shards and compute the Pareto front.
    Merge(MergeArgs),
}

/// Arguments of `qc sweep MODEL ...` (optional to clap so that `qc sweep merge` parses; checked
/// by [`run`]).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The ONNX model, or a ZigZag manual-workload YAML.
    #[arg(value_name = "MODEL|WORKLOAD.yaml")]
    pub model: Option<PathBuf>,
    /// Bits of operands without quantization, as `qc lower --default-precision`.
    #[arg(long, value_name = "W,I,O,PSUM")]
    pub default_precision: Option<String>,
    /// Read the model into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
    /// Partial-sum bits of quantized layers, as `qc lower --psum-bits`.
    #[arg(long, value_name = "zigzag|exact|BITS")]
    pub psum_bits: Option<String>,
    #[command(flatten)]
    pub shapes: crate::input_shapes::InputShapeArgs,
    #[command(flatten)]
    pub shape_errors: crate::shape_errors::ShapeErrorArgs,
    /// The base accelerator: a built-in name or the path of a file (qc's format or ZigZag's
    /// accelerator YAML), as `qc evaluate --accelerator`.
    #[arg(long, value_name = "NAME|PATH")]
    pub accelerator: Option<String>,
    /// The sweep file: the parameters to vary and their values (`spec/sweep.md`).
    #[arg(long)]
    pub sweep: Option<PathBuf>,
    /// The search options, as `qc evaluate`'s.
    #[command(flatten)]
    pub search: SearchArgs,
    /// Keep the mapping file's `spatial_mapping` for swept array dims as given (by default the
    /// sweep searches their unrolling, since a pinned one makes the array size meaningless).
    #[arg(long)]
    pub keep_mapping_spatial: bool,
    /// Evaluate the I-th of N disjoint slices of the designs (1-based), for example `3/8`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress bar (set by the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
    /// Where the JSON lines go (one per design, written as designs finish).
    #[arg(short, long, default_value = "sweep.jsonl")]
    pub output: PathBuf,
    /// Also write an HTML page with the scatter plot and the front.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The summary's format (standard output).
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
}

/// Arguments of `qc sweep merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The JSON-lines files of the shards.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the joined lines (sorted by design) to this file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Also write an HTML page with the scatter plot and the front.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
}

fn error(code: &'static str, message: String, help: &str) -> miette::Report {
    miette::miette!(code = code, help = help.to_string(), "{message}")
}

/// `I/N` with `1 <= I <= N`.
fn parse_shard(s: &str) -> miette::Result<(u64, u64)> {
    let bad = || {
        error(
            "qc::sweep::shard",
            format!("`--shard {s}` is not I/N"),
            "give the slice as I/N with 1 <= I <= N, for example 3/8",
        )
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// One evaluated design.
#[derive(Clone, Debug)]
struct Point {
    design: u128,
    /// The line as written.
    text: String,
    line: Value,
    energy: f64,
    latency: f64,
    area: Option<f64>,
}

/// A design that cannot run the workload.
#[derive(Clone, Debug)]
struct Failed {
    design: u128,
    /// The line as written.
    text: String,
    line: Value,
}

impl Failed {
    fn of(line: Value) -> Option<Failed> {
        line["error"].as_str()?;
        Some(Failed { design: line["design"].as_str()?.parse().ok()?, text: line.to_string(), line })
    }

    fn reason(&self) -> &str {
        self.line["error"].as_str().unwrap_or_default()
    }
}

/// A design's parameters as `name=value`, joined by `sep`.
fn parameters(line: &Value, sep: &str) -> String {
    line["parameters"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(sep))
        .unwrap_or_default()
}

impl Point {
    fn of(line: Value) -> Option<Point> {
        Some(Point {
            design: line["design"].as_str()?.parse().ok()?,
            text: line.to_string(),
            energy: line["energy"].as_f64()?,
            // An in-memory-compute design's clock period is its own: its latency counts in ns.
            latency: line["latency_ns"].as_f64().or_else(|| line["latency"].as_f64())?,
            area: line["area"].as_f64(),
            line,
        })
    }
}

/// Runs `qc sweep` or `qc sweep merge`; returns the warnings to print.
pub fn run(args: &SweepArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    match &args.merge {
        Some(SweepCommand::Merge(m)) => merge(m, out),
        None => sweep(&args.run, out),
    }
}

fn sweep(r: &RunArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    let (Some(model), Some(acc_spec), Some(sweep_path)) = (&r.model, &r.accelerator, &r.sweep) else {
        return Err(error(
            "qc::sweep::usage",
            "give a model, --accelerator and --sweep, or `merge FILES`".into(),
            "qc sweep MODEL --accelerator NAME|PATH --sweep SWEEP.yaml, or qc sweep merge A.jsonl B.jsonl",
        ));
    };
    let sweep_file = (sweep_path.display().to_string(), read(sweep_path)?);
    let shard = r.shard.as_deref().map(parse_shard).transpose()?;
    let workload_args = WorkloadArgs {
        model: model.clone(),
        default_precision: r.default_precision.clone(),
        no_mmap: r.no_mmap,
        shapes: r.shapes.clone(),
        shape_errors: r.shape_errors.clone(),
        psum_bits: r.psum_bits.clone(),
    };
    let mapping = r
        .search
        .mapping
        .as_deref()
        .map(|p| Ok::<_, miette::Report>((p.display().to_string(), read(p)?)))
        .transpose()?;
    // Each design's search runs in the sweep's threads (`--jobs` is the designs at a time).
    let opts = search_options(&r.search, None)?;
    let lowered = crate::lower::workload(&workload_args)?;
    let name = model.display().to_string();
    let (plan, mut warnings) = Plan::new(lowered, name, workload_args.is_yaml(), opts.all_layers)?;
    if let Some(line) = crate::input_shapes::assumptions_line(&plan.assumed) {
        warnings.push(miette::miette!(
            severity = miette::Severity::Advice,
            code = "qc::input_shape::assumed",
            "{line}"
        ));
    }
    let model_key = (
        model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::fs::metadata(model).map(|m| m.len()).unwrap_or(0),
    );
    let mut setup = SweepSetup::new(SweepInput {
        plan,
        model_key,
        accelerator: acc_spec.clone(),
        sweep_file,
        mapping,
        opts,
        keep_mapping_spatial: r.keep_mapping_spatial,
        shard,
        jobs: r.jobs,
    })?;
    warnings.extend(setup.take_warnings());
    let file = std::fs::File::create(&r.output).map_err(|e| {
        error("qc::io::write", format!("cannot write `{}`: {e}", r.output.display()), "check the path")
    })?;
    let sink = Mutex::new(std::io::BufWriter::new(file));
    let bar = crate::progress::Progress::new(setup.designs().len() as u64, "designs", !r.quiet);
    // Each design's line is written (and flushed) as it finishes, so an interrupted sweep keeps
    // what finished; a design that cannot run the workload gets a line with its reason.
    let fp = setup.fingerprint().to_string();
    let write_lines = |done: &[DesignResult]| -> miette::Result<()> {
        let mut w = sink.lock().map_err(|_| error("qc::io::write", "a writer panicked".into(), ""))?;
        for d in done {
            writeln!(w, "{}", d.json_line(&fp)).and_then(|_| w.flush()).map_err(|e| {
                error("qc::io::write", format!("cannot write `{}`: {e}", r.output.display()), "")
            })?;
        }
        drop(w);
        bar.advance(done.len() as u64);
        Ok(())
    };
    let swept = setup.run(&write_lines)?;
    bar.finish();
    if let Some(h) = &r.html {
        let title = format!("{} on {} swept by {}", model.display(), acc_spec, sweep_path.display());
        crate::write::write_atomically(h, swept.html(&title).as_bytes()).map_err(|e| {
            error("qc::io::write", format!("cannot write `{}`: {e}", h.display()), "check the path")
        })?;
    }
    let text = swept.summary(r.format);
    out.write_all(text.as_bytes()).map_err(|e| error("qc::io::write", format!("cannot write: {e}"), ""))?;
    Ok(warnings)
}

/// What a sweep evaluates, as any front end gives it: the workload, the base accelerator, the
/// sweep file, the mapping file and the options.
pub struct SweepInput {
    /// The workload and how the reports name it.
    pub plan: Plan,
    /// The model file's name and size, which the fingerprint of the sweep's lines covers (not
    /// its path, so shards run from other directories merge).
    pub model_key: (String, u64),
    /// The base accelerator: a built-in name or a path.
    pub accelerator: String,
    /// The sweep file's name and text.
    pub sweep_file: (String, String),
    /// The mapping file's name and text (ZigZag's defaults without one).
    pub mapping: Option<(String, String)>,
    /// The search options (each design is one search).
    pub opts: EvaluateOptions,
    /// Keep the mapping file's `spatial_mapping` for swept array dims as given.
    pub keep_mapping_spatial: bool,
    /// `(I, N)`: evaluate the I-th of N disjoint slices of the designs.
    pub shard: Option<(u64, u64)>,
    /// Designs evaluated at a time (default: one per core).
    pub jobs: Option<usize>,
}

/// A sweep read and checked, ready to run: its designs, the mapping it uses, its fingerprint.
pub struct SweepSetup {
    plan: Plan,
    base: qc_backends::arch::Accelerator,
    sweep: Sweep,
    map: MappingFile,
    opts: EvaluateOptions,
    designs: Vec<u128>,
    total_designs: usize,
    jobs: Option<usize>,
    fingerprint: String,
    notes: Vec<String>,
    warnings: Vec<miette::Report>,
}

impl SweepSetup {
    /// Reads the accelerator, sweep and mapping files of `input` and checks the options.
    pub fn new(input: SweepInput) -> miette::Result<SweepSetup> {
        let SweepInput {
            plan,
            model_key,
            accelerator,
            sweep_file,
            mapping,
            opts,
            keep_mapping_spatial,
            shard,
            jobs,
        } = input;
        if jobs == Some(0) {
            return Err(error(
                "qc::evaluate::option",
                "`--jobs 0` is not valid".into(),
                "give 1 or more threads",
            ));
        }
        let base = read_accelerator(Some(&accelerator))?;
        let sweep: Sweep = read_sweep_yaml(&sweep_file.1, &sweep_file.0, &base)?;
        let map = match &mapping {
            Some((name, text)) => qc_backends::zigzag::read_mapping_yaml(text, name)?,
            None => qc_backends::network::default_mapping(),
        };
        // Swept array dims whose unrolling the mapping file pins: a warning, and by default the
        // unrolling is searched instead.
        let (pinned, map_name) = {
            let prepared = plan.prepared_on(Some(&base));
            let entry_of_layers: Vec<&str> = prepared
                .chosen
                .iter()
                .filter_map(|l| map.entry_for(&l.name, &l.op_type).map(|e| e.name.as_str()))
                .collect();
            let pinned = pinned_by_mapping(&sweep, &base, &map, &entry_of_layers);
            (pinned, mapping.as_ref().map(|m| m.0.clone()).unwrap_or_default())
        };
        let mut notes = Vec::new();
        let mut warnings = Vec::new();
        for p in &pinned {
            let (warning, note) = pinned_warning(p, &map_name, keep_mapping_spatial);
            warnings.push(warning);
            notes.push(note);
        }
        let map = if keep_mapping_spatial || pinned.is_empty() { map } else { unpin(&map, &pinned) };
        // Everything that changes the numbers, not where files are: the mapping and the
        // accelerator by content, the model by name and size, the options as typed.
        let options = SweepOptionsKey::of(&opts, keep_mapping_spatial).text();
        let mapping_text = mapping.map(|m| m.1).unwrap_or_default();
        let fingerprint = fingerprint(&[
            model_key.0.as_bytes(),
            &model_key.1.to_le_bytes(),
            crate::accelerators::accelerator_text(&accelerator)?.as_bytes(),
            sweep_file.1.as_bytes(),
            mapping_text.as_bytes(),
            options.as_bytes(),
        ]);
        let total_designs = sweep.design_indices().len();
        let designs = shard_designs(&sweep, shard);
        Ok(SweepSetup {
            plan,
            base,
            sweep,
            map,
            opts,
            designs,
            total_designs,
            jobs,
            fingerprint,
            notes,
            warnings,
        })
    }

    /// The designs this run evaluates (its shard's, or all).
    pub fn designs(&self) -> &[u128] {
        &self.designs
    }

    /// The sweep's fingerprint, which every line carries (`qc sweep merge` joins lines of one
    /// fingerprint only).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The warnings about the mapping file (swept array dims it pins), handed over once.
    pub fn take_warnings(&mut self) -> Vec<miette::Report> {
        std::mem::take(&mut self.warnings)
    }

    /// Evaluates the designs, handing each batch of finished ones to `on_done`.
    pub fn run(
        &self,
        on_done: &(dyn Fn(&[DesignResult]) -> miette::Result<()> + Sync),
    ) -> miette::Result<Swept> {
        let prepared = self.plan.prepared_on(Some(&self.base));
        let outcome = run_sweep(
            &self.base,
            &self.sweep,
            &self.designs,
            &self.map,
            &prepared,
            &self.opts,
            self.jobs,
            on_done,
        )?;
        let lines: Vec<Value> = outcome.results.iter().map(|d| d.json(&self.fingerprint)).collect();
        Ok(Swept {
            lines,
            seconds: outcome.seconds,
            distinct: outcome.distinct,
            total_designs: self.total_designs,
            notes: self.notes.clone(),
        })
    }
}

/// A sweep's results: a JSON line per design, in design order, and what the summary says.
pub struct Swept {
    /// One line per design, as `qc sweep -o` writes them.
    pub lines: Vec<Value>,
    pub seconds: f64,
    /// Distinct designs evaluated (equal designs are evaluated once).
    pub distinct: usize,
    /// The sweep's designs (all shards).
    pub total_designs: usize,
    /// What the sweep did about a mapping file that pins swept array dims.
    pub notes: Vec<String>,
}

impl Swept {
    fn split(&self) -> (Vec<Point>, Vec<Failed>) {
        let failed = self.lines.iter().cloned().filter_map(Failed::of).collect();
        let points = self.lines.iter().cloned().filter_map(Point::of).collect();
        (points, failed)
    }

    /// The summary `qc sweep` prints: the front by energy, the designs that cannot run the
    /// workload, the time per design.
    pub fn summary(&self, format: TextOrJson) -> String {
        let (points, failed) = self.split();
        summary(
            &points,
            &failed,
            &self.notes,
            &format!("{} of {} designs", points.len() + failed.len(), self.total_designs),
            Some((self.seconds, self.distinct)),
            format,
        )
    }

    /// The HTML page of `qc sweep --html`, titled `title`.
    pub fn html(&self, title: &str) -> String {
        let (points, failed) = self.split();
        html_page(&points, &failed, &self.notes, title)
    }
}

/// The warning for a swept array dim a mapping entry pins, and the note the summary and page
/// carry (what the sweep did about it).
fn pinned_warning(p: &Pinned, map_name: &str, keep: bool) -> (miette::Report, String) {
    let values: Vec<String> = p.values.iter().map(|v| format!("{v}")).collect();
    let units = p.units();
    let dims: Vec<&str> = p.unrolling.iter().map(|(d, _)| d.as_str()).collect();
    let what = format!(
        "the sweep varies `{}` ({}), but mapping entry `{}` of `{map_name}` pins its unrolling (key `spatial_mapping.{}`: {}) for {} layer(s): with the mapping as given, every design unrolls {} by at most {units}, so sizes above {units} leave units idle and smaller ones cut the unrolling",
        p.parameter,
        values.join(", "),
        p.entry,
        p.array_dim,
        p.unrolling_text(),
        p.layers,
        dims.join(" and "),
    );
    let ordering = if p.sized_ordering {
        "; the entry's temporal_ordering gives loop sizes made for the pinned unrolling: where they no longer fit a design's temporal loops, that design cannot run the layer and is listed as such".to_string()
    } else {
        String::new()
    };
    let (warning_help, note) = if keep {
        (
            "--keep-mapping-spatial keeps the mapping as given; drop it to let the sweep search the unrolling".to_string(),
            format!(
                "`{}`: mapping entry `{}` pins spatial_mapping.{} ({}), kept as given (--keep-mapping-spatial)",
                p.parameter,
                p.entry,
                p.array_dim,
                p.unrolling_text()
            ),
        )
    } else {
        (
            format!(
                "the sweep searches the unrolling of {} instead (layer dims {} as the hint), so each design unrolls what its array holds{ordering}; --keep-mapping-spatial keeps the mapping as given",
                p.array_dim,
                dims.join(", ")
            ),
            format!(
                "`{}`: mapping entry `{}` pins spatial_mapping.{} ({}); set aside: each design searches the unrolling of {} (hint {}); --keep-mapping-spatial keeps it",
                p.parameter,
                p.entry,
                p.array_dim,
                p.unrolling_text(),
                p.array_dim,
                dims.join(", ")
            ),
        )
    };
    let warning = miette::miette!(
        severity = miette::Severity::Warning,
        code = "qc::sweep::pinned_by_mapping",
        help = warning_help,
        "{what}"
    );
    (warning, note)
}

/// Most designs that cannot run the workload the text summary lists (all are in the JSON
/// summary, the page and the lines).
const LISTED_INFEASIBLE: usize = 20;

/// The summary: the notes, the front (by energy), the designs that cannot run the workload with
/// their reasons, and with `timing` (seconds, distinct designs evaluated) the time per design.
fn summary(
    points: &[Point],
    failed: &[Failed],
    notes: &[String],
    what: &str,
    timing: Option<(f64, usize)>,
    format: TextOrJson,
) -> String {
    let infeasible = failed.len();
    let evaluated = (points.len() + infeasible).max(1) as f64;
    let coords: Vec<(f64, f64, Option<f64>)> = points.iter().map(|p| (p.energy, p.latency, p.area)).collect();
    let mut front = pareto_front(&coords);
    front.sort_by(|&a, &b| points[a].energy.total_cmp(&points[b].energy));
    match format {
        TextOrJson::Json => {
            let v = json!({
                "schema_version": 1,
                "designs": points.len() + infeasible,
                "infeasible": infeasible,
                "seconds": timing.map(|t| t.0),
                "distinct_designs_evaluated": timing.map(|t| t.1),
                "seconds_per_design": timing.map(|t| t.0 / evaluated),
                "front": front.iter().map(|&i| &points[i].line).collect::<Vec<_>>(),
                "infeasible_designs": failed
                    .iter()
                    .map(|f| json!({
                        "design": f.line["design"],
                        "parameters": f.line["parameters"],
                        "error": f.line["error"],
                    }))
                    .collect::<Vec<_>>(),
                "notes": notes,
            });
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        }
        TextOrJson::Text => {
            let mut s = String::new();
            let _ = write!(s, "{what} evaluated");
            if let Some((secs, distinct)) = timing {
                let _ =
                    write!(s, " in {secs:.2} s ({:.3} s per design; {distinct} distinct)", secs / evaluated);
            }
            if infeasible > 0 {
                let _ = write!(s, "; {infeasible} cannot run the workload (listed below)");
            }
            for n in notes {
                let _ = write!(s, "\nnote: {n}");
            }
            let with_area = points.iter().any(|p| p.area.is_some());
            let _ = writeln!(
                s,
                "\nPareto front ({} designs, energy vs latency{}):",
                front.len(),
                if with_area { " vs area" } else { "" }
            );
            for &i in &front {
                let p = &points[i];
                let params: Vec<String> = p.line["parameters"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                // An IMC design's latency is compared in ns (its clock period is the design's).
                let unit = if p.line["latency_ns"].is_f64() { "ns" } else { "cc" };
                let _ = write!(
                    s,
                    "  design {:>6}  energy {:>18} pJ  latency {:>12} {unit}",
                    p.design,
                    qc_backends::report::thousands(p.energy),
                    qc_backends::report::thousands(p.latency)
                );
                if let Some(a) = p.area {
                    let _ = write!(s, "  area {a:.3}");
                }
                let _ = writeln!(s, "  {}", params.join(" "));
            }
            if infeasible > 0 {
                let _ = writeln!(s, "Designs that cannot run the workload ({infeasible}):");
                for f in failed.iter().take(LISTED_INFEASIBLE) {
                    let _ =
                        writeln!(s, "  design {:>6}  {}  {}", f.design, parameters(&f.line, " "), f.reason());
                }
                if infeasible > LISTED_INFEASIBLE {
                    let _ = writeln!(
                        s,
                        "  ... and {} more (--format json, the page and their lines list them all)",
                        infeasible - LISTED_INFEASIBLE
                    );
                }
            }
            s
        }
    }
}

fn html_page(points: &[Point], failed: &[Failed], notes: &[String], title: &str) -> String {
    let coords: Vec<(f64, f64, Option<f64>)> = points.iter().map(|p| (p.energy, p.latency, p.area)).collect();
    let front = pareto_front(&coords);
    let labelled: Vec<qc_backends::report::SweepPoint> = points
        .iter()
        .map(|p| qc_backends::report::SweepPoint {
            label: format!("design {}: {}", p.design, parameters(&p.line, ", ")),
            energy: p.energy,
            latency: p.latency,
            area: p.area,
        })
        .collect();
    let infeasible: Vec<qc_backends::report::SweepInfeasible> = failed
        .iter()
        .map(|f| qc_backends::report::SweepInfeasible {
            label: format!("design {}: {}", f.design, parameters(&f.line, ", ")),
            reason: f.reason().to_string(),
        })
        .collect();
    qc_backends::report::sweep_html(title, &labelled, &front, &infeasible, notes)
}

/// Checks that a line of file `f` (line `n`, 0-based) comes from the sweep of the lines before.
fn check_sweep(seen: &mut Option<String>, fp: String, f: &std::path::Path, n: usize) -> miette::Result<()> {
    match seen {
        None => *seen = Some(fp),
        Some(s) if *s != fp => {
            return Err(error(
                "qc::sweep::mismatch",
                format!("`{}` line {}: a design of another sweep ({fp}, not {s})", f.display(), n + 1),
                "merge the shards of one sweep: same model, accelerator, sweep file, mapping and options",
            ));
        }
        Some(_) => {}
    }
    Ok(())
}

fn merge(m: &MergeArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    let mut warnings = Vec::new();
    let mut points: Vec<Point> = Vec::new();
    let mut sweep_fp: Option<String> = None;
    // Designs that cannot run the workload, with their lines as written.
    let mut failed: Vec<Failed> = Vec::new();
    for f in &m.files {
        let text = read(f)?;
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str::<Value>(line).ok();
            let failure = value.as_ref().and_then(|v| {
                let fp = v["sweep"].as_str()?.to_string();
                let mut f = Failed::of(v.clone())?;
                f.text = line.to_string();
                Some((f, fp))
            });
            let parsed = value.and_then(Point::of).map(|mut p| {
                p.text = line.to_string();
                p
            });
            if parsed.is_none()
                && let Some((failure, fp)) = failure
            {
                check_sweep(&mut sweep_fp, fp, f, n)?;
                failed.push(failure);
                continue;
            }
            let Some(p) = parsed else {
                let last = n + 1 == lines.len() && !text.ends_with('\n');
                if last {
                    // An interrupted sweep may leave its last line unfinished.
                    warnings.push(miette::miette!(
                        severity = miette::Severity::Warning,
                        code = "qc::sweep::partial_line",
                        help = "the sweep writing it was interrupted; the designs before it are kept",
                        "`{}` line {}: an unfinished line, skipped",
                        f.display(),
                        n + 1
                    ));
                    continue;
                }
                return Err(error(
                    "qc::sweep::line",
                    format!("`{}` line {}: not a design line of `qc sweep`", f.display(), n + 1),
                    "merge the .jsonl files `qc sweep -o` wrote",
                ));
            };
            check_sweep(&mut sweep_fp, p.line["sweep"].as_str().unwrap_or_default().to_string(), f, n)?;
            points.push(p);
        }
    }
    points.sort_by_key(|p| p.design);
    failed.sort_by_key(|f| f.design);
    failed.dedup_by_key(|f| f.design);
    let before = points.len();
    points.dedup_by_key(|p| p.design);
    if points.len() < before {
        warnings.push(miette::miette!(
            severity = miette::Severity::Warning,
            code = "qc::sweep::duplicate",
            help = "each design was kept once",
            "{} design(s) appear in more than one line",
            before - points.len()
        ));
    }
    if let Some(o) = &m.output {
        // The lines as the shards wrote them, in design order.
        let mut all: Vec<(u128, &str)> = points.iter().map(|p| (p.design, p.text.as_str())).collect();
        all.extend(failed.iter().map(|f| (f.design, f.text.as_str())));
        all.sort_by_key(|x| x.0);
        let mut text = String::new();
        for (_, line) in all {
            let _ = writeln!(text, "{line}");
        }
        crate::write::write_atomically(o, text.as_bytes())
            .map_err(|e| error("qc::io::write", format!("cannot write `{}`: {e}", o.display()), ""))?;
    }
    if let Some(h) = &m.html {
        let page = html_page(&points, &failed, &[], &format!("{} merged sweep files", m.files.len()));
        crate::write::write_atomically(h, page.as_bytes()).map_err(|e| {
            error("qc::io::write", format!("cannot write `{}`: {e}", h.display()), "check the path")
        })?;
    }
    let text = summary(
        &points,
        &failed,
        &[],
        &format!("{} designs from {} file(s)", points.len() + failed.len(), m.files.len()),
        None,
        m.format,
    );
    out.write_all(text.as_bytes()).map_err(|e| error("qc::io::write", format!("cannot write: {e}"), ""))?;
    Ok(warnings)
}
