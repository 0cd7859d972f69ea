//! `qc evaluate WORKLOAD --accelerator ACC.yaml --mapping MAP.yaml --fixed-mapping`: energy and
//! latency of every layer under the mapping the mapping file gives, with ZigZag's cost model
//! (`qc_backends::cost`, `spec/accelerator.md`).
//!
//! For each layer, the mapping file's entry (by layer name, then operator type, then `default`)
//! gives the spatial mapping, fitted to the layer as ZigZag fits it
//! (`qc_backends::spatial::fit_user_mapping`), and a complete `temporal_ordering` (innermost
//! first), which ZigZag's bottom-up allocator places in the memory levels
//! (`qc_backends::cost::allocate`). The layers of an ONNX model that ZigZag costs (Conv,
//! QLinearConv, Gemm, MatMul) are costed by default, every lowered layer with `--all-layers`; a
//! ZigZag workload YAML is costed whole, as ZigZag costs it.

use std::fmt::Write as _;
use std::path::PathBuf;

use qc_backends::arch::Accelerator;
use qc_backends::cost::{AllocOptions, CostOptions, Evaluator, LatencyModel, LayerCost, allocate};
use qc_backends::mapping::{MappingEntry, OrderSize, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::{LoopNest, Workload};
use serde_json::json;

use crate::cli::Format;
use crate::lower::{LowerArgs, LowerFormat};

/// The op types ZigZag's ONNX parser costs (`PARSER_MAPPING`).
pub const ZIGZAG_COSTED: &[&str] = &["Conv", "QLinearConv", "Gemm", "MatMul"];

/// Which ZigZag latency model to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyModelArg {
    /// ZigZag 3.9.1, the release on PyPI.
    #[value(name = "zigzag-3.9.1")]
    Zigzag391,
    /// ZigZag's repository at commit 3d12a96 (different on-loading, no systolic drain).
    #[value(name = "zigzag-3d12a96")]
    Zigzag3d12a96,
}

impl LatencyModelArg {
    fn model(self) -> LatencyModel {
        match self {
            LatencyModelArg::Zigzag391 => LatencyModel::Zigzag391,
            LatencyModelArg::Zigzag3d12a96 => LatencyModel::Zigzag3d12a96,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LatencyModelArg::Zigzag391 => "zigzag-3.9.1",
            LatencyModelArg::Zigzag3d12a96 => "zigzag-3d12a96",
        }
    }
}

/// Arguments of `qc evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The ONNX model, or a ZigZag manual-workload YAML (`.yaml`, `.yml`).
    pub workload: PathBuf,
    /// The accelerator: ZigZag's accelerator YAML.
    #[arg(long)]
    pub accelerator: PathBuf,
    /// The mapping file: ZigZag's mapping YAML.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Evaluate exactly the mapping file's spatial mapping and complete temporal ordering.
    #[arg(long)]
    pub fixed_mapping: bool,
    /// The latency model.
    #[arg(long, value_enum, default_value_t = LatencyModelArg::Zigzag391)]
    pub latency_model: LatencyModelArg,
    /// Also cost the pooling and element-wise layers of an ONNX model.
    #[arg(long)]
    pub all_layers: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Bits of operands without quantization (`qc lower`'s option).
    #[arg(long, value_name = "W,I,O,PSUM")]
    pub default_precision: Option<String>,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Read the model into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
}

/// One costed layer.
struct Costed {
    layer: LoopNest,
    entry: String,
    spatial: SpatialMapping,
    temporal: TemporalMapping,
    cost: LayerCost,
    notes: Vec<String>,
}

fn read(path: &std::path::Path) -> miette::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| miette::miette!(code = "qc::io::read", "cannot read `{}`: {e}", path.display()))
}

/// A layer's problem, as a diagnostic.
fn layer_error(layer: &str, message: String, help: &str) -> miette::Report {
    miette::miette!(code = "qc::evaluate::mapping", help = help.to_string(), "layer `{layer}`: {message}")
}

