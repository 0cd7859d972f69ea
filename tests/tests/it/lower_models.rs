//! Every model under `../shared/models` and `../shared/peers/zigzag-inputs` goes through `qc
//! lower`'s pipeline without a crash, and for each one:
//!
//! - every node of the processed graph is either a layer or a not-lowered entry with a reason;
//! - a node of a lowering family (Conv, Gemm, MatMul, pools, Add/Sub/Mul, ...) is not lowered
//!   only because its inputs are all constants (it folds at compile time): no shape or attribute
//!   the lowering could not read;
//! - the workload's text form parses back to it, and its ZigZag YAML reads back with the same
//!   layers, loops and relations.
//!
//! The per-model counts (layers per family, not-lowered nodes) are a snapshot
//! (`snapshots/lower_models__counts.snap`), so a change in what is lowered shows as a diff.
//! Skipped with a message when `../shared` is missing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use qc_backends::zigzag::{read_workload_yaml, write_workload_yaml};
use qc_passes::lower::{Family, LowerOptions, lower_with_families};
use qc_passes::manager::{ManagerOptions, PassManager};
use qc_passes::pipeline::Pipeline;
use qc_tests::{files_under, shared_or_say};

/// The op types of the lowering families, as `qc lower` names them in `not_lowered`.
const FAMILY_OPS: &[&str] = &[
    "Conv",
    "QLinearConv",
    "ConvInteger",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "QLinearMatMul",
    "MatMulInteger",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Add",
    "Sub",
    "Mul",
];

/// Lowers one model; returns its line of the count table, its layer and not-lowered counts.
fn lower_one(shared: &Path, path: &Path) -> (String, usize, usize) {
    let rel = path.strip_prefix(shared).unwrap_or(path).display().to_string();
    let mut model = qc::load::load(path, Default::default())
        .unwrap_or_else(|e| panic!("{rel}: {:?}", miette::Report::new(e)))
        .model;
    // The real models declare dynamic input dims: their typical shapes (models/real/PROVENANCE.md).
    let typical =
        [("det_infer", "x:1,3,320,320"), ("rec_infer", "x:1,3,48,320"), ("cls_infer", "x:1,3,48,192")];
    if let Some((_, shape)) = typical.iter().find(|(k, _)| rel.contains("models/real/") && rel.contains(k)) {
        let shapes = qc::input_shapes::InputShapeArgs {
            overwrite_input_shape: vec![shape.to_string()],
            assume_dims: None,
        };
        shapes.resolve(&mut model).unwrap_or_else(|e| panic!("{rel}: {:?}", miette::Report::new(e)));
    }
    // qc lower's pipeline without its last pass, so that the processed graph can be counted.
    let before = qc::lower::LOWER_PIPELINE.strip_suffix(",lower-to-loops").expect("lower-to-loops is last");
    let options = ManagerOptions { verify_each: false, stop_after: None };
    PassManager::new(Pipeline::parse(before).unwrap(), options)
        .unwrap()
        .run(&mut model, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{rel}: {:?}", miette::Report::new(e)));
    let (w, families) = lower_with_families(&model, &LowerOptions::default());

    let nodes = model.graph.ops().count();
    // A recurrent op is two layers (its input and recurrent projections), and so is an
    // Attention (its two products).
    let second_layers =
        families.iter().filter(|f| matches!(f, Family::Recurrent | Family::Attention)).count() / 2;
    assert_eq!(
        w.layers.len() - second_layers + w.not_lowered.len(),
        nodes,
        "{rel}: every node is a layer (two for a recurrent op or an Attention) or not lowered"
    );
    for n in &w.not_lowered {
        assert!(!n.reason.is_empty(), "{rel}: {} has no reason", n.node);
        if FAMILY_OPS.contains(&n.op_type.as_str()) {
            assert!(
                n.reason.contains("folds at compile time"),
                "{rel}: {} ({}) of a lowering family is not lowered: {}",
                n.node,
                n.op_type,
                n.reason
            );
        }
    }

    let text = qc_ir::text::print_workload(&w);
    let back = qc_ir::text::parse_workload(&text).unwrap_or_else(|e| panic!("{rel}: {e:?}\n{text}"));
    assert_eq!(back, w, "{rel}: the text form reads back");

    let yaml = write_workload_yaml(&w);
    let zz =
        read_workload_yaml(&yaml, &rel).unwrap_or_else(|e| panic!("{:?}\n{yaml}", miette::Report::new(e)));
    let skipped = yaml.matches("# qc: skipped layer").count();
    assert_eq!(
        zz.layers.len() + skipped,
        w.layers.len(),
        "{rel}: every layer is written or skipped with a reason"
    );
    for b in &zz.layers {
        let a = w.layers.iter().find(|l| l.name == b.name).unwrap_or_else(|| panic!("{rel}: {}", b.name));
        assert_eq!((&a.dims, &a.relations), (&b.dims, &b.relations), "{rel}: {} in ZigZag YAML", a.name);
    }

    let mut per_family: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &families {
        *per_family.entry(f.name()).or_default() += 1;
    }
    let fams: Vec<String> = per_family.iter().map(|(f, n)| format!("{f}={n}")).collect();
    let macs: u128 =
        w.layers.iter().filter(|l| l.compute == qc_ir::Compute::Mac).map(qc_ir::LoopNest::iterations).sum();
    let line = format!(
        "{rel}: nodes={nodes} lowered={} not-lowered={} zigzag-skipped={skipped} macs={macs} {}",
        w.layers.len(),
        w.not_lowered.len(),
        fams.join(" ")
    );
    (line, w.layers.len(), w.not_lowered.len())
}

#[test]
fn every_shared_model_lowers() {
    let Some(shared) = shared_or_say("lower_models") else { return };
    let mut paths = files_under(&shared.join("models"), ".onnx");
    paths.extend(files_under(&shared.join("peers/zigzag-inputs"), ".onnx"));
    assert!(paths.len() >= 50, "expected the 54 shared models, found {}", paths.len());
    let start = std::time::Instant::now();
    let mut table = String::new();
    let (mut layers, mut not_lowered) = (0usize, 0usize);
    for p in &paths {
        let (line, l, n) = lower_one(&shared, p);
        layers += l;
        not_lowered += n;
        writeln!(table, "{line}").unwrap();
    }
    writeln!(table, "total: models={} lowered={layers} not-lowered={not_lowered}", paths.len()).unwrap();
    eprintln!("{table}lowered {} models in {:.1?}", paths.len(), start.elapsed());
    insta::assert_snapshot!("counts", table);
}
