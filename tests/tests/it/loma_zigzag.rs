//! qc's LOMA search ([`qc_backends::search`]) against every recorded ZigZag 3.9.1 run without
//! inter-layer data locality or in-memory compute (`../shared/peers/zigzag-inputs/results`):
//! each layer is searched with ZigZag's chosen spatial mapping, ZigZag's `lpf_limit` (6 unless
//! the run says otherwise) and the run's objective (`opt="latency"`, or energy for
//! `v391_tpu_onnx_energy`), and qc's best must be at least as good as ZigZag's (within 1e-9
//! relative). SALSA's run (`v391_tpu_onnx_salsa`) is compared too: LOMA is exhaustive over a
//! superset of SALSA's space. Prints per run how often qc is strictly better, the orderings
//! evaluated and the time, and per layer the space, the LPF multiset, the orderings tried and
//! those that did not fit (`LPF` lines, for comparing with ZigZag's own `LomaEngine`).

use std::path::Path;
use std::time::{Duration, Instant};

use qc_backends::arch::Accelerator;
use qc_backends::mapping::MappingFile;
use qc_backends::search::{Objective, TemporalOptions, search_temporal, zigzag_onnx_dim_order};
use qc_tests::zigzag_results::{Workloads, parse_spatial, read_with};

/// Relative tolerance of "at least as good".
const TOL: f64 = 1e-9;

fn skipped(run: &str) -> bool {
    !run.starts_with("v391_") || run.contains("dimc") || run.contains("edl")
}

fn objective(run: &str) -> Objective {
    if run.contains("energy") { Objective::Energy } else { Objective::Latency }
}

#[derive(Default)]
struct Tally {
    layers: usize,
    equal: usize,
    better: usize,
    worse: Vec<String>,
    evaluated: u64,
    time: Duration,
}

fn check_run(cache: &mut Workloads, root: &Path, summary: &Path) -> Result<Tally, String> {
    let run = summary.file_name().unwrap().to_string_lossy().trim_end_matches(".summary.json").to_string();
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let field = |k: &str| s[k].as_str().ok_or_else(|| format!("{run}: no `{k}`"));
    let acc: Accelerator =
        read_with(&root.join(field("accel")?), qc_backends::zigzag::read_accelerator_yaml)?;
    let mapping: MappingFile =
        read_with(&root.join(field("mapping")?), qc_backends::zigzag::read_mapping_yaml)?;
    let wpath = root.join(field("workload")?);
    let onnx = wpath.extension().is_some_and(|e| e == "onnx");
    let w = cache.get(&wpath)?.clone();
    let lpf = s["extra"]["lpf_limit"].as_u64().unwrap_or(6) as usize;
    let obj = objective(&run);
    let mut t = Tally::default();
    for rec in s["layers"].as_array().ok_or("no layers")? {
        let name = rec["layer"].as_str().unwrap_or("?");
        let layer =
            w.layers.iter().find(|l| l.name == name).ok_or_else(|| format!("{run}: no layer {name}"))?;
        let entry = mapping.entry_for(&layer.name, &layer.op_type).ok_or("no mapping entry")?;
        let sm = parse_spatial(rec["spatial_mapping"].as_str().ok_or("no spatial_mapping")?)?;
        // ZigZag merges factors visiting the dims in its parser's order.
        let merge_order = onnx.then(|| zigzag_onnx_dim_order(layer));
        let opts = TemporalOptions { lpf_limit: Some(lpf), merge_order, ..TemporalOptions::default() };
        let start = Instant::now();
        let r =
            search_temporal(layer, &acc, &entry.links, &sm, entry.temporal_ordering.as_deref(), obj, &opts)
                .map_err(|e| format!("{run} {name}: {:?}", miette::Report::new(e)))?;
        t.time += start.elapsed();
        t.evaluated += r.evaluated;
        t.layers += 1;
        let lpfs: Vec<String> = r.lpfs.iter().map(|l| format!("{}{}", l.dim, l.size)).collect();
        println!("LPF {run} {name} {} {} {} {}", r.space, lpfs.join(","), r.evaluated, r.skipped);
        let (ze, zl) =
            (rec["energy"].as_f64().unwrap_or(f64::NAN), rec["latency"].as_f64().unwrap_or(f64::NAN));
        let (primary, zp, secondary, zs) = match obj {
            Objective::Latency => (r.cost.latency, zl, r.cost.energy, ze),
            _ => (r.cost.energy, ze, r.cost.latency, zl),
        };
        let tol = |x: f64| TOL * x.abs();
        if primary > zp + tol(zp) {
            t.worse.push(format!(
                "{run} {name}: qc {primary} vs ZigZag {zp} (order {:?})",
                r.order.iter().map(|l| (l.dim.as_str(), l.size)).collect::<Vec<_>>()
            ));
        } else if primary < zp - tol(zp) || secondary < zs - tol(zs) {
            t.better += 1;
            println!("  better: {run} {name}: qc {primary} / {secondary} vs ZigZag {zp} / {zs}");
        } else {
            t.equal += 1;
        }
    }
    Ok(t)
}