/// The loop order of a complete `temporal_ordering`, resolved against the temporal loop sizes
/// left by the spatial mapping: dims the layer lacks are dropped (as ZigZag drops them), `*`
/// takes what remains of its dim, loops of size 1 are dropped.
fn loop_order(
    layer: &LoopNest,
    entry: &MappingEntry,
    sizes: &[(String, u64)],
) -> Result<Vec<TemporalLoop>, String> {
    let Some(ordering) = &entry.temporal_ordering else {
        let loops: Vec<String> =
            sizes.iter().filter(|(_, s)| *s > 1).map(|(d, s)| format!("[{d}, {s}]")).collect();
        return Err(format!(
            "the mapping entry `{}` has no temporal_ordering (the temporal loops to order: {})",
            entry.name,
            loops.join(", ")
        ));
    };
    let ordering: Vec<&(String, OrderSize)> =
        ordering.iter().filter(|(d, _)| layer.size(d).is_some()).collect();
    let need = |dim: &str| sizes.iter().find(|(d, _)| d == dim).map_or(1, |(_, s)| *s);
    let mut order = Vec::new();
    for (dim, size) in &ordering {
        let size = match size {
            OrderSize::Given(n) => *n,
            OrderSize::Rest => {
                let given: u64 = ordering
                    .iter()
                    .filter(|(d, s)| d == dim && matches!(s, OrderSize::Given(_)))
                    .map(|(_, s)| if let OrderSize::Given(n) = s { *n } else { 1 })
                    .product();
                if ordering.iter().filter(|(d, s)| d == dim && *s == OrderSize::Rest).count() > 1 {
                    return Err(format!("`{dim}` has `*` more than once"));
                }
                if given == 0 || need(dim) % given != 0 {
                    return Err(format!("`{dim}`: the given sizes ({given}) do not divide {}", need(dim)));
                }
                need(dim) / given
            }
        };
        if size > 1 {
            order.push(TemporalLoop { dim: dim.clone(), size });
        }
    }
    for (dim, size) in sizes.iter().filter(|(_, s)| *s > 1) {
        let got: u64 = order.iter().filter(|l| l.dim == *dim).map(|l| l.size).product();
        if got != *size {
            return Err(format!(
                "the temporal_ordering of `{}` gives `{dim}` {got} iterations, but the spatial mapping leaves {size}",
                entry.name
            ));
        }
    }
    if let Some(extra) = order.iter().find(|l| need(&l.dim) <= 1) {
        return Err(format!(
            "the temporal_ordering has a loop over `{}`, which the spatial mapping leaves no iterations",
            extra.dim
        ));
    }
    Ok(order)
}

fn cost_layer(
    layer: &LoopNest,
    acc: &Accelerator,
    map: &qc_backends::mapping::MappingFile,
    opts: &CostOptions,
) -> miette::Result<Costed> {
    let entry = map.entry_for(&layer.name, &layer.op_type).ok_or_else(|| {
        layer_error(&layer.name, "no mapping entry applies".into(), "add a `default` entry")
    })?;
    let Some(user) = &entry.spatial else {
        return Err(layer_error(
            &layer.name,
            format!("the mapping entry `{}` has no spatial_mapping", entry.name),
            "--fixed-mapping evaluates a given mapping: give the entry a spatial_mapping",
        ));
    };
    let fitted = qc_backends::spatial::fit_user_mapping(user, layer, acc, &entry.links);
    let evaluator = Evaluator::new(layer, acc, &entry.links, &fitted.mapping).map_err(miette::Report::new)?;
    let order = loop_order(layer, entry, &evaluator.temporal_sizes()).map_err(|m| {
        layer_error(
            &layer.name,
            m,
            "give a complete temporal_ordering: every temporal loop, innermost first, with sizes whose product per dim is what the spatial mapping leaves (`*` takes the rest of a dim)",
        )
    })?;
    let temporal = allocate(layer, acc, &entry.links, &fitted.mapping, &order, &AllocOptions::default())
        .map_err(miette::Report::new)?;
    let cost = evaluator.evaluate(&temporal, opts).map_err(miette::Report::new)?;
    Ok(Costed {
        layer: layer.clone(),
        entry: entry.name.clone(),
        spatial: fitted.mapping,
        temporal,
        cost,
        notes: fitted.notes,
    })
}

