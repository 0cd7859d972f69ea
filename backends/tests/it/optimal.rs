//! The exact search ([`qc_backends::search::optimal`]) on small layers: it equals brute-force
//! enumeration of the same space, is never worse than LOMA-6, gives the same result and
//! certificate on one and two threads, and a search cut by its budget says so with a gap that
//! holds.

use crate::common::*;
use qc_backends::arch::Accelerator;
use qc_backends::mapping::{OperandLinks, SpatialMapping};
use qc_backends::search::optimal::{
    Certificate, OptimalOptions, OptimalResult, PruneReason, objective_value, search_optimal,
};
use qc_backends::search::{Objective, SearchError, TemporalOptions, search_temporal, temporal_space};
use qc_backends::spatial::{SpatialOptions, all_valid, generate};
use qc_ir::LoopNest;

/// tpu_like's memories under a 4x4 array: small enough to enumerate every mapping.
fn tiny_tpu() -> Accelerator {
    let mut a = tpu_like();
    a.name = "tiny_tpu".into();
    a.array = array(&[4, 4], 0.04, &[]);
    a
}

/// A GEMM of the given sizes (gemm_layer.yaml's operands, with 16-bit partial sums: tpu_like's
/// output register holds one).
fn gemm(d0: u64, d1: u64, d2: u64) -> LoopNest {
    let mut l = gemm_layer();
    l.name = format!("gemm{d0}x{d1}x{d2}");
    l.dims = dims(&[("D0", d0), ("D1", d1), ("D2", d2)]);
    l.psum_precision = Some(16);
    l
}

fn options(objective: Objective, budget: Option<u64>) -> OptimalOptions {
    OptimalOptions { objective, budget, ..OptimalOptions::default() }
}

/// Every valid spatial mapping times every ordering of the unmerged factors (and the LOMA-6
/// seed orderings the search also walks), without any pruning: the best by the objective.
fn brute_force(layer: &LoopNest, acc: &Accelerator, objective: Objective) -> (f64, u64) {
    let links = OperandLinks::default();
    let plain = TemporalOptions { lpf_limit: None, prune: false, ..TemporalOptions::default() };
    let mut best: Option<qc_backends::cost::LayerCost> = None;
    let mut orderings = 0u64;
    for sm in all_valid(layer, acc, &links, true) {
        orderings += temporal_space(layer, acc, &links, &sm, None, &plain).unwrap();
        match search_temporal(layer, acc, &links, &sm, None, objective, &plain) {
            Ok(r) => {
                assert!(r.exhaustive && r.pruned == 0);
                if best.as_ref().is_none_or(|b| objective.better(&r.cost, b)) {
                    best = Some(r.cost);
                }
            }
            Err(SearchError::NothingFits { .. }) => {}
            Err(e) => panic!("{:?}", miette::Report::new(e)),
        }
    }
    (objective_value(objective, &best.expect("some mapping fits")), orderings)
}

