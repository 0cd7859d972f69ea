//! The reports of [`crate::network::evaluate`]'s results: the JSON document of `qc evaluate
//! --format json` (`spec/cli.md`), and the [`Design`]s the text, Markdown and HTML reports
//! render, from the typed [`Evaluation`]s and a [`ReportContext`].

use qc_ir::{LoopNest, NotLowered};
use serde_json::json;

use super::{AcceleratorSummary, Design, LayerReport, SearchReach, Split};
use crate::mapping::{SpatialMapping, TemporalMapping};
use crate::network::{EvaluateOptions, Evaluation, latency_model_name, mapping_type_name, objective_name};

/// One input dim whose size was assumed (an unknown dim set by `--assume-dims`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assumption {
    /// The graph input.
    pub input: String,
    /// The dim's position.
    pub index: usize,
    /// The dim as the model declares it (`batch`, `?`).
    pub declared: String,
    /// The size assumed.
    pub value: u64,
}

impl std::fmt::Display for Assumption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} dim {} ({}) = {}", self.input, self.index, self.declared, self.value)
    }
}

/// What the reports say beside the evaluations: the workload's name, the layers left out and
/// why, the assumed input dims, the DLA/CPU split, what an optimization changed, and how the
/// search was asked for.
#[derive(Clone, Copy, Debug)]
pub struct ReportContext<'a> {
    /// The workload as the reports name it (the model's path).
    pub workload: &'a str,
    /// The layers left out ([`crate::network::Prepared::skipped`]).
    pub skipped: &'a [(&'a LoopNest, String)],
    /// The nodes not lowered ([`qc_ir::Workload::not_lowered`]).
    pub not_lowered: &'a [NotLowered],
    pub assumed: &'a [Assumption],
    pub split: Option<&'a Split>,
    /// What was done to the model before it was lowered, one line each.
    pub optimized: &'a [String],
    /// The search budget as the user wrote it (`60s`); without it, a budget is written in
    /// seconds.
    pub budget_text: Option<&'a str>,
    /// Whether a mapping file was given (without one, the spatial mappings are searched from
    /// ZigZag's defaults, and the reports say so).
    pub mapping_given: bool,
}

/// Where an evaluated design's accelerator came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceleratorSource {
    /// `built-in default`, `built-in` or `file` (the JSON report's `accelerator_source`).
    pub kind: String,
    /// For the default accelerator: the reports' line about it (which it is, how to choose
    /// another); `None` for one the user chose.
    pub default_note: Option<String>,
}

