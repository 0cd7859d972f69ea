//! `qc lower MODEL|WORKLOAD.yaml [--format text|json|zigzag-yaml] [--default-precision W,I,O,PSUM]`:
//! every compute layer as a loop nest.
//!
//! An ONNX model goes through [`LOWER_PIPELINE`] (shapes, quantization, then `lower-to-loops`);
//! a ZigZag manual-workload YAML (`.yaml`/`.yml`) is read as it is. The loop nests are printed as
//! the textual loop-nest IR (`spec/ir.md`), as JSON (`spec/cli.md`), or as ZigZag's workload
//! YAML (`spec/zigzag.md`), which ZigZag runs, with each layer named after its ONNX node.

use std::fmt::Write as _;
use std::path::PathBuf;

use qc_ir::{Source, Workload};
use qc_passes::manager::{ManagerOptions, PassManager};
use qc_passes::pipeline::Pipeline;
use qc_passes::registry::DEFAULT_PIPELINE;

use crate::formats::LowerFormat;
use crate::load::{self, LoadOptions};

/// The passes `qc lower` runs on an ONNX model; `lower-to-loops` gets `--default-precision`.
pub const LOWER_PIPELINE: &str =
    "remove-static-inputs,infer-shapes,absorb-quant,propagate-scales,lower-to-loops";

/// A ZigZag workload that reads but is not well formed: every problem the loop-nest verifier
/// found, each with its code and layer.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`{file}` is not a well-formed workload: {count} problem(s)")]
#[diagnostic(
    code(qc::zigzag::workload_invalid),
    help("each problem below names its layer; fix them in the workload file")
)]
pub struct InvalidWorkload {
    file: String,
    count: usize,
    #[related]
    problems: Vec<qc_ir::LoopError>,
}

/// Arguments of `qc lower`.
#[derive(Debug, clap::Args)]
pub struct LowerArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LowerFormat::Text)]
    pub format: LowerFormat,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// The workload arguments `qc lower` and `qc evaluate` share.
#[derive(Debug, clap::Args)]
pub struct WorkloadArgs {
    /// The ONNX model, or a ZigZag manual-workload YAML (`.yaml`, `.yml`).
    #[arg(value_name = "MODEL|WORKLOAD.yaml")]
    pub model: PathBuf,
    /// Bits of operands without quantization, replacing ZigZag's defaults (8,8,8,16): weights,
    /// activations, final outputs and partial sums, as `W,I,O,PSUM`.
    #[arg(long, value_name = "W,I,O,PSUM")]
    pub default_precision: Option<String>,
    /// Read the model into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
    /// Partial-sum bits of quantized layers: `zigzag` (twice the activation bits, ZigZag's
    /// convention and the default), `exact` (bit growth: the width that holds every sum), or a
    /// number of bits for every layer that reduces.
    #[arg(long, value_name = "zigzag|exact|BITS")]
    pub psum_bits: Option<String>,
    #[command(flatten)]
    pub shapes: crate::input_shapes::InputShapeArgs,
    #[command(flatten)]
    pub shape_errors: crate::shape_errors::ShapeErrorArgs,
}

impl WorkloadArgs {
    /// Whether the workload is a ZigZag YAML file (by its extension).
    pub fn is_yaml(&self) -> bool {
        self.model.extension().is_some_and(|e| e == "yaml" || e == "yml")
    }
}

/// A bad `--default-precision`.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`--default-precision {given}` is not four bit counts W,I,O,PSUM")]
#[diagnostic(
    code(qc::lower::default_precision),
    help("give the bits of weights, activations, final outputs and partial sums, each 1 to 64: 8,8,8,16")
)]
pub struct PrecisionError {
    given: String,
}

