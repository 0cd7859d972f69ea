//! `qc-backends`: accelerator descriptions, mapping search, cost models and report writers.
//!
//! This crate depends only on `qc-ir` (plus the YAML reader), and writes reports into strings or
//! `impl Write`, never to files or the terminal.
//!
//! - [`accelerator_file`]: qc's own accelerator format (read, write, told apart from ZigZag's).
//! - `accelerator_check`: the checks of an accelerator description that both formats share.
//! - [`arch`]: the accelerator model (operational array, memory hierarchy, ports).
//! - [`mapping`]: spatial and temporal mappings, and mapping files.
//! - [`spatial`]: fitting a mapping file's spatial mapping to a layer, as ZigZag does.
//! - [`cost`]: ZigZag's cost model: energy and latency of a layer under a mapping.
//! - [`bound`]: lower bounds on a layer's energy and latency over every mapping.
//! - [`search`], [`explore`]: the mapping search (LOMA for one layer; spatial candidates times
//!   LOMA over a workload, in parallel).
//! - [`zigzag`]: interchange with ZigZag (its workload, accelerator and mapping YAML,
//!   `spec/zigzag.md`, `spec/accelerator.md`).

mod accelerator_check;
pub mod accelerator_file;
pub mod arch;
pub mod bound;
pub mod cost;
pub mod explore;
pub mod locality;
pub mod mapping;
pub mod network;
mod python_set;
pub mod report;
pub mod search;
pub mod spatial;
pub mod sweep;
pub mod zigzag;
