//! ZigZag's cost model on accelerators built in Rust: the worked gemm check, the allocator, bad
//! mappings, pooling and element-wise layers. The comparison with every recorded ZigZag run (from
//! `../shared`) is `tests/tests/evaluate_zigzag.rs` in `qc-tests`.

use miette::Diagnostic;
use qc_backends::arch::{
    Accelerator, ArrayDim, Direction, MemOperand, Memory, OperationalArray, Port, PortKind,
};
use qc_backends::cost::{AllocOptions, CostError, CostOptions, LatencyModel, allocate, evaluate};
use qc_backends::mapping::{OperandLinks, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::{Compute, LoopDim, LoopNest, Operand, PsumRule, Relation, Source};

// ---------------------------------------------------------------- builders

type PortSpec<'a> = (&'a str, PortKind, u64, u64, &'a [(MemOperand, Direction)]);

#[allow(clippy::too_many_arguments)]
fn memory(
    name: &str,
    size_bits: u64,
    r_cost: f64,
    w_cost: f64,
    operands: &[MemOperand],
    ports: &[PortSpec],
    served_dims: &[usize],
) -> Memory {
    Memory {
        name: name.into(),
        size_bits,
        r_cost,
        w_cost,
        area: 0.0,
        latency: 1,
        operands: operands.to_vec(),
        ports: ports
            .iter()
            .map(|(n, kind, bw_min, bw_max, alloc)| Port {
                name: (*n).into(),
                kind: *kind,
                bw_min: *bw_min,
                bw_max: *bw_max,
                allocation: alloc.to_vec(),
            })
            .collect(),
        served_dims: served_dims.to_vec(),
        double_buffering: false,
    }
}

fn array(sizes: &[u64], mac_energy: f64, systolic: &[usize]) -> OperationalArray {
    OperationalArray {
        dims: sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| ArrayDim { name: format!("D{}", i + 1), size: s })
            .collect(),
        mac_energy,
        mac_area: 1.0,
        input_precision: None,
        systolic_dims: systolic.to_vec(),
    }
}

use Direction::{FromHigh as FH, FromLow as FL, ToHigh as TH, ToLow as TL};
use MemOperand::{I1, I2, O};
use PortKind::{Read as R, ReadWrite as RW, Write as W};

/// `gemm_l1.yaml`.
fn gemm_l1() -> Accelerator {
    Accelerator {
        name: "gemm_l1".into(),
        array: array(&[8, 8, 8], 0.04, &[]),
        memories: vec![
            memory(
                "reg_O",
                32,
                0.02,
                0.02,
                &[O],
                &[
                    ("w_port_1", W, 32, 32, &[(O, FH)]),
                    ("r_port_1", R, 32, 32, &[(O, TL)]),
                    ("w_port_2", W, 32, 32, &[(O, FL)]),
                    ("r_port_2", R, 32, 32, &[(O, TH)]),
                ],
                &[1],
            ),
            memory(
                "l1",
                4194304,
                22.9,
                52.01,
                &[I1, I2, O],
                &[
                    ("rw_port_1", RW, 64, 512, &[(I1, TL)]),
                    ("rw_port_2", RW, 64, 512, &[(I2, TL)]),
                    ("rw_port_3", RW, 64, 2048, &[(O, TL), (O, FL)]),
                ],
                &[0, 1, 2],
            ),
        ],
    }
}

