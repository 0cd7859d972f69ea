//! The integration tests of `qc-backends`, one binary (`cargo test -p qc-backends --test it`):
//! ZigZag's readers, the cost model and LOMA against ZigZag's numbers.

mod bound;
mod common;
mod cost_zigzag;
mod imc;
mod loma;
mod optimal;
mod zigzag_accelerator;
mod zigzag_mapping;
mod zigzag_workload;
