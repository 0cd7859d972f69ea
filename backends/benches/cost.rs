//! Evaluations per second of ZigZag's cost model: one mapping of resnet18 `layer1.0.conv1` on
//! `tpu_like` (the mapping ZigZag 3.9.1 picks), with a prepared [`Evaluator`] and with the
//! one-shot [`evaluate`].

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use qc_backends::arch::{
    Accelerator, ArrayDim, Direction, MemOperand, Memory, OperationalArray, Port, PortKind,
};
use qc_backends::cost::{CostOptions, Evaluator, evaluate};
use qc_backends::mapping::{OperandLinks, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::{Compute, LoopDim, LoopNest, Operand, PsumRule, Relation, Source};

type PortSpec<'a> = (&'a str, PortKind, u64, u64, &'a [(MemOperand, Direction)]);

fn memory(
    name: &str,
    size_bits: u64,
    r: f64,
    w: f64,
    ops: &[MemOperand],
    ports: &[PortSpec],
    served: &[usize],
) -> Memory {
    Memory {
        name: name.into(),
        size_bits,
        r_cost: r,
        w_cost: w,
        area: 0.0,
        latency: 1,
        operands: ops.to_vec(),
        ports: ports
            .iter()
            .map(|(n, kind, lo, hi, alloc)| Port {
                name: (*n).into(),
                kind: *kind,
                bw_min: *lo,
                bw_max: *hi,
                allocation: alloc.to_vec(),
            })
            .collect(),
        served_dims: served.to_vec(),
        double_buffering: false,
    }
}

fn tpu_like() -> Accelerator {
    use Direction::{FromHigh as FH, FromLow as FL, ToHigh as TH, ToLow as TL};
    use MemOperand::{I1, I2, O};
    use PortKind::{Read as R, ReadWrite as RW, Write as W};
    Accelerator {
        name: "tpu_like".into(),
        array: OperationalArray {
            dims: vec![ArrayDim { name: "D1".into(), size: 32 }, ArrayDim { name: "D2".into(), size: 32 }],
            mac_energy: 0.04,
            mac_area: 1.0,
            input_precision: None,
            systolic_dims: vec![],
        },
        memories: vec![
            memory(
                "rf_128B",
                1024,
                0.095,
                0.095,
                &[I2],
                &[("r", R, 8, 8, &[(I2, TL)]), ("w", W, 8, 8, &[(I2, FH)])],
                &[],
            ),
            memory(
                "rf_2B",
                16,
                0.021,
                0.021,
                &[O],
                &[
                    ("r1", R, 16, 16, &[(O, TL)]),
                    ("r2", R, 16, 16, &[(O, TH)]),
                    ("w1", W, 16, 16, &[(O, FH)]),
                    ("w2", W, 16, 16, &[(O, FL)]),
                ],
                &[],
            ),
            memory(
                "sram_2MB",
                16777216,
                416.16,
                378.4,
                &[I1, O],
                &[
                    ("r", R, 64, 2048, &[(I1, TL), (O, TL), (O, TH)]),
                    ("w", W, 64, 2048, &[(I1, FH), (O, FH), (O, FL)]),
                ],
                &[0, 1],
            ),
            memory(
                "dram",
                10000000000,
                700.0,
                750.0,
                &[I1, I2, O],
                &[(
                    "rw",
                    RW,
                    64,
                    64,
                    &[(I1, FH), (I1, TL), (I2, FH), (I2, TL), (O, FH), (O, TL), (O, FL), (O, TH)],
                )],
                &[0, 1],
            ),
        ],
    }
}

fn operand(role: &str, index: &[&str], precision: u32) -> Operand {
    Operand {
        role: role.into(),
        index: index.iter().map(|s| (*s).to_string()).collect(),
        precision: Some(precision),
        quant: None,
        source: Source::Other,
        value: role.into(),
    }
}

fn l1conv() -> LoopNest {
    let rel = |n: &str, o: &str, f: &str| Relation {
        name: n.into(),
        terms: vec![(1, o.into()), (1, f.into())],
        offset: -1,
        extent: 56,
        padding: (1, 1),
    };
    LoopNest {
        name: "layer1.0.conv1".into(),
        id: 0,
        op_type: "Conv".into(),
        compute: Compute::Mac,
        dims: [("B", 1), ("K", 64), ("G", 1), ("OX", 56), ("OY", 56), ("C", 64), ("FX", 3), ("FY", 3)]
            .iter()
            .map(|(n, s)| LoopDim { name: (*n).into(), size: *s })
            .collect(),
        output: operand("O", &["b", "g", "k", "oy", "ox"], 8),
        inputs: vec![
            operand("W", &["g", "k", "c", "fy", "fx"], 8),
            operand("I", &["b", "g", "c", "iy", "ix"], 8),
        ],
        relations: vec![rel("ix", "ox", "fx"), rel("iy", "oy", "fy")],
        psum_precision: Some(16),
        psum_rule: PsumRule::TwiceActivation,
    }
}

fn lv(l: &[(&str, u64)]) -> Vec<TemporalLoop> {
    l.iter().map(|(d, s)| TemporalLoop { dim: (*d).into(), size: *s }).collect()
}

fn mapping() -> (SpatialMapping, TemporalMapping) {
    let sm = SpatialMapping {
        dims: vec![("D1".into(), vec![("K".into(), 32)]), ("D2".into(), vec![("C".into(), 32)])],
    };
    let all = [("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56), ("K", 2)];
    let tm = TemporalMapping {
        operands: vec![
            ("O".into(), vec![lv(&all[..3]), lv(&all[3..]), vec![]]),
            ("W".into(), vec![lv(&all), vec![]]),
            ("I".into(), vec![lv(&all), vec![]]),
        ],
    };
    (sm, tm)
}

fn bench(c: &mut Criterion) {
    let (layer, acc, links) = (l1conv(), tpu_like(), OperandLinks::default());
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