/// `tpu_like.yaml`.
fn tpu_like() -> Accelerator {
    Accelerator {
        name: "tpu_like".into(),
        array: array(&[32, 32], 0.04, &[]),
        memories: vec![
            memory(
                "rf_128B",
                1024,
                0.095,
                0.095,
                &[I2],
                &[("r_port_1", R, 8, 8, &[(I2, TL)]), ("w_port_1", W, 8, 8, &[(I2, FH)])],
                &[],
            ),
            memory(
                "rf_2B",
                16,
                0.021,
                0.021,
                &[O],
                &[
                    ("r_port_1", R, 16, 16, &[(O, TL)]),
                    ("r_port_2", R, 16, 16, &[(O, TH)]),
                    ("w_port_1", W, 16, 16, &[(O, FH)]),
                    ("w_port_2", W, 16, 16, &[(O, FL)]),
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
                    ("r_port_1", R, 64, 2048, &[(I1, TL), (O, TL), (O, TH)]),
                    ("w_port_1", W, 64, 2048, &[(I1, FH), (O, FH), (O, FL)]),
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
                    "rw_port_1",
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
        value: role.to_lowercase(),
    }
}

fn dims(d: &[(&str, u64)]) -> Vec<LoopDim> {
    d.iter().map(|(n, s)| LoopDim { name: (*n).into(), size: *s }).collect()
}

/// `gemm_layer.yaml`: `O[d0][d1] += I[d0][d2] * W[d2][d1]`, 128^3, W/I 8 b, O 32 b (final 8 b).
fn gemm_layer() -> LoopNest {
    LoopNest {
        name: "Layer0".into(),
        id: 0,
        op_type: "Gemm".into(),
        compute: Compute::Mac,
        dims: dims(&[("D0", 128), ("D1", 128), ("D2", 128)]),
        output: operand("O", &["d0", "d1"], 8),
        inputs: vec![operand("I", &["d0", "d2"], 8), operand("W", &["d2", "d1"], 8)],
        relations: vec![],
        psum_precision: Some(32),
        psum_rule: PsumRule::Given,
    }
}

/// A resnet18 conv as ZigZag's ONNX parser lowers it.
fn conv(name: &str, k: u64, c: u64, ox: u64, fx: u64, stride: u64) -> LoopNest {
    let pad = (fx - 1) / 2;
    let rel = |n: &str, o: &str, f: &str| Relation {
        name: n.into(),
        terms: vec![(stride as i64, o.into()), (1, f.into())],
        offset: -(pad as i64),
        extent: stride * ox,
        padding: (pad, pad),
    };
    LoopNest {
        name: name.into(),
        id: 0,
        op_type: "Conv".into(),
        compute: Compute::Mac,
        dims: dims(&[("B", 1), ("K", k), ("G", 1), ("OX", ox), ("OY", ox), ("C", c), ("FX", fx), ("FY", fx)]),
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

// ---------------------------------------------------------------- mappings

/// A spatial mapping: per array dim, `(layer dim, factor)` pairs.
fn spatial(dims: &[(&str, &[(&str, u64)])]) -> SpatialMapping {
    SpatialMapping {
        dims: dims
            .iter()
            .map(|(a, u)| ((*a).into(), u.iter().map(|(d, f)| ((*d).into(), *f)).collect()))
            .collect(),
    }
}

/// Loops `(dim, size)`, innermost first.
type Loops<'a> = &'a [(&'a str, u64)];

/// A temporal mapping: per operand, per memory level, loops innermost first.
fn temporal(ops: &[(&str, &[Loops])]) -> TemporalMapping {
    TemporalMapping {
        operands: ops
            .iter()
            .map(|(role, levels)| ((*role).into(), levels.iter().map(|l| order(l)).collect()))
            .collect(),
    }
}

fn order(s: &[(&str, u64)]) -> Vec<TemporalLoop> {
    s.iter().map(|(d, n)| TemporalLoop { dim: (*d).into(), size: *n }).collect()
}

/// `|a - b| <= 1e-9 |b|`.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs()
}

// ---------------------------------------------------------------- tests

fn gemm_mapping() -> (SpatialMapping, TemporalMapping) {
    let sm = spatial(&[("D1", &[("D0", 8)]), ("D2", &[("D2", 8)]), ("D3", &[("D1", 8)])]);
    let tm = temporal(&[
        ("O", &[&[], &[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("W", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("I", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
    ]);
    (sm, tm)
}

#[test]
fn gemm_worked_check() {
    let (sm, tm) = gemm_mapping();
    let cost =
        evaluate(&gemm_layer(), &gemm_l1(), &OperandLinks::default(), &sm, &tm, &CostOptions::default())
            .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert!(close(cost.energy, 511_349.76), "energy {}", cost.energy);
    assert!(close(cost.mac_energy, 83_886.08));
    assert_eq!(cost.latency, 8191.0, "{cost:#?}");
    assert_eq!(cost.ideal_cycle, 4096);
    assert_eq!(cost.stall_slack_comb, 4094);
    assert_eq!(cost.offload, 1.0);
    // reg_O: 4 directions x 262,144 accesses.
    let o = &cost.operands[0];
    assert_eq!(o.levels[0].accesses, [262_144; 4]);
    // L1 for I: 256 reads (stationary over D1).
    assert_eq!(cost.operands[1].levels[0].accesses_in(Direction::ToLow), 256);
    assert_eq!(cost.operands[2].levels[0].accesses_in(Direction::ToLow), 4096);
    // The repository's latency model agrees here.
    let head = evaluate(
        &gemm_layer(),
        &gemm_l1(),
        &OperandLinks::default(),
        &sm,
        &tm,
        &CostOptions { latency_model: LatencyModel::Zigzag3d12a96 },
    )
    .unwrap();
    assert_eq!(head.latency, 8191.0);
}

#[test]
fn allocator_gemm_l1() {
    let (sm, _) = gemm_mapping();
    let tm = allocate(
        &gemm_layer(),
        &gemm_l1(),
        &OperandLinks::default(),
        &sm,
        &order(&[("D1", 16), ("D2", 16), ("D0", 16)]),
        &AllocOptions::default(),
    )
    .unwrap();
    // ZigZag's MemoryAllocator: reg_O (32 b) holds nothing more than one psum.
    let expected = temporal(&[
        ("O", &[&[], &[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("I", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("W", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
    ]);
    assert_eq!(tm, expected);
}

#[test]
fn allocator_tpu_like_l1conv() {
    // resnet18 layer1.0.conv1 on tpu_like, SM D1<-K 32, D2<-C 32; checked against ZigZag 3.9.1's
    // MemoryAllocator run in its venv.
    let layer = conv("l1conv", 64, 64, 56, 3, 1);
    let sm = spatial(&[("D1", &[("K", 32)]), ("D2", &[("C", 32)])]);
    let ord = order(&[("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56), ("K", 2)]);
    let tm =
        allocate(&layer, &tpu_like(), &OperandLinks::default(), &sm, &ord, &AllocOptions::default()).unwrap();
    let expected = temporal(&[
        ("O", &[&[("C", 2), ("FY", 3), ("FX", 3)], &[("OY", 56), ("OX", 56), ("K", 2)], &[]]),
        ("W", &[&[("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56), ("K", 2)], &[]]),
        ("I", &[&[("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56), ("K", 2)], &[]]),
    ]);
    assert_eq!(tm, expected);
    // Another order: the big OX loop innermost leaves nothing for the 16-bit output register.
    let ord = order(&[("OX", 56), ("C", 2), ("FY", 3), ("K", 2), ("FX", 3), ("OY", 56)]);
    let tm =
        allocate(&layer, &tpu_like(), &OperandLinks::default(), &sm, &ord, &AllocOptions::default()).unwrap();
    let expected = temporal(&[
        ("O", &[&[], &[("OX", 56), ("C", 2), ("FY", 3), ("K", 2), ("FX", 3), ("OY", 56)], &[]]),
        ("W", &[&[("OX", 56), ("C", 2), ("FY", 3), ("K", 2), ("FX", 3), ("OY", 56)], &[]]),
        ("I", &[&[("OX", 56), ("C", 2), ("FY", 3), ("K", 2), ("FX", 3), ("OY", 56)], &[]]),
    ]);
    assert_eq!(tm, expected);
}

fn expect_code(r: Result<impl std::fmt::Debug, CostError>, code: &str) {
    let e = r.expect_err("expected an error");
    assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some(code), "{e}");
    assert!(e.help().is_some());
    println!("{e}");
}

#[test]
fn bad_mappings() {
    let layer = gemm_layer();
    let acc = gemm_l1();
    let links = OperandLinks::default();
    let (sm, tm) = gemm_mapping();
    let opts = CostOptions::default();
    expect_code(
        evaluate(&layer, &acc, &links, &spatial(&[("D1", &[("X", 8)])]), &tm, &opts),
        "qc::costmodel::unknown_dim",
    );
    expect_code(
        evaluate(&layer, &acc, &links, &spatial(&[("D9", &[("D0", 8)])]), &tm, &opts),
        "qc::costmodel::unknown_array_dim",
    );
    expect_code(
        evaluate(&layer, &acc, &links, &spatial(&[("D1", &[("D0", 16)])]), &tm, &opts),
        "qc::costmodel::array_dim_overfull",
    );
    expect_code(
        evaluate(&layer, &acc, &links, &spatial(&[("D1", &[("D0", 4), ("D1", 4)])]), &tm, &opts),
        "qc::costmodel::array_dim_overfull",
    );
    expect_code(
        evaluate(
            &layer,
            &acc,
            &links,
            &spatial(&[("D1", &[("D0", 8)]), ("D2", &[("D0", 8)]), ("D3", &[("D0", 8)])]),
            &tm,
            &opts,
        ),
        "qc::costmodel::over_unrolled",
    );
    expect_code(
        evaluate(&layer, &acc, &links, &spatial(&[("D1", &[("D0", 8)]), ("D1", &[("D1", 8)])]), &tm, &opts),
        "qc::costmodel::duplicate_array_dim",
    );
    // Temporal loops that do not multiply to the layer's.
    let bad_tm = temporal(&[
        ("O", &[&[], &[("D1", 16), ("D2", 16), ("D0", 8)]]),
        ("W", &[&[("D1", 16), ("D2", 16), ("D0", 8)]]),
        ("I", &[&[("D1", 16), ("D2", 16), ("D0", 8)]]),
    ]);
    expect_code(evaluate(&layer, &acc, &links, &sm, &bad_tm, &opts), "qc::costmodel::temporal_mismatch");
    let bad_tm = temporal(&[
        ("O", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("W", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("I", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
    ]);
    expect_code(evaluate(&layer, &acc, &links, &sm, &bad_tm, &opts), "qc::costmodel::level_count");
    let bad_tm = temporal(&[
        ("O", &[&[], &[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("W", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
    ]);
    expect_code(evaluate(&layer, &acc, &links, &sm, &bad_tm, &opts), "qc::costmodel::missing_temporal");
    let bad_tm = temporal(&[
        ("O", &[&[], &[("Q", 16), ("D2", 16), ("D0", 16)]]),
        ("W", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
        ("I", &[&[("D1", 16), ("D2", 16), ("D0", 16)]]),
    ]);
    expect_code(evaluate(&layer, &acc, &links, &sm, &bad_tm, &opts), "qc::costmodel::unknown_dim");
    // Operand without a link, or linked to a memory operand no memory holds.
    let no_w = OperandLinks { links: vec![("O".into(), O), ("I".into(), I1)] };
    expect_code(evaluate(&layer, &acc, &no_w, &sm, &tm, &opts), "qc::costmodel::no_link");
    let mut acc2 = acc.clone();
    acc2.memories[1].operands.retain(|m| *m != I2);
    expect_code(evaluate(&layer, &acc2, &links, &sm, &tm, &opts), "qc::costmodel::no_memory");
    let mut no_prec = layer.clone();
    no_prec.inputs[0].precision = None;
    expect_code(evaluate(&no_prec, &acc, &links, &sm, &tm, &opts), "qc::costmodel::missing_precision");
    // A missing port for a direction the mapping uses.
    let mut acc3 = acc.clone();
    acc3.memories[1].ports[0].allocation.clear();
    expect_code(evaluate(&layer, &acc3, &links, &sm, &tm, &opts), "qc::costmodel::missing_port");
    // Allocator: a memory too small for the spatial unrolling's tiles.
    let mut acc4 = acc.clone();
    acc4.memories[1].size_bits = 1000;
    expect_code(
        allocate(
            &layer,
            &acc4,
            &links,
            &sm,
            &order(&[("D1", 16), ("D2", 16), ("D0", 16)]),
            &AllocOptions::default(),
        ),
        "qc::costmodel::memory_too_small",
    );
    let mut acc5 = acc.clone();
    acc5.memories[1].size_bits = 40000;
    expect_code(
        allocate(
            &layer,
            &acc5,
            &links,
            &sm,
            &order(&[("D1", 16), ("D2", 16), ("D0", 16)]),
            &AllocOptions::default(),
        ),
        "qc::costmodel::memory_too_small",
    );
}

#[test]
fn pooling_and_elementwise() {
    // Max pooling: W of 0 bits; element-wise add: no reduction.
    let acc = tpu_like();
    let links = OperandLinks::default();
    let mut pool = conv("pool", 1, 64, 56, 3, 2);
    pool.dims = dims(&[("B", 1), ("G", 64), ("OX", 56), ("OY", 56), ("FX", 3), ("FY", 3)]);
    pool.output = operand("O", &["b", "g", "oy", "ox"], 8);
    pool.inputs = vec![operand("W", &["fx", "fy"], 0), operand("I", &["b", "g", "iy", "ix"], 8)];
    pool.compute = Compute::Max;
    let sm = spatial(&[("D1", &[("G", 32)])]);
    let ord = order(&[("FX", 3), ("FY", 3), ("OX", 56), ("OY", 56), ("G", 2)]);
    let tm = allocate(&pool, &acc, &links, &sm, &ord, &AllocOptions::default()).unwrap();
    let c = evaluate(&pool, &acc, &links, &sm, &tm, &CostOptions::default()).unwrap();
    assert!(c.energy.is_finite() && c.latency >= c.ideal_temporal_cycle as f64);
    assert!(c.operands[1].levels.iter().all(|l| l.accesses == [0; 4]), "0-bit weights cost nothing");

    let mut add = pool.clone();
    add.dims = dims(&[("B", 1), ("G", 64), ("OX", 56), ("OY", 56)]);
    add.relations.clear();
    add.inputs = vec![operand("W", &["b", "g", "oy", "ox"], 8), operand("I", &["b", "g", "oy", "ox"], 8)];
    add.psum_precision = None;
    add.compute = Compute::Add;
    let ord = order(&[("OX", 56), ("OY", 56), ("G", 2)]);
    let tm = allocate(&add, &acc, &links, &sm, &ord, &AllocOptions::default()).unwrap();
    let c = evaluate(&add, &acc, &links, &sm, &tm, &CostOptions::default()).unwrap();
    assert!(c.energy > c.mac_energy && c.latency.is_finite());
}
