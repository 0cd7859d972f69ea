//! Fuzz target `run`: `qc run`'s `.npy` inputs, read, checked against a small model and run in
//! the evaluator ([`qc_tests::fuzz::run`] says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qc_tests::fuzz::run(data));
