//! `qc`: the command-line driver and the ONNX front end.
//!
//! This crate is the only one that touches files, the terminal or protobuf:
//! - [`onnx`]: hand-written prost types, import into the IR and export back;
//! - [`load`]: memory-mapped loading, external data confined to the model's folder and read
//!   lazily, verification;
//! - [`inspect`]: the `qc inspect` report;
//! - [`cli`]: argument parsing and the driver; `main.rs` only renders the outcome;
//! - [`diagnostics`]: the front end's errors and warnings (miette, stable codes);
//! - [`optimize`]: `qc optimize`, the one command that runs any pass pipeline;
//! - [`run`]: `qc run`, the reference evaluator on given inputs;
//! - [`cost`]: `qc cost`, QONNX-compatible inference cost;
//! - [`check`]: `qc check`, DLA operator limits and fixed-point scale rules, with placement;
//! - [`targets`]: DLA target descriptions (built in and from YAML files), `qc targets`;
//! - [`convert`]: `qc convert`, QONNX Quant to QCDQ and back, checked with the evaluator;
//! - [`sweep`]: `qc sweep`, accelerator parameter sweeps with their Pareto front;
//! - [`write`]: atomic output files;
//! - [`npy`]: NumPy `.npy` files for `qc run`;
//! - [`fixtures`]: small models built in code, for the example, tests and benchmarks.

pub mod accelerators;
pub mod check;
pub mod cli;
pub mod convert;
pub mod convert_access;
pub mod convert_channels_last;
pub mod cost;
pub mod diagnostics;
pub mod evaluate;
pub mod fixtures;
pub mod formats;
pub mod input_shapes;
pub mod inspect;
pub mod load;
pub mod lower;
pub mod npy;
pub mod onnx;
pub mod optimize;
pub mod progress;
pub mod report_diagnostics;
pub mod run;
pub mod run_fixed;
pub mod shape_errors;
pub mod sweep;
pub mod targets;
pub mod write;
