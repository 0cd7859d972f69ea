//! ZigZag's cost model on accelerators built in Rust: the worked gemm check, the allocator, bad
//! mappings, pooling and element-wise layers. The comparison with every recorded ZigZag run (from
//! `../shared`) is `tests/tests/it/evaluate_zigzag.rs` in `qc-tests`.

use miette::Diagnostic;

use crate::common::*;
use qc_backends::arch::Direction;
use qc_backends::cost::{AllocOptions, CostError, CostOptions, LatencyModel, allocate, evaluate};
use qc_backends::mapping::{OperandLinks, SpatialMapping, TemporalMapping};
use qc_ir::Compute;

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
