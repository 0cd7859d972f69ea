//! `qc-backends`: accelerator descriptions, mapping search, cost models and report writers.
//!
//! This crate depends only on `qc-ir`, and writes reports into `impl Write`, never to files or
//! the terminal. It is empty until the cost-model and mapping issues add it.
