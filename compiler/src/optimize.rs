//! `qc optimize`: load a model, run a pass pipeline, write the result.
//!
//! It is the one command that runs any pipeline (`--passes`), with the pass manager's
//! instruments: `--print-ir-after`, `--time-passes`, `--stop-after`. Convenience flags are
//! documented spellings of pass options (see `spec/passes.md`). The output is written
//! atomically, and only when every pass succeeded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use qc_ir::Model;
use qc_passes::PassWarning;
use qc_passes::Pipeline;
use qc_passes::manager::{ManagerOptions, PassManager};
use qc_passes::pipeline::Item;
use qc_passes::registry::{DEFAULT_PIPELINE, REGISTRY};

use crate::load::{self, LoadOptions};

/// Arguments of `qc optimize`.
#[derive(Debug, Default, clap::Args)]
pub struct OptimizeArgs {
    /// The ONNX or QONNX model.
    #[arg(required_unless_present_any = ["list_passes", "print_pipeline"])]
    pub model: Option<PathBuf>,
    /// Where to write the optimized model.
    #[arg(short, long, required_unless_present_any = ["list_passes", "print_pipeline"])]
    pub output: Option<PathBuf>,
    /// The pipeline to run, e.g. `eliminate-dead` (default: `--print-pipeline` shows it).
    #[arg(long, value_name = "PIPELINE")]
    pub passes: Option<String>,
    /// Print the pipeline that would run, in canonical form, and exit.
    #[arg(long)]
    pub print_pipeline: bool,
    /// List every pass with its options, and exit.
    #[arg(long)]
    pub list_passes: bool,
    /// Print the IR to standard error after the named pass (or after every pass: `all`).
    #[arg(long, value_name = "PASS|all")]
    pub print_ir_after: Option<String>,
    /// Print a table of time and statistics per pass to standard error.
    #[arg(long)]
    pub time_passes: bool,
    /// Stop the pipeline after the first run of this pass (the output is the model at that point).
    #[arg(long, value_name = "PASS")]
    pub stop_after: Option<String>,
    /// Verify the IR after every pass (always on in debug builds).
    #[arg(long)]
    pub verify_each: bool,
    /// Also fold quantizers with constant inputs (weights): the spelling of
    /// `fold-constants{quant=true}` for every `fold-constants` in the pipeline.
    #[arg(long)]
    pub fold_quant_weights: bool,
    #[command(flatten)]
    pub shapes: crate::input_shapes::InputShapeArgs,
    #[command(flatten)]
    pub shape_errors: crate::shape_errors::ShapeErrorArgs,
    /// Remove every doc string (model, graphs, nodes, values, tensors): the spelling of a
    /// `clear-descriptions` pass at the start of the pipeline.
    #[arg(long)]
    pub clear_descriptions: bool,
    /// Replace AveragePool and GlobalAveragePool by a depthwise Conv of `1/window` weights where
    /// the two are equal (Kneron's option): the `replace-avgpool-with-conv` pass, run in the
    /// fixpoint before `fuse-pad-into-conv`.
    #[arg(long)]
    pub replace_avgpool_with_conv: bool,
    /// Give each Conv, Gemm, MatMul, ... its own copy of a weight several of them share
    /// (Kneron's option): the `duplicate-shared-weights` pass, run once after the fixpoint.
    #[arg(long)]
    pub duplicate_shared_weights: bool,
    /// Leave the products of one activation by constant weights unfused (Kneron's option):
    /// drops every `fuse-qkv` from the pipeline, which the default pipeline runs.
    #[arg(long)]
    pub skip_fuse_qkv: bool,
    /// Drop this pass from the pipeline wherever it occurs, inside fixpoints too (Kneron's
    /// `skipped_optimizers`); repeatable. A pass the pipeline does not run is a warning.
    #[arg(long, value_name = "PASS")]
    pub skip: Vec<String>,
    /// Forget every declared shape but those of the graph inputs and outputs, and infer them
    /// again (Kneron's option): a `clear-shapes` pass at the start of the pipeline.
    #[arg(long)]
    pub clear_shapes: bool,
    /// Turn float16 initializers and Constants into float32 and remove the Casts to float32
    /// that become identities (Kneron's option): the `convert-f16` pass, before the first
    /// `infer-shapes`.
    #[arg(long)]
    pub convert_f16: bool,
    /// Rewrite GlobalAveragePool as `reduce-mean` (the default) or as an `average-pool` with
    /// the whole feature map as its kernel (Kneron's option): the `defuse-gaps` pass, after the
    /// first `infer-shapes`.
    #[arg(long, value_name = "FORM", num_args = 0..=1, require_equals = true, default_missing_value = "reduce-mean")]
    pub defuse_gaps: Option<String>,
    /// Rewrite a dilated Conv as a Conv without dilation whose kernel holds zeros between the
    /// taps (Kneron's option): the `replace-dilated-conv` pass, in the fixpoint before
    /// `fuse-pad-into-conv`.
    #[arg(long)]
    pub replace_dilated_conv: bool,
    /// Split MatMuls and Gemms whose products exceed the channel limit of a target's fully
    /// connected layer (Kneron's option; the default target is `access-dla`): the `opt-matmul`
    /// pass at the end of the pipeline.
    #[arg(long, value_name = "TARGET", num_args = 0..=1, require_equals = true, default_missing_value = "access-dla")]
    pub opt_matmul: Option<String>,
    /// Read the file into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
}

