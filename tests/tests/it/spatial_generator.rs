//! qc's spatial mapping generator (`qc_backends::spatial::generate`) against ZigZag 3.9.1's.
//!
//! `spatial_generator.txt` is the output of `bench/spatial_candidates.py` (run with ZigZag
//! 3.9.1): per case (workload, hardware, mapping file, mixed unrolling), per layer, the spatial
//! mappings ZigZag's `SpatialMappingGeneratorStage` generates, in order. A mapping file
//! `<name>-nosm` is `<name>` with every `spatial_mapping` removed, so that the mappings are
//! generated (from the file's hints) rather than fitted. qc must give the same lists in the same
//! order, and its "every candidate" mode must start with them (its sizes for resnet18 on
//! tpu_like are printed).
//!
//! Also, every spatial mapping ZigZag chose in the recorded 3.9.1 runs
//! (`../shared/peers/zigzag-inputs/results/v391_*.summary.json`, except inter-layer data
//! locality runs) must be among qc's candidates for that layer.

use std::path::Path;

use qc_backends::arch::Accelerator;
use qc_backends::mapping::MappingFile;
use qc_backends::spatial::{SUPERSET_CAP, SpatialOptions, generate, zigzag_string};
use qc_tests::zigzag_results::{Workloads, read_with};

const ZIGZAG: &str = include_str!("spatial_generator.txt");

/// Mapping file `name` of ZigZag's `mapping` folder; `<name>-nosm` without spatial mappings.
fn mapping(inputs: &Path, name: &str) -> Result<MappingFile, String> {
    let (file, strip) = match name.strip_suffix("-nosm") {
        Some(f) => (f, true),
        None => (name, false),
    };
    let mut m: MappingFile = read_with(
        &inputs.join("mapping").join(format!("{file}.yaml")),
        qc_backends::zigzag::read_mapping_yaml,
    )?;
    if strip {
        for e in &mut m.entries {
            e.spatial = None;
        }
    }
    Ok(m)
}

#[test]
fn same_lists_as_zigzag() {
    let Some(shared) = qc_tests::shared_or_say("spatial_generator") else { return };
    let root = shared.join("peers/zigzag-inputs/zigzag/inputs");
    let mut inputs = Workloads::default();
    let mut failures: Vec<String> = Vec::new();
    let (mut cases, mut layers, mut matched) = (0, 0, 0);
    let mut lines = ZIGZAG.lines().peekable();
    while let Some(head) = lines.next() {
        let f: Vec<&str> = head.split(' ').collect();
        let [_, workload, hw, map, mixed] = f[..] else { panic!("bad case line: {head}") };
        let mixed = mixed == "mixed=1";
        cases += 1;
        let acc: Accelerator = read_with(
            &root.join("hardware").join(format!("{hw}.yaml")),
            qc_backends::zigzag::read_accelerator_yaml,
        )
        .unwrap();
        let mf = mapping(&root, map).unwrap();
        let w = inputs.get(&root.join("workload").join(format!("{workload}.onnx"))).unwrap();
        while let Some(line) = lines.next_if(|l| !l.starts_with("case ")) {
            let mut parts = line.split('\t');
            let name = parts.next().unwrap();
            let expected: Vec<&str> = parts.collect();
            layers += 1;
            let Some(layer) = w.layers.iter().find(|l| l.name == name) else {
                failures.push(format!("{head}: {name}: not in qc's workload"));
                continue;
            };
            let entry = mf.entry_for(&layer.name, &layer.op_type).unwrap();
            let got = generate(layer, &acc, entry, &SpatialOptions { count: Some(3), mixed });
            let got: Vec<String> = match got {
                Ok(g) => g.iter().map(zigzag_string).collect(),
                Err(e) => vec![format!("{:?}", miette::Report::new(e))],
            };
            if got != expected {
                failures.push(format!("{head}: {name}:\n  zigzag {expected:?}\n  qc     {got:?}"));
                continue;
            }
            let all = generate(layer, &acc, entry, &SpatialOptions { count: None, mixed }).unwrap();
            let all: Vec<String> = all.iter().map(zigzag_string).collect();
            if workload == "resnet18" && hw == "tpu_like" {
                println!("superset: {map} mixed={mixed} {name}: {} candidates", all.len());
            }
            let mut first: Vec<String> = Vec::new();
            for e in &expected {
                if !first.iter().any(|x| x == e) {
                    first.push(e.to_string());
                }
            }
            if all.len() > SUPERSET_CAP || all[..first.len().min(all.len())] != first[..] {
                failures.push(format!("{head}: {name}: the superset does not start with ZigZag's list"));
                continue;
            }
            matched += 1;
        }
    }
    println!("{cases} cases, {layers} layers, {matched} match ZigZag's lists");
    assert!(failures.is_empty(), "{} of {layers} differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn recorded_choices_are_candidates() {
    let Some(shared) = qc_tests::shared_or_say("spatial_generator") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let mut inputs = Workloads::default();
    let mut failures: Vec<String> = Vec::new();
    let mut checked = 0;
    for summary in qc_tests::files_under(&root.join("results"), ".summary.json") {
        let run =
            summary.file_name().unwrap().to_string_lossy().trim_end_matches(".summary.json").to_string();
        if !run.starts_with("v391_") || run.contains("edl") {
            continue;
        }
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        let field = |k: &str| root.join(s[k].as_str().unwrap());
        let mixed = s["extra"]["enable_mix_spatial_mapping"].as_bool().unwrap_or(false);
        let acc: Accelerator =
            read_with(&field("accel"), qc_backends::zigzag::read_accelerator_yaml).unwrap();
        let mf: MappingFile = read_with(&field("mapping"), qc_backends::zigzag::read_mapping_yaml).unwrap();
        let w = inputs.get(&field("workload")).unwrap();
        for rec in s["layers"].as_array().unwrap() {
            let name = rec["layer"].as_str().unwrap();
            let chosen = rec["spatial_mapping"].as_str().unwrap();
            let Some(layer) = w.layers.iter().find(|l| l.name == name) else {
                failures.push(format!("{run} {name}: not in qc's workload"));
                continue;
            };
            let entry = mf.entry_for(&layer.name, &layer.op_type).unwrap();
            checked += 1;
            match generate(layer, &acc, entry, &SpatialOptions { count: None, mixed }) {
                Ok(all) if all.iter().any(|m| zigzag_string(m) == chosen) => {}
                Ok(all) => failures.push(format!(
                    "{run} {name}: ZigZag chose {chosen}; qc's {} candidates start {:?}",
                    all.len(),
                    all.iter().take(3).map(zigzag_string).collect::<Vec<_>>()
                )),
                Err(e) => failures.push(format!("{run} {name}: {:?}", miette::Report::new(e))),
            }
        }
    }
    println!("{checked} recorded layers checked");
    assert!(checked > 0);
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
