//! `qc-passes`: optimizer passes over the graph IR, their registry and the pass manager.
//!
//! This crate depends only on `qc-ir`. It holds one file per pass, each with a `//!` doc giving
//! what the pass does, its preconditions and its postconditions, and one registry table from
//! kebab-case names to constructors. It is empty until the pass-infrastructure issue adds the
//! `Pass` trait, the text pipelines and the first passes.
