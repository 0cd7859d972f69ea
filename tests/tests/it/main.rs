//! qc's integration tests, one binary (`cargo test -p qc-tests --test it`): one module per
//! area, each with its own `//!` doc saying what it checks. One binary links the workspace once
//! instead of once per file, which is most of the test build's time and disk. Run one area with
//! a filter: `cargo test -p qc-tests --test it -- check::`.

mod accelerators;
mod attention;
mod bad_input;
mod bound_zigzag;
mod channels_last;
mod check;
mod contrib_ops;
mod convert;
mod cost;
mod denominator;
mod engine;
mod eval_conformance;
mod evaluate;
mod evaluate_budget;
mod evaluate_optimal;
mod evaluate_target;
mod evaluate_zigzag;
mod fixed_point;
mod float_quant;
mod imc_zigzag;
mod inspect;
mod large_dims;
mod locality_zigzag;
mod loma_zigzag;
mod lower;
mod lower_models;
mod lower_zigzag;
mod op_table;
mod optimize;
mod optimize_models;
mod passes;
mod real_models;
mod report;
mod roundtrip;
mod run;
mod search_zigzag;
mod shape_conformance;
mod spatial_generator;
mod sweep;
mod textual_ir;
mod tidy;
