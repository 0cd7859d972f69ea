//! `qc evaluate`'s output: the JSON schema of `spec/cli.md`, and the reports for people
//! (`qc_backends::report`: text, Markdown, HTML).

use std::io::IsTerminal;

use qc_backends::mapping::{SpatialMapping, TemporalMapping};
use qc_backends::report::{AcceleratorSummary, Design, LayerReport, SearchReach, Split};
use qc_ir::{LoopNest, Workload};
use serde_json::json;

use super::{EvaluateArgs, Evaluated};
use crate::formats::ReportFormat;

/// What the reports say beside the designs: the layers left out and why, the assumed input
/// dims, the DLA/CPU split, what `--optimize` changed.
pub(super) struct Context<'a> {
    pub skipped: &'a [(&'a LoopNest, String)],
    pub assumed: &'a [crate::input_shapes::Assumption],
    pub split: Option<&'a Split>,
    pub optimized: &'a [String],
}

/// The report of `designs` (the first is `--accelerator`, the others `--compare`) in the
/// format asked for.
pub(super) fn render(args: &EvaluateArgs, w: &Workload, designs: &[Evaluated], cx: &Context<'_>) -> String {
    let (skipped, assumed) = (cx.skipped, cx.assumed);
    match args.format {
        ReportFormat::Json => {
            let design = |i: usize, d: &Evaluated| {
                let mut v = json_design(args, w, d, skipped);
                v["accelerator_source"] = json!(accelerator_source(args, i));
                v
            };
            let mut v = match designs {
                [one] => design(0, one),
                _ => json!({
                    "schema_version": 1,
                    "designs": designs.iter().enumerate().map(|(i, d)| design(i, d)).collect::<Vec<_>>(),
                }),
            };
            if !assumed.is_empty() {
                v["assumptions"] = json!(assumed);
            }
            if let Some(split) = cx.split {
                v["placement"] = split_json(split);
            }
            if !cx.optimized.is_empty() {
                v["optimized"] = json!(cx.optimized);
            }
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        }
        ReportFormat::Text => {
            let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
            let width = args.width.or_else(|| {
                if to_terminal {
                    terminal_size::terminal_size().map(|(w, _)| w.0 as usize)
                } else {
                    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
                }
            });
            let color = to_terminal && std::env::var_os("NO_COLOR").is_none();
            let reports = reports(args, w, designs, cx);
            let text = qc_backends::report::text(&reports, width.unwrap_or(120), color);
            // The header's first line is `MODEL on ACCELERATOR`; what was not given follows it.
            let mut notes = String::new();
            if args.accelerator.is_none() {
                notes.push_str(&format!("accelerator: {}\n", crate::accelerators::source_of(None)));
            }
            if !args.fixed_mapping && args.search.mapping.is_none() {
                notes.push_str("spatial mapping: searched (no --mapping)\n");
            }
            match text.split_once('\n') {
                Some((first, rest)) if !notes.is_empty() => format!("{first}\n{notes}{rest}"),
                _ => text,
            }
        }
        ReportFormat::Md => {
            let reports = reports(args, w, designs, cx);
            qc_backends::report::markdown(&reports)
        }
        ReportFormat::Html => {
            let reports = reports(args, w, designs, cx);
            qc_backends::report::html(&reports)
        }
    }
}

/// Design `i`'s accelerator argument: `--accelerator` (`None`: not given), then each `--compare`.
fn accelerator_spec(args: &EvaluateArgs, i: usize) -> Option<&str> {
    match i {
        0 => args.accelerator.as_deref(),
        _ => args.compare.get(i - 1).map(|c| c.split_once(',').map_or(c.as_str(), |(a, _)| a)),
    }
}

/// Where design `i`'s accelerator came from: `built-in default`, `built-in` or `file`.
fn accelerator_source(args: &EvaluateArgs, i: usize) -> &'static str {
    match accelerator_spec(args, i) {
        None => "built-in default",
        Some(s) if crate::accelerators::is_path(s) => "file",
        Some(_) => "built-in",
    }
}

