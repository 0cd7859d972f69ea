//! qc's lowering of ZigZag's `resnet18.onnx` against the layers ZigZag parsed from the same file
//! (the per-layer `loop_sizes` of `../shared/peers/zigzag-inputs/results/*.summary.json`), and
//! against `derived/l1conv.yaml` (one layer as ZigZag's ONNX parser produces it, as a manual
//! workload). Skipped with a message when `../shared` is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qc_backends::zigzag::{read_workload_yaml, write_workload_yaml};
use qc_ir::{Compute, LoopNest, PsumRule, Workload};
use qc_passes::Pipeline;
use qc_passes::lower::{LowerOptions, lower_model};
use qc_passes::manager::{ManagerOptions, PassManager};

fn zigzag_inputs() -> Option<PathBuf> {
    Some(qc_tests::shared_or_say("lower_zigzag")?.join("peers/zigzag-inputs"))
}

fn lower(path: &Path) -> Workload {
    let mut model = qc::load::load(path, Default::default())
        .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
        .model;
    let options = ManagerOptions { verify_each: true, stop_after: None };
    let mut manager = PassManager::new(Pipeline::parse("infer-shapes").unwrap(), options).unwrap();
    manager.run(&mut model, &mut |_, _| {}).unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    lower_model(&model, &LowerOptions::default())
}

/// ZigZag's layers of resnet18.onnx, by name: loop sizes, the same in every result file.
fn zigzag_layers(dir: &Path) -> (BTreeMap<String, BTreeMap<String, u64>>, Vec<String>, usize) {
    let mut layers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut files = 0;
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir.join("results")).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        if !path.to_string_lossy().ends_with(".summary.json") {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if !json["workload"].as_str().is_some_and(|w| w.ends_with("resnet18.onnx")) {
            continue;
        }
        files += 1;
        for l in json["layers"].as_array().unwrap() {
            let name = l["layer"].as_str().unwrap().to_string();
            let sizes: BTreeMap<String, u64> = l["loop_sizes"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            match layers.get(&name) {
                Some(s) => assert_eq!(s, &sizes, "{name}: result files disagree ({})", path.display()),
                None => {
                    order.push(name.clone());
                    layers.insert(name, sizes);
                }
            }
        }
    }
    (layers, order, files)
}

#[test]
fn resnet18_matches_zigzag() {
    let Some(dir) = zigzag_inputs() else { return };
    let w = lower(&dir.join("zigzag/inputs/workload/resnet18.onnx"));
    let (zz, order, files) = zigzag_layers(&dir);
    assert!(files >= 1, "no ZigZag result for resnet18.onnx");
    assert_eq!(zz.len(), 21, "ZigZag costs 20 Conv + 1 Gemm of resnet18");

    let mut matched = 0;
    for name in &order {
        let sizes = &zz[name];
        let nest = w
            .layers
            .iter()
            .find(|l| &l.name == name)
            .unwrap_or_else(|| panic!("ZigZag's layer {name} is not in qc's lowering"));
        assert_eq!(nest.compute, Compute::Mac, "{name}");
        for (dim, size) in sizes {
            assert_eq!(nest.size(dim), Some(*size), "{name}: loop {dim}; qc has {:?}", nest.dims);
        }
        // qc has no loop ZigZag lacks, other than trivial ones.
        for d in &nest.dims {
            assert!(sizes.contains_key(&d.name) || d.size == 1, "{name}: qc's loop {} = {}", d.name, d.size);
        }
        // ZigZag's default precisions: 8/8/16/8.
        assert_eq!(nest.operand("W").unwrap().precision, Some(8), "{name}");
        assert_eq!(nest.operand("I").unwrap().precision, Some(8), "{name}");
        assert_eq!(nest.output.precision, Some(8), "{name}");
        assert_eq!(nest.psum_precision, Some(16), "{name}");
        assert_eq!(nest.psum_rule, PsumRule::TwiceActivation, "{name}");
        if sizes.contains_key("FX") {
            check_conv_relations(name, nest);
        }
        matched += 1;
    }
    let macs: u128 = w.layers.iter().filter(|l| zz.contains_key(&l.name)).map(LoopNest::iterations).sum();
    assert_eq!(macs, 1_814_073_344, "resnet18's MACs (ZigZag: 1.814e9)");
    println!(
        "resnet18.onnx: {matched}/{} ZigZag layers matched ({files} result files); qc lowered {} layers, {} nodes not lowered",
        zz.len(),
        w.layers.len(),
        w.not_lowered.len()
    );

    // The YAML qc writes reads back with the same loops, relations and precisions.
    let text = write_workload_yaml(&w);
    assert!(!text.contains("# qc: skipped"), "every resnet18 layer has a ZigZag form:\n{text}");
    if let Ok(out) = std::env::var("QC_ZIGZAG_YAML_OUT") {
        std::fs::write(out, &text).unwrap();
    }
    let back = read_workload_yaml(&text, "resnet18.zigzag.yaml")
        .unwrap_or_else(|e| panic!("{:?}\n{text}", miette::Report::new(e)));
    for name in &order {
        let a = w.layers.iter().find(|l| &l.name == name).unwrap();
        let b = back.layers.iter().find(|l| &l.name == name).unwrap();
        assert_eq!(
            (&a.dims, &a.relations, &a.output.index),
            (&b.dims, &b.relations, &b.output.index),
            "{name}"
        );
        assert_eq!(a.psum_precision, b.psum_precision);
    }
}

