//! Fuzz target `mapping`: a ZigZag mapping file against a fixed accelerator and workload,
//! evaluated as written and searched ([`qc_tests::fuzz::mapping`] says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qc_tests::fuzz::mapping(data));