/// The designs for the reports; the default accelerator says so.
fn reports(args: &EvaluateArgs, w: &Workload, designs: &[Evaluated], cx: &Context<'_>) -> Vec<Design> {
    designs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut r = design(args, w, d, cx);
            if accelerator_spec(args, i).is_none() {
                r.settings.insert(0, ("accelerator".into(), crate::accelerators::source_of(None)));
            }
            r
        })
        .collect()
}

/// One design for the reports.
fn design(args: &EvaluateArgs, w: &Workload, e: &Evaluated, cx: &Context<'_>) -> Design {
    let (skipped, assumed) = (cx.skipped, cx.assumed);
    let mut settings = vec![
        (
            "mapping".to_string(),
            if args.fixed_mapping { "fixed (--fixed-mapping)" } else { "searched" }.to_string(),
        ),
        ("latency model".into(), args.search.latency_model.name().to_string()),
    ];
    if !args.fixed_mapping && args.search.mapping.is_none() {
        settings.push(("spatial mapping".into(), "searched (no --mapping)".into()));
    }
    if !args.fixed_mapping {
        settings.push(("objective".into(), format!("{:?}", args.search.opt).to_lowercase()));
        settings.push(("lpf limit".into(), args.search.lpf_limit.clone()));
        settings.push(("spatial mappings".into(), args.search.spatial_mappings.clone()));
        settings.push(("mapping type".into(), format!("{:?}", args.search.mapping_type).to_lowercase()));
        if let Some(b) = &args.search.search_budget {
            settings.push(("search budget".into(), b.clone()));
        }
    }
    if args.search.exploit_data_locality {
        let how =
            if args.search.data_from_top_memory { "on, network data from the top memories" } else { "on" };
        settings.push(("data locality".into(), how.into()));
    }
    if !assumed.is_empty() {
        let list: Vec<String> = assumed.iter().map(ToString::to_string).collect();
        settings.push(("assumed input dims (--assume-dims)".into(), list.join(", ")));
    }
    let layers = e
        .costed
        .iter()
        .map(|c| {
            let mut l = LayerReport::new(
                c.local.as_ref().map_or(&e.acc, |(a, _)| a),
                &c.layer.name,
                &c.layer.op_type,
                class_of(&c.layer),
                c.layer.iterations(),
                &c.cost,
                &c.spatial,
                &c.temporal,
            );
            l.notes.clone_from(&c.notes);
            l.same_as = c.search.as_ref().and_then(|s| s.shared_with).map(|j| e.costed[j].layer.name.clone());
            l.search = c.search.as_ref().map(|s| SearchReach {
                orderings_evaluated: s.evaluated,
                orderings_visited: s.visited,
                orderings_total: s.space,
                candidates_complete: s.complete,
                candidates: s.candidates,
            });
            l
        })
        .collect();
    Design {
        workload: args.workload.model.display().to_string(),
        accelerator: AcceleratorSummary::of(&e.acc),
        settings,
        layers,
        not_costed: not_costed(w, skipped)
            .map(|(n, op, r)| (n.to_string(), op.to_string(), r.to_string()))
            .collect(),
        unfit: e.unfit.iter().map(|u| (u.layer.clone(), u.op_type.clone(), u.explain())).collect(),
        split: cx.split.cloned(),
        prepared: cx.optimized.to_vec(),
        search_budget: if args.fixed_mapping { None } else { args.search.search_budget.clone() },
    }
}

/// The DLA/CPU split in JSON: per unit its ops and MACs, then every CPU op with its rule.
fn split_json(split: &Split) -> serde_json::Value {
    let unit = |u: &qc_backends::report::UnitShare| json!({"ops": u.ops, "macs": u.macs.to_string(), "mac_share_percent": split.mac_share(u)});
    json!({
        "target": split.target,
        "dla": unit(&split.dla),
        "cpu": unit(&split.cpu),
        "uncounted": split.uncounted,
        "cpu_ops": split.cpu_ops.iter().map(|o| json!({
            "node": o.node, "op_type": o.op_type, "macs": o.macs.to_string(), "rule": o.rule, "reason": o.reason,
        })).collect::<Vec<_>>(),
    })
}