fn optimal(layer: &LoopNest, acc: &Accelerator, o: &OptimalOptions) -> OptimalResult {
    search_optimal(layer, acc, &OperandLinks::default(), None, o)
        .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

/// Every ordering of the space is counted once, and the bound is below the best.
fn check_accounts(c: &Certificate) {
    let pruned = c.pruned.iter().map(|p| p.orderings).sum::<u64>();
    assert_eq!(c.orderings, c.evaluated_in_space + pruned + c.unexplored, "{c:?}");
    assert_eq!(
        c.pruned.iter().map(|p| p.reason).collect::<Vec<_>>(),
        [PruneReason::SpatialFloor, PruneReason::PrefixBound, PruneReason::Capacity, PruneReason::Dominated]
    );
    if c.objective != Objective::Energy {
        assert_eq!((c.pruned[3].orderings, c.states), (0, 0), "dominance is for energy only: {c:?}");
    }
    if let Some(lb) = c.lower_bound {
        assert!(lb <= c.best, "{c:?}");
    }
    assert_eq!(c.complete, c.unexplored_candidates == 0, "{c:?}");
    if c.complete {
        assert_eq!(c.unexplored, 0, "{c:?}");
        if c.tolerance == 0.0 {
            assert_eq!(c.gap, Some(0.0), "{c:?}");
        } else {
            assert!(c.gap.is_some_and(|g| (0.0..=c.tolerance).contains(&g)), "{c:?}");
        }
    }
}

#[test]
fn equals_brute_force_on_small_layers() {
    let acc = tiny_tpu();
    let layers = [gemm(8, 12, 6), gemm(6, 4, 9), conv("conv", 4, 2, 4, 3, 1)];
    for layer in &layers {
        for objective in [Objective::Energy, Objective::Latency, Objective::Edp] {
            let (brute, orderings) = brute_force(layer, &acc, objective);
            let r = optimal(layer, &acc, &options(objective, None));
            let c = &r.certificate;
            check_accounts(c);
            assert!(c.complete, "{}: {c:?}", layer.name);
            assert_eq!(
                c.orderings, orderings,
                "{}: the space is every ordering of every candidate",
                layer.name
            );
            assert_eq!(c.best, objective_value(objective, &r.result.cost));
            assert_eq!(c.best, brute, "{} {objective:?}: {c:?}", layer.name);
            // The search did less than the enumeration.
            assert!(c.evaluated_in_space <= orderings);
        }
    }
}

/// With a tolerance the result is within it of the exact optimum (found by enumeration), the
/// certificate's lower bound is at most the optimum, its gap at most the tolerance, and the
/// search does less: at 20% it evaluates fewer orderings in all than the exact search.
#[test]
fn a_tolerance_proves_the_result_within_it() {
    let acc = tiny_tpu();
    let layers = [gemm(8, 12, 6), gemm(6, 4, 9), conv("conv", 4, 2, 4, 3, 1)];
    let (mut exact_work, mut tolerant_work) = (0u64, 0u64);
    for layer in &layers {
        for objective in [Objective::Energy, Objective::Latency, Objective::Edp] {
            let (brute, _) = brute_force(layer, &acc, objective);
            let exact = optimal(layer, &acc, &options(objective, None));
            exact_work += exact.certificate.evaluated;
            for tolerance in [0.01, 0.2] {
                let o = OptimalOptions { tolerance, ..options(objective, None) };
                let r = optimal(layer, &acc, &o);
                let c = &r.certificate;
                check_accounts(c);
                assert!(c.complete && c.tolerance == tolerance, "{c:?}");
                assert!(c.best <= brute * (1.0 + tolerance), "{} {objective:?}: {c:?}", layer.name);
                let lb = c.lower_bound.unwrap();
                assert!(
                    lb <= brute,
                    "{} {objective:?}: the bound {lb} is above the optimum {brute}",
                    layer.name
                );
                assert!((c.best / lb - 1.0 - c.gap.unwrap()).abs() < 1e-12, "{c:?}");
                assert_eq!(c.to_json()["tolerance"], tolerance);
                if c.gap.unwrap() > 0.0 {
                    assert!(c.summary().starts_with("at most"), "{}", c.summary());
                }
                if tolerance == 0.2 {
                    tolerant_work += c.evaluated;
                }
            }
        }
    }
    assert!(tolerant_work < exact_work, "{tolerant_work} orderings with 20% against {exact_work} exact");
}

#[test]
fn never_worse_than_loma6_and_a_seed_is_kept() {
    let acc = tiny_tpu();
    let links = OperandLinks::default();
    let entry = qc_backends::network::default_mapping().entries[0].clone();
    for layer in [gemm(8, 12, 6), conv("conv", 4, 2, 4, 3, 1)] {
        for objective in [Objective::Energy, Objective::Latency] {
            // LOMA-6 over ZigZag's three best spatial mappings.
            let mut loma: Option<(SpatialMapping, qc_backends::search::TemporalResult)> = None;
            for sm in generate(&layer, &acc, &entry, &SpatialOptions::default()).unwrap() {
                if let Ok(r) =
                    search_temporal(&layer, &acc, &links, &sm, None, objective, &TemporalOptions::default())
                    && loma.as_ref().is_none_or(|(_, b)| objective.better(&r.cost, &b.cost))
                {
                    loma = Some((sm, r));
                }
            }
            let loma = loma.expect("LOMA finds a mapping");
            let alone = optimal(&layer, &acc, &options(objective, None));
            assert!(!objective.better(&loma.1.cost, &alone.result.cost), "{}: worse than LOMA-6", layer.name);
            let seeded =
                search_optimal(&layer, &acc, &links, Some(loma.clone()), &options(objective, None)).unwrap();
            assert_eq!(seeded.certificate.best, alone.certificate.best);
            assert_eq!(seeded.certificate.seed.as_ref(), Some(&loma.1.cost));
            let excess = seeded.certificate.seed_excess().unwrap();
            assert!(excess >= 0.0 && seeded.certificate.summary().contains("LOMA"), "{excess}");
        }
    }
}

#[test]
fn same_result_on_one_and_two_threads() {
    let acc = tpu_like();
    let layer = conv("conv", 16, 8, 8, 3, 1);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| optimal(&layer, &acc, &options(Objective::Energy, Some(20_000))))
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two);
    check_accounts(&one.certificate);
}

