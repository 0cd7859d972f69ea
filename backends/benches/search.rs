//! LOMA temporal mapping search ([`qc_backends::search`]): resnet18 `layer1.0.conv1` on
//! `tpu_like` with ZigZag's spatial mapping (K 32 x C 32), lpf_limit 6 (720 orderings), and
//! the two steps of each ordering alone: allocation ([`allocate`] from scratch, and the search's
//! [`Evaluator::allocate_order`] with a fresh memo) and evaluation (a prepared [`Evaluator`], and
//! the search's [`Evaluator::evaluate_order`] with reused buffers).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use qc_backends::cost::{AllocOptions, Allocator, CostOptions, EvalScratch, Evaluator, LayerCost, allocate};
use qc_backends::mapping::OperandLinks;
use qc_backends::search::{Objective, TemporalOptions, search_temporal};

#[path = "../tests/it/common.rs"]
mod common;
use common::*;

fn bench(c: &mut Criterion) {
    let (layer, acc, links) = (conv("l1conv", 64, 64, 56, 3, 1), tpu_like(), OperandLinks::default());
    let sm = spatial(&[("D1", &[("K", 32)]), ("D2", &[("C", 32)])]);
    let lpf6 = TemporalOptions::default();
    let ord = order(&[("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56), ("K", 2)]);
    let tm = allocate(&layer, &acc, &links, &sm, &ord, &AllocOptions::default()).unwrap();
    let ev = Evaluator::new(&layer, &acc, &links, &sm).unwrap();
    let cost = CostOptions::default();

    // Plain figures, independent of criterion's statistics: LOMA with and without lower-bound
    // pruning (same result, fewer orderings allocated), for growing factor limits.
    for lpf in [Some(6), Some(8), Some(10)] {
        for obj in [Objective::Energy, Objective::Latency] {
            let mut line = format!("search lpf {lpf:?} {obj:?}:");
            let mut results = Vec::new();
            for prune in [false, true] {
                let o = TemporalOptions { lpf_limit: lpf, prune, ..lpf6.clone() };
                let t = Instant::now();
                let r = search_temporal(&layer, &acc, &links, &sm, None, obj, &o).unwrap();
                let s = t.elapsed().as_secs_f64();
                line += &format!(
                    " {} {} of {} orderings allocated in {:.1} ms ({:.0}/s);",
                    if prune { "pruned" } else { "plain" },
                    r.evaluated,
                    r.space,
                    s * 1e3,
                    r.visited as f64 / s
                );
                results.push((r.order, r.cost));
            }
            assert_eq!(results[0], results[1], "pruning changed the result");
            println!("{line}");
        }
    }
    let free = TemporalOptions { lpf_limit: None, budget: Some(Duration::from_secs(1)), ..lpf6.clone() };
    let r = search_temporal(&layer, &acc, &links, &sm, None, Objective::Latency, &free).unwrap();
    println!(
        "search no merging, 1 s: {} allocated, {} of {} orderings visited",
        r.evaluated, r.visited, r.space
    );

    c.bench_function("search_lpf6_l1conv_tpu_like", |b| {
        b.iter(|| search_temporal(&layer, &acc, &links, &sm, None, Objective::Latency, &lpf6).unwrap())
    });
    c.bench_function("allocate_l1conv_tpu_like", |b| {
        b.iter(|| {
            allocate(&layer, &acc, &links, &sm, std::hint::black_box(&ord), &AllocOptions::default()).unwrap()
        })
    });
    let names: Vec<String> = ev.temporal_sizes().into_iter().map(|(n, _)| n).collect();
    let idx: Vec<(usize, u64)> =
        ord.iter().map(|l| (names.iter().position(|n| *n == l.dim).unwrap(), l.size)).collect();
    c.bench_function("allocate_order_l1conv_tpu_like", |b| {
        b.iter(|| {
            // A fresh memo each time: the cost of one allocation with nothing to replay.
            let mut a = Allocator::default();
            ev.allocate_order(std::hint::black_box(&idx), &AllocOptions::default(), &mut a, None).unwrap();
            a
        })
    });
    c.bench_function("evaluator_l1conv_tpu_like", |b| {
        b.iter(|| ev.evaluate(std::hint::black_box(&tm), &cost).unwrap())
    });
    let mut alloc = Allocator::default();
    ev.allocate_order(&idx, &AllocOptions::default(), &mut alloc, None).unwrap();
    let (mut scratch, mut out) = (EvalScratch::default(), LayerCost::default());
    c.bench_function("evaluate_order_l1conv_tpu_like", |b| {
        b.iter(|| {
            ev.evaluate_order(std::hint::black_box(&idx), alloc.allocation(), &cost, &mut scratch, &mut out)
                .unwrap()
        })
    });
    c.bench_function("evaluator_new_l1conv_tpu_like", |b| {
        b.iter(|| Evaluator::new(&layer, &acc, &links, &sm).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
