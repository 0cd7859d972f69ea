//! Benchmarks of the core pipeline on a generated 10,016-node transformer-like encoder with the
//! shape chains exporters emit: `infer-shapes,fold-constants,eliminate-dead` (the target is well
//! under a second), and of `qc cost` (preprocessing and counting) on the same model and on the
//! QONNX models of `../shared/models` when present. Figures are in the README.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message;
use qc::load::{LoadOptions, load_bytes};
use qc_passes::Pipeline;
use qc_passes::manager::{ManagerOptions, PassManager};

fn pipeline(c: &mut Criterion) {
    let bytes = Bytes::from(qc::fixtures::transformer_like(313).encode_to_vec());
    let model = load_bytes(bytes, "encoder", None, LoadOptions::default()).unwrap().model;
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    for (label, text) in [
        ("infer-shapes", "infer-shapes"),
        ("infer-shapes,fold-constants,eliminate-dead", "infer-shapes,fold-constants,eliminate-dead"),
        ("default optimize pipeline", qc_passes::registry::DEFAULT_PIPELINE),
    ] {
        group.bench_function(format!("{label} (10016 nodes)"), |b| {
            b.iter_batched(
                || model.clone(),
                |mut m| {
                    let options = ManagerOptions { verify_each: false, stop_after: None };
                    let mut pm = PassManager::new(Pipeline::parse(text).unwrap(), options).unwrap();
                    black_box(pm.run(&mut m, &mut |_, _| {}).unwrap());
                    m
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn cost(c: &mut Criterion) {
    use qc_passes::cost::{CostOptions, inference_cost, preprocess};
    let mut models = vec![(
        "transformer-like, 10016 nodes".to_string(),
        load_bytes(
            Bytes::from(qc::fixtures::transformer_like(313).encode_to_vec()),
            "encoder",
            None,
            LoadOptions::default(),
        )
        .unwrap()
        .model,
    )];
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models");
    for m in [
        "qonnx-model-zoo/TFC_2W2A.onnx",
        "brevitas-radioml-challenge-21/pretrained_VGG10_w8a8_20_export.onnx",
    ] {
        if let Ok(l) = qc::load::load(&shared.join(m), LoadOptions::default()) {
            models.push((m.rsplit('/').next().unwrap_or(m).to_string(), l.model));
        }
    }
    let mut group = c.benchmark_group("cost");
    group.sample_size(10);
    for (name, model) in &models {
        group.bench_function(name.as_str(), |b| {
            b.iter_batched(
                || model.clone(),
                |mut m| {
                    let options = ManagerOptions { verify_each: false, stop_after: None };
                    preprocess(&mut m, options).unwrap();
                    black_box(inference_cost(&m, &CostOptions::default()))
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline, cost);
criterion_main!(benches);