#[test]
fn a_cut_search_says_so_with_a_gap_that_holds() {
    let acc = tiny_tpu();
    let layer = gemm(8, 12, 6);
    // Latency's floors (with the on-loading floor) leave it 48 orderings to evaluate: a budget
    // of 10 cuts it.
    for (objective, budget) in [(Objective::Energy, 50), (Objective::Latency, 10)] {
        let full = optimal(&layer, &acc, &options(objective, None));
        let cut = optimal(&layer, &acc, &options(objective, Some(budget)));
        let c = &cut.certificate;
        check_accounts(c);
        assert!(!c.complete && c.unexplored > 0, "{c:?}");
        assert!(c.evaluated <= budget + 1, "{c:?}");
        let (lb, gap) = (c.lower_bound.unwrap(), c.gap.unwrap());
        // The optimum lies between the bound and the best found.
        assert!(lb <= full.certificate.best && full.certificate.best <= c.best, "{c:?}");
        assert!((c.best / lb - 1.0 - gap).abs() < 1e-12);
        assert!(c.summary().contains("above the optimum"), "{}", c.summary());
        let j = c.to_json();
        assert_eq!(j["complete"], false);
        assert_eq!(j["orderings_unexplored"], c.unexplored);
    }
}

/// The five ZigZag example accelerators of the built-in library, each with its array shrunk to
/// at most 4 per dim (so that every mapping of a small layer can be enumerated) and, as a second
/// variant, with its memories below the top shrunk 256 times (so that small layers overflow
/// them and the allocator has choices to make).
fn zigzag_examples() -> Vec<Accelerator> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/accelerators");
    let mut out = Vec::new();
    for name in ["tpu_like", "ascend_like", "edge_tpu_like", "meta_prototype", "tesla_npu_like"] {
        let file = dir.join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut acc = qc_backends::accelerator_file::read_accelerator_file(&text, name)
            .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
            .accelerator;
        for d in &mut acc.array.dims {
            d.size = d.size.min(4);
        }
        let mut small = acc.clone();
        small.name = format!("{name}/256");
        let top = small.memories.len() - 1;
        for m in &mut small.memories[..top] {
            m.size_bits = (m.size_bits / 256).max(m.size_bits.min(64));
        }
        out.push(acc);
        out.push(small);
    }
    out
}

/// `acc` with its top memory's ports narrowed to 8 bits per cycle.
fn narrow(acc: &Accelerator) -> Accelerator {
    let mut a = acc.clone();
    a.name = format!("{}/narrow", a.name);
    let top = a.memories.len() - 1;
    for p in &mut a.memories[top].ports {
        p.bw_max = p.bw_max.min(8);
        p.bw_min = p.bw_min.min(p.bw_max);
    }
    a
}