/// Sets option `key` of every pass called `pass`, in fixpoints too.
fn set(items: &mut [Item], pass: &str, key: &str, value: &str) {
    for item in items {
        match item {
            Item::Pass { name, options } if name == pass => {
                options.retain(|(k, _)| k != key);
                options.push((key.into(), value.into()));
            }
            Item::Fixpoint { items, .. } => set(items, pass, key, value),
            Item::Pass { .. } => {}
        }
    }
}

/// Applies the convenience flags, which are spellings of pass options, to the pipeline.
fn apply_flags(pipeline: &mut Pipeline, args: &OptimizeArgs) {
    if args.fold_quant_weights {
        set(&mut pipeline.items, "fold-constants", "quant", "true");
    }
    /// Puts `new` before the first pass called `before`, searching fixpoints too; leaves it in
    /// `new` when there is none.
    fn insert_before(items: &mut Vec<Item>, before: &str, new: &mut Option<Item>) {
        let mut i = 0;
        while i < items.len() && new.is_some() {
            match &mut items[i] {
                Item::Pass { name, .. } if name == before => items.insert(i, new.take().expect("checked")),
                Item::Fixpoint { items: inner, .. } => insert_before(inner, before, new),
                Item::Pass { .. } => {}
            }
            i += 1;
        }
    }
    let pass = |name: &str| Item::Pass { name: name.into(), options: Vec::new() };
    if args.clear_descriptions {
        pipeline.items.insert(0, pass("clear-descriptions"));
    }
    if args.replace_avgpool_with_conv {
        let mut new = Some(pass("replace-avgpool-with-conv"));
        insert_before(&mut pipeline.items, "fuse-pad-into-conv", &mut new);
        pipeline.items.extend(new);
    }
    if args.duplicate_shared_weights {
        pipeline.items.push(pass("duplicate-shared-weights"));
    }
    if args.skip_fuse_qkv {
        remove_pass(&mut pipeline.items, "fuse-qkv");
    }
    apply_kneron_flags(pipeline, args, &pass, insert_before);
}

/// The options of `opt-matmul` for `--opt-matmul TARGET`: the channel limit of the target's
/// fully connected layer (the entry that covers `Gemm`), which bounds both K and N.
fn opt_matmul_options(target: &str) -> miette::Result<Vec<(String, String)>> {
    let t = crate::targets::resolve(target).map_err(|e| *e)?;
    let gemm = qc_ir::Op::new("Gemm", None);
    let max = t.entries_for(&gemm).iter().find_map(|e| e.limits.channels.as_ref().and_then(|c| c.max));
    let Some(max) = max else {
        return Err(miette::miette!(
            code = "qc::optimize::no_matmul_limit",
            help = "give the limit directly: --passes with opt-matmul{max-k=N,max-n=N}",
            "target `{}` gives no channel limit for a fully connected layer (Gemm), which --opt-matmul needs",
            t.name
        ));
    };
    Ok(vec![("max-k".into(), max.to_string()), ("max-n".into(), max.to_string())])
}

/// Kneron's `clear_shapes`, `convert_f16`, `defuse_gaps`, `replace_dilated_conv` and
/// `opt_matmul` as passes in the pipeline (see `spec/passes.md`); `--skip` is applied after.
fn apply_kneron_flags(
    pipeline: &mut Pipeline,
    args: &OptimizeArgs,
    pass: &dyn Fn(&str) -> Item,
    insert_before: fn(&mut Vec<Item>, &str, &mut Option<Item>),
) {
    if args.clear_shapes {
        if !pipeline.pass_names().contains(&"infer-shapes") {
            pipeline.items.insert(0, pass("infer-shapes"));
        }
        pipeline.items.insert(0, pass("clear-shapes"));
    }
    if args.convert_f16 {
        let mut new = Some(pass("convert-f16"));
        insert_before(&mut pipeline.items, "infer-shapes", &mut new);
        if let Some(new) = new {
            pipeline.items.insert(0, new);
        }
    }
    if let Some(form) = &args.defuse_gaps {
        let new = Item::Pass { name: "defuse-gaps".into(), options: vec![("form".into(), form.clone())] };
        let at = pipeline
            .items
            .iter()
            .position(|i| matches!(i, Item::Pass { name, .. } if name == "infer-shapes"));
        match at {
            Some(i) => pipeline.items.insert(i + 1, new),
            None => pipeline.items.push(new),
        }
    }
    if args.replace_dilated_conv {
        let mut new = Some(pass("replace-dilated-conv"));
        insert_before(&mut pipeline.items, "fuse-pad-into-conv", &mut new);
        pipeline.items.extend(new);
    }
}

