//! The lower bounds (`spec/bounds.md`) hold on ZigZag's example networks: on every layer of
//! resnet18, mobilenetv2 and alexnet (ONNX) and resnet18 (YAML), on every built-in accelerator,
//! the searched mapping's energy and latency are at or above the layer's bounds, as are the
//! network totals; also with ZigZag's mapping files on its five example accelerators (LOMA-6),
//! with data locality, with the repository's latency model (no latency bound), and with every
//! spatial mapping (`--spatial-mappings all --mixed`) on single layers, the in-memory-compute
//! arrays included. Skipped with a message
//! when `../shared` is missing.

use std::path::Path;

use qc_tests::qc;

fn run(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["evaluate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--quiet", "--format", "json"]);
    let (code, json, err) = qc(&all);
    assert!(code == 0 || code == 1, "{all:?}: {err}");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{all:?}: {e}\n{json}"))
}

/// Checks every layer and the total of one report; returns the layers' energy gaps.
fn check(what: &str, r: &serde_json::Value) -> Vec<f64> {
    let f = |v: &serde_json::Value| v.as_f64();
    let mut gaps = Vec::new();
    let layers = r["layers"].as_array().unwrap();
    for l in layers {
        let name = l["name"].as_str().unwrap();
        let b = &l["bound"];
        let (e, be) =
            (f(&l["energy"]).unwrap(), f(&b["energy"]).unwrap_or_else(|| panic!("{what} {name}: no bound")));
        assert!(be > 0.0, "{what} {name}: bound {be}");
        assert!(e >= be * (1.0 - 1e-9), "{what} {name}: energy {e} below the bound {be}: {b}");
        let gap = f(&b["energy_gap"]).unwrap();
        assert!((gap - e / be).abs() <= 1e-9 * gap, "{what} {name}: gap {gap}");
        gaps.push(gap);
        if r["latency_model"] == "zigzag-3d12a96" {
            assert!(b["latency"].is_null(), "{what} {name}: a latency bound under 3d12a96");
        } else {
            let (t, bt) = (f(&l["latency"]).unwrap(), f(&b["latency"]).unwrap());
            assert!(t >= bt * (1.0 - 1e-9), "{what} {name}: latency {t} below the bound {bt}: {b}");
        }
    }
    if !layers.is_empty() {
        let (total, bound) = (&r["total"], &r["bound"]);
        assert!(
            f(&total["energy"]).unwrap() >= f(&bound["energy"]).unwrap() * (1.0 - 1e-9),
            "{what}: {bound}"
        );
        if let Some(l) = f(&bound["latency"]) {
            assert!(f(&total["latency"]).unwrap() >= l * (1.0 - 1e-9), "{what}: {bound}");
        }
    }
    gaps
}

fn summary(gaps: &mut [f64]) -> String {
    gaps.sort_by(f64::total_cmp);
    if gaps.is_empty() {
        return "no layers".into();
    }
    format!("{:.2}x / {:.2}x / {:.2}x", gaps[0], gaps[gaps.len() / 2], gaps[gaps.len() - 1])
}

fn builtins() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/accelerators");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.path().file_name()?.to_str()?.strip_suffix(".yaml").map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn every_searched_layer_is_at_or_above_its_bound_on_every_builtin() {
    let Some(shared) = qc_tests::shared_or_say("bound_zigzag") else { return };
    let inputs = shared.join("peers/zigzag-inputs/zigzag/inputs");
    let networks = ["resnet18.onnx", "mobilenetv2.onnx", "alexnet.onnx", "resnet18.yaml"];
    let mut table = String::new();
    for acc in builtins() {
        let mut gaps = Vec::new();
        for net in networks {
            let w = inputs.join("workload").join(net);
            if !w.is_file() {
                eprintln!("bound_zigzag: {} is missing; skipped", w.display());
                continue;
            }
            let w = w.to_str().unwrap();
            let r = run(&[w, "--accelerator", &acc, "--lpf-limit", "4", "--jobs", "2"]);
            gaps.extend(check(&format!("{net} on {acc}"), &r));
        }
        table +=
            &format!("{acc:22} {:4} layers, energy gap min/median/max {}\n", gaps.len(), summary(&mut gaps));
    }
    println!("{table}");
}