#[test]
fn loma_at_least_as_good_as_zigzag() {
    let Some(shared) = qc_tests::shared_or_say("loma_zigzag") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let mut cache = Workloads::default();
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for path in qc_tests::files_under(&root.join("results"), ".summary.json") {
        let run = path.file_name().unwrap().to_string_lossy().trim_end_matches(".summary.json").to_string();
        if skipped(&run) {
            continue;
        }
        match check_run(&mut cache, &root, &path) {
            Ok(t) => rows.push((run, t)),
            Err(e) => failures.push(e),
        }
    }
    println!(
        "\n{:28} {:>6} {:>6} {:>6} {:>6} {:>10} {:>10} {:>12}",
        "run", "layers", "equal", "better", "worse", "orderings", "time", "orderings/s"
    );
    for (run, t) in &rows {
        println!(
            "{:28} {:>6} {:>6} {:>6} {:>6} {:>10} {:>10.2?} {:>12.0}",
            run,
            t.layers,
            t.equal,
            t.better,
            t.worse.len(),
            t.evaluated,
            t.time,
            t.evaluated as f64 / t.time.as_secs_f64()
        );
        failures.extend(t.worse.iter().cloned());
    }
    assert!(!rows.is_empty(), "no runs compared");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Beyond LOMA: resnet18 on `tpu_like` (`v391_tpu`, ZigZag's spatial mappings) without factor
/// merging, 50 ms per layer (about 1 s in all; `--nocapture` prints per layer how far the search
/// got): the budget stops it cleanly, and it is never worse than LOMA-6, whose space it searches
/// first.
#[test]
fn no_merging_under_budget() {
    let Some(shared) = qc_tests::shared_or_say("loma_zigzag") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let summary = root.join("results/v391_tpu.summary.json");
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let field = |k: &str| s[k].as_str().unwrap().to_string();
    let acc: Accelerator =
        read_with(&root.join(field("accel")), qc_backends::zigzag::read_accelerator_yaml).unwrap();
    let mapping: MappingFile =
        read_with(&root.join(field("mapping")), qc_backends::zigzag::read_mapping_yaml).unwrap();
    let w = Workloads::default().get(&root.join(field("workload"))).unwrap().clone();
    let (mut total6, mut total_free, mut better) = (0.0, 0.0, 0);
    let (mut t6, mut tfree) = (Duration::ZERO, Duration::ZERO);
    for rec in s["layers"].as_array().unwrap() {
        let name = rec["layer"].as_str().unwrap();
        let layer = w.layers.iter().find(|l| l.name == name).unwrap();
        let entry = mapping.entry_for(&layer.name, &layer.op_type).unwrap();
        let sm = parse_spatial(rec["spatial_mapping"].as_str().unwrap()).unwrap();
        let merge_order = Some(zigzag_onnx_dim_order(layer));
        let run = |o: &TemporalOptions| {
            let start = Instant::now();
            let r = search_temporal(layer, &acc, &entry.links, &sm, None, Objective::Latency, o).unwrap();
            (r, start.elapsed())
        };
        let (r6, d6) =
            run(&TemporalOptions { merge_order: merge_order.clone(), ..TemporalOptions::default() });
        let free = TemporalOptions {
            lpf_limit: None,
            budget: Some(Duration::from_millis(50)),
            merge_order,
            ..TemporalOptions::default()
        };
        let (r, d) = run(&free);
        assert!(!Objective::Latency.better(&r6.cost, &r.cost), "{name}: worse than LOMA-6");
        let b = Objective::Latency.better(&r.cost, &r6.cost);
        better += b as usize;
        total6 += r6.cost.latency;
        total_free += r.cost.latency;
        t6 += d6;
        tfree += d;
        println!(
            "{name:48} lpfs {:>2} space {:>12} evaluated {:>7} ({:.1?}) exhaustive {:5} latency {} vs LOMA-6 {}{}",
            r.lpfs.len(),
            r.space,
            r.evaluated,
            d,
            r.exhaustive,
            r.cost.latency,
            r6.cost.latency,
            if b { "  better" } else { "" }
        );
    }
    println!(
        "LOMA-6: latency {total6} in {t6:.2?}; no merging (0.5 s/layer): latency {total_free} in {tfree:.2?}; {better} layers better"
    );
}

/// Pruning is exact: on every layer of every run compared above (ZigZag's spatial mappings,
/// LOMA-6), for each objective and both mapping types, the search with lower-bound pruning finds
/// the same ordering with the same cost as the search without, allocating fewer orderings.
/// Prints the orderings allocated with and without, and the times.
#[test]
fn pruning_changes_nothing_but_the_work() {
    use qc_backends::cost::MappingType;
    let (mut with, mut without, mut cases) = (0u64, 0u64, 0usize);
    let (mut t_with, mut t_without) = (Duration::ZERO, Duration::ZERO);
    let compared = distinct_cases(usize::MAX, |c| {
        let Case { run, acc, layer, entry, sm, merge_order } = c;
        let name = &layer.name;
        for obj in [Objective::Energy, Objective::Latency, Objective::Edp] {
            for mapping_type in [MappingType::Uneven, MappingType::Even] {
                let opts = |prune| TemporalOptions {
                    merge_order: merge_order.clone(),
                    mapping_type,
                    prune,
                    ..TemporalOptions::default()
                };
                let go = |o: &TemporalOptions| {
                    let start = Instant::now();
                    let r = search_temporal(
                        layer,
                        acc,
                        &entry.links,
                        &sm,
                        entry.temporal_ordering.as_deref(),
                        obj,
                        o,
                    );
                    (r, start.elapsed())
                };
                let ((a, ta), (b, tb)) = (go(&opts(true)), go(&opts(false)));
                let ctx = format!("{run} {name} {obj:?} {mapping_type:?}");
                match (a, b) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(
                            (&a.order, &a.cost),
                            (&b.order, &b.cost),
                            "{ctx}: pruning changed the result"
                        );
                        assert_eq!(
                            (a.visited, a.space, a.exhaustive),
                            (b.visited, b.space, b.exhaustive),
                            "{ctx}"
                        );
                        assert!(a.evaluated <= b.evaluated, "{ctx}");
                        with += a.evaluated;
                        without += b.evaluated;
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b, "{ctx}"),
                    (a, b) => panic!(
                        "{ctx}: pruned {:?} vs not {:?}",
                        a.map(|r| r.cost.energy),
                        b.map(|r| r.cost.energy)
                    ),
                }
                t_with += ta;
                t_without += tb;
                cases += 1;
            }
        }
    });
    if !compared {
        return;
    }
    assert!(cases > 0, "no layers compared");
    println!(
        "pruning: {cases} searches, {with} orderings allocated with pruning in {t_with:.2?}, {without} without in {t_without:.2?} ({:.1}x fewer, {:.1}x faster)",
        without as f64 / with as f64,
        t_without.as_secs_f64() / t_with.as_secs_f64()
    );
}

