//! The `qc` binary: [`qc::cli::main_with`] on the process's arguments and streams.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    ExitCode::from(qc::cli::main_with(std::env::args_os().collect(), &mut out, &mut err, color))
}
