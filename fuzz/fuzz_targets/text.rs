//! Fuzz target `text`: arbitrary text as the textual IR, then the optimize, lower and cost
//! pipelines on every model that verifies ([`qc_tests::fuzz::text`] says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qc_tests::fuzz::text(data));
