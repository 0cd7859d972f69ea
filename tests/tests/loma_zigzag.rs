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