/// The `lower-to-loops` options for `--default-precision`.
fn precision_options(spec: &str) -> Result<String, PrecisionError> {
    let bad = || PrecisionError { given: spec.to_string() };
    let bits: Vec<u32> =
        spec.split(',').map(|b| b.trim().parse::<u32>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    if bits.len() != 4 || bits.iter().any(|&b| !(1..=64).contains(&b)) {
        return Err(bad());
    }
    Ok(format!("weight-bits={},act-bits={},output-bits={},psum-bits={}", bits[0], bits[1], bits[2], bits[3]))
}

/// A workload read or lowered, with what the user should be told.
pub struct Lowered {
    pub workload: Workload,
    /// Warnings to print.
    pub warnings: Vec<miette::Report>,
    /// Input dims set by `--assume-dims`, which the outputs show.
    pub assumed: Vec<crate::input_shapes::Assumption>,
    /// With [`Before::target`]: where `qc check` places every op of the model.
    pub placement: Option<qc_passes::check::CheckReport>,
    /// With [`Before::optimize`]: what the optimizer changed, one line each.
    pub optimized: Vec<String>,
}

/// What `qc evaluate` does to an ONNX model before lowering it.
#[derive(Default)]
pub struct Before {
    /// Run `qc optimize`'s default pipeline in memory first (Kneron's `opt_and_eval` flow).
    pub optimize: bool,
    /// Place the ops on this DLA target, as `qc check --target` does.
    pub target: Option<std::sync::Arc<qc_ir::target::Target>>,
}

/// Reads or lowers the workload of `args.model`. A model whose inputs have dims that are not
/// numbers is an error unless `--overwrite-input-shape` or `--assume-dims` gives them.
pub fn workload(args: &WorkloadArgs) -> miette::Result<Lowered> {
    workload_with(args, &Before::default())
}

/// [`workload`], after optimizing the model and placing its ops as `before` asks.
pub fn workload_with(args: &WorkloadArgs, before: &Before) -> miette::Result<Lowered> {
    let options = pipeline_options(args.default_precision.as_deref(), args.psum_bits.as_deref())?;
    if args.is_yaml() {
        let file = args.model.display().to_string();
        let text = std::fs::read_to_string(&args.model)
            .map_err(|e| miette::miette!(code = "qc::io::read", "cannot read `{file}`: {e}"))?;
        let workload = yaml_workload(&text, &file)?;
        if before.optimize || before.target.is_some() {
            return Err(miette::miette!(
                code = "qc::evaluate::option",
                help = "--optimize and --target work on the ONNX graph; give the ONNX model instead of its workload YAML",
                "`{file}` is a ZigZag workload YAML: it has no graph to optimize or place"
            ));
        }
        return Ok(Lowered {
            workload,
            warnings: Vec::new(),
            assumed: Vec::new(),
            placement: None,
            optimized: Vec::new(),
        });
    }
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let mut warnings: Vec<miette::Report> = args.shapes.unanswered(&loaded.warnings);
    let mut model = loaded.model;
    let assumed = args.shapes.resolve(&mut model)?;
    let mut lowered = lower_model(model, &options, &args.shape_errors, before)?;
    warnings.append(&mut lowered.warnings);
    lowered.warnings = warnings;
    lowered.assumed = assumed;
    Ok(lowered)
}

/// The ZigZag workload YAML `text` (named `file` in diagnostics), read and verified.
pub fn yaml_workload(text: &str, file: &str) -> miette::Result<Workload> {
    let workload = qc_backends::zigzag::read_workload_yaml(text, file)?;
    let problems = qc_ir::verify_workload(&workload);
    if !problems.is_empty() {
        return Err(InvalidWorkload { file: file.to_string(), count: problems.len(), problems }.into());
    }
    Ok(workload)
}

/// The `lower-to-loops` options of `--default-precision` and `--psum-bits` (`{...}`, or empty
/// when neither is given), checked.
pub fn pipeline_options(default_precision: Option<&str>, psum_bits: Option<&str>) -> miette::Result<String> {
    let mut options: Vec<String> = Vec::new();
    if let Some(spec) = default_precision {
        options.push(precision_options(spec)?);
    }
    if let Some(p) = psum_bits {
        let ok = p == "zigzag" || p == "exact" || p.parse::<u32>().is_ok_and(|b| (1..=64).contains(&b));
        if !ok {
            return Err(miette::miette!(
                code = "qc::lower::psum_bits",
                help = "give zigzag (2 x activation bits), exact (bit growth) or a bit count 1 to 64",
                "`--psum-bits {p}` is not a partial-sum rule"
            ));
        }
        options.push(format!("psum={p}"));
    }
    Ok(if options.is_empty() { String::new() } else { format!("{{{}}}", options.join(",")) })
}

/// Lowers an in-memory model whose input dims are known, after optimizing it and placing its
/// ops as `before` asks; `options` are [`pipeline_options`]. The result's `assumed` is empty
/// (the caller resolved the dims).
pub fn lower_model(
    mut model: qc_ir::Model,
    options: &str,
    shape_errors: &crate::shape_errors::ShapeErrorArgs,
    before: &Before,
) -> miette::Result<Lowered> {
    let mut warnings: Vec<miette::Report> = Vec::new();
    let quiet = || ManagerOptions { verify_each: false, stop_after: None };
    let mut optimized = Vec::new();
    if before.optimize {
        let hist = crate::optimize::histogram(&model);
        let nodes = model.graph.op_count();
        let pipeline = Pipeline::parse(DEFAULT_PIPELINE).expect("the default pipeline parses");
        let report = PassManager::new(pipeline, quiet())?.run(&mut model, &mut |_, _| {})?;
        shape_errors.refuse(&report.warnings)?;
        warnings.extend(report.warnings.into_iter().map(miette::Report::new));
        optimized = optimize_summary(&hist, nodes, &model);
    }
    let placement = match &before.target {
        None => None,
        Some(target) => {
            // The check's op labels and the layers' names must agree: give every unnamed op the
            // label it has now, before either pipeline moves ops.
            name_unnamed_ops(&mut model);
            let mut checked = model.clone();
            let pipeline = Pipeline::parse(qc_passes::check::PIPELINE).expect("the check pipeline parses");
            // Its warnings are dropped: the lowering pipeline below reports the same shape and
            // quantization warnings.
            PassManager::new(pipeline, quiet())?
                .with_target(target.clone())
                .run(&mut checked, &mut |_, _| {})?;
            Some(qc_passes::check::check(&checked, target))
        }
    };
    let pipeline =
        Pipeline::parse(&format!("{LOWER_PIPELINE}{options}")).expect("the lowering pipeline parses");
    let report = PassManager::new(pipeline, quiet())?.run(&mut model, &mut |_, _| {})?;
    shape_errors.refuse(&report.warnings)?;
    warnings.extend(report.warnings.into_iter().map(miette::Report::new));
    Ok(Lowered {
        workload: report.workload.unwrap_or_default(),
        warnings,
        assumed: Vec::new(),
        placement,
        optimized,
    })
}

/// Names every unnamed op after its label (`OpType#position`), so that the label stays when
/// passes remove other ops.
fn name_unnamed_ops(model: &mut qc_ir::Model) {
    let unnamed: Vec<(qc_ir::OpId, String)> = model
        .graph
        .ops()
        .filter(|(_, op)| op.name.as_deref().is_none_or(str::is_empty))
        .map(|(id, _)| (id, model.graph.op_label(id)))
        .collect();
    for (id, label) in unnamed {
        model.graph.op_mut(id).name = Some(label);
    }
}

/// What the optimizer changed: the node count, then each op type whose count changed.
fn optimize_summary(
    before: &std::collections::BTreeMap<String, usize>,
    nodes_before: usize,
    model: &qc_ir::Model,
) -> Vec<String> {
    let after = crate::optimize::histogram(model);
    let mut changes = Vec::new();
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (b, a) = (before.get(k).copied().unwrap_or(0), after.get(k).copied().unwrap_or(0));
        if b != a {
            changes.push(format!("{k} {b} -> {a}"));
        }
    }
    let what = if changes.is_empty() { "no op changed".to_string() } else { changes.join(", ") };
    vec![format!(
        "optimized in memory (qc optimize's default pipeline): {nodes_before} -> {} nodes; {what}",
        model.graph.op_count()
    )]
}

