//! `qc convert MODEL --to channels-last -o OUT.onnx`: qonnx's channels-last conversion, checked
//! with the reference evaluator before anything is written.
//!
//! The model is loaded and `infer-shapes` runs. Every default-domain Conv, MaxPool and
//! BatchNormalization that cannot be wrapped is reported at once (`qc::convert::
//! channels_last_unsupported`, naming the node and why; nothing is written). Then
//! `to-channels-last`, `eliminate-dead` and `infer-shapes` run, with the verifier after each
//! (`spec/passes.md` says what the conversion does). Unless `--no-verify`, the original and the
//! converted model run in qc's evaluator on the same three seeded random batches as the other
//! conversions (`crate::convert`), and every output must agree to one unit in the last place;
//! the wrappers run as qonnx runs them (transpose to channels-first, the standard op, transpose
//! back), so the outputs are bit-identical unless a Resize interpolates along permuted axes in
//! another order. A difference is `qc::convert::mismatch`; a model the evaluator cannot run is
//! written with the warning `qc::convert::not_verified`. A model with nothing to wrap is not
//! written.

use std::fmt::Write as _;

use qc_ir::Model;
use qc_ir::op::CHANNELS_LAST_DOMAIN;
use qc_passes::passes::to_channels_last;
use qc_passes::{ManagerOptions, PassManager, Pipeline};

use crate::convert::{ConvertArgs, check_whole, write_result};
use crate::load::{self, LoadOptions};

fn io_error(e: std::io::Error) -> miette::Report {
    miette::miette!(code = "qc::io::write", "cannot write output: {e}")
}

/// Runs `qc convert --to channels-last`, writing the summary to `out`; returns the warnings.
pub fn run(args: &ConvertArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let mut warnings: Vec<miette::Report> = args.shapes.unanswered(&loaded.warnings);
    let mut original = loaded.model;
    let assumed = args.shapes.apply(&mut original)?;
    if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
        warnings.push(miette::miette!(
            severity = miette::Severity::Advice,
            code = "qc::input_shape::assumed",
            "{line}"
        ));
    }
    let options = || ManagerOptions { verify_each: true, stop_after: None };
    let mut model = original.clone();
    let mut shapes = PassManager::new(Pipeline::parse("infer-shapes")?, options())?;
    let report = shapes.run(&mut model, &mut |_, _| {})?;
    args.shape_errors.refuse(&report.warnings)?;
    warnings.extend(report.warnings.iter().cloned().map(miette::Report::new));

    let mut problems = to_channels_last::unconvertible(&model);
    if !problems.is_empty() {
        let mut first = problems.remove(0);
        if !problems.is_empty() {
            let names: Vec<String> = problems.iter().take(8).map(|p| format!("`{}`", p.node)).collect();
            let _ = write!(
                first.reason,
                "; {} more node(s) cannot be converted either: {}",
                problems.len(),
                names.join(", ")
            );
            if problems.len() > 8 {
                first.reason.push_str(", ...");
            }
        }
        return Err(miette::Report::new(first));
    }

    let pipeline = Pipeline::parse("to-channels-last,eliminate-dead,infer-shapes")?;
    let mut manager = PassManager::new(pipeline, options())?;
    let report = manager.run(&mut model, &mut |_, _| {})?;
    warnings.extend(report.warnings.iter().cloned().map(miette::Report::new));
    let stats = report.totals().get(to_channels_last::INFO.name).map(|t| t.stats.clone()).unwrap_or_default();
    let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
    if stat("wrapped") == 0 {
        let text = format!(
            "{}: nothing to convert (no Conv, MaxPool or BatchNormalization of the default domain on 3-D or 4-D data); `{}` not written.\n",
            args.model.display(),
            args.output.display()
        );
        out.write_all(text.as_bytes()).map_err(io_error)?;
        return Ok(warnings);
    }

    let mut text = summary(args, &original, &model, &stats);
    if args.no_verify {
        text.push_str("Not checked (--no-verify).\n");
    } else {
        match check_whole(&original, &model, "the conversion was written unchecked", &mut warnings)? {
            Ok(w) => {
                let _ = writeln!(text, "Checked with qc's evaluator on {w}.");
            }
            Err(reason) => {
                let _ = writeln!(text, "Not checked: the whole model was not evaluated ({reason}).");
            }
        }
    }
    write_result(args, &mut model, &text, out)?;
    Ok(warnings)
}

/// Counts the channels-last wrappers of `m` by op type.
fn wrappers(m: &Model) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, op) in m.graph.ops().filter(|(_, op)| op.domain() == CHANNELS_LAST_DOMAIN) {
        match counts.iter_mut().find(|(t, _)| t == op.op_type()) {
            Some((_, n)) => *n += 1,
            None => counts.push((op.op_type().to_string(), 1)),
        }
    }
    counts
}

fn transposes(m: &Model) -> usize {
    m.graph.ops().filter(|(_, op)| op.op_type() == "Transpose" && op.domain().is_empty()).count()
}

/// The paragraph that says what was converted.
fn summary(
    args: &ConvertArgs,
    before: &Model,
    after: &Model,
    stats: &indexmap::IndexMap<String, u64>,
) -> String {
    let stat = |k: &str| stats.get(k).copied().unwrap_or(0);
    let had = wrappers(before);
    let kinds: Vec<String> = wrappers(after)
        .into_iter()
        .map(|(t, n)| (n - had.iter().find(|(u, _)| *u == t).map_or(0, |(_, k)| *k), t))
        .filter(|(n, _)| *n > 0)
        .map(|(n, t)| format!("{n} {t}"))
        .collect();
    let mut s = format!("{} -> {}: ", args.model.display(), args.output.display());
    let _ = write!(
        s,
        "wrapped {} op(s) in {CHANNELS_LAST_DOMAIN} ({}); {} other op(s) run channels-last; {} constant(s) transposed in place; \
         Transposes: {} -> {}. Nodes: {} -> {}.",
        stat("wrapped"),
        kinds.join(", "),
        stat("moved"),
        stat("constants-transposed"),
        transposes(before),
        transposes(after),
        before.graph.op_count(),
        after.graph.op_count()
    );
    s.push('\n');
    s
}
