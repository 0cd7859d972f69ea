//! Fuzz target `zigzag`: ZigZag accelerator, mapping and workload YAML, then a small mapping
//! search ([`qc_tests::fuzz::zigzag`] says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qc_tests::fuzz::zigzag(data));