/// Runs `qc lower`; returns the warnings to print.
pub fn run(args: &LowerArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    let Lowered { workload: w, warnings, assumed, .. } = workload(&args.workload)?;
    let mut text = match args.format {
        LowerFormat::Text => text(&w),
        LowerFormat::Json => json(&args.workload.model.display().to_string(), &w),
        LowerFormat::ZigzagYaml => qc_backends::zigzag::write_workload_yaml(&w),
    };
    if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
        match args.format {
            LowerFormat::Text => text.push_str(&format!("// {line}\n")),
            LowerFormat::ZigzagYaml => text = format!("# {line}\n{text}"),
            LowerFormat::Json => {
                let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if let Some(map) = doc.as_object_mut() {
                    map.insert("assumptions".into(), serde_json::json!(assumed));
                }
                text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
            }
        }
    }
    crate::write::emit(args.output.as_deref(), &text, out)?;
    Ok(warnings)
}

/// The textual IR followed by a one-line count.
fn text(w: &Workload) -> String {
    let mut s = qc_ir::text::print_workload(w);
    let macs = w
        .layers
        .iter()
        .filter(|l| l.compute == qc_ir::Compute::Mac)
        .try_fold(0u128, |n, l| n.checked_add(l.checked_iterations()?))
        .map_or_else(|| "more than 2^128".to_string(), |n| n.to_string());
    let _ = writeln!(
        s,
        "\n// {} layers lowered ({} MACs in MAC layers), {} nodes not lowered",
        w.layers.len(),
        macs,
        w.not_lowered.len()
    );
    s
}

