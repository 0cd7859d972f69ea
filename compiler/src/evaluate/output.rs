//! `qc evaluate`'s output: the JSON schema of `spec/cli.md` and the reports for people (text,
//! Markdown, HTML), built by `qc_backends::report` from the evaluations ([`Evaluated`]); what is
//! the command line's here is the terminal and the notes about what was not given.

use std::io::IsTerminal;

use super::{EvaluateArgs, Evaluated};
use crate::formats::ReportFormat;

/// The report of `e` in the format `args` asks for.
pub(super) fn render(args: &EvaluateArgs, e: &Evaluated) -> String {
    match args.format {
        ReportFormat::Json => e.json(),
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
            let text = e.text(width.unwrap_or(120), color);
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
        ReportFormat::Md => e.markdown(),
        ReportFormat::Html => e.html(),
    }
}
