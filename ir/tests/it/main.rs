//! The integration tests of `qc-ir`, one binary (`cargo test -p qc-ir --test it`): the textual
//! IR's parse errors and round trips, for graphs and loop nests.

mod common;
mod loops_parse_errors;
mod loops_roundtrip;
mod text_parse_errors;
mod text_roundtrip;
