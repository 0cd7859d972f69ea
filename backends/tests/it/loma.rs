//! LOMA temporal mapping search ([`qc_backends::search`]) on accelerators built in Rust, against
//! ZigZag 3.9.1's recorded results (`v391_gemm_l1`, `v391_l1conv_tpu_lpf6`), plus constraints,
//! budgets and errors. The comparison with every recorded run is `tests/tests/it/loma_zigzag.rs`.

use std::time::Duration;

use crate::common::*;
use miette::Diagnostic;
use qc_backends::cost::evaluate;
use qc_backends::mapping::{OperandLinks, OrderSize};
use qc_backends::search::{Objective, SearchError, TemporalOptions, TemporalResult, search_temporal};
use qc_ir::LoopNest;

fn opts(lpf: Option<usize>) -> TemporalOptions {
    TemporalOptions { lpf_limit: lpf, ..TemporalOptions::default() }
}

fn l1conv() -> (LoopNest, qc_backends::mapping::SpatialMapping) {
    (conv("l1conv", 64, 64, 56, 3, 1), spatial(&[("D1", &[("K", 32)]), ("D2", &[("C", 32)])]))
}

fn search(
    layer: &LoopNest,
    acc: &qc_backends::arch::Accelerator,
    sm: &qc_backends::mapping::SpatialMapping,
    ordering: Option<&[(String, OrderSize)]>,
    objective: Objective,
    o: &TemporalOptions,
) -> Result<TemporalResult, SearchError> {
    search_temporal(layer, acc, &OperandLinks::default(), sm, ordering, objective, o)
}

