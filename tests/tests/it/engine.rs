//! The engine as a library (`qc_backends::network`, `qc_backends::report`): evaluating a workload
//! through the typed API and building the reports from its results gives what `qc evaluate`
//! writes, byte for byte (JSON and HTML; the search's wall time aside), so a front end other
//! than the CLI reports the same numbers.

use qc_backends::network::{EvaluateOptions, Evaluation, Prepared, SearchSettings, evaluate};
use qc_backends::report::{AcceleratorSource, ReportContext, evaluation_designs, evaluation_json, html};
use qc_tests::qc;

use super::evaluate::{ACCELERATOR, MAPPING, WORKLOAD};

fn lower(model: &str) -> qc::lower::Lowered {
    qc::lower::workload(&qc::lower::WorkloadArgs {
        model: model.into(),
        default_precision: None,
        no_mmap: false,
        psum_bits: None,
        shapes: Default::default(),
        shape_errors: Default::default(),
    })
    .unwrap()
}

/// The JSON without the search's and the bounds' wall times and the search's rate, which differ
/// between two runs.
fn timeless(json: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    if let Some(s) = v["search"].as_object_mut() {
        s.remove("seconds");
        s.remove("orderings_per_second");
    }
    if let Some(b) = v["bound"].as_object_mut() {
        b.remove("seconds");
    }
    v
}

#[test]
fn a_fixed_mapping_reports_what_the_cli_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str, t: &str| {
        let path = dir.path().join(n);
        std::fs::write(&path, t).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (w, a, m) = (p("gemm.yaml", WORKLOAD), p("acc.yaml", ACCELERATOR), p("map.yaml", MAPPING));
    let lowered = lower(&w);
    let acc = qc_backends::zigzag::read_accelerator_yaml(ACCELERATOR, &a).unwrap();
    let map = qc_backends::zigzag::read_mapping_yaml(MAPPING, &m).unwrap();
    let prepared = Prepared::new(&lowered.workload, true, false, &|_| None);
    let opts = EvaluateOptions { search: None, ..EvaluateOptions::default() };
    let e: Evaluation = evaluate(&prepared, acc, &map, &opts, &|_| {}).unwrap();
    let cx = ReportContext {
        workload: &w,
        skipped: &prepared.skipped,
        not_lowered: &lowered.workload.not_lowered,
        assumed: &[],
        split: None,
        optimized: &[],
        budget_text: None,
        mapping_given: true,
    };
    let source = AcceleratorSource { kind: "file".into(), default_note: None };
    let designs = [(&e, &source)];

    let args = ["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--fixed-mapping"];
    let (code, json, err) = qc(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(timeless(&evaluation_json(&designs, &opts, &cx)), timeless(&json));
    let (code, page, err) = qc(&[&args[..], &["--format", "html"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(html(&evaluation_designs(&designs, &opts, &cx)), page);
    assert!((e.total().energy - 511_349.76).abs() < 1e-6 && e.total().latency == 8191.0);
}

#[test]
fn a_search_on_an_onnx_model_reports_what_the_cli_writes() {
    let model = format!("{}/../examples/tiny_qonnx.onnx", env!("CARGO_MANIFEST_DIR"));
    let lowered = lower(&model);
    let acc = qc::accelerators::resolve_accelerator(None).unwrap().0;
    let prepared = Prepared::new(&lowered.workload, false, false, &|_| None);
    let search = SearchSettings { lpf_limit: Some(5), ..SearchSettings::default() };
    let opts = EvaluateOptions { search: Some(search), ..EvaluateOptions::default() };
    let map = qc_backends::network::default_mapping();
    let e = evaluate(&prepared, acc, &map, &opts, &|_| {}).unwrap();
    assert!(!e.layers.is_empty() && e.layers.iter().all(|l| l.search.is_some()));
    let cx = ReportContext {
        workload: &model,
        skipped: &prepared.skipped,
        not_lowered: &lowered.workload.not_lowered,
        assumed: &lowered.assumed,
        split: None,
        optimized: &[],
        budget_text: None,
        mapping_given: false,
    };
    let source = AcceleratorSource {
        kind: "built-in default".into(),
        default_note: Some(qc::accelerators::source_of(None)),
    };
    let designs = [(&e, &source)];

    let args = ["evaluate", &model, "--lpf-limit", "5", "--quiet"];
    let (code, json, err) = qc(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(timeless(&evaluation_json(&designs, &opts, &cx)), timeless(&json));
    let v = timeless(&json);
    assert_eq!(v["total"]["energy"].as_f64(), Some(e.total().energy));
    assert_eq!(v["total"]["latency"].as_f64(), Some(e.total().latency));
    let (code, page, err) = qc(&[&args[..], &["--format", "html"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(html(&evaluation_designs(&designs, &opts, &cx)), page);
}