/// The JSON form (`spec/cli.md`, "qc lower").
pub fn json(file: &str, w: &Workload) -> String {
    use serde_json::json;
    let source = |s: &Source| match s {
        Source::Layer(n) => json!({"kind": "layer", "name": n}),
        Source::Node(n) => json!({"kind": "node", "name": n}),
        Source::Constant => json!({"kind": "constant"}),
        Source::GraphInput(n) => json!({"kind": "input", "name": n}),
        Source::Other => json!({"kind": "other"}),
    };
    let operand = |o: &qc_ir::Operand| {
        json!({
            "role": o.role,
            "index": o.index,
            "bits": o.precision,
            "value": o.value,
            "source": source(&o.source),
            "quantized": o.quant.is_some(),
        })
    };
    let layers: Vec<serde_json::Value> = w
        .layers
        .iter()
        .map(|l| {
            json!({
                "id": l.id,
                "name": l.name,
                "op_type": l.op_type,
                "compute": l.compute.name(),
                "dims": l.dims.iter().map(|d| json!({"name": d.name, "size": d.size})).collect::<Vec<_>>(),
                "iterations": l.iterations().to_string(),
                "output": operand(&l.output),
                "inputs": l.inputs.iter().map(operand).collect::<Vec<_>>(),
                "relations": l.relations.iter().map(|r| json!({
                    "name": r.name,
                    "terms": r.terms.iter().map(|(c, d)| json!({"coef": c, "dim": d})).collect::<Vec<_>>(),
                    "offset": r.offset,
                    "extent": r.extent,
                    "padding": [r.padding.0, r.padding.1],
                })).collect::<Vec<_>>(),
                "psum_bits": l.psum_precision,
                "psum_rule": l.psum_rule.name(),
            })
        })
        .collect();
    let not_lowered: Vec<serde_json::Value> = w
        .not_lowered
        .iter()
        .map(|n| {
            let reads: Vec<serde_json::Value> = n.inputs.iter().map(source).collect();
            json!({"node": n.node, "op_type": n.op_type, "reason": n.reason, "elements": n.elements, "reads": reads})
        })
        .collect();
    let v = json!({
        "schema_version": 1,
        "model": file,
        "layers": layers,
        "not_lowered": not_lowered,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
