//! `qc evaluate`'s mapping search against ZigZag 3.9.1's recorded results: for ResNet-18 on the
//! five accelerators ZigZag ships with mapping files (runs `v391_tpu`, `v391_edgetpu`,
//! `v391_ascend`, `v391_meta`, `v391_tesla`: `opt=latency`, LOMA with `lpf_limit` 6, 3 spatial
//! mappings) and `v391_tpu_onnx_energy` (`opt=energy`), qc's search with the same settings must
//! be at least as good on every layer (within 0.1% counts as equal), and the same with one thread
//! and with two. Skipped with a message when `../shared` is missing.

use qc_tests::qc;

fn search(root: &std::path::Path, s: &serde_json::Value, opt: &str, jobs: &str) -> serde_json::Value {
    let p = |k: &str| root.join(s[k].as_str().unwrap()).to_str().unwrap().to_string();
    let (w, a, m) = (p("workload"), p("accel"), p("mapping"));
    let args = [
        "evaluate",
        &w,
        "--accelerator",
        &a,
        "--mapping",
        &m,
        "--opt",
        opt,
        "--jobs",
        jobs,
        "--quiet",
        "--format",
        "json",
    ];
    let (code, json, err) = qc(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&json).unwrap()
}

#[test]
fn the_search_is_at_least_as_good_as_zigzag_and_deterministic() {
    let Some(shared) = qc_tests::shared_or_say("search_zigzag") else { return };
    let root = shared.join("peers/zigzag-inputs");
    let runs = [
        ("v391_tpu", "latency"),
        ("v391_edgetpu", "latency"),
        ("v391_ascend", "latency"),
        ("v391_meta", "latency"),
        ("v391_tesla", "latency"),
        ("v391_tpu_onnx_energy", "energy"),
    ];
    let mut table = String::new();
    for (run, opt) in runs {
        let path = root.join(format!("results/{run}.summary.json"));
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let start = std::time::Instant::now();
        let one = search(&root, &s, opt, "1");
        let seconds = start.elapsed().as_secs_f64();
        let two = search(&root, &s, opt, "2");
        assert_eq!(one["layers"], two["layers"], "{run}: the result depends on the thread count");
        let key = if opt == "energy" { "energy" } else { "latency" };
        let (mut better, mut equal) = (0, 0);
        for z in s["layers"].as_array().unwrap() {
            let name = z["layer"].as_str().unwrap();
            let q = one["layers"].as_array().unwrap().iter().find(|l| l["name"] == name).unwrap();
            let (qv, zv) = (q[key].as_f64().unwrap(), z[key].as_f64().unwrap());
            assert!(qv <= zv * 1.001, "{run} {name}: qc's {key} {qv} is worse than ZigZag's {zv}");
            if qv < zv * (1.0 - 1e-9) { better += 1 } else { equal += 1 }
        }
        table += &format!(
            "{run:24} opt={opt:8} {better:2} better {equal:2} equal; qc {seconds:.2} s (1 thread, test profile), ZigZag {:.1} s\n",
            s["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    println!("{table}");
}
