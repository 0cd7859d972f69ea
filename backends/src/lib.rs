//! `qc-backends`: accelerator descriptions, mapping search, cost models and report writers.
//!
//! This crate depends only on `qc-ir` (plus the YAML reader), and writes reports into strings or
//! `impl Write`, never to files or the terminal.
//!
//! - [`zigzag`]: interchange with ZigZag (its manual-workload YAML, `spec/zigzag.md`).

pub mod zigzag;
