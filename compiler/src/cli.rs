//! The `qc` command line: argument parsing and the driver for each subcommand.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::formats::TextOrJson;
use crate::inspect;
use crate::load::{self, LoadOptions};

/// qc: a compiler-style toolchain for quantized neural networks on deep-learning accelerators.
#[derive(Debug, Parser)]
#[command(name = "qc", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print no warnings and no progress bar: only results, errors and a one-line summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Render at most N kinds of warning in full (identical warnings are always grouped); the
    /// others get one line each. JSON outputs keep every finding.
    #[arg(long, global = true, value_name = "N", default_value_t = 6)]
    pub max_diagnostics: usize,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarise a model: IR version, producer, opsets, inputs and outputs, op histogram,
    /// parameters, quantization styles, external data.
    Inspect(InspectArgs),
    /// Run a pass pipeline over a model and write the result (`--passes`, `--list-passes`).
    Optimize(crate::optimize::OptimizeArgs),
    /// Execute a model with qc's reference evaluator (`--input NAME=FILE.npy`, `--output-dir`).
    Run(crate::run::RunArgs),
    /// Inference cost as qonnx-inference-cost counts it: MACs by datatype pair, bit operations,
    /// weight and output memory (`--cost-breakdown`, `--format json`).
    Cost(crate::cost::CostArgs),
    /// Convert QONNX Quant to QuantizeLinear -> [Clip] -> DequantizeLinear (`--to qcdq`) or back
    /// (`--to qonnx`), or to qonnx's channels-last layout (`--to channels-last`), checked with the
    /// reference evaluator before the output is written.
    Convert(crate::convert::ConvertArgs),
    /// Check a model against a DLA target's operator limits and fixed-point scale rules, and
    /// place each op on the DLA or the CPU (`--target access-dla|PATH`, `--format json`).
    Check(crate::check::CheckArgs),
    /// Lower every compute layer to a loop nest (Conv, Gemm, MatMul, pooling, element-wise, and
    /// their quantized forms): `--format text|json|zigzag-yaml`, `--default-precision W,I,O,PSUM`.
    Lower(crate::lower::LowerArgs),
    /// Energy and latency of every layer on an accelerator with ZigZag's cost model
    /// (`--accelerator NAME|PATH` (default: the built-in tpu_like), `--mapping MAP.yaml
    /// --fixed-mapping`, `--format json`).
    Evaluate(crate::evaluate::EvaluateArgs),
    /// Evaluate a workload on every design of an accelerator parameter sweep and report the
    /// Pareto front (`merge` joins the shards of a sweep).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Sweep(crate::sweep::SweepArgs),
    /// List the built-in DLA targets, or print one's rules as Markdown (`list`, `show NAME`).
    Targets(crate::targets::TargetsArgs),
    /// List the built-in accelerators, or print one's memory hierarchy (`list`, `show
    /// NAME|PATH`, `--format markdown|yaml|json`).
    Accelerators(crate::accelerators::AcceleratorsArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The ONNX or QONNX model.
    pub model: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
    /// Read the file into memory instead of memory-mapping it (for network filesystems).
    #[arg(long)]
    pub no_mmap: bool,
    /// Also list every value's quantization: QONNX datatype, scale, zero point and where it came
    /// from (after infer-shapes, absorb-quant and infer-datatypes).
    #[arg(long)]
    pub quant: bool,
    #[command(flatten)]
    pub shapes: crate::input_shapes::InputShapeArgs,
}

/// How a command ended, for the exit code (0 success, 1 violations found, 2 bad input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Violations,
}

/// Runs `qc` with `args` (the first is the program name): parses, runs, renders diagnostics to
/// `err`, and returns the exit code (0 success, 1 violations found, 2 bad input or usage).
/// `main` is this function on the process's arguments and streams.
pub fn main_with(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
                return 2;
            }
            let _ = out.write_all(text.as_bytes());
            return 0;
        }
    };
    let outcome = run(cli, out, err, color);
    match outcome {
        Ok(Outcome::Success) => 0,
        Ok(Outcome::Violations) => 1,
        Err(report) => {
            let _ = err.write_all(render(&report, color).as_bytes());
            2
        }
    }
}

/// The textual IR for `--print-ir-after` (summary form: large constants abbreviated).
fn print_ir(m: &qc_ir::Model) -> String {
    qc_ir::text::print_model(m, qc_ir::text::Form::Summary)
}

