//! Fuzz target: decode, import, check external data, verify and inspect arbitrary bytes; for
//! every input that loads, export it and check that the export loads again and re-exports to the
//! same bytes. Any panic, abort or mismatch is a finding.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use qc::load::{LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions { mmap: false };
    let Ok(loaded) = load_bytes(Bytes::copy_from_slice(data), "fuzz.onnx", None, opts) else { return };
    let _ = qc::inspect::render_text(&qc::inspect::inspect(&loaded, "fuzz.onnx"));
    let once = qc::onnx::export_model(&loaded.model).encode_to_vec();
    let again = load_bytes(Bytes::from(once.clone()), "fuzz.onnx", None, opts)
        .expect("an exported model loads again");
    let twice = qc::onnx::export_model(&again.model).encode_to_vec();
    assert_eq!(once, twice, "export is not stable");
});
