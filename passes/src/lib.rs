//! `qc-passes`: optimizer passes over the graph IR, their registry and the pass manager.
//!
//! - [`pass`]: the `Pass` trait, statistics and warnings;
//! - [`check`]: `qc check`'s analyses against a DLA target (limits, placement, scales);
//! - [`cost`]: QONNX-compatible inference cost (MACs by datatype pair, BOPs, memory);
//! - [`eval`]: the reference evaluator (constant folding and equivalence proofs use it);
//! - [`lower`]: graph ops to loop nests (ZigZag's workload form);
//! - [`shape`]: shape and type inference rules, op family by op family;
//! - [`quant`]: quantization specs read from the ops of every dialect;
//! - [`passes`]: one file per pass;
//! - `rewrite`: the rewrite kit every pass uses (new values, constants, op and use
//!   replacement, dropping unused values, program order, names captured by bodies);
//! - `pattern`: matching written-out formulas (products, scalar constants, closed op sets);
//! - [`opset`]: the opset upgrader and the IR-version rules;
//! - [`registry`]: the one table of passes by name;
//! - [`pipeline`]: pipelines as text;
//! - [`manager`]: runs pipelines (verification, hooks, statistics, fixpoint caps).
//!
//! Invariant: this crate depends only on `qc-ir` (and small utility crates); it does no I/O.

pub mod check;
pub mod cost;
pub mod eval;
pub mod fixed;
pub mod lower;
pub mod manager;
pub mod ops;
pub mod opset;
pub mod pass;
pub mod passes;
pub(crate) mod pattern;
pub mod pipeline;
pub mod quant;
pub mod registry;
pub(crate) mod rewrite;
pub mod shape;

pub use manager::{ManagerError, ManagerOptions, PassManager, RunReport};
pub use pass::{Changed, Pass, PassContext, PassError, PassWarning};
pub use pipeline::Pipeline;
