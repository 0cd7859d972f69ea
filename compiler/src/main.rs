//! The `qc` binary: [`qc::cli::main_with`] on the process's arguments and streams.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::stdout().lock();
    // Not locked for the whole run: the progress bar draws from the search's worker threads,
    // which would wait forever for a lock held here.
    let mut err = std::io::stderr();
    ExitCode::from(qc::cli::main_with(std::env::args_os().collect(), &mut out, &mut err, color))
}
