//! `qc evaluate`'s output: the JSON schema of `spec/cli.md` and the reports for people (text,
//! Markdown, HTML), built by `qc_backends::report` from the evaluations; what is the command
//! line's here is where the accelerators came from and the terminal.

use std::io::IsTerminal;

use qc_backends::network::{EvaluateOptions, Evaluation};
use qc_backends::report::{AcceleratorSource, ReportContext};

use super::EvaluateArgs;
use crate::formats::ReportFormat;

/// The report of `designs` (the first is `--accelerator`, the others `--compare`) in the
/// format asked for.
pub(super) fn render(
    args: &EvaluateArgs,
    opts: &EvaluateOptions,
    designs: &[Evaluation],
    cx: &ReportContext<'_>,
) -> String {
    let sources: Vec<AcceleratorSource> = (0..designs.len()).map(|i| accelerator_source(args, i)).collect();
    let designs: Vec<(&Evaluation, &AcceleratorSource)> = designs.iter().zip(&sources).collect();
    match args.format {
        ReportFormat::Json => qc_backends::report::evaluation_json(&designs, opts, cx),
        ReportFormat::Text => {
            let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
            let width = args.width.or_else(|| {
                if to_terminal {
                    terminal_size::terminal_size().map(|(w, _)| w.0 as usize)
                } else {
                    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
                }
            });
            let color = to_terminal && std::env::var_os("NO_COLOR").is_none();
            let reports = qc_backends::report::evaluation_designs(&designs, opts, cx);
            let text = qc_backends::report::text(&reports, width.unwrap_or(120), color);
            // The header's first line is `MODEL on ACCELERATOR`; what was not given follows it.
            let mut notes = String::new();
            if args.accelerator.is_none() {
                notes.push_str(&format!("accelerator: {}\n", crate::accelerators::source_of(None)));
            }
            if !args.fixed_mapping && args.search.mapping.is_none() {
                notes.push_str("spatial mapping: searched (no --mapping)\n");
            }
            match text.split_once('\n') {
                Some((first, rest)) if !notes.is_empty() => format!("{first}\n{notes}{rest}"),
                _ => text,
            }
        }
        ReportFormat::Md => {
            qc_backends::report::markdown(&qc_backends::report::evaluation_designs(&designs, opts, cx))
        }
        ReportFormat::Html => {
            qc_backends::report::html(&qc_backends::report::evaluation_designs(&designs, opts, cx))
        }
    }
}

/// Design `i`'s accelerator argument: `--accelerator` (`None`: not given), then each `--compare`.
fn accelerator_spec(args: &EvaluateArgs, i: usize) -> Option<&str> {
    match i {
        0 => args.accelerator.as_deref(),
        _ => args.compare.get(i - 1).map(|c| c.split_once(',').map_or(c.as_str(), |(a, _)| a)),
    }
}

/// Where design `i`'s accelerator came from: `built-in default` (with the reports' note about
/// it), `built-in` or `file`.
fn accelerator_source(args: &EvaluateArgs, i: usize) -> AcceleratorSource {
    let spec = accelerator_spec(args, i);
    let kind = match spec {
        None => "built-in default",
        Some(s) if crate::accelerators::is_path(s) => "file",
        Some(_) => "built-in",
    };
    AcceleratorSource {
        kind: kind.to_string(),
        default_note: spec.is_none().then(|| crate::accelerators::source_of(None)),
    }
}
