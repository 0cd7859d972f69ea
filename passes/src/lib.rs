//! `qc-passes`: optimizer passes over the graph IR, their registry and the pass manager.
//!
//! - [`pass`]: the `Pass` trait, statistics and warnings;
//! - [`eval`]: the reference evaluator (constant folding and equivalence proofs use it);
//! - [`shape`]: shape and type inference rules, op family by op family;
//! - [`passes`]: one file per pass;
//! - [`registry`]: the one table of passes by name;
//! - [`pipeline`]: pipelines as text;
//! - [`manager`]: runs pipelines (verification, hooks, statistics, fixpoint caps).
//!
//! Invariant: this crate depends only on `qc-ir` (and small utility crates); it does no I/O.

pub mod eval;
pub mod manager;
pub mod pass;
pub mod passes;
pub mod pipeline;
pub mod registry;
pub mod shape;

pub use manager::{ManagerError, ManagerOptions, PassManager, RunReport};
pub use pass::{Changed, Pass, PassContext, PassError, PassWarning};
pub use pipeline::Pipeline;
