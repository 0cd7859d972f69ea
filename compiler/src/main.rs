//! The `qc` binary: parses arguments, runs the driver, renders diagnostics, sets the exit code.

use std::process::ExitCode;

use clap::Parser;
use qc::cli::{self, Cli, Outcome};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut warn = |w: miette::Report| eprintln!("{w:?}");
    match cli::run(cli, &mut out, &mut warn) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Violations) => ExitCode::from(1),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
    }
}
