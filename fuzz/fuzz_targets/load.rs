//! Fuzz target `load`: arbitrary bytes as an ONNX model ([`qc_tests::fuzz::load`] says what is
//! checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qc_tests::fuzz::load(data));