/// Removes every run of pass `name` from `items`, inside fixpoints too (a fixpoint left empty
/// goes as well); returns how many runs were removed.
fn remove_pass(items: &mut Vec<Item>, name: &str) -> usize {
    let mut removed = 0;
    items.retain_mut(|item| match item {
        Item::Pass { name: n, .. } if n == name => {
            removed += 1;
            false
        }
        Item::Fixpoint { items, .. } => {
            removed += remove_pass(items, name);
            !items.is_empty()
        }
        Item::Pass { .. } => true,
    });
    removed
}

/// Applies `--skip`: an unknown pass name is an error, a pass the pipeline does not run a
/// warning.
fn apply_skip(pipeline: &mut Pipeline, skip: &[String]) -> miette::Result<Vec<PassWarning>> {
    let mut warnings = Vec::new();
    for name in skip {
        if qc_passes::registry::lookup(name).is_none() {
            return Err(qc_passes::manager::ManagerError::unknown_pass(name).into());
        }
        let before = pipeline.to_string();
        if remove_pass(&mut pipeline.items, name) == 0 {
            warnings.push(PassWarning {
                pass: "--skip",
                code: "qc::pipeline::skip_not_in_pipeline".into(),
                message: format!("`{name}` is not a pass of this pipeline, so there is nothing to skip"),
                help: Some(format!("the pipeline is: {before}")),
            });
        }
    }
    Ok(warnings)
}

pub(crate) fn histogram(m: &Model) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for (_, op) in m.graph.ops() {
        let key = if op.domain().is_empty() {
            op.op_type().to_string()
        } else {
            format!("{}:{}", op.domain(), op.op_type())
        };
        *h.entry(key).or_default() += 1;
    }
    h
}

/// The pipeline `args` asks for: `--passes` (or the default pipeline) with the convenience
/// flags (`--fold-quant-weights`, `--clear-descriptions`, ...) applied.
pub fn pipeline(args: &OptimizeArgs) -> miette::Result<Pipeline> {
    Ok(pipeline_with_warnings(args)?.0)
}

/// [`pipeline`], with the warnings of `--skip` (a pass the pipeline does not run).
pub fn pipeline_with_warnings(args: &OptimizeArgs) -> miette::Result<(Pipeline, Vec<PassWarning>)> {
    let text = args.passes.as_deref().unwrap_or(DEFAULT_PIPELINE);
    let mut pipeline = Pipeline::parse(text)?;
    apply_flags(&mut pipeline, args);
    if let Some(target) = &args.opt_matmul {
        let options = opt_matmul_options(target)?;
        // fuse-qkv must not join products past the limit opt-matmul splits them at, or each
        // run would undo the other's work.
        if let Some((_, n)) = options.iter().find(|(k, _)| k == "max-n") {
            set(&mut pipeline.items, "fuse-qkv", "max-n", n);
        }
        pipeline.items.push(Item::Pass { name: "opt-matmul".into(), options });
    }
    let warnings = apply_skip(&mut pipeline, &args.skip)?;
    Ok((pipeline, warnings))
}

/// The pass manager for `pipeline` with the options of `args` (`--verify-each`, always on in
/// debug builds, and `--stop-after`).
pub fn manager(pipeline: Pipeline, args: &OptimizeArgs) -> miette::Result<PassManager> {
    let options = ManagerOptions {
        verify_each: args.verify_each || cfg!(debug_assertions),
        stop_after: args.stop_after.clone(),
    };
    Ok(PassManager::new(pipeline, options)?)
}

