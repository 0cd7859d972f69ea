//! Interchange with ZigZag (KULeuven-MICAS/zigzag), the reference DSE tool qc compares with.
//!
//! - [`read_workload_yaml`] / [`write_workload_yaml`]: ZigZag's manual-workload YAML as a
//!   [`qc_ir::Workload`] and back. The mapping rules are in [`workload`] and `spec/zigzag.md`.

pub mod workload;

pub use workload::{ErrorKind, WorkloadError, read_workload_yaml, write_workload_yaml};