fn ok(r: Result<TemporalResult, SearchError>) -> TemporalResult {
    r.unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

fn names(r: &TemporalResult) -> Vec<(String, u64)> {
    r.order.iter().map(|l| (l.dim.clone(), l.size)).collect()
}

#[test]
fn gemm_l1_matches_zigzag() {
    // v391_gemm_l1 (lpf_limit 3): energy 511,349.76, latency 8191.
    let sm = spatial(&[("D1", &[("D0", 8)]), ("D2", &[("D2", 8)]), ("D3", &[("D1", 8)])]);
    let r = ok(search(&gemm_layer(), &gemm_l1(), &sm, None, Objective::Latency, &opts(Some(3))));
    assert_eq!(r.space, 6);
    assert!(r.exhaustive);
    assert_eq!(r.visited, 6);
    assert!(r.cost.latency <= 8191.0, "{}", r.cost.latency);
    assert!(r.cost.energy <= 511_349.76 * (1.0 + 1e-9), "{}", r.cost.energy);
    // The result re-evaluates to the same cost.
    let again =
        evaluate(&gemm_layer(), &gemm_l1(), &OperandLinks::default(), &sm, &r.temporal, &Default::default())
            .unwrap();
    assert_eq!(again, r.cost);
}

#[test]
fn l1conv_matches_zigzag() {
    // v391_l1conv_tpu_lpf6 (opt latency): energy 66,996,199.936, latency 137,986.
    let (layer, sm) = l1conv();
    let r = ok(search(&layer, &tpu_like(), &sm, None, Objective::Latency, &opts(Some(6))));
    // K 2, OX 56 = 2^3 7, OY 56, C 2, FX 3, FY 3: 11 LPFs merged down to 6.
    assert_eq!(r.lpfs.len(), 6);
    assert_eq!(r.space, 720);
    assert!(r.exhaustive);
    assert!(r.cost.latency <= 137_986.0, "{}", r.cost.latency);
    if r.cost.latency == 137_986.0 {
        assert!(close(r.cost.energy, 66_996_199.936) || r.cost.energy < 66_996_199.936);
    }
    // Deterministic.
    let again = ok(search(&layer, &tpu_like(), &sm, None, Objective::Latency, &opts(Some(6))));
    assert_eq!(again, r);
    // The energy objective finds at most ZigZag's latency-optimal energy.
    let e = ok(search(&layer, &tpu_like(), &sm, None, Objective::Energy, &opts(Some(6))));
    assert!(e.cost.energy <= r.cost.energy);
    let edp = ok(search(&layer, &tpu_like(), &sm, None, Objective::Edp, &opts(Some(6))));
    assert!(edp.cost.energy * edp.cost.latency <= r.cost.energy * r.cost.latency);
    assert!(edp.cost.energy * edp.cost.latency <= e.cost.energy * e.cost.latency);
}

#[test]
fn zigzag_lpf_merging() {
    // resnet18 conv1 on tpu_like, K 32 x C 3 unrolled: temporal K 2, OX 112, OY 112, FX 7, FY 7.
    // ZigZag merges OX (first in layer order among the dims with most LPFs) and OY alternately.
    let layer = conv("conv1", 64, 3, 112, 7, 2);
    let sm = spatial(&[("D1", &[("K", 32)]), ("D2", &[("C", 3)])]);
    let r = ok(search(&layer, &tpu_like(), &sm, None, Objective::Latency, &opts(Some(6))));
    let lpfs: Vec<(String, u64)> = r.lpfs.iter().map(|l| (l.dim.clone(), l.size)).collect();
    let want: Vec<(String, u64)> = [("K", 2), ("OX", 112), ("OY", 7), ("OY", 16), ("FX", 7), ("FY", 7)]
        .iter()
        .map(|(d, s)| ((*d).to_string(), *s))
        .collect();
    assert_eq!(lpfs, want);
    assert_eq!(r.space, 720);
    // A limit below the number of temporal dims is raised to it.
    let r3 = ok(search(&layer, &tpu_like(), &sm, None, Objective::Latency, &opts(Some(3))));
    assert_eq!(r3.lpfs.len(), 5);
    assert_eq!(r3.space, 120);
}

#[test]
fn partial_ordering_constraints() {
    let (layer, sm) = l1conv();
    let acc = tpu_like();
    let o = opts(Some(6));
    // Innermost loop of FX (any size), then C of size 2.
    let ord = vec![("FX".to_string(), OrderSize::Rest), ("C".to_string(), OrderSize::Given(2))];
    let r = ok(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &o));
    let n = names(&r);
    assert_eq!(n[0].0, "FX");
    assert_eq!(n[1], ("C".to_string(), 2));
    assert!(r.exhaustive);
    // Only orderings satisfying the constraints count as evaluated.
    assert!(r.evaluated < r.space);
    // After the `*` marker, positions count from the outermost loop.
    let ord = vec![("*".to_string(), OrderSize::Rest), ("K".to_string(), OrderSize::Rest)];
    let r = ok(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &o));
    assert_eq!(r.order.last().unwrap().dim, "K");
    // A fixed composite size becomes one LPF (ZigZag's `reduce_static_fps`): OX 8, OX 7.
    let ord = vec![("OX".to_string(), OrderSize::Given(8))];
    let r = ok(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &opts(Some(10))));
    assert_eq!(names(&r)[0], ("OX".to_string(), 8));
    assert_eq!(r.lpfs.len(), 10);
    // A complete ordering is used as is.
    let ord: Vec<(String, OrderSize)> = [("C", 2), ("FY", 3), ("FX", 3), ("OY", 56), ("OX", 56), ("K", 2)]
        .iter()
        .map(|(d, s)| ((*d).to_string(), OrderSize::Given(*s)))
        .collect();
    let r = ok(search(&layer, &acc, &sm, Some(&ord), Objective::Energy, &o));
    assert_eq!(r.evaluated, 1);
    assert_eq!(r.cost.latency, 137_986.0);
    assert!(close(r.cost.energy, 66_996_199.936));
    // Unknown dims are dropped, as ZigZag drops them.
    let ord = vec![("ZZ".to_string(), OrderSize::Rest)];
    let r = ok(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &o));
    assert_eq!(r.evaluated, 720);
}

fn code(r: Result<TemporalResult, SearchError>) -> String {
    let e = r.expect_err("expected an error");
    e.code().map(|c| c.to_string()).unwrap_or_default()
}

