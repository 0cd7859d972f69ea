//! Conformance of `infer-shapes` against the ONNX backend node tests.
//!
//! For every node test whose model loads and uses only the issue-3 ops, the values of the first
//! data set's `input_*.pb` are bound as initializers of the graph inputs, the declared types of
//! every other value (graph outputs and `value_info`) are erased, `InferShapes` runs, and the
//! inferred element type and dimensions of each graph output are compared with the
//! `output_*.pb` tensors. A symbolic or unknown dimension counts as a disagreement.

use std::time::Instant;

use qc_ir::{Const, Dim, ValueType};
use qc_passes::passes::infer_shapes::InferShapes;
use qc_passes::{Pass, PassContext};
use qc_tests::BackendCase;

/// Agreeing cases reached when this floor was set; the suite fails if fewer agree.
const FLOOR: usize = 1017;

#[test]
fn shape_conformance() {
    let Some(shared) = qc_tests::shared_or_say("shape_conformance") else { return };
    let start = Instant::now();
    let mut denominator = 0usize;
    let mut agree = 0usize;
    let mut disagreements: Vec<(String, String)> = Vec::new();
    for case in qc_tests::backend_node_cases(&shared) {
        let Ok(loaded) = qc::load::load(&case.model, Default::default()) else { continue };
        let mut model = loaded.model;
        if !qc_tests::uses_only_issue3_ops(&model) {
            continue;
        }
        denominator += 1;
        match check_case(&case, &mut model) {
            Ok(()) => agree += 1,
            Err(why) => disagreements.push((case.name.clone(), why)),
        }
    }
    let elapsed = start.elapsed();
    for (name, why) in &disagreements {
        eprintln!("disagree {name}: {why}");
    }
    let pct = if denominator == 0 { 0.0 } else { 100.0 * agree as f64 / denominator as f64 };
    eprintln!(
        "shape_conformance: {agree} of {denominator} node tests agree ({pct:.1}%), {} disagree, in {:.2?}",
        disagreements.len(),
        elapsed
    );
    assert!(denominator > 1000, "the denominator is {denominator}");
    assert!(agree >= FLOOR, "{agree} agree, below the floor of {FLOOR}");
}

/// Issue 19's node tests (If, Loop, Scan, LSTM, GRU, RNN; `qc_tests::ISSUE19_PREFIXES`),
/// checked the same way.
#[test]
fn shape_conformance_of_control_flow_and_recurrent_ops() {
    let Some(shared) = qc_tests::shared_or_say("shape_conformance") else { return };
    let cases = qc_tests::issue19_cases(&shared);
    let mut agree = Vec::new();
    for case in &cases {
        let r = match qc::load::load(&case.model, Default::default()) {
            Err(e) => Err(format!("does not load: {e}")),
            Ok(loaded) => check_case(case, &mut { loaded.model }),
        };
        match r {
            Ok(()) => agree.push(case.name.clone()),
            Err(why) => eprintln!("disagree {}: {why}", case.name),
        }
    }
    eprintln!("issue-19 shape conformance: {} of {} node tests agree", agree.len(), cases.len());
    assert_eq!(cases.len(), 22, "the issue-19 node tests changed");
    assert_eq!(agree.len(), ISSUE19_CONTROL_AGREE, "agreeing: {agree:?}");
}

/// Issue 19's node tests whose outputs shape inference gets exactly.
const ISSUE19_CONTROL_AGREE: usize = 18;