/// The JSON report (`qc evaluate --format json`) of `designs` (the first the main accelerator,
/// the others compared with it), evaluated with `opts`: one design's document, or `designs` of
/// several; pretty-printed, with a final newline.
pub fn evaluation_json(
    designs: &[(&Evaluation, &AcceleratorSource)],
    opts: &EvaluateOptions,
    cx: &ReportContext<'_>,
) -> String {
    let design = |(e, source): &(&Evaluation, &AcceleratorSource)| {
        let mut v = json_design(opts, e, cx);
        v["accelerator_source"] = json!(source.kind);
        v
    };
    let mut v = match designs {
        [one] => design(one),
        _ => json!({
            "schema_version": 1,
            "designs": designs.iter().map(design).collect::<Vec<_>>(),
        }),
    };
    if !cx.assumed.is_empty() {
        v["assumptions"] = json!(cx.assumed);
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

/// The designs for the text, Markdown and HTML reports ([`super::text`], [`super::markdown`],
/// [`super::html`]); the default accelerator says so.
pub fn evaluation_designs(
    designs: &[(&Evaluation, &AcceleratorSource)],
    opts: &EvaluateOptions,
    cx: &ReportContext<'_>,
) -> Vec<Design> {
    designs
        .iter()
        .map(|(e, source)| {
            let mut r = design(opts, e, cx);
            if let Some(note) = &source.default_note {
                r.settings.insert(0, ("accelerator".into(), note.clone()));
            }
            r
        })
        .collect()
}

/// The budget as the reports give it: as written, else in seconds.
fn budget_text(opts: &EvaluateOptions, cx: &ReportContext<'_>) -> Option<String> {
    let budget = opts.search.as_ref()?.budget?;
    Some(cx.budget_text.map_or_else(|| format!("{}s", budget.as_secs_f64()), str::to_string))
}

/// `--lpf-limit` and `--spatial-mappings` as the reports write them: the number, else `none`
/// or `all`.
fn count_text(n: Option<usize>, unlimited: &str) -> String {
    n.map_or_else(|| unlimited.to_string(), |n| n.to_string())
}

/// One design for the reports.
fn design(opts: &EvaluateOptions, e: &Evaluation, cx: &ReportContext<'_>) -> Design {
    let mut settings = vec![
        (
            "mapping".to_string(),
            if opts.search.is_none() { "fixed (--fixed-mapping)" } else { "searched" }.to_string(),
        ),
        ("latency model".into(), latency_model_name(opts.latency_model).to_string()),
    ];
    if let Some(s) = &opts.search {
        if !cx.mapping_given {
            settings.push(("spatial mapping".into(), "searched (no --mapping)".into()));
        }
        settings.push(("objective".into(), objective_name(s.objective).to_string()));
        settings.push(("lpf limit".into(), count_text(s.lpf_limit, "none")));
        settings.push(("spatial mappings".into(), count_text(s.spatial_mappings, "all")));
        settings.push(("mapping type".into(), mapping_type_name(opts.mapping_type).to_string()));
        if let Some(b) = budget_text(opts, cx) {
            settings.push(("search budget".into(), b));
        }
    }
    if let Some(l) = &opts.locality {
        let how = if l.data_from_top_memory { "on, network data from the top memories" } else { "on" };
        settings.push(("data locality".into(), how.into()));
    } else if e.accelerator.array.imc.is_some() {
        settings.push(("data locality".into(), "on (in-memory compute, as ZigZag)".into()));
    }
    if !cx.assumed.is_empty() {
        let list: Vec<String> = cx.assumed.iter().map(ToString::to_string).collect();
        settings.push(("assumed input dims (--assume-dims)".into(), list.join(", ")));
    }
    let layers = e
        .layers
        .iter()
        .map(|c| {
            let mut l = LayerReport::new(
                c.accelerator(&e.accelerator),
                &c.layer.name,
                &c.layer.op_type,
                class_of(&c.layer),
                c.layer.iterations(),
                &c.cost,
                &c.spatial,
                &c.temporal,
            );
            l.notes.clone_from(&c.notes);
            l.bound = c.bound.as_ref().map(super::BoundSummary::of);
            l.same_as = c.search.as_ref().and_then(|s| s.shared_with).map(|j| e.layers[j].layer.name.clone());
            l.search = c.search.as_ref().map(|s| SearchReach {
                orderings_evaluated: s.evaluated,
                orderings_visited: s.visited,
                orderings_total: s.space,
                candidates_complete: s.complete,
                candidates: s.candidates,
            });
            l.certificate = c.search.as_ref().and_then(|s| s.certificate.as_deref().cloned());
            l
        })
        .collect();
    Design {
        workload: cx.workload.to_string(),
        accelerator: AcceleratorSummary::of(&e.accelerator),
        settings,
        layers,
        not_costed: not_costed(cx)
            .map(|(n, op, r, e)| (n.to_string(), op.to_string(), r.to_string(), e))
            .collect(),
        unfit: e.unfit.iter().map(|u| (u.layer.clone(), u.op_type.clone(), u.explain())).collect(),
        split: cx.split.cloned(),
        prepared: cx.optimized.to_vec(),
        search_budget: budget_text(opts, cx),
    }
}

/// The DLA/CPU split in JSON: per unit its ops and MACs, then every CPU op with its rule.
fn split_json(split: &Split) -> serde_json::Value {
    let unit = |u: &super::UnitShare| json!({"ops": u.ops, "macs": u.macs.to_string(), "mac_share_percent": split.mac_share(u)});
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

/// The nodes not costed: `(name, op type, reason, elements of vector work)`.
fn not_costed<'a>(cx: &ReportContext<'a>) -> impl Iterator<Item = (&'a str, &'a str, &'a str, Option<u64>)> {
    cx.skipped.iter().map(|(l, why)| (l.name.as_str(), l.op_type.as_str(), why.as_str(), None)).chain(
        cx.not_lowered.iter().map(|n| (n.node.as_str(), n.op_type.as_str(), n.reason.as_str(), n.elements)),
    )
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
/// `pooling` or `element-wise` (costed with `all_layers`, or from a YAML workload).
pub fn class_of(layer: &LoopNest) -> &'static str {
    use qc_ir::Compute;
    match layer.compute {
        Compute::Mac => "mac",
        Compute::Max | Compute::Avg => "pooling",
        Compute::Add | Compute::Sub | Compute::Mul => "element-wise",
    }
}

/// One design in the JSON schema of `spec/cli.md`.
fn json_design(opts: &EvaluateOptions, e: &Evaluation, cx: &ReportContext<'_>) -> serde_json::Value {
    let Evaluation { accelerator: acc, layers: costed, seconds, .. } = e;
    let seconds = *seconds;
    let dirs = ["fh", "tl", "fl", "th"];
    let layers: Vec<serde_json::Value> = costed
        .iter()
        .map(|c| {
            let k = &c.cost;
            // The memories the layer saw (with data locality, its own accelerator's).
            let acc = c.accelerator(acc);
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
            let mut layer = json!({
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
                "bound": c.bound.as_ref().map(|b| bound_json(b, acc, k.energy, k.latency)),
                "spatial_mapping": spatial_json(&c.spatial),
                "temporal_mapping": temporal_json(&c.temporal),
                "notes": c.notes,
                // With data locality: per operand, the memory that is its top for this layer.
                "placement": c.local.as_ref().map(|(_, p)| {
                    p.tops
                        .iter()
                        .map(|(role, g)| (role.clone(), json!(e.accelerator.memories[*g].name)))
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
                    "certificate": s.certificate.as_ref().map(|c| c.to_json()),
                })),
            });
            // On an in-memory-compute array: the clock period, the latency in ns and the
            // array's energy by part.
            if let Some(i) = &k.imc {
                layer["imc"] = json!({
                    "tclk_ns": i.tclk,
                    "latency_ns": k.latency * i.tclk,
                    "cycles_per_mac": i.cycles_per_mac,
                    "energy_breakdown": crate::cost::imc::ENERGY_PARTS
                        .iter()
                        .zip(i.energy)
                        .map(|(n, e)| (n.to_string(), json!(e)))
                        .collect::<serde_json::Map<String, serde_json::Value>>(),
                });
            }
            layer
        })
        .collect();
    let total = e.total();
    let not_costed: Vec<serde_json::Value> = not_costed(cx)
        .map(|(name, op_type, reason, elements)| {
            json!({"name": name, "op_type": op_type, "reason": reason, "elements": elements})
        })
        .collect();
    let mut v = json!({
        "schema_version": 1,
        "workload": cx.workload,
        "accelerator": acc.name,
        "latency_model": latency_model_name(opts.latency_model),
        "data_locality": opts
            .locality
            .map(|l| if l.data_from_top_memory { "top-memory-io" } else { "on" })
            .or(acc.array.imc.as_ref().map(|_| "on")),
        "mapping": if opts.search.is_none() { "fixed" } else { "searched" },
        "search": opts.search.as_ref().map(|o| {
            let searches = || costed.iter().filter_map(|c| c.search.as_ref()).filter(|s| s.shared_with.is_none());
            let evaluated: u64 = searches().map(|s| s.evaluated).sum();
            let pruned: u64 = searches().map(|s| s.pruned).sum();
            let visited = searches().fold(0u64, |a, s| a.saturating_add(s.visited));
            let total = searches().fold(0u64, |a, s| a.saturating_add(s.space));
            json!({
                "objective": objective_name(o.objective),
                "lpf_limit": count_text(o.lpf_limit, "none"),
                "spatial_mappings": count_text(o.spatial_mappings, "all"),
                "orderings_evaluated": evaluated,
                "orderings_pruned": pruned,
                "orderings_visited": visited,
                "orderings_total": total,
                "layers_searched": searches().count(),
                "layers_cut": searches().filter(|s| !s.exhaustive).count(),
                "budget_seconds": o.budget.map(|b| b.as_secs_f64()),
                "optimal": opts.optimal.map(|p| json!({
                    "budget_orderings_per_layer": p.budget,
                    "mixed": p.mixed,
                    "tolerance": p.tolerance,
                    "layers_complete": searches().filter(|s| s.certificate.as_ref().is_some_and(|c| c.complete)).count(),
                    "layers_optimal": searches().filter(|s| s.certificate.as_ref().is_some_and(|c| c.complete && c.gap == Some(0.0))).count(),
                })),
                "seconds": seconds,
                "orderings_per_second": if seconds > 0.0 { evaluated as f64 / seconds } else { 0.0 },
            })
        }),
        "layers": layers,
        "total": {"energy": total.energy, "latency": total.latency, "mac_energy": total.mac_energy, "memory_energy": total.memory_energy},
        "bound": e.bound().map(|(energy, latency)| json!({
            "energy": energy,
            "latency": latency,
            "energy_gap": crate::bound::gap(total.energy, energy),
            "latency_gap": latency.and_then(|l| crate::bound::gap(total.latency, l)),
            "seconds": e.bound_seconds,
        })),
        "not_costed": not_costed,
        "unfit": e.unfit.iter().map(|u| json!({
            "name": u.layer, "op_type": u.op_type, "memory": u.memory, "reason": u.explain(),
        })).collect::<Vec<_>>(),
    });
    // On an in-memory-compute array: its macro model and the network latency in ns.
    if let Some(m) = super::ImcSummary::of(acc) {
        let parts = |v: &[(String, f64)]| {
            v.iter()
                .map(|(n, x)| (n.clone(), json!(x)))
                .collect::<serde_json::Map<String, serde_json::Value>>()
        };
        v["imc"] = json!({
            "type": m.kind,
            "bit_serial_precision": m.bit_serial_precision,
            "adc_resolution": m.adc_resolution,
            "cycles_per_mac": m.cycles_per_mac,
            "tclk_ns": m.tclk,
            "tclk_breakdown": parts(&m.tclk_parts),
            "area_mm2": m.area,
            "area_breakdown": parts(&m.area_parts),
            "memory_area": m.memory_area,
            "total_area": m.area + m.memory_area,
            "peak": {"tops": m.peak.0, "tops_per_watt": m.peak.1, "tops_per_mm2": m.peak.2},
            "latency_ns": m.tclk * total.latency,
        });
    }
    v
}

/// One layer's lower bounds in JSON: the bounds, how many times the found cost is above them,
/// and each term (`spec/bounds.md`).
fn bound_json(
    b: &crate::bound::LayerBound,
    acc: &crate::arch::Accelerator,
    energy: f64,
    latency: f64,
) -> serde_json::Value {
    let name = |m: usize| acc.memories.get(m).map_or("?", |x| x.name.as_str());
    json!({
        "energy": b.energy,
        "latency": b.latency,
        "energy_gap": b.energy_gap(energy),
        "latency_gap": b.latency_gap(latency),
        "mac_energy": b.mac_energy,
        "ideal_cycles": b.ideal_cycles,
        "traffic": b.traffic.iter().map(|t| json!({
            "operand": t.role,
            "memory": name(t.memory),
            "direction": t.direction.short(),
            "kind": t.kind.name(),
            "elements": t.elements,
            "bits": t.bits,
            "allowance": t.allowance,
            "words": t.words,
            "energy": t.energy,
        })).collect::<Vec<_>>(),
        "refetch": b.refetch.as_ref().map(|r| json!({
            "dim": r.dim,
            "crossings": r.crossings.iter().map(|(role, m)| format!("{role} {}", name(*m))).collect::<Vec<_>>(),
            "energy": r.energy,
        })),
        "bandwidth": b.bandwidth.iter().map(|p| json!({
            "memory": name(p.memory),
            "port": acc.memories.get(p.memory).and_then(|m| m.ports.get(p.port)).map_or("?", |x| x.name.as_str()),
            "streams": p.links.iter().map(|(r, d)| format!("{r} {}", d.short())).collect::<Vec<_>>(),
            "cycles": p.cycles,
        })).collect::<Vec<_>>(),
    })
}
