//! Fuzz target `dims`: one op built from the bytes with large, empty and symbolic dims, through
//! `qc cost`'s counting, the lowering and a small mapping search ([`qc_tests::fuzz::dims`] says
//! what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qc_tests::fuzz::dims(data));