/// The dominance test between prefixes changes nothing but the work: under every spatial
/// candidate of small layers (a stride-2 1x1 convolution among them, whose input tile grows
/// faster than its loops, so that the allocator's choice is not always the longest prefix that
/// fits), on the five ZigZag example accelerators and their variants with small memories, the
/// energy of the search with it equals that of the plain walk over every ordering, and it skips
/// orderings.
#[test]
fn dominance_equals_the_plain_walk_on_the_zigzag_examples() {
    let links = OperandLinks::default();
    let plain = TemporalOptions { lpf_limit: None, prune: false, ..TemporalOptions::default() };
    let dom = TemporalOptions { lpf_limit: None, dominance: true, ..TemporalOptions::default() };
    let layers = [gemm(8, 12, 6), conv("conv", 4, 2, 4, 3, 1), conv("strided", 4, 4, 4, 1, 2)];
    let (mut compared, mut dominated, mut states) = (0u64, 0u64, 0u64);
    for acc in zigzag_examples() {
        for layer in &layers {
            for sm in all_valid(layer, &acc, &links, true).into_iter().step_by(3) {
                let a = search_temporal(layer, &acc, &links, &sm, None, Objective::Energy, &plain);
                let b = search_temporal(layer, &acc, &links, &sm, None, Objective::Energy, &dom);
                match (a, b) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a.cost.energy, b.cost.energy, "{} {} {sm:?}", acc.name, layer.name);
                        assert!(b.exhaustive && b.pruned_dominated <= b.space_pruned);
                        assert_eq!(b.visited, b.space);
                        compared += 1;
                        dominated += b.pruned_dominated;
                        states += b.states;
                    }
                    (Err(SearchError::NothingFits { .. }), Err(SearchError::NothingFits { .. })) => {}
                    (a, b) => panic!("{} {} {sm:?}: {a:?} vs {b:?}", acc.name, layer.name),
                }
            }
        }
    }
    assert!(compared > 100 && dominated > 0 && states > 0, "{compared} {dominated} {states}");
}

/// The whole search under the energy objective, with the dominance test, equals brute force on
/// the ZigZag examples with small memories, and its certificate accounts for every ordering.
#[test]
fn optimal_energy_equals_brute_force_on_the_zigzag_examples() {
    for acc in zigzag_examples().into_iter().skip(1).step_by(2) {
        equals_brute_force(&gemm(8, 12, 6), &acc, Objective::Energy);
    }
}

/// The whole search with no budget is complete, its space is every ordering of every
/// candidate, and its result is brute force's.
fn equals_brute_force(layer: &LoopNest, acc: &Accelerator, objective: Objective) {
    let (brute, orderings) = brute_force(layer, acc, objective);
    let r = optimal(layer, acc, &options(objective, None));
    let c = &r.certificate;
    check_accounts(c);
    assert!(c.complete && c.orderings == orderings, "{} {}: {c:?}", acc.name, layer.name);
    assert_eq!(c.best, brute, "{} {}: {c:?}", acc.name, layer.name);
}

/// Where the streaming floor binds (a Gemm whose weights stream from an 8-bit DRAM, on tpu_like
/// and edge_tpu_like with small memories), the whole search under latency, with it in the
/// candidate floors and the prefix bounds, equals brute force, and the layer's streaming floor
/// is well above its temporal cycles.
#[test]
fn optimal_latency_equals_brute_force_where_streaming_binds() {
    let layer = gemm(2, 16, 16);
    let small = ["tpu_like/256", "edge_tpu_like/256"];
    for acc in zigzag_examples().iter().filter(|a| small.contains(&a.name.as_str())).map(narrow) {
        equals_brute_force(&layer, &acc, Objective::Latency);
        let bound =
            qc_backends::bound::layer_bound(&layer, &acc, &OperandLinks::default(), &Default::default())
                .unwrap();
        assert!(bound.integral_streaming > 2.0 * bound.ideal_cycles as f64, "{}: {bound:?}", acc.name);
    }
}

