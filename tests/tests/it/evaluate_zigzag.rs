//! qc's cost model against every recorded ZigZag run in `../shared/peers/zigzag-inputs/results`
//! and the in-memory-compute runs kept in `bench/results/imc` (ZigZag 3.9.1 on `aimc.yaml` and
//! `dimc.yaml`, written by `bench/imc_vs_zigzag.sh --summaries`): each recorded layer is evaluated
//! under ZigZag's chosen spatial and temporal mapping, with the 3.9.1 latency model for `v391_*`
//! and version-3.9.1 runs and the repository's (commit 3d12a96) for `head_*` runs, and its energy
//! and latency must agree within 0.1% (0.01% on an in-memory-compute array, whose clock period
//! and area must agree too). Runs with inter-layer data locality (`*edl*`, `head_tpu_onnx_mix`,
//! whose `enable_mix_spatial_mapping` switches it on too, and every in-memory-compute run, where
//! ZigZag always switches it on) go through qc's own data-locality placement
//! ([`qc_backends::locality`]): each operand's placement must give it as many memory levels as
//! ZigZag's recorded temporal mapping has, and the layer is costed on the accelerator that
//! placement leaves it.

use std::path::Path;
use std::time::Instant;

use qc_backends::arch::Accelerator;
use qc_backends::cost::{CostOptions, LatencyModel, evaluate};
use qc_backends::locality::{self, LocalityOptions, OperandTops};
use qc_backends::mapping::{MappingFile, OperandLinks};
use qc_tests::zigzag_results::{Workloads, parse_spatial, parse_temporal, read_with, rel_err};

/// Every layer must agree this closely.
const LIMIT: f64 = 1e-3;
/// Every layer on an in-memory-compute array must agree this closely.
const IMC_LIMIT: f64 = 1e-4;
/// Layers differing more than this are listed.
const REPORT: f64 = 1e-4;

/// qc's data-locality placement of a run's workload (ZigZag's costed layers, in order), by layer
/// name.
fn placements(
    workload: &qc_ir::Workload,
    acc: &Accelerator,
    mapping: &MappingFile,
    yaml: bool,
) -> Result<Vec<(String, OperandTops)>, String> {
    let costed = |l: &qc_ir::LoopNest| {
        (yaml || qc::evaluate::ZIGZAG_COSTED.contains(&l.op_type.as_str()))
            && qc_backends::network::imc_skipped(l, acc, yaml).is_none()
    };
    let flow = workload.dataflow(costed);
    let kept: Vec<usize> = (0..workload.layers.len()).filter(|&i| costed(&workload.layers[i])).collect();
    let layers: Vec<&qc_ir::LoopNest> = kept.iter().map(|&i| &workload.layers[i]).collect();
    let preds: Vec<Vec<usize>> = kept
        .iter()
        .map(|&i| flow[i].iter().filter_map(|j| kept.iter().position(|k| k == j)).collect())
        .collect();
    let links: Vec<&OperandLinks> = layers
        .iter()
        .map(|l| {
            mapping.entry_for(&l.name, &l.op_type).map(|e| &e.links).ok_or(format!("no entry for {}", l.name))
        })
        .collect::<Result<_, _>>()?;
    let placed = locality::place(&layers, &preds, acc, &links, &LocalityOptions::default())
        .map_err(|e| format!("{:?}", miette::Report::new(e)))?;
    Ok(layers.iter().map(|l| l.name.clone()).zip(placed).collect())
}

/// One run's outcome.
struct Run {
    name: String,
    /// The run is on an in-memory-compute array.
    imc: bool,
    layers: usize,
    worst_energy: f64,
    worst_latency: f64,
    /// Layers placed by qc's data-locality search.
    placed: usize,
    notes: Vec<String>,
    errors: Vec<String>,
}