#[test]
fn errors() {
    let (layer, sm) = l1conv();
    let acc = tpu_like();
    let o = opts(Some(6));
    let ord = vec![("OX".to_string(), OrderSize::Given(5))];
    assert_eq!(
        code(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &o)),
        "qc::search::bad_ordering_size"
    );
    let ord: Vec<(String, OrderSize)> = (0..9).map(|_| ("K".to_string(), OrderSize::Rest)).collect();
    assert_eq!(
        code(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &o)),
        "qc::search::ordering_too_long"
    );
    // ZigZag's `reduce_static_fps` cannot honour a fixed size of several distinct primes
    // (14 = 2 7 of OX 56 = 2^3 7 leaves OX 2^2, 7, 14) ...
    let ord = vec![("OX".to_string(), OrderSize::Given(14))];
    assert_eq!(
        code(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &o)),
        "qc::search::inconsistent_ordering"
    );
    // ... and its merging, when it must merge a dim with a fixed size, multiplies in a factor
    // whose count `reduce_static_fps` left at 0 (OX 8 at lpf 6: OX ends as 8 x 14).
    let ord = vec![("OX".to_string(), OrderSize::Given(8))];
    assert_eq!(
        code(search(&layer, &acc, &sm, Some(&ord), Objective::Latency, &o)),
        "qc::search::inconsistent_ordering"
    );
    // Memories too small for anything: the weights' register file shrinks to 8 bits.
    let mut small = tpu_like();
    small.memories[0].size_bits = 4;
    let e = search(&layer, &small, &sm, None, Objective::Latency, &o).unwrap_err();
    assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("qc::search::nothing_fits"), "{e}");
    assert!(e.to_string().contains("rf_128B"), "{e}");
    // Bad spatial mappings are the cost model's errors.
    let bad = spatial(&[("D1", &[("K", 64)])]);
    assert_eq!(
        code(search(&layer, &acc, &bad, None, Objective::Latency, &o)),
        "qc::costmodel::array_dim_overfull"
    );
    // No budget at all.
    let none = TemporalOptions { max_evaluations: Some(0), ..opts(Some(6)) };
    assert_eq!(code(search(&layer, &acc, &sm, None, Objective::Latency, &none)), "qc::search::no_budget");
}

#[test]
fn budgets_and_no_merging() {
    let (layer, sm) = l1conv();
    let acc = tpu_like();
    let full = ok(search(&layer, &acc, &sm, None, Objective::Latency, &opts(Some(6))));
    let cut = TemporalOptions { max_evaluations: Some(100), ..opts(Some(6)) };
    let r = ok(search(&layer, &acc, &sm, None, Objective::Latency, &cut));
    assert_eq!(r.evaluated, 100);
    assert_eq!(r.visited, 100);
    assert!(!r.exhaustive);
    // No merging: 12 LPFs, 12! / (3! 3!) = 13,305,600 orderings; the seed phases (the LOMA-6
    // space, then the refinements of its best ordering) come first, so a small budget already
    // matches LOMA-6.
    let big =
        TemporalOptions { max_evaluations: Some(2_000), budget: Some(Duration::from_secs(60)), ..opts(None) };
    let r = ok(search(&layer, &acc, &sm, None, Objective::Latency, &big));
    assert_eq!(r.space, 13_305_600);
    assert_eq!(r.lpfs.len(), 12);
    assert!(!r.exhaustive);
    assert_eq!(r.evaluated, 2_000);
    assert!(!Objective::Latency.better(&full.cost, &r.cost), "{} vs {}", r.cost.latency, full.cost.latency);
    // A time budget stops cleanly too.
    let timed = TemporalOptions { budget: Some(Duration::from_millis(50)), ..opts(None) };
    let r = ok(search(&layer, &acc, &sm, None, Objective::Latency, &timed));
    assert!(!r.exhaustive);
    assert!(r.visited < r.space);
}

/// The observed search reports orderings visited in batches that add up to the result's
/// `visited`, uncut and cut, with the same result as the plain search; `temporal_space` knows
/// the space beforehand.
#[test]
fn progress_reports_add_up_to_visited() {
    use qc_backends::search::{PROGRESS_BATCH, search_temporal_observed, temporal_space};
    let (layer, sm) = l1conv();
    let acc = tpu_like();
    let links = OperandLinks::default();
    for (lpf, max) in [(Some(6), None), (Some(8), None), (Some(8), Some(5_000)), (None, Some(3_000))] {
        let o = TemporalOptions { max_evaluations: max, ..opts(lpf) };
        let calls = std::cell::RefCell::new(Vec::new());
        let r = search_temporal_observed(&layer, &acc, &links, &sm, None, Objective::Latency, &o, &|n| {
            calls.borrow_mut().push(n)
        });
        let r = ok(r);
        let calls = calls.into_inner();
        assert_eq!(calls.iter().sum::<u64>(), r.visited, "{lpf:?} {max:?}");
        // Batches of about PROGRESS_BATCH (pruning skips whole groups at once), the last one
        // smaller.
        let n = calls.len();
        assert!(calls[..n.saturating_sub(1)].iter().all(|&c| c >= PROGRESS_BATCH), "{calls:?}");
        assert_eq!(temporal_space(&layer, &acc, &links, &sm, None, &o).ok(), Some(r.space));
        assert_eq!(r.exhaustive, max.is_none());
        let plain = ok(search(&layer, &acc, &sm, None, Objective::Latency, &o));
        assert_eq!((plain.order, plain.cost, plain.visited), (r.order, r.cost, r.visited));
    }
}