/// Each candidate's latency floor (the larger of the temporal cycles and the layer's streaming
/// floor for its unrolling, plus the drain and the on-loading floor) is at most the least latency
/// of its orderings, found by enumerating them all, on the ZigZag examples (both variants, and
/// the small-memory one with an 8-bit top memory) with a Gemm and a strided convolution
/// (partially relevant input dims), every sixth spatial candidate, and every candidate of a Gemm
/// that streams its weights from the narrow top memory (2,065 candidates, 1,198 with an
/// on-loading floor, 88 where the streaming floor is above the temporal cycles; 28 s); what is
/// checked includes both floors.
#[test]
fn candidate_latency_floors_hold_on_the_zigzag_examples() {
    use qc_backends::cost::{CostOptions, Evaluator};
    let links = OperandLinks::default();
    let plain = TemporalOptions { lpf_limit: None, prune: false, ..TemporalOptions::default() };
    let (mut checked, mut with_onload, mut with_streaming) = (0, 0, 0);
    // Also the small-memory variants with the top memory's ports narrowed to 8 bits, where the
    // streaming from it outlasts the computation (the streaming floor binds).
    let examples = zigzag_examples();
    let accs: Vec<Accelerator> =
        examples.iter().cloned().chain(examples.iter().skip(1).step_by(2).map(narrow)).collect();
    for acc in accs {
        // On the narrow variants, a Gemm whose weights do not fit the registers either.
        let big = acc.name.ends_with("/narrow").then(|| gemm(2, 16, 16));
        for layer in [gemm(8, 12, 6), conv("conv", 4, 2, 6, 3, 2)].into_iter().chain(big) {
            let bound =
                qc_backends::bound::layer_bound(&layer, &acc, &links, &CostOptions::default()).unwrap();
            // Every candidate of the streaming Gemm, every sixth of the others.
            let step = if layer.name == "gemm2x16x16" { 1 } else { 6 };
            for sm in all_valid(&layer, &acc, &links, true).into_iter().step_by(step) {
                let ev = Evaluator::new(&layer, &acc, &links, &sm).unwrap();
                let mut floors = ev.floors(&CostOptions::default()).unwrap();
                floors.streaming = bound.stall_floor(ev.integral_unrolling());
                let cycles: u64 = ev.temporal_sizes().iter().map(|(_, s)| s).product();
                let (_, latency) = ev.mapping_floor(&floors, &CostOptions::default());
                let floor = latency.expect("3.9.1's model has a latency floor");
                match search_temporal(&layer, &acc, &links, &sm, None, Objective::Latency, &plain) {
                    Ok(r) => {
                        assert!(r.exhaustive);
                        assert!(
                            floor <= r.cost.latency,
                            "{} {} {sm:?}: floor {floor} (on-loading {}, streaming {}) above {}",
                            acc.name,
                            layer.name,
                            floors.onload,
                            floors.streaming,
                            r.cost.latency
                        );
                        checked += 1;
                        with_onload += usize::from(floors.onload > 0.0);
                        with_streaming += usize::from(floors.streaming > cycles as f64);
                    }
                    Err(SearchError::NothingFits { .. }) => {}
                    Err(e) => panic!("{:?}", miette::Report::new(e)),
                }
            }
        }
    }
    println!(
        "{checked} candidates, {with_onload} with an on-loading floor, {with_streaming} with a streaming floor above their temporal cycles"
    );
    assert!(checked > 1_000 && with_onload > 500, "{checked} candidates, {with_onload} with on-loading");
    assert!(with_streaming > 50, "{with_streaming} candidates with a binding streaming floor");
    println!("{checked} candidates checked, {with_onload} with an on-loading floor");
}
