//! Interchange with ZigZag (KULeuven-MICAS/zigzag), the reference DSE tool qc compares with.
//!
//! - [`read_workload_yaml`] / [`write_workload_yaml`]: ZigZag's manual-workload YAML as a
//!   [`qc_ir::Workload`] and back. The mapping rules are in [`workload`] and `spec/zigzag.md`.
//! - [`read_accelerator_yaml`]: ZigZag's accelerator YAML as a [`crate::arch::Accelerator`]
//!   ([`accelerator`], `spec/accelerator.md`).
//! - [`read_mapping_yaml`]: ZigZag's mapping YAML as a [`crate::mapping::MappingFile`]
//!   ([`mapping`], `spec/accelerator.md`).
//!
//! All three readers report problems as a [`YamlError`], a `miette` diagnostic whose code names
//! the kind of problem (`qc::zigzag::*`, `qc::accelerator::*`, `qc::mapping::*`).

pub mod accelerator;
pub mod mapping;
pub mod workload;
pub(crate) mod yaml_error;

pub use accelerator::{AcceleratorError, AcceleratorErrorKind, read_accelerator_yaml};
pub use mapping::{MappingError, MappingErrorKind, MappingFit, check_mapping_fit, read_mapping_yaml};
pub use workload::{ErrorKind, WorkloadError, read_workload_yaml, write_workload_yaml};
pub use yaml_error::{YamlError, YamlErrorKind};
