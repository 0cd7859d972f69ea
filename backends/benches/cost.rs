//! Evaluations per second of ZigZag's cost model: one mapping of resnet18 `layer1.0.conv1` on
//! `tpu_like` (the mapping ZigZag 3.9.1 picks), with a prepared [`Evaluator`] and with the
//! one-shot [`evaluate`].

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use qc_backends::cost::{CostOptions, Evaluator, evaluate};
use qc_backends::mapping::{OperandLinks, SpatialMapping, TemporalMapping};

#[path = "../tests/it/common.rs"]
mod common;
use common::*;

/// ZigZag's chosen mapping of resnet18 `layer1.0.conv1` on tpu_like (K 32 x C 32).
fn mapping() -> (SpatialMapping, TemporalMapping) {
    let sm = spatial(&[("D1", &[("K", 32)]), ("D2", &[("C", 32)])]);
    let all = order(&[("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56), ("K", 2)]);
    let tm = TemporalMapping {
        operands: vec![
            ("O".into(), vec![all[..3].to_vec(), all[3..].to_vec(), vec![]]),
            ("W".into(), vec![all.clone(), vec![]]),
            ("I".into(), vec![all.clone(), vec![]]),
        ],
    };
    (sm, tm)
}

fn bench(c: &mut Criterion) {
    let (layer, acc, links) = (conv("layer1.0.conv1", 64, 64, 56, 3, 1), tpu_like(), OperandLinks::default());
    let (sm, tm) = mapping();
    let opts = CostOptions::default();
    let ev = Evaluator::new(&layer, &acc, &links, &sm).unwrap();
    // A plain figure, independent of criterion's statistics.
    let n = 200_000;
    let t = Instant::now();
    let mut sink = 0.0;
    for _ in 0..n {
        sink += ev.evaluate(std::hint::black_box(&tm), &opts).unwrap().energy;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "cost::Evaluator::evaluate: {:.0} evaluations/s ({:.2} us each; checksum {sink:.3e})",
        n as f64 / s,
        s / n as f64 * 1e6
    );
    c.bench_function("evaluator_l1conv_tpu_like", |b| {
        b.iter(|| ev.evaluate(std::hint::black_box(&tm), &opts).unwrap())
    });
    c.bench_function("evaluate_l1conv_tpu_like", |b| {
        b.iter(|| evaluate(&layer, &acc, &links, &sm, std::hint::black_box(&tm), &opts).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