fn check_run(inputs: &mut Workloads, root: &Path, summary: &Path) -> Result<Run, String> {
    let run = summary.file_name().unwrap().to_string_lossy().trim_end_matches(".summary.json").to_string();
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(summary).map_err(|e| format!("{}: {e}", summary.display()))?,
    )
    .map_err(|e| format!("{}: {e}", summary.display()))?;
    let field = |k: &str| s[k].as_str().ok_or_else(|| format!("{run}: no `{k}`"));
    let model = if run.starts_with("v391_") || s["version"] == "3.9.1" {
        LatencyModel::Zigzag391
    } else if run.starts_with("head_") {
        LatencyModel::Zigzag3d12a96
    } else {
        return Err(format!("{run}: neither a `v391_` nor a `head_` run, nor of version 3.9.1"));
    };
    let opts = CostOptions { latency_model: model };
    // ZigZag's API switches inter-layer data locality on for either flag.
    let flag = |k: &str| s["extra"][k].as_bool().unwrap_or(false);
    let locality =
        flag("exploit_data_locality") || flag("enable_mix_spatial_mapping") || flag("in_memory_compute");
    let acc: Accelerator = read_with(
        &qc_tests::summary_path(root, field("accel")?),
        qc_backends::zigzag::read_accelerator_yaml,
    )?;
    let mapping: MappingFile =
        read_with(&root.join(field("mapping")?), qc_backends::zigzag::read_mapping_yaml)?;
    let workload_path = root.join(field("workload")?);
    let yaml = workload_path.extension().is_some_and(|e| e == "yaml");
    let workload = inputs.get(&workload_path)?;
    let placed = if locality { placements(workload, &acc, &mapping, yaml)? } else { Vec::new() };
    let imc = qc_backends::cost::ImcMacro::new(&acc.array);
    if flag("in_memory_compute") != imc.is_some() {
        return Err(format!("{run}: `in_memory_compute` does not match the accelerator"));
    }
    let mut out = Run {
        name: run.clone(),
        imc: imc.is_some(),
        layers: 0,
        worst_energy: 0.0,
        worst_latency: 0.0,
        placed: 0,
        notes: Vec::new(),
        errors: Vec::new(),
    };
    let layers = s["layers"].as_array().ok_or_else(|| format!("{run}: no `layers`"))?;
    if layers.is_empty() || s["n_layers"].as_u64() != Some(layers.len() as u64) {
        return Err(format!("{run}: {} layers recorded, `n_layers` is {}", layers.len(), s["n_layers"]));
    }
    for rec in layers {
        let name = rec["layer"].as_str().unwrap_or("?");
        let mut one = || -> Result<(), String> {
            let layer = workload
                .layers
                .iter()
                .find(|l| l.name == name)
                .ok_or_else(|| "the workload has no layer of this name".to_string())?;
            let entry = mapping
                .entry_for(&layer.name, &layer.op_type)
                .ok_or_else(|| format!("no mapping entry for op type `{}`", layer.op_type))?;
            let sm = parse_spatial(rec["spatial_mapping"].as_str().ok_or("no spatial_mapping")?)?;
            let tm = parse_temporal(rec["temporal"].as_str().ok_or("no temporal")?)?;
            let acc = if locality {
                let p = placed.iter().find(|(n, _)| n == name).map(|(_, p)| p).ok_or("not placed")?;
                let acc = locality::restrict_placed(&acc, &entry.links, p);
                // As many levels per operand as ZigZag's mapping has.
                for (role, levels) in &tm.operands {
                    let mem = entry.links.mem(role).ok_or(format!("no link for {role}"))?;
                    let have = acc.levels(mem).len();
                    if have != levels.len() {
                        return Err(format!(
                            "data locality: operand {role} gets {have} levels, ZigZag's mapping {} ({p:?})",
                            levels.len()
                        ));
                    }
                }
                out.placed += 1;
                acc
            } else {
                acc.clone()
            };
            let cost = evaluate(layer, &acc, &entry.links, &sm, &tm, &opts)
                .map_err(|e| format!("{:?}", miette::Report::new(e)))?;
            let e = rec["energy"].as_f64().ok_or("no energy")?;
            let l = rec["latency"].as_f64().ok_or("no latency")?;
            // The clock period and the area (array plus the memories), where the run records them.
            if let (Some(m), Some(t)) = (&imc, rec["tclk"].as_f64()) {
                let area = m.area() + acc.memories.iter().fold(0.0, |a, x| a + x.area);
                let ours = cost.imc.as_ref().map_or(f64::NAN, |i| i.tclk);
                let theirs_area = rec["area"].as_f64().ok_or("no area")?;
                if rel_err(ours, t) > 1e-12 || rel_err(area, theirs_area) > 1e-12 {
                    return Err(format!("tclk {ours} vs {t}, area {area} vs {theirs_area}"));
                }
            }
            let (ee, le) = (rel_err(cost.energy, e), rel_err(cost.latency, l));
            out.worst_energy = out.worst_energy.max(ee);
            out.worst_latency = out.worst_latency.max(le);
            if ee > REPORT || le > REPORT {
                out.notes.push(format!(
                    "{run} {name}: energy {:.3} vs {e:.3} ({ee:.2e}); latency {} vs {l} ({le:.2e}); \
                     stall {} vs {}, onload {} vs {}, offload {} vs {}",
                    cost.energy,
                    cost.latency,
                    cost.stall_slack_comb,
                    rec["stall_slack_comb"],
                    cost.onload,
                    rec["onload"],
                    cost.offload,
                    rec["offload"],
                ));
            }
            Ok(())
        };
        if let Err(e) = one() {
            out.errors.push(format!("{run} {name}: {e}"));
        }
        out.layers += 1;
    }
    Ok(out)
}

#[test]
fn every_recorded_zigzag_run() {
    let Some(shared) = qc_tests::shared_or_say("evaluate_zigzag") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let start = Instant::now();
    let mut summaries = qc_tests::files_under(&root.join("results"), ".summary.json");
    assert!(!summaries.is_empty(), "no summaries under {}", root.display());
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results/imc");
    let imc_runs = qc_tests::files_under(&kept, ".summary.json");
    assert!(!imc_runs.is_empty(), "no in-memory-compute summaries under {}", kept.display());
    summaries.extend(imc_runs);
    let mut inputs = Workloads::default();
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for path in &summaries {
        match check_run(&mut inputs, &root, path) {
            Ok(r) => runs.push(r),
            Err(e) => failures.push(e),
        }
    }
    println!("{:40} {:>6} {:>7} {:>12} {:>12}", "run", "layers", "placed", "energy err", "latency err");
    for r in &runs {
        println!(
            "{:40} {:>6} {:>7} {:>12.2e} {:>12.2e}",
            r.name, r.layers, r.placed, r.worst_energy, r.worst_latency
        );
    }
    let notes: Vec<&String> = runs.iter().flat_map(|r| &r.notes).collect();
    if !notes.is_empty() {
        println!("\nlayers above {REPORT:e}:");
        for n in &notes {
            println!("  {n}");
        }
    }
    println!("\n{} runs in {:.2?}", runs.len(), start.elapsed());
    failures.extend(runs.iter().flat_map(|r| r.errors.iter().cloned()));
    for r in &runs {
        let limit = if r.imc { IMC_LIMIT } else { LIMIT };
        if r.worst_energy > limit || r.worst_latency > limit {
            failures.push(format!(
                "{}: worst energy error {:.2e}, latency {:.2e} (limit {limit:e})",
                r.name, r.worst_energy, r.worst_latency
            ));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