/// The pruning bounds are lower bounds: for the first 8 layers of every run above (ZigZag's spatial
/// mapping), over all orderings of the LOMA-6 factors, for every ordering and prefix length `j`,
/// the bounds it gives ([`Evaluator::prefix_bounds`]) are at most the energy and the latency of
/// every ordering sharing its first `j` loops, and an allocation failure it says the first `j`
/// loops decide is the failure of all of them. On the way, the search's inner loop is checked
/// against the plain one: memoised allocation (one [`Allocator`] across the orderings, in the
/// search's order) gives the same allocation, trace and error as a fresh one, and
/// [`Evaluator::evaluate_order`] (reused buffers) the same cost as [`Evaluator::evaluate`].
#[test]
fn prefix_bounds_are_lower_bounds() {
    use qc_backends::cost::{
        AllocOptions, AllocTrace, Allocator, CostOptions, EvalScratch, Evaluator, LayerCost, MappingType,
        PrefixBounds,
    };
    use std::collections::HashMap;
    let (mut checks, mut orderings) = (0u64, 0usize);
    let (mut reused, mut decided) = (0u64, 0u64);
    let (mut with_onload, mut with_streaming) = (0, 0);
    let compared = distinct_cases(8, |c| {
        let Case { run, acc, layer, entry, sm, .. } = c;
        let name = &layer.name;
        let ev = Evaluator::new(layer, acc, &entry.links, &sm).unwrap();
        let names: Vec<String> = ev.temporal_sizes().into_iter().map(|(n, _)| n).collect();
        let Ok(r) = search_temporal(
            layer,
            acc,
            &entry.links,
            &sm,
            None,
            Objective::Latency,
            &TemporalOptions::default(),
        ) else {
            return;
        };
        let mut lpfs: Vec<(usize, u64)> =
            r.lpfs.iter().map(|l| (names.iter().position(|n| *n == l.dim).unwrap(), l.size)).collect();
        lpfs.sort();
        for mapping_type in [MappingType::Uneven, MappingType::Even] {
            let copts = CostOptions::default();
            let mut floors = ev.floors(&copts).unwrap();
            // The exact search's streaming floor, from the layer's bound.
            floors.streaming = qc_backends::bound::layer_bound(layer, acc, &entry.links, &copts)
                .map_or(0.0, |b| b.stall_floor(ev.integral_unrolling()));
            if mapping_type == MappingType::Uneven {
                with_onload += usize::from(floors.onload > 0.0);
                with_streaming += usize::from(floors.streaming > r.cost.ideal_temporal_cycle as f64);
            }
            // (order, Some((energy, latency)) or None for a misfit, bounds, fail_req)
            let mut all = Vec::new();
            let mut perm = lpfs.clone();
            let (mut memo, mut scratch, mut cost) =
                (Allocator::default(), EvalScratch::default(), LayerCost::default());
            let aopts = AllocOptions { mapping_type };
            loop {
                let loops: Vec<_> = perm
                    .iter()
                    .map(|&(d, size)| qc_backends::mapping::TemporalLoop { dim: names[d].clone(), size })
                    .collect();
                let mut trace = AllocTrace::default();
                let mut b = PrefixBounds::default();
                let fresh = ev.allocate_traced(&loops, &aopts, &mut trace);
                let mut memo_trace = AllocTrace::default();
                let memoised = ev.allocate_order(&perm, &aopts, &mut memo, Some(&mut memo_trace));
                let ctx = || format!("{run} {name} {mapping_type:?} {perm:?}");
                assert_eq!(memo_trace, trace, "{}: memoised trace", ctx());
                match (fresh, memoised) {
                    (Ok(tm), Ok(())) => {
                        assert_eq!(
                            ev.mapping(&perm, memo.allocation()),
                            tm,
                            "{}: memoised allocation",
                            ctx()
                        );
                        let c = ev.evaluate(&tm, &copts).unwrap();
                        ev.evaluate_order(&perm, memo.allocation(), &copts, &mut scratch, &mut cost).unwrap();
                        assert_eq!(cost, c, "{}: evaluate_order", ctx());
                        ev.prefix_bounds(&perm, &floors, memo.allocation(), &trace, &c, &copts, &mut b);
                        all.push((perm.clone(), Some((c.energy, c.latency)), b, usize::MAX));
                    }
                    (Err(e), Err(m)) => {
                        assert_eq!(m.to_string(), e.to_string(), "{}: memoised error", ctx());
                        all.push((perm.clone(), None, b, trace.fail_req));
                    }
                    (f, m) => panic!("{}: fresh {f:?}, memoised {m:?}", ctx()),
                }
                if !next_permutation(&mut perm) {
                    break;
                }
            }
            orderings += all.len();
            reused += memo.decisions().0;
            decided += memo.decisions().1;
            let n = lpfs.len();
            for j in 0..=n {
                // Per prefix: the least energy and latency, and whether any fits.
                let mut group: HashMap<&[(usize, u64)], Least> = HashMap::new();
                for (o, c, _, _) in &all {
                    let g = group.entry(&o[..j]).or_insert((f64::INFINITY, f64::INFINITY, false));
                    if let Some((e, l)) = c {
                        g.0 = g.0.min(*e);
                        g.1 = g.1.min(*l);
                        g.2 = true;
                    }
                }
                for (o, c, b, fail) in &all {
                    let g = group[&o[..j]];
                    let ctx = || format!("{run} {name} {mapping_type:?} prefix {j} of {o:?}");
                    if c.is_some() {
                        assert!(
                            b.energy[j] * (1.0 - 1e-12) <= g.0,
                            "{}: energy bound {} > {}",
                            ctx(),
                            b.energy[j],
                            g.0
                        );
                        assert!(
                            b.latency[j] * (1.0 - 1e-12) <= g.1,
                            "{}: latency bound {} > {}",
                            ctx(),
                            b.latency[j],
                            g.1
                        );
                    } else if *fail <= j {
                        assert!(!g.2, "{}: the failure is not decided by the prefix", ctx());
                    }
                    checks += 1;
                }
            }
        }
    });
    if !compared {
        return;
    }
    assert!(orderings > 0, "no layers checked");
    assert!(reused > 0, "memoisation reused no decision ({decided} made)");
    // The on-loading floor is among what is checked.
    assert!(with_onload > 0, "no layer has an on-loading floor");
    println!(
        "prefix bounds: {orderings} orderings, {checks} (ordering, prefix) bounds checked, {with_onload} \
         layers with an on-loading floor, {with_streaming} with a streaming floor above their temporal \
         cycles; memoised allocation equal to fresh on all, {reused} memory decisions reused, {decided} made"
    );
}