/// The nodes not costed: `(name, op type, reason)`.
fn not_costed<'a>(
    w: &'a Workload,
    skipped: &'a [(&'a LoopNest, String)],
) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> {
    skipped
        .iter()
        .map(|(l, why)| (l.name.as_str(), l.op_type.as_str(), why.as_str()))
        .chain(w.not_lowered.iter().map(|n| (n.node.as_str(), n.op_type.as_str(), n.reason.as_str())))
}

fn spatial_json(s: &SpatialMapping) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (oa, u) in &s.dims {
        let inner: serde_json::Map<String, serde_json::Value> =
            u.iter().map(|(d, f)| (d.clone(), json!(f))).collect();
        m.insert(oa.clone(), serde_json::Value::Object(inner));
    }
    serde_json::Value::Object(m)
}

fn temporal_json(t: &TemporalMapping) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (role, levels) in &t.operands {
        let lv: Vec<serde_json::Value> = levels
            .iter()
            .map(|l| json!(l.iter().map(|x| json!([x.dim, x.size])).collect::<Vec<_>>()))
            .collect();
        m.insert(role.clone(), json!(lv));
    }
    serde_json::Value::Object(m)
}

/// `mac` for the layers ZigZag costs from ONNX (convolutions, matrix products), else
/// `pooling` or `element-wise` (costed with `--all-layers`, or from a YAML workload).
fn class_of(layer: &LoopNest) -> &'static str {
    use qc_ir::Compute;
    match layer.compute {
        Compute::Mac => "mac",
        Compute::Max | Compute::Avg => "pooling",
        Compute::Add | Compute::Sub | Compute::Mul => "element-wise",
    }
}

/// `--search-budget` in seconds (`None` without it, or if it does not parse, which
/// `search_options` refuses before any search).
fn search_options_budget(args: &EvaluateArgs) -> Option<f64> {
    args.search.search_budget.as_deref().and_then(super::parse_duration).map(|d| d.as_secs_f64())
}