/// Renders a diagnostic as miette's graphical report (unicode, colour on request, 100 columns).
pub fn render(report: &miette::Report, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut s = String::new();
    if handler.render_report(&mut s, report.as_ref()).is_err() {
        s = format!("{report}\n");
    }
    s
}

/// Runs a parsed command, writing results to `out`, and warnings and instruments to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write, color: bool) -> miette::Result<Outcome> {
    let limits = crate::report_diagnostics::Limits { max_full: cli.max_diagnostics, quiet: cli.quiet };
    let collected = std::cell::RefCell::new(Vec::new());
    let result = run_command(cli.command, limits, out, err, color, &|w| collected.borrow_mut().push(w));
    let text = crate::report_diagnostics::render_all(collected.into_inner(), limits, &|r| render(r, color));
    let _ = err.write_all(text.as_bytes());
    result
}

/// Runs one command; its warnings go to `push`, to be grouped and rendered by [`run`].
fn run_command(
    command: Command,
    limits: crate::report_diagnostics::Limits,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
    push: &dyn Fn(miette::Report),
) -> miette::Result<Outcome> {
    let warn = push;
    let quiet = limits.quiet;
    match command {
        Command::Run(args) => {
            crate::run::run(&args, out)?;
            Ok(Outcome::Success)
        }
        Command::Lower(args) => {
            for w in crate::lower::run(&args, out)? {
                warn(w);
            }
            Ok(Outcome::Success)
        }
        Command::Evaluate(mut args) => {
            args.quiet |= quiet;
            let (warnings, all_fit) = crate::evaluate::run(&args, out)?;
            for w in warnings {
                warn(w);
            }
            Ok(if all_fit { Outcome::Success } else { Outcome::Violations })
        }
        Command::Sweep(mut args) => {
            args.run.quiet |= quiet;
            for w in crate::sweep::run(&args, out)? {
                warn(w);
            }
            Ok(Outcome::Success)
        }
        Command::Cost(args) => {
            for w in crate::cost::run(&args, out)? {
                warn(w);
            }
            Ok(Outcome::Success)
        }
        Command::Check(mut args) => {
            args.quiet |= quiet;
            args.max_diagnostics = limits.max_full;
            let (ok, warnings) = crate::check::run(&args, out, color)?;
            for w in warnings {
                warn(w);
            }
            Ok(if ok { Outcome::Success } else { Outcome::Violations })
        }
        Command::Targets(args) => {
            crate::targets::run(&args, out)?;
            Ok(Outcome::Success)
        }
        Command::Accelerators(args) => {
            crate::accelerators::run(&args, out)?;
            Ok(Outcome::Success)
        }
        Command::Convert(args) => {
            for w in crate::convert::run(&args, out)? {
                warn(w);
            }
            Ok(Outcome::Success)
        }
        Command::Optimize(args) => {
            let mut instruments = Vec::new();
            let result = crate::optimize::run(&args, out, &mut instruments, print_ir);
            let _ = err.write_all(&instruments);
            let warnings = result?;
            for w in warnings {
                warn(miette::Report::new(w));
            }
            Ok(Outcome::Success)
        }
        Command::Inspect(args) => {
            let opts = LoadOptions { mmap: !args.no_mmap };
            let mut loaded = load::load(&args.model, opts)?;
            for w in args.shapes.unanswered(&loaded.warnings) {
                warn(w);
            }
            let assumed = args.shapes.apply(&mut loaded.model)?;
            if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
                warn(miette::miette!(
                    severity = miette::Severity::Advice,
                    code = "qc::input_shape::assumed",
                    "{line}"
                ));
            }
            let file = args.model.display().to_string();
            let report = inspect::report(&loaded, &file, args.quant)?;
            let text = match args.format {
                TextOrJson::Text => {
                    let mut t = inspect::render_text(&report);
                    if let Some(q) = &report.quant_values {
                        t.push_str(&inspect::render_quant(q));
                    }
                    t
                }
                TextOrJson::Json => {
                    let mut s = serde_json::to_string_pretty(&report).map_err(|e| miette::miette!("{e}"))?;
                    s.push('\n');
                    s
                }
            };
            out.write_all(text.as_bytes())
                .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write output: {e}"))?;
            Ok(Outcome::Success)
        }
    }
}
