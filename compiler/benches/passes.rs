//! Benchmark of the core pipeline on a generated 10,016-node transformer-like encoder with the
//! shape chains exporters emit: `infer-shapes,fold-constants,eliminate-dead` (the target is well
//! under a second). Figures are in the README.

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
    for text in ["infer-shapes", "infer-shapes,fold-constants,eliminate-dead"] {
        group.bench_function(format!("{text} (10016 nodes)"), |b| {
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

criterion_group!(benches, pipeline);
criterion_main!(benches);
