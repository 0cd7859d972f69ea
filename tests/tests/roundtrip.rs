//! Conformance: every model under `../shared/models` and `../shared/conformance/onnx-backend`
//! loads (decode, import, external-data checks, verify), inspects, and round-trips: import then
//! export gives the same `ModelProto` field by field, and re-encoding gives the same bytes.

use std::path::Path;

use prost::Message;
use qc::load::{self, LoadOptions};
use qc::onnx::{export_model, proto::ModelProto};

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    byte_identical: usize,
    field_equal_only: Vec<String>,
    failures: Vec<String>,
}

fn check_dir(root: &Path, tally: &mut Tally) {
    for path in qc_tests::files_under(root, ".onnx") {
        tally.files += 1;
        let name = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let bytes = match load::read_file(&path, LoadOptions::default()) {
            Ok(b) => b,
            Err(e) => {
                tally.failures.push(format!("{name}: read: {e}"));
                continue;
            }
        };
        let loaded = match load::load_bytes(bytes.clone(), &name, path.parent(), LoadOptions::default()) {
            Ok(l) => l,
            Err(e) => {
                tally.failures.push(format!("{name}: load: {:?}", miette::Report::new(e)));
                continue;
            }
        };
        let report = qc::inspect::inspect(&loaded, &name);
        assert_eq!(report.nodes, loaded.model.graph.op_count());
        let original = ModelProto::decode(bytes.clone()).expect("decoded once already");
        let exported = export_model(&loaded.model);
        let reencoded = exported.encode_to_vec();
        if reencoded.as_slice() == &bytes[..] {
            tally.byte_identical += 1;
        } else if exported == original {
            tally.field_equal_only.push(name);
        } else {
            let again = ModelProto::decode(reencoded.as_slice()).expect("our own encoding decodes");
            // Bitwise comparison, so NaN payloads in float fields count as equal.
            if again.encode_to_vec() == original.encode_to_vec() {
                tally.field_equal_only.push(name);
            } else {
                tally.failures.push(format!("{name}: export differs from the original"));
            }
        }
    }
}

#[test]
fn every_shared_model_loads_inspects_and_round_trips() {
    let Some(shared) = qc_tests::shared_or_say("roundtrip") else {
        return;
    };
    for sub in ["models", "conformance/onnx-backend"] {
        let mut t = Tally::default();
        let start = std::time::Instant::now();
        check_dir(&shared.join(sub), &mut t);
        eprintln!(
            "{sub}: {} files, {} byte-identical, {} field-equal only, {} failed ({:.2?})",
            t.files,
            t.byte_identical,
            t.field_equal_only.len(),
            t.failures.len(),
            start.elapsed()
        );
        for f in t.field_equal_only.iter().take(10) {
            eprintln!("  field-equal, bytes differ: {f}");
        }
        assert!(t.files > 0, "no .onnx files under {sub}");
        assert!(
            t.failures.is_empty(),
            "{} of {} failed:\n{}",
            t.failures.len(),
            t.files,
            t.failures.join("\n")
        );
    }
}