/// Runs `qc evaluate`; returns the warnings to print.
pub fn run(args: &EvaluateArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    if !args.fixed_mapping {
        return Err(miette::miette!(
            code = "qc::evaluate::search",
            help = "pass --fixed-mapping to evaluate the mapping file's spatial mapping and complete temporal_ordering",
            "qc evaluate searches mappings only with --fixed-mapping for now: the mapping search is not built yet"
        ));
    }
    let acc_file = args.accelerator.display().to_string();
    let acc = qc_backends::zigzag::read_accelerator_yaml(&read(&args.accelerator)?, &acc_file)?;
    let map_file = args.mapping.display().to_string();
    let map = qc_backends::zigzag::read_mapping_yaml(&read(&args.mapping)?, &map_file)?;
    let is_yaml = args.workload.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let (workload, warnings) = crate::lower::workload(&LowerArgs {
        model: args.workload.clone(),
        format: LowerFormat::Text,
        default_precision: args.default_precision.clone(),
        output: None,
        no_mmap: args.no_mmap,
    })?;
    let opts = CostOptions { latency_model: args.latency_model.model() };
    let mut costed = Vec::new();
    let mut skipped = Vec::new();
    for layer in &workload.layers {
        if is_yaml || args.all_layers || ZIGZAG_COSTED.contains(&layer.op_type.as_str()) {
            costed.push(cost_layer(layer, &acc, &map, &opts)?);
        } else {
            skipped.push(layer);
        }
    }
    let text = match args.format {
        Format::Json => json_report(args, &acc, &workload, &costed, &skipped),
        Format::Text => text_report(&acc, &costed, &skipped),
    };
    match &args.output {
        Some(path) => crate::write::write_atomically(path, text.as_bytes())
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write `{}`: {e}", path.display()))?,
        None => out
            .write_all(text.as_bytes())
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write: {e}"))?,
    }
    Ok(warnings)
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

fn json_report(
    args: &EvaluateArgs,
    acc: &Accelerator,
    w: &Workload,
    costed: &[Costed],
    skipped: &[&LoopNest],
) -> String {
    let dirs = ["fh", "tl", "fl", "th"];
    let layers: Vec<serde_json::Value> = costed
        .iter()
        .map(|c| {
            let k = &c.cost;
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
            })
        })
        .collect();
    let energy: f64 = costed.iter().map(|c| c.cost.energy).sum();
    let latency: f64 = costed.iter().map(|c| c.cost.latency).sum();
    let mac: f64 = costed.iter().map(|c| c.cost.mac_energy).sum();
    let not_costed: Vec<serde_json::Value> = skipped
        .iter()
        .map(|l| json!({"name": l.name, "op_type": l.op_type, "reason": "not a layer ZigZag costs (use --all-layers)"}))
        .chain(w.not_lowered.iter().map(|n| json!({"name": n.node, "op_type": n.op_type, "reason": n.reason})))
        .collect();
    let v = json!({
        "schema_version": 1,
        "workload": args.workload.display().to_string(),
        "accelerator": acc.name,
        "latency_model": args.latency_model.name(),
        "mapping": "fixed",
        "layers": layers,
        "total": {"energy": energy, "latency": latency, "mac_energy": mac, "memory_energy": energy - mac},
        "not_costed": not_costed,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

fn text_report(acc: &Accelerator, costed: &[Costed], skipped: &[&LoopNest]) -> String {
    let mut s = String::new();
    let name_w = costed.iter().map(|c| c.layer.name.len()).max().unwrap_or(5).clamp(5, 48);
    let op_w = costed.iter().map(|c| c.layer.op_type.len()).max().unwrap_or(2).clamp(2, 24);
    let _ = writeln!(
        s,
        "{:<name_w$}  {:<op_w$}  {:>14}  {:>6}  {:>16}  {:>12}",
        "layer", "op", "MACs", "util", "energy (pJ)", "latency (cc)"
    );
    for c in costed {
        let _ = writeln!(
            s,
            "{:<name_w$}  {:<op_w$}  {:>14}  {:>5.1}%  {:>16.1}  {:>12}",
            c.layer.name,
            c.layer.op_type,
            c.layer.iterations(),
            100.0 * c.cost.spatial_utilization,
            c.cost.energy,
            c.cost.latency
        );
        for n in &c.notes {
            let _ = writeln!(s, "{:<name_w$}    note: {n}", "");
        }
    }
    let energy: f64 = costed.iter().map(|c| c.cost.energy).sum();
    let latency: f64 = costed.iter().map(|c| c.cost.latency).sum();
    let _ = writeln!(s, "\ntotal on {}: {energy:.1} pJ, {latency} cycles, {} layers", acc.name, costed.len());
    if !skipped.is_empty() {
        let _ =
            writeln!(s, "{} pooling/element-wise layers not costed (--all-layers costs them)", skipped.len());
    }
    s
}