/// The network ZigZag's data-locality search walks (`research/zigzag.md` 4.4): its costed layers
/// (Conv, Gemm) with the nodes it does not cost removed, each predecessor of a removed node
/// joined to each successor. In resnet18 the stem conv feeds four convs (through the max pool
/// and the first two residual additions), and each block's second conv two or three.
#[test]
fn resnet18_dataflow_is_zigzags_graph() {
    let Some(dir) = zigzag_inputs() else { return };
    let w = lower(&dir.join("zigzag/inputs/workload/resnet18.onnx"));
    let costed = |l: &LoopNest| matches!(l.op_type.as_str(), "Conv" | "Gemm");
    let preds = w.dataflow(costed);
    let mut succs = vec![Vec::new(); w.layers.len()];
    for (i, p) in preds.iter().enumerate() {
        for &j in p {
            succs[j].push(i);
        }
    }
    let name = |i: usize| w.layers[i].name.as_str();
    let by_name = |n: &str| w.layers.iter().position(|l| l.name == n).unwrap();
    let stem: Vec<&str> = succs[by_name("/conv1/Conv")].iter().map(|&i| name(i)).collect();
    assert_eq!(
        stem,
        [
            "/layer1/layer1.0/conv1/Conv",
            "/layer1/layer1.1/conv1/Conv",
            "/layer2/layer2.0/conv1/Conv",
            "/layer2/layer2.0/downsample/downsample.0/Conv"
        ]
    );
    for (i, l) in w.layers.iter().enumerate() {
        if l.name.ends_with("conv2/Conv") && !l.name.starts_with("/layer4/layer4.1") {
            assert!((2..=3).contains(&succs[i].len()), "{}: successors {:?}", l.name, succs[i]);
        }
        if costed(l) && l.name != "/conv1/Conv" {
            assert!(!preds[i].is_empty(), "{} has no predecessor", l.name);
        }
    }
    let fc = by_name("/fc/Gemm");
    assert_eq!(
        preds[fc].iter().map(|&i| name(i)).collect::<Vec<_>>(),
        [
            "/layer4/layer4.1/conv2/Conv",
            "/layer4/layer4.0/conv2/Conv",
            "/layer4/layer4.0/downsample/downsample.0/Conv"
        ]
    );
}

