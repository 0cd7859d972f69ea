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
        [PruneReason::SpatialFloor, PruneReason::PrefixBound, PruneReason::Capacity]
    );
    if let Some(lb) = c.lower_bound {
        assert!(lb <= c.best, "{c:?}");
    }
    assert_eq!(c.complete, c.unexplored_candidates == 0, "{c:?}");
    if c.complete {
        assert_eq!((c.gap, c.unexplored), (Some(0.0), 0), "{c:?}");
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
    for objective in [Objective::Energy, Objective::Latency] {
        let full = optimal(&layer, &acc, &options(objective, None));
        let cut = optimal(&layer, &acc, &options(objective, Some(50)));
        let c = &cut.certificate;
        check_accounts(c);
        assert!(!c.complete && c.unexplored > 0, "{c:?}");
        assert!(c.evaluated <= 50 + 1, "{c:?}");
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
