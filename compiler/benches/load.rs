//! Benchmarks of the ONNX front end: decode + import + verify, export + encode, and loading a
//! model whose initializers are large (which must cost the same whatever their size, because
//! `raw_data` is never copied). Figures are in the README.

use std::hint::black_box;
use std::io::BufWriter;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use qc::fixtures;
use qc::load::{LoadOptions, load, load_bytes};

fn import_and_export(c: &mut Criterion) {
    let mut group = c.benchmark_group("front_end");
    for layers in [100usize, 3_334] {
        let bytes = Bytes::from(fixtures::deep_mlp(layers).encode_to_vec());
        let nodes = layers * 3;
        group.throughput(Throughput::Elements(nodes as u64));
        group.bench_with_input(BenchmarkId::new("load_bytes", nodes), &bytes, |b, bytes| {
            b.iter(|| load_bytes(black_box(bytes.clone()), "bench", None, LoadOptions::default()).unwrap())
        });
        let loaded = load_bytes(bytes.clone(), "bench", None, LoadOptions::default()).unwrap();
        group.bench_with_input(BenchmarkId::new("export_encode", nodes), &loaded.model, |b, m| {
            b.iter(|| qc::onnx::export_model(black_box(m)).encode_to_vec())
        });
        group.bench_with_input(BenchmarkId::new("verify", nodes), &loaded.model, |b, m| {
            b.iter(|| qc_ir::verify_model(black_box(m)))
        });
    }
    group.finish();
}

fn large_initializers(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("mmap_load");
    for mib in [64usize, 256] {
        let path = dir.path().join(format!("big{mib}.onnx"));
        let mut w = BufWriter::new(std::fs::File::create(&path).unwrap());
        fixtures::write_big_model(&mut w, mib / 16, 16 << 20).unwrap();
        drop(w);
        group.bench_with_input(BenchmarkId::new("load", format!("{mib}MiB")), &path, |b, p| {
            b.iter(|| load(black_box(p), LoadOptions::default()).unwrap())
        });
    }
    group.finish();
}

fn shared_conformance(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/onnx-backend");
    if !root.is_dir() {
        eprintln!("shared_conformance: ../shared is missing; benchmark skipped");
        return;
    }
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "onnx") {
                files.push(Bytes::from(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut group = c.benchmark_group("conformance");
    group.throughput(Throughput::Elements(files.len() as u64));
    group.bench_function(format!("load_all_{}_models", files.len()), |b| {
        b.iter(|| {
            for f in &files {
                black_box(load_bytes(f.clone(), "bench", None, LoadOptions::default()).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, import_and_export, large_initializers, shared_conformance);
criterion_main!(benches);