/// One layer of a compared run, with ZigZag's spatial mapping for it.
struct Case<'a> {
    run: &'a str,
    acc: &'a Accelerator,
    layer: &'a qc_ir::LoopNest,
    entry: &'a qc_backends::mapping::MappingEntry,
    sm: qc_backends::mapping::SpatialMapping,
    /// ZigZag's factor-merging order for layers parsed from ONNX.
    merge_order: Option<Vec<String>>,
}

/// Calls `f` on the first `per_run` layers of every compared run, each (accelerator, layer,
/// spatial mapping) once; `false` (having said so) when `../shared` is missing.
fn distinct_cases(per_run: usize, mut f: impl FnMut(Case)) -> bool {
    let Some(shared) = qc_tests::shared_or_say("loma_zigzag") else { return false };
    let root = shared.join("peers/zigzag-inputs");
    let mut cache = Workloads::default();
    let mut seen = std::collections::HashSet::new();
    for path in qc_tests::files_under(&root.join("results"), ".summary.json") {
        let run = path.file_name().unwrap().to_string_lossy().trim_end_matches(".summary.json").to_string();
        if skipped(&run) {
            continue;
        }
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let field = |k: &str| root.join(s[k].as_str().unwrap());
        let acc: Accelerator =
            read_with(&field("accel"), qc_backends::zigzag::read_accelerator_yaml).unwrap();
        let mapping: MappingFile =
            read_with(&field("mapping"), qc_backends::zigzag::read_mapping_yaml).unwrap();
        let wpath = field("workload");
        let onnx = wpath.extension().is_some_and(|e| e == "onnx");
        let w = cache.get(&wpath).unwrap().clone();
        for rec in s["layers"].as_array().unwrap().iter().take(per_run) {
            let name = rec["layer"].as_str().unwrap();
            let sm_text = rec["spatial_mapping"].as_str().unwrap();
            // Runs repeat (accelerator, layer, spatial mapping) triples; each is checked once.
            if !seen.insert((s["accel"].to_string(), wpath.clone(), name.to_string(), sm_text.to_string())) {
                continue;
            }
            let layer = w.layers.iter().find(|l| l.name == name).unwrap();
            let entry = mapping.entry_for(&layer.name, &layer.op_type).unwrap();
            let merge_order = onnx.then(|| zigzag_onnx_dim_order(layer));
            f(Case { run: &run, acc: &acc, layer, entry, sm: parse_spatial(sm_text).unwrap(), merge_order });
        }
    }
    true
}

/// The least energy and latency over a group of orderings, and whether any fits.
type Least = (f64, f64, bool);

/// The next permutation in lexicographic order; `false` after the last.
fn next_permutation<T: Ord>(v: &mut [T]) -> bool {
    let n = v.len();
    let Some(i) = (1..n).rev().find(|&i| v[i - 1] < v[i]) else { return false };
    let j = (i..n).rev().find(|&j| v[j] > v[i - 1]).unwrap_or(i);
    v.swap(i - 1, j);
    v[i..].reverse();
    true
}
