//! Conformance of the reference evaluator (`qc_passes::eval`) against the ONNX backend node
//! tests: every test whose model loads and uses only the issue-3 ops is run on its data sets,
//! and each output is compared with `output_K.pb` (floats within 1e-4 absolute plus 1e-4
//! relative, NaN equal to NaN; integers, bools and strings exactly; dims and types exactly).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use qc_passes::eval::{Array, Data, Domain, run_graph};

/// Why an output differs from the expected one, or `None` when it matches.
fn compare(got: &Array, want: &Array) -> Option<String> {
    if got.elem != want.elem {
        return Some(format!("type {} instead of {}", got.elem, want.elem));
    }
    if got.dims != want.dims {
        return Some(format!("dims {:?} instead of {:?}", got.dims, want.dims));
    }
    match want.domain() {
        Ok(Domain::Float) => {
            let (g, w) = (got.to_f64().ok()?, want.to_f64().ok()?);
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                let same = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-4 + 1e-4 * b.abs();
                if !same {
                    return Some(format!("element {i}: {a} instead of {b}"));
                }
            }
            None
        }
        Ok(Domain::Str) => match (&got.data, &want.data) {
            (Data::Str(g), Data::Str(w)) if g == w => None,
            _ => Some("strings differ".into()),
        },
        _ => {
            let (g, w) = (got.to_i128().ok()?, want.to_i128().ok()?);
            g.iter()
                .zip(&w)
                .position(|(a, b)| a != b)
                .map(|i| format!("element {i}: {} instead of {}", g[i], w[i]))
        }
    }
}

/// Runs one test case; `Err` carries a one-line reason.
fn run_case(case: &qc_tests::BackendCase, model: &qc_ir::Model) -> Result<(), String> {
    let g = &model.graph;
    let free: Vec<String> =
        g.inputs.iter().filter(|v| g.value(**v).init.is_none()).map(|v| g.value(*v).name.clone()).collect();
    let empty = qc_ir::Model::default();
    for ds in &case.data_sets {
        let in_files = qc_tests::BackendCase::tensor_files(ds, "input_");
        let out_files = qc_tests::BackendCase::tensor_files(ds, "output_");
        let mut inputs = Vec::new();
        for (name, f) in free.iter().zip(&in_files) {
            let t = qc_tests::BackendCase::read_tensor(f)
                .ok_or_else(|| format!("{} is not a tensor", f.display()))?;
            let a = Array::from_tensor(&t, &empty).map_err(|e| format!("input {name}: {e}"))?;
            inputs.push((name.clone(), a));
        }
        let outs = run_graph(model, &inputs).map_err(|e| e.to_string())?;
        if outs.len() < out_files.len() {
            return Err(format!("{} outputs instead of {}", outs.len(), out_files.len()));
        }
        for (k, f) in out_files.iter().enumerate() {
            let t = qc_tests::BackendCase::read_tensor(f)
                .ok_or_else(|| format!("output_{k}.pb is not a tensor"))?;
            let want = Array::from_tensor(&t, &empty).map_err(|e| format!("output_{k}.pb: {e}"))?;
            if let Some(why) = compare(&outs[k].1, &want) {
                return Err(format!("output {k} ({}): {why}", outs[k].0));
            }
        }
    }
    Ok(())
}

#[test]
fn evaluator_matches_the_onnx_backend_node_tests() {
    let Some(shared) = qc_tests::shared_or_say("eval_conformance") else { return };
    let start = Instant::now();
    let cases = qc_tests::backend_node_cases(&shared);
    let mut denominator = 0;
    let mut passed = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let Ok(loaded) = qc::load::load(&case.model, Default::default()) else { continue };
        if !qc_tests::uses_only_issue3_ops(&loaded.model) {
            continue;
        }
        denominator += 1;
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| run_case(case, &loaded.model)))
            .unwrap_or_else(|_| Err("the evaluator panicked".into()));
        match r {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("{}: {why}", case.name)),
        }
    }
    let elapsed = start.elapsed();
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    let pct = 100.0 * passed as f64 / denominator.max(1) as f64;
    eprintln!(
        "eval_conformance: {passed} of {denominator} node tests pass ({pct:.1}%), {} fail, in {:.1} s",
        failures.len(),
        elapsed.as_secs_f64()
    );
    assert_eq!(denominator, 1019, "the issue-3 denominator changed");
    assert!(passed >= 1011, "the pass count fell below the recorded floor");
}

