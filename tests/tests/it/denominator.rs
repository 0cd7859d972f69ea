//! Prints and checks the conformance denominator shared by the shape-inference and evaluator
//! suites: the ONNX backend node tests whose ops are all in `qc_tests::ISSUE3_OPS`.

#[test]
fn issue3_denominator() {
    let Some(shared) = qc_tests::shared_or_say("denominator") else { return };
    let cases = qc_tests::backend_node_cases(&shared);
    let mut n = 0;
    for c in &cases {
        let Ok(loaded) = qc::load::load(&c.model, Default::default()) else { continue };
        if qc_tests::uses_only_issue3_ops(&loaded.model) {
            n += 1;
        }
    }
    eprintln!("{} node tests, {n} use only the issue-3 ops", cases.len());
    assert!(cases.len() > 1000 && n > 500);
}