/// ZigZag's conventions for a resnet18 conv: `ix = s*ox + 1*fx`, `iy = s*oy + 1*fy`, the true
/// input extent (= s x the output size here) and the padding `k/2` on both sides.
fn check_conv_relations(name: &str, nest: &LoopNest) {
    for (i, o, f) in [("ix", "ox", "fx"), ("iy", "oy", "fy")] {
        let r = nest.relation(i).unwrap_or_else(|| panic!("{name}: no relation {i}"));
        let out = nest.size(&o.to_uppercase()).unwrap();
        let k = nest.size(&f.to_uppercase()).unwrap();
        let s = r.terms[0].0;
        assert!(s == 1 || s == 2, "{name}: {r:?}");
        assert_eq!(r.terms, vec![(s, o.to_string()), (1, f.to_string())], "{name}");
        assert_eq!(r.extent, out * s as u64, "{name}: {r:?}");
        assert_eq!(r.padding, (k / 2, k / 2), "{name}: {r:?}");
        assert_eq!(r.offset, -((k / 2) as i64), "{name}: {r:?}");
    }
}

/// `derived/l1conv.yaml` is resnet18's `layer1.0.conv1` as ZigZag's ONNX parser produces it:
/// qc's layer equals it except for the name, id and operand bookkeeping.
#[test]
fn l1conv_equals_zigzag_onnx_layer() {
    let Some(dir) = zigzag_inputs() else { return };
    let text = std::fs::read_to_string(dir.join("derived/l1conv.yaml")).unwrap();
    let zz =
        read_workload_yaml(&text, "l1conv.yaml").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    let zz = &zz.layers[0];
    let w = lower(&dir.join("zigzag/inputs/workload/resnet18.onnx"));
    let qc = w.layers.iter().find(|l| l.name == "/layer1/layer1.0/conv1/Conv").expect("layer1.0.conv1");
    let mut qc_dims = qc.dims.clone();
    let mut zz_dims = zz.dims.clone();
    qc_dims.sort_by(|a, b| a.name.cmp(&b.name));
    zz_dims.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(qc_dims, zz_dims);
    let mut qc_rel = qc.relations.clone();
    qc_rel.sort_by(|a, b| a.name.cmp(&b.name));
    let mut zz_rel = zz.relations.clone();
    zz_rel.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(qc_rel, zz_rel);
    assert_eq!(qc.output.index, zz.output.index);
    for role in ["W", "I"] {
        let (a, b) = (qc.operand(role).unwrap(), zz.operand(role).unwrap());
        // Same index names; ZigZag writes `fy`, `fx` and `iy`, `ix` in the same order as qc.
        assert_eq!(a.index, b.index, "{role}");
        assert_eq!(a.precision, b.precision, "{role}");
    }
    assert_eq!(qc.output.precision, zz.output.precision);
    assert_eq!(qc.psum_precision, zz.psum_precision);
}

/// ZigZag's hand-written `resnet18.yaml` is not the ONNX model layer for layer (no names, and
/// its downsample convs are 3x3 over K channels): count the conv shapes both have.
#[test]
fn resnet18_yaml_shapes() {
    let Some(dir) = zigzag_inputs() else { return };
    let text = std::fs::read_to_string(dir.join("zigzag/inputs/workload/resnet18.yaml")).unwrap();
    let yaml =
        read_workload_yaml(&text, "resnet18.yaml").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    let w = lower(&dir.join("zigzag/inputs/workload/resnet18.onnx"));
    let key = |l: &LoopNest| ["K", "C", "OY", "OX", "FY", "FX"].map(|d| l.size(d).unwrap_or(1));
    let mut onnx: Vec<[u64; 6]> = w.layers.iter().filter(|l| l.op_type == "Conv").map(key).collect();
    let mut common = 0;
    let yaml_convs: Vec<&LoopNest> = yaml.layers.iter().filter(|l| l.op_type.starts_with("Conv")).collect();
    for l in &yaml_convs {
        if let Some(p) = onnx.iter().position(|k| *k == key(l)) {
            onnx.remove(p);
            common += 1;
        }
    }
    println!(
        "resnet18.yaml: {common} of its {} convs have the shape of a conv of resnet18.onnx",
        yaml_convs.len()
    );
    assert!(common >= 17, "{common}");
}