/// Issue 19's node tests (If, Loop, Scan, LSTM, GRU, RNN; `qc_tests::ISSUE19_PREFIXES`), run
/// the same way. The failures are the sequence- and optional-typed control-flow tests, which the
/// evaluator refuses with an error naming the unsupported op or value.
#[test]
fn evaluator_runs_the_control_flow_and_recurrent_node_tests() {
    let Some(shared) = qc_tests::shared_or_say("eval_conformance") else { return };
    let cases = qc_tests::issue19_cases(&shared);
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let r = match qc::load::load(&case.model, Default::default()) {
            Err(e) => Err(format!("does not load: {e}")),
            Ok(loaded) => std::panic::catch_unwind(AssertUnwindSafe(|| run_case(case, &loaded.model)))
                .unwrap_or_else(|_| Err("the evaluator panicked".into())),
        };
        match r {
            Ok(()) => passed.push(case.name.clone()),
            Err(why) => failures.push(format!("{}: {why}", case.name)),
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    eprintln!("issue-19 eval conformance: {} of {} node tests pass", passed.len(), cases.len());
    assert_eq!(cases.len(), ISSUE19_CASES, "the issue-19 node tests changed");
    assert_eq!(passed.len(), ISSUE19_EVAL_PASS, "passing: {passed:?}");
    assert!(failures.iter().all(|f| !f.contains("panicked")), "{failures:?}");
}

/// Issue 19's node tests in `shared`, and how many the evaluator passes.
const ISSUE19_CASES: usize = 22;
const ISSUE19_EVAL_PASS: usize = 18;

/// The issue-19 ops (`qc_tests::ISSUE19_OPS`) through the evaluator: every node test that uses
/// one of them and otherwise only issue-3 ops, with an exact pass count.
#[test]
fn evaluator_matches_the_issue19_node_tests() {
    let Some(shared) = qc_tests::shared_or_say("eval_conformance") else { return };
    let (mut denominator, mut passed) = (0, 0);
    for case in &qc_tests::backend_node_cases(&shared) {
        let Ok(loaded) = qc::load::load(&case.model, Default::default()) else { continue };
        if !qc_tests::uses_issue19_ops(&loaded.model) {
            continue;
        }
        denominator += 1;
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| run_case(case, &loaded.model)))
            .unwrap_or_else(|_| Err("the evaluator panicked".into()));
        match r {
            Ok(()) => passed += 1,
            Err(why) => eprintln!("FAIL {}: {why}", case.name),
        }
    }
    eprintln!("eval_conformance (issue 19): {passed} of {denominator} node tests pass");
    assert_eq!((passed, denominator), (ISSUE19_PASS, ISSUE19_DENOMINATOR));
}

/// The issue-19 figures: node tests counted, and those the evaluator passes.
const ISSUE19_DENOMINATOR: usize = 54;
const ISSUE19_PASS: usize = 54;

fn scalar(v: f64) -> Array {
    Array::scalar_f32(v as f32)
}

fn qonnx_op(op_type: &str, case: &serde_json::Value, attrs: &[&str]) -> qc_ir::Op {
    let mut op = qc_ir::Op::new(op_type, Some("qonnx.custom_op.general".into()));
    for &a in attrs {
        let v = &case[a];
        let value = match v.as_str() {
            Some(s) => qc_ir::AttrValue::String(bytes::Bytes::from(s.to_string())),
            None => qc_ir::AttrValue::Int(v.as_i64().unwrap_or(0)),
        };
        op = op.with_attr(a, value);
    }
    op
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN) as f32).collect())
        .unwrap_or_default()
}

/// The evaluator's QONNX `Quant`, `BipolarQuant` and `Trunc` agree bit for bit with the vectors
/// made by qonnx's own reference functions (`shared/qonnx-golden`).
#[test]
fn qonnx_ops_match_the_golden_vectors() {
    let Some(shared) = qc_tests::shared_or_say("eval_conformance") else { return };
    let text = std::fs::read_to_string(shared.join("qonnx-golden/quant_golden_vectors.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let x = floats(&d["x"]);
    let xa = Array::from_f32(vec![x.len()], x.clone()).unwrap();
    let tx = floats(&d["trunc_x"]);
    let ta = Array::from_f32(vec![tx.len()], tx.clone()).unwrap();
    let mut checked = 0;
    let mut check = |name: String, op: qc_ir::Op, ins: Vec<Array>, want: Vec<f32>| {
        let refs: Vec<Option<&Array>> = ins.iter().map(Some).collect();
        let got = qc_passes::eval::eval_op(&op, &refs, 13).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = got[0].to_f64().unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(*g as f32 == *w, "{name}: element {i} is {g}, the oracle says {w}");
        }
        checked += 1;
    };
    for c in d["int_quant"].as_array().unwrap() {
        let op = qonnx_op("Quant", c, &["signed", "narrow", "rounding_mode"]);
        let ins = vec![
            xa.clone(),
            scalar(c["scale"].as_f64().unwrap()),
            scalar(c["zeropt"].as_f64().unwrap()),
            scalar(c["bitwidth"].as_f64().unwrap()),
        ];
        check(format!("Quant {c}"), op, ins, floats(&c["y"]));
    }
    for c in d["bipolar_quant"].as_array().unwrap() {
        let op = qonnx_op("BipolarQuant", c, &[]);
        check(
            format!("BipolarQuant {c}"),
            op,
            vec![xa.clone(), scalar(c["scale"].as_f64().unwrap())],
            floats(&c["y"]),
        );
    }
    for c in d["trunc_v1"].as_array().unwrap() {
        let op = qonnx_op("Trunc", c, &["rounding_mode"]);
        let ins = vec![
            ta.clone(),
            scalar(c["scale"].as_f64().unwrap()),
            scalar(c["zeropt"].as_f64().unwrap()),
            scalar(c["in_bitwidth"].as_f64().unwrap()),
            scalar(c["out_bitwidth"].as_f64().unwrap()),
        ];
        check(format!("Trunc v1 {c}"), op, ins, floats(&c["y"]));
    }
    for c in d["trunc_v2"].as_array().unwrap() {
        let op = qonnx_op("Trunc", c, &["rounding_mode", "signed", "narrow"]);
        let ins = vec![
            ta.clone(),
            scalar(c["scale"].as_f64().unwrap()),
            scalar(c["zeropt"].as_f64().unwrap()),
            scalar(c["in_bitwidth"].as_f64().unwrap()),
            scalar(c["out_scale"].as_f64().unwrap()),
            scalar(c["out_bitwidth"].as_f64().unwrap()),
        ];
        check(format!("Trunc v2 {c}"), op, ins, floats(&c["y"]));
    }
    eprintln!("qonnx golden vectors: {checked} cases match");
    assert!(checked > 900);
}
