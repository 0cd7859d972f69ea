//! The integration tests of the `qc` binary itself, one binary (`cargo test -p qc --test it`):
//! the command line end to end, and the Slurm job-array example.

mod binary;
mod slurm;
