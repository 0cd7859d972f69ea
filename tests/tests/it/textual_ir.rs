//! Conformance of the textual IR: every model under `../shared/models` and
//! `../shared/conformance/onnx-backend` prints in full form, parses back, and prints the same
//! text again; models without NaN constants also compare equal with `==`. The slowest
//! print-and-parse is reported and must stay well under a second.

use std::path::Path;
use std::time::{Duration, Instant};

use qc_ir::text::{self, Form};

#[derive(Default)]
struct Tally {
    files: usize,
    skipped_load: usize,
    equal: usize,
    text_equal_only: usize,
    failures: Vec<String>,
    slowest: (Duration, String),
}

fn check_dir(root: &Path, t: &mut Tally) {
    for path in qc_tests::files_under(root, ".onnx") {
        t.files += 1;
        let name = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let Ok(loaded) = qc::load::load(&path, Default::default()) else {
            // Models that do not load are the roundtrip suite's business.
            t.skipped_load += 1;
            continue;
        };
        let m = loaded.model;
        let start = Instant::now();
        let printed = text::print_model(&m, Form::Full);
        let parsed = match text::parse_model(&printed) {
            Ok(p) => p,
            Err(e) => {
                t.failures.push(format!("{name}: {:?}", miette::Report::new(e)));
                continue;
            }
        };
        let elapsed = start.elapsed();
        if elapsed > t.slowest.0 {
            t.slowest = (elapsed, name.clone());
        }
        if parsed == m {
            t.equal += 1;
        } else if text::print_model(&parsed, Form::Full) == printed {
            // NaN != NaN: the printed bits are the same.
            t.text_equal_only += 1;
        } else {
            t.failures.push(format!("{name}: the parsed model differs"));
        }
        // The summary form is always printable.
        let _ = text::print_model(&m, Form::Summary);
    }
}

#[test]
fn every_shared_model_round_trips_through_text() {
    let Some(shared) = qc_tests::shared_or_say("textual_ir") else {
        return;
    };
    for sub in ["models", "conformance/onnx-backend"] {
        let mut t = Tally::default();
        let start = Instant::now();
        check_dir(&shared.join(sub), &mut t);
        eprintln!(
            "{sub}: {} files, {} did not load, {} equal, {} equal as text only (NaN), {} failed ({:.2?}); slowest {:.2?} ({})",
            t.files,
            t.skipped_load,
            t.equal,
            t.text_equal_only,
            t.failures.len(),
            start.elapsed(),
            t.slowest.0,
            t.slowest.1,
        );
        assert!(t.files > 0, "no .onnx files under {sub}");
        assert!(t.failures.is_empty(), "{} failures:\n{}", t.failures.len(), t.failures.join("\n"));
        // A guard against superlinear printing or parsing (the slowest model takes about 0.4 s
        // alone), loose enough for wall time while every suite of the binary runs in parallel
        // on 2 cores.
        assert!(
            t.slowest.0 < Duration::from_secs(5),
            "printing and parsing {} took {:?}",
            t.slowest.1,
            t.slowest.0
        );
    }
}