/// The issue-19 ops (`qc_tests::ISSUE19_OPS`) through `infer-shapes`, with an exact count.
#[test]
fn shape_conformance_issue19() {
    let Some(shared) = qc_tests::shared_or_say("shape_conformance") else { return };
    let (mut denominator, mut agree) = (0usize, 0usize);
    for case in qc_tests::backend_node_cases(&shared) {
        let Ok(loaded) = qc::load::load(&case.model, Default::default()) else { continue };
        let mut model = loaded.model;
        if !qc_tests::uses_issue19_ops(&model) {
            continue;
        }
        denominator += 1;
        match check_case(&case, &mut model) {
            Ok(()) => agree += 1,
            Err(why) => eprintln!("disagree {}: {why}", case.name),
        }
    }
    eprintln!("shape_conformance (issue 19): {agree} of {denominator} node tests agree");
    assert_eq!((agree, denominator), (ISSUE19_AGREE, ISSUE19_DENOMINATOR));
}

/// The issue-19 figures: node tests counted, and those shape inference agrees with.
const ISSUE19_DENOMINATOR: usize = 54;
const ISSUE19_AGREE: usize = 54;

fn check_case(case: &BackendCase, model: &mut qc_ir::Model) -> Result<(), String> {
    let data_set = case.data_sets.first().ok_or("no data set")?;
    let inputs = BackendCase::tensor_files(data_set, "input_");
    let outputs = BackendCase::tensor_files(data_set, "output_");
    let g = &mut model.graph;
    // Bind the inputs: by name when the tensor is named after a graph input, else by position.
    let graph_inputs: Vec<_> = g.inputs.iter().copied().filter(|v| g.value(*v).init.is_none()).collect();
    for (k, path) in inputs.iter().enumerate() {
        let tensor =
            BackendCase::read_tensor(path).ok_or_else(|| format!("input {k} is not a plain tensor"))?;
        let by_name =
            tensor.name.as_deref().and_then(|n| graph_inputs.iter().copied().find(|v| g.value(*v).name == n));
        let Some(v) = by_name.or_else(|| graph_inputs.get(k).copied()) else {
            return Err(format!("input {k} has no graph input"));
        };
        g.value_mut(v).init = Some(Const::Dense(Box::new(tensor)));
        if !g.initializers.contains(&v) {
            g.initializers.push(v);
        }
    }
    // Erase what the model declares about every non-input value.
    let declared: Vec<_> = g.outputs.iter().chain(&g.value_info).copied().collect();
    for v in declared {
        if !g.inputs.contains(&v) {
            g.value_mut(v).ty = None;
        }
    }
    let mut cx = PassContext::default();
    InferShapes.run(model, &mut cx).map_err(|e| e.to_string())?;
    let g = &model.graph;
    if outputs.len() != g.outputs.len() {
        return Err(format!("{} output files for {} graph outputs", outputs.len(), g.outputs.len()));
    }
    for (k, path) in outputs.iter().enumerate() {
        let expected =
            BackendCase::read_tensor(path).ok_or_else(|| format!("output {k} is not a plain tensor"))?;
        let v = g.value(g.outputs[k]);
        let warnings = || {
            let w: Vec<String> = cx.warnings.iter().map(|w| format!("[{}] {}", w.code, w.message)).collect();
            if w.is_empty() { String::new() } else { format!(" ({})", w.join("; ")) }
        };
        let Some(ValueType::Tensor { elem, shape }) = v.ty.as_ref().and_then(|t| t.ty.as_ref()) else {
            return Err(format!("output `{}` was not inferred{}", v.name, warnings()));
        };
        if *elem != expected.elem {
            return Err(format!(
                "output `{}`: elem {} inferred, {} expected",
                v.name,
                elem.map_or("?".into(), |e| e.name()),
                expected.elem.map_or("?".into(), |e| e.name())
            ));
        }
        let Some(shape) = shape else {
            return Err(format!("output `{}`: shape not inferred{}", v.name, warnings()));
        };
        let want: Vec<Dim> = expected.dims.iter().map(|&d| Dim::Known(d as u64)).collect();
        if shape.dims != want {
            return Err(format!(
                "output `{}`: shape {shape} inferred, {:?} expected{}",
                v.name,
                expected.dims,
                warnings()
            ));
        }
    }
    Ok(())
}
