//! Pass snapshot tests as data: every `tests/passes/<pass>/<case>.qcir` is a model in the
//! textual IR whose first line names a pipeline (`// pipeline: fold-constants,eliminate-dead`).
//! The harness parses it, runs the pipeline with verification after every pass, and snapshots
//! the resulting IR (summary form) and the pass statistics. Review new snapshots with
//! `cargo insta review` (or `INSTA_UPDATE=always cargo test`) and read them before accepting.
//!
//! A case may also say `// check: same-outputs`: the harness then runs the reference evaluator
//! on the model before and after (inputs filled with a fixed pattern) and requires equal outputs.
//! `// target: access-dla` (a built-in name or a path) gives the pipeline a DLA target, for
//! `check-scales` and `check-target`. When the pipeline produced loop nests (`lower-to-loops`),
//! the snapshot also holds the workload's text.

use qc_ir::text::{Form, parse_model, print_model, print_workload};
use qc_passes::Pipeline;
use qc_passes::manager::{ManagerOptions, PassManager};

#[test]
fn pass_cases() {
    insta::glob!("../../passes", "**/*.qcir", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let pipeline = text
            .lines()
            .find_map(|l| l.strip_prefix("// pipeline:"))
            .unwrap_or_else(|| panic!("{}: the first lines must name the pipeline", path.display()))
            .trim();
        let mut model =
            parse_model(&text).unwrap_or_else(|e| panic!("{}: {:?}", path.display(), miette::Report::new(e)));
        let before = model.clone();
        let pipeline = Pipeline::parse(pipeline).unwrap();
        let options = ManagerOptions { verify_each: true, stop_after: None };
        let mut manager = PassManager::new(pipeline, options).unwrap();
        if let Some(t) = text.lines().find_map(|l| l.strip_prefix("// target:")) {
            let target =
                qc::targets::resolve(t.trim()).unwrap_or_else(|e| panic!("{:?}", miette::Report::new(*e)));
            manager = manager.with_target(target);
        }
        let report = manager
            .run(&mut model, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
        if text.lines().any(|l| l.trim() == "// check: same-outputs") {
            qc_tests::assert_same_outputs(&before, &model);
        }
        let mut snap = format!("// pipeline: {}\n", manager.pipeline());
        snap.push_str(&print_model(&model, Form::Summary));
        if let Some(w) = &report.workload {
            snap.push_str("\n// workload\n");
            snap.push_str(&print_workload(w));
        }
        snap.push_str("\n// statistics\n");
        for line in report.stats_text().lines() {
            snap.push_str(&format!("// {line}\n"));
        }
        for w in &report.warnings {
            snap.push_str(&format!("// warning {}: {}\n", w.code, w.message));
        }
        insta::assert_snapshot!(snap);
    });
}