#[test]
fn zigzags_mappings_data_locality_and_the_old_latency_model_stay_above_the_bound() {
    let Some(shared) = qc_tests::shared_or_say("bound_zigzag") else { return };
    let inputs = shared.join("peers/zigzag-inputs/zigzag/inputs");
    let w = inputs.join("workload/resnet18.onnx");
    let w = w.to_str().unwrap();
    let designs = [
        ("tpu_like", "tpu_like"),
        ("edge_tpu_like", "edge_tpu_like"),
        ("ascend_like", "ascend_like"),
        ("meta_prototype", "meta_prototype_like"),
        ("tesla_npu_like", "tesla_npu_like"),
    ];
    for (acc, map) in designs {
        let a = inputs.join(format!("hardware/{acc}.yaml"));
        let m = inputs.join(format!("mapping/{map}.yaml"));
        let (a, m) = (a.to_str().unwrap(), m.to_str().unwrap());
        for opt in ["energy", "latency"] {
            let r = run(&[w, "--accelerator", a, "--mapping", m, "--opt", opt, "--jobs", "2"]);
            let mut gaps = check(&format!("resnet18 on {acc} --opt {opt}"), &r);
            println!("{acc:16} --opt {opt:8} energy gap min/median/max {}", summary(&mut gaps));
        }
    }
    let r = run(&[w, "--accelerator", "tpu_like", "--lpf-limit", "4", "--exploit-data-locality"]);
    check("resnet18 with data locality", &r);
    let r = run(&[w, "--accelerator", "tpu_like", "--lpf-limit", "4", "--latency-model", "zigzag-3d12a96"]);
    assert!(r["bound"]["latency"].is_null(), "{}", r["bound"]);
    check("resnet18 under zigzag-3d12a96", &r);
}

#[test]
fn every_spatial_mapping_stays_above_the_bound_on_single_layers() {
    let Some(shared) = qc_tests::shared_or_say("bound_zigzag") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let layers = [root.join("derived/l1conv.yaml"), root.join("zigzag/inputs/workload/gemm_layer.yaml")];
    for w in &layers {
        let w = w.to_str().unwrap();
        for acc in ["tpu_like", "gemm_l1", "eyeriss_like", "edge_tpu_like"] {
            let r =
                run(&[w, "--accelerator", acc, "--spatial-mappings", "all", "--mixed", "--lpf-limit", "4"]);
            let mut gaps = check(&format!("{w} on {acc} (all spatial mappings)"), &r);
            println!("{acc:16} {w}: energy gap {}", summary(&mut gaps));
        }
        // In-memory compute: the operational-energy floor and the bit-serial cycles
        // (`spec/bounds.md`), against the best of every spatial mapping under either objective,
        // with cell groups of one weight and deeper ones (whose precharge the floor leaves out).
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let deeper = [repo.join("bench/imc/dimc_cells16.yaml"), repo.join("bench/imc/aimc_cells32.yaml")];
        let imc = ["aimc", "dimc", deeper[0].to_str().unwrap(), deeper[1].to_str().unwrap()];
        for acc in imc {
            for opt in ["energy", "latency"] {
                let args =
                    [w, "--accelerator", acc, "--spatial-mappings", "all", "--mixed", "--lpf-limit", "4"];
                let r = run(&[&args[..], &["--opt", opt]].concat());
                let mut gaps = check(&format!("{w} on {acc} --opt {opt} (all spatial mappings)"), &r);
                println!("{acc:16} {w} --opt {opt}: energy gap {}", summary(&mut gaps));
            }
        }
    }
}
