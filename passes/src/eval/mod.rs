//! The reference evaluator: executes a graph on the CPU.