/// Runs `manager`'s pipeline over an in-memory model (`after` sees the model after each pass).
/// A shape contradiction is an error unless `shape_errors` allows it. Raises the IR version
/// where the result needs it; returns the run's report and that change (`from`, `to`).
pub fn optimize_model(
    manager: &mut PassManager,
    model: &mut Model,
    shape_errors: &crate::shape_errors::ShapeErrorArgs,
    after: &mut dyn FnMut(&str, &Model),
) -> miette::Result<(qc_passes::RunReport, Option<(i64, i64)>)> {
    let report = manager.run(model, after)?;
    shape_errors.refuse(&report.warnings)?;
    // Folding and `remove-static-inputs` leave initializers that are not graph inputs, which IR
    // versions before 4 do not allow.
    let ir_raised = qc_passes::opset::raise_ir_for_initializers(model);
    Ok((report, ir_raised))
}

/// Text printed after `--print-ir-after`; the textual IR printer is plugged in here.
pub type IrPrinter = fn(&Model) -> String;

/// Runs `qc optimize`. The summary goes to `out`, instruments (`--print-ir-after`,
/// `--time-passes`) to `err`; the passes' warnings are returned for the caller to render.
pub fn run(
    args: &OptimizeArgs,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
    print_ir: IrPrinter,
) -> miette::Result<Vec<PassWarning>> {
    let io = |e: std::io::Error| miette::miette!(code = "qc::io::write", "cannot write output: {e}");
    if args.list_passes {
        let mut s = String::new();
        for p in REGISTRY {
            let _ = writeln!(s, "{:<24} {}", p.name, p.summary);
            for (k, doc) in p.options {
                let _ = writeln!(s, "{:<24}   {{{k}=...}}  {doc}", "");
            }
        }
        out.write_all(s.as_bytes()).map_err(io)?;
        return Ok(Vec::new());
    }
    let (pipeline, skip_warnings) = pipeline_with_warnings(args)?;
    if let Some(p) = args.print_ir_after.as_deref().filter(|p| *p != "all") {
        PassManager::check_in_pipeline(&pipeline, p, "--print-ir-after")?;
    }
    let mut manager = manager(pipeline, args)?;
    if args.print_pipeline {
        writeln!(out, "{}", manager.pipeline()).map_err(io)?;
        return Ok(skip_warnings);
    }
    let (Some(model_path), Some(output)) = (&args.model, &args.output) else {
        return Err(miette::miette!(code = "qc::cli::usage", "qc optimize needs MODEL and -o OUTPUT"));
    };
    let loaded = load::load(model_path, LoadOptions { mmap: !args.no_mmap })?;
    let mut model = loaded.model;
    let assumed = args.shapes.apply(&mut model)?;
    let before = histogram(&model);
    let nodes_before = model.graph.op_count();
    let print_after = args.print_ir_after.clone();
    let mut dumps = String::new();
    let mut after = |pass: &str, m: &Model| {
        if print_after.as_deref().is_some_and(|p| p == "all" || p == pass) {
            let _ = writeln!(dumps, "// ----- IR after {pass} -----\n{}", print_ir(m));
        }
    };
    let result = optimize_model(&mut manager, &mut model, &args.shape_errors, &mut after);
    err.write_all(dumps.as_bytes()).map_err(io)?;
    let (report, ir_raised) = result?;
    let layout =
        crate::write::write_model(&mut model, output, model_path.parent(), crate::write::MAX_INLINE_BYTES)
            .map_err(|e| {
                miette::miette!(
                    code = "qc::io::write",
                    help = "check that the output's folder exists and is writable",
                    "cannot write `{}`: {e}",
                    output.display()
                )
            })?;
    if args.time_passes {
        err.write_all(report.timing_table().as_bytes()).map_err(io)?;
    }
    let after_hist = histogram(&model);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} -> {}: {} -> {} nodes ({})",
        model_path.display(),
        output.display(),
        nodes_before,
        model.graph.op_count(),
        manager.pipeline()
    );
    let mut keys: Vec<&String> = before.keys().chain(after_hist.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (b, a) = (before.get(k).copied().unwrap_or(0), after_hist.get(k).copied().unwrap_or(0));
        if b != a {
            let _ = writeln!(s, "  {k:<24} {b:>6} -> {a}");
        }
    }
    if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
        let _ = writeln!(s, "{line}");
    }
    if let Some((from, to)) = ir_raised {
        let _ =
            writeln!(s, "IR version raised {from} -> {to}: initializers that are not graph inputs need IR 4");
    }
    if let Some(line) = layout.summary() {
        let _ = writeln!(s, "{line}");
    }
    s.push_str(&report.stats_text());
    if let Some(p) = &report.stopped_after {
        let _ = writeln!(s, "stopped after {p} (--stop-after)");
    }
    out.write_all(s.as_bytes()).map_err(io)?;
    let mut warnings = skip_warnings;
    warnings.extend(report.warnings);
    Ok(warnings)
}