/// One design in the JSON schema of `spec/cli.md`.
fn json_design(
    args: &EvaluateArgs,
    w: &Workload,
    e: &Evaluated,
    skipped: &[(&LoopNest, String)],
) -> serde_json::Value {
    let Evaluated { acc, costed, seconds, .. } = e;
    let seconds = *seconds;
    let dirs = ["fh", "tl", "fl", "th"];
    let layers: Vec<serde_json::Value> = costed
        .iter()
        .map(|c| {
            let k = &c.cost;
            // The memories the layer saw (with data locality, its own accelerator's).
            let acc = c.local.as_ref().map_or(acc, |(a, _)| a);
            let operands: Vec<serde_json::Value> = k
                .operands
                .iter()
                .map(|o| {
                    let levels: Vec<serde_json::Value> = o
                        .levels
                        .iter()
                        .map(|l| {
                            let acc_map: serde_json::Map<String, serde_json::Value> =
                                dirs.iter().zip(l.accesses).map(|(d, a)| (d.to_string(), json!(a))).collect();
                            let en_map: serde_json::Map<String, serde_json::Value> =
                                dirs.iter().zip(l.energy).map(|(d, e)| (d.to_string(), json!(e))).collect();
                            json!({
                                "memory": acc.memories[l.memory].name,
                                "tile_elements": l.tile_elems,
                                "tile_bits": l.tile_bits,
                                "instances": l.instances,
                                "accesses": acc_map,
                                "energy": en_map,
                            })
                        })
                        .collect();
                    json!({"operand": o.role, "memory_operand": o.mem_operand.name(), "levels": levels})
                })
                .collect();
            json!({
                "name": c.layer.name,
                "op_type": c.layer.op_type,
                "class": class_of(&c.layer),
                "mapping_entry": c.entry,
                "macs": c.layer.iterations().to_string(),
                "energy": k.energy,
                "latency": k.latency,
                "energy_breakdown": {"mac": k.mac_energy, "memory": k.mem_energy, "operands": operands},
                "latency_breakdown": {
                    "ideal_cycle": k.ideal_cycle,
                    "ideal_temporal_cycle": k.ideal_temporal_cycle,
                    "stall_slack": k.stall_slack_comb,
                    "onload": k.onload,
                    "offload": k.offload,
                    "systolic_drain": k.systolic_drain,
                },
                "utilization": {"spatial": k.spatial_utilization, "mac": k.mac_utilization},
                "spatial_mapping": spatial_json(&c.spatial),
                "temporal_mapping": temporal_json(&c.temporal),
                "notes": c.notes,
                // With data locality: per operand, the memory that is its top for this layer.
                "placement": c.local.as_ref().map(|(_, p)| {
                    p.tops
                        .iter()
                        .map(|(role, g)| (role.clone(), json!(e.acc.memories[*g].name)))
                        .collect::<serde_json::Map<String, serde_json::Value>>()
                }),
                "search": c.search.as_ref().map(|s| json!({
                    "spatial_candidates": s.candidates,
                    "orderings_evaluated": s.evaluated,
                    "orderings_pruned": s.pruned,
                    "orderings_visited": s.visited,
                    "orderings_total": s.space,
                    "spatial_candidates_complete": s.complete,
                    "cut_by_budget": !s.exhaustive,
                    "exhaustive": s.exhaustive,
                    "same_as_layer": s.shared_with.map(|j| costed[j].layer.name.clone()),
                })),
            })
        })
        .collect();
    let energy: f64 = costed.iter().map(|c| c.cost.energy).sum();
    let latency: f64 = costed.iter().map(|c| c.cost.latency).sum();
    let mac: f64 = costed.iter().map(|c| c.cost.mac_energy).sum();
    let not_costed: Vec<serde_json::Value> = not_costed(w, skipped)
        .map(|(name, op_type, reason)| json!({"name": name, "op_type": op_type, "reason": reason}))
        .collect();
    json!({
        "schema_version": 1,
        "workload": args.workload.model.display().to_string(),
        "accelerator": acc.name,
        "latency_model": args.search.latency_model.name(),
        "data_locality": args.search.exploit_data_locality.then_some(if args.search.data_from_top_memory { "top-memory-io" } else { "on" }),
        "mapping": if args.fixed_mapping { "fixed" } else { "searched" },
        "search": (!args.fixed_mapping).then(|| {
            let searches = || costed.iter().filter_map(|c| c.search.as_ref()).filter(|s| s.shared_with.is_none());
            let evaluated: u64 = searches().map(|s| s.evaluated).sum();
            let pruned: u64 = searches().map(|s| s.pruned).sum();
            let visited = searches().fold(0u64, |a, s| a.saturating_add(s.visited));
            let total = searches().fold(0u64, |a, s| a.saturating_add(s.space));
            json!({
                "objective": format!("{:?}", args.search.opt).to_lowercase(),
                "lpf_limit": args.search.lpf_limit,
                "spatial_mappings": args.search.spatial_mappings,
                "orderings_evaluated": evaluated,
                "orderings_pruned": pruned,
                "orderings_visited": visited,
                "orderings_total": total,
                "layers_searched": searches().count(),
                "layers_cut": searches().filter(|s| !s.exhaustive).count(),
                "budget_seconds": search_options_budget(args),
                "seconds": seconds,
                "orderings_per_second": if seconds > 0.0 { evaluated as f64 / seconds } else { 0.0 },
            })
        }),
        "layers": layers,
        "total": {"energy": energy, "latency": latency, "mac_energy": mac, "memory_energy": energy - mac},
        "not_costed": not_costed,
        "unfit": e.unfit.iter().map(|u| json!({
            "name": u.layer, "op_type": u.op_type, "memory": u.memory, "reason": u.explain(),
        })).collect::<Vec<_>>(),
    })
}
