//! What the fuzz targets check (`fuzz/fuzz_targets/*.rs` call these functions, and the
//! `fuzz_regressions` test replays the saved inputs of `fuzz/regressions/<target>/` through
//! them on every `cargo test`). Each returns normally for any input qc handles, accepted or
//! refused with a diagnostic, and panics on a finding: a panic inside qc, or a broken promise
//! (a printed or exported form that does not read back the same, a pass leaving an invalid IR).

use bytes::Bytes;
use prost::Message;
use qc::load::{LoadOptions, load_bytes};
use qc_backends::explore::{ExploreOptions, search_workload};
use qc_backends::search::{Objective, TemporalOptions};
use qc_backends::spatial::SpatialOptions;
use qc_backends::zigzag::{
    read_accelerator_yaml, read_mapping_yaml, read_workload_yaml, write_workload_yaml,
};
use qc_ir::text::{Form, parse_model, parse_workload, print_model, print_workload};
use qc_ir::{LoopNest, Model, verify_model};
use qc_passes::{ManagerError, ManagerOptions, PassManager, Pipeline};

/// What a fuzz target checks of one input (panics on a finding).
pub type Check = fn(&[u8]);

/// The fuzz targets, by name (the names of `fuzz/fuzz_targets/*.rs` and of the regression
/// folders).
pub const TARGETS: [(&str, Check); 3] = [("load", load), ("text", text), ("zigzag", zigzag)];

/// `load`: decode, import, verify and inspect arbitrary bytes as an ONNX model; an input that
/// loads must export to bytes that load again and re-export to the same bytes.
pub fn load(data: &[u8]) {
    let opts = LoadOptions { mmap: false };
    let Ok(loaded) = load_bytes(Bytes::copy_from_slice(data), "fuzz.onnx", None, opts) else { return };
    let _ = qc::inspect::render_text(&qc::inspect::inspect(&loaded, "fuzz.onnx"));
    let once = qc::onnx::export_model(&loaded.model).encode_to_vec();
    let again = load_bytes(Bytes::from(once.clone()), "fuzz.onnx", None, opts)
        .expect("an exported model loads again");
    let twice = qc::onnx::export_model(&again.model).encode_to_vec();
    assert_eq!(once, twice, "export is not stable");
}

/// The pipelines the `text` target runs on every valid model: `qc optimize`'s default, the
/// lowering `qc lower` and `qc evaluate` run, and `qc cost`'s preprocessing.
const TEXT_PIPELINES: [&str; 3] =
    [qc_passes::registry::DEFAULT_PIPELINE, qc::lower::LOWER_PIPELINE, qc_passes::cost::PREPROCESS];

/// `text`: arbitrary UTF-8 as the textual IR. A workload (loop-nest text) that parses must print
/// and parse back the same; a model that parses must too, and when it verifies, every pipeline
/// of [`TEXT_PIPELINES`] runs on it with verification after each pass (an error is fine, an
/// invalid IR is a finding); a lowered workload must print back the same and its ZigZag YAML
/// must read back.
pub fn text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(w) = parse_workload(text) {
        workload_round_trip(&w);
    }
    let Ok(model) = parse_model(text) else { return };
    let printed = print_model(&model, Form::Full);
    let again =
        parse_model(&printed).unwrap_or_else(|e| panic!("printed model does not parse: {e}\n{printed}"));
    assert_eq!(print_model(&again, Form::Full), printed, "model text round trip");
    if !verify_model(&model).is_empty() {
        return;
    }
    for pipeline in TEXT_PIPELINES {
        let mut m: Model = model.clone();
        let p = Pipeline::parse(pipeline).expect("a built-in pipeline parses");
        let options = ManagerOptions { verify_each: true, stop_after: None };
        match PassManager::new(p, options).expect("a built-in pipeline").run(&mut m, &mut |_, _| {}) {
            Ok(report) => {
                if let Some(w) = &report.workload {
                    workload_round_trip(w);
                    let yaml = write_workload_yaml(w);
                    if let Err(e) = read_workload_yaml(&yaml, "lowered.yaml") {
                        panic!("qc's own ZigZag YAML does not read back: {e}\n{yaml}");
                    }
                }
            }
            Err(e @ ManagerError::BrokeIr { .. }) => panic!("{pipeline}: {:?}", miette::Report::new(e)),
            Err(_) => {}
        }
    }
}

fn workload_round_trip(w: &qc_ir::Workload) {
    let printed = print_workload(w);
    let again = parse_workload(&printed)
        .unwrap_or_else(|e| panic!("printed workload does not parse: {e}\n{printed}"));
    assert_eq!(print_workload(&again), printed, "workload text round trip");
}

/// The line that separates the documents of a `zigzag` input.
pub const ZIGZAG_SEPARATOR: &str = "\n#%%\n";

/// `zigzag`: up to three YAML documents separated by [`ZIGZAG_SEPARATOR`], an accelerator, a
/// mapping file and a workload, each read by qc's ZigZag reader (an empty or missing part takes
/// the small built-in one: [`crate::fixtures::SMALL_NPU`], a lone `default` entry,
/// [`crate::fixtures::SMALL_NET`]). A workload that reads must write back to YAML that reads to
/// the same; when all three read, a small mapping search runs on the first layers (errors are
/// fine: they are diagnostics).
pub fn zigzag(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, ZIGZAG_SEPARATOR).map(|p| (!p.trim().is_empty()).then_some(p));
    let acc = parts.next().flatten().unwrap_or(crate::fixtures::SMALL_NPU);
    let map = parts.next().flatten().unwrap_or("- name: default\n");
    let net = parts.next().flatten().unwrap_or(crate::fixtures::SMALL_NET);
    let acc = read_accelerator_yaml(acc, "accelerator.yaml");
    let map = read_mapping_yaml(map, "mapping.yaml");
    let net = read_workload_yaml(net, "workload.yaml");
    if let Ok(w) = &net {
        let yaml = write_workload_yaml(w);
        let again = read_workload_yaml(&yaml, "written.yaml")
            .unwrap_or_else(|e| panic!("qc's own ZigZag YAML does not read back: {e}\n{yaml}"));
        assert_eq!(write_workload_yaml(&again), yaml, "workload YAML round trip");
    }
    let (Ok(acc), Ok(map), Ok(net)) = (acc, map, net) else { return };
    let layers: Vec<&LoopNest> = net.layers.iter().take(3).collect();
    let opts = ExploreOptions {
        objective: Objective::Energy,
        spatial: SpatialOptions { count: Some(2), mixed: false },
        temporal: TemporalOptions { lpf_limit: Some(4), max_evaluations: Some(200), ..Default::default() },
        jobs: Some(1),
        onnx_dim_order: false,
        budget: None,
    };
    let _ = search_workload(&layers, &[&acc], &map, &opts, &|_| {});
}
