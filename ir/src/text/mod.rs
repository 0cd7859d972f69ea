//! The textual form of the IR: a deterministic printer and a pest parser.
//!
//! [`print_model`] with [`Form::Full`] writes everything a [`Model`] holds, and [`parse_model`]
//! reads it back: `parse_model(&print_model(m, Form::Full)) == Ok(m)`. [`Form::Summary`] writes
//! the same layout with large constants abbreviated, for display and snapshots; it is not meant
//! to be parsed. [`print_graph`]/[`parse_graph`] do the same for a lone graph (snapshot files
//! that hold only a graph). The grammar is `ir.pest` and is explained in `spec/ir.md`.
//!
//! ```text
//! graph @main(%x: f32[N,3,224,224]) -> (%y: f32[N,1000]) {
//!   init %w = f32[64,3,7,7] raw 0x...
//!   %c = Conv(%x, %w) {group = 1, strides = [2, 2]} name "conv1"
//!   %y = Relu(%c)
//! }
//! ```
//!
//! Values are created in the order the parser first meets them: the `values` line if there is
//! one, then the signature, then the statements (an op's inputs before its results). The printer
//! writes a `values` line only when that order would differ from the arena order.
//!
//! The loop-nest IR ([`crate::loops`]) has its own text: [`print_workload`] and
//! [`parse_workload`], with `parse_workload(&print_workload(w)) == Ok(w)`. Its grammar is
//! `loops.pest`, parsed by the same pest parser as `ir.pest` (it shares the lexical rules and
//! `quant(...)`), and explained in `spec/ir.md`, section "Loop-nest IR".

mod loops;
mod parse;
mod print;

use crate::graph::Graph;
use crate::loops::{LoopNest, Workload};
use crate::model::Model;

pub use parse::ParseError;

/// How much constant data the printer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Everything, losslessly: the text parses back to an equal model.
    Full,
    /// Large constants abbreviated (`<216 values: 1.0, 2.0, ...>`); for display only.
    Summary,
}

/// Prints a whole model.
pub fn print_model(model: &Model, form: Form) -> String {
    print::model(model, form)
}

/// Prints one graph (a `graph ... { ... }` item).
pub fn print_graph(graph: &Graph, form: Form) -> String {
    print::graph(graph, form)
}

/// Parses a model: optional header fields, the main graph, functions and training blocks.
pub fn parse_model(text: &str) -> Result<Model, ParseError> {
    parse::model(text)
}

/// Parses a text that holds one graph and nothing else.
pub fn parse_graph(text: &str) -> Result<Graph, ParseError> {
    parse::graph_only(text)
}

/// Prints a workload: its layers (one `layer ... { ... }` block each, blank lines between), then
/// one `not_lowered` line per node that was not lowered.
pub fn print_workload(w: &Workload) -> String {
    loops::workload(w)
}

/// Prints one loop nest as a `layer ... { ... }` block (a workload of that one layer).
pub fn print_loop_nest(l: &LoopNest) -> String {
    loops::loop_nest(l)
}

/// Parses a workload written by [`print_workload`] (or by hand, in the same grammar).
pub fn parse_workload(text: &str) -> Result<Workload, ParseError> {
    loops::parse(text)
}

/// Whether `s` can be written without quotes where an identifier is expected.
fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s != "_"
}

/// Whether `s` can follow `%` or `@` without quotes.
fn is_bare_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
        && !s.contains("//")
}

/// Whether `s` can be written as an op domain without quotes.
fn is_dotted(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Writes `s` as a quoted string literal.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Writes bytes as a quoted string literal; bytes that are not UTF-8 become `\xNN`.
fn write_bytes(out: &mut String, b: &[u8]) {
    use std::fmt::Write;
    out.push('"');
    for chunk in b.utf8_chunks() {
        escape_into(out, chunk.valid());
        for x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02x}");
        }
    }
    out.push('"');
}

/// Writes a name as an identifier when it is one, else quoted.
fn write_key(out: &mut String, s: &str) {
    if is_ident(s) { out.push_str(s) } else { write_str(out, s) }
}

/// Writes an `f32` so that parsing gives the same bits back.
fn write_f32(out: &mut String, x: f32) {
    use std::fmt::Write;
    if x.is_nan() {
        if x.to_bits() == f32::NAN.to_bits() {
            out.push_str("nan");
        } else {
            let _ = write!(out, "nan(0x{:08x})", x.to_bits());
        }
    } else {
        let _ = write!(out, "{x:?}");
    }
}

/// Writes an `f64` so that parsing gives the same bits back.
fn write_f64(out: &mut String, x: f64) {
    use std::fmt::Write;
    if x.is_nan() {
        if x.to_bits() == f64::NAN.to_bits() {
            out.push_str("nan");
        } else {
            let _ = write!(out, "nan(0x{:016x})", x.to_bits());
        }
    } else {
        let _ = write!(out, "{x:?}");
    }
}

/// Writes bytes as `0x` and lower-case hex digits.
fn write_hex(out: &mut String, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + 2 * b.len());
    out.push_str("0x");
    for &x in b {
        out.push(DIGITS[(x >> 4) as usize] as char);
        out.push(DIGITS[(x & 15) as usize] as char);
    }
}
