//! Inter-layer data locality (`qc evaluate --exploit-data-locality`) against the network totals
//! ZigZag's own test suite asserts (`research/zigzag.md` section 6: `test_with_exploit_data_locality`
//! and `test_with_mix_spatial_mapping`, whose flag switches data locality on too), on ZigZag's
//! five example accelerators, for `resnet18.onnx` and `resnet18.yaml`, with the repository's
//! latency model (commit 3d12a96, which those values come from) and ZigZag's default search
//! (`opt=latency`, LOMA lpf 6, 3 spatial mappings). qc's search must match or beat each value:
//! latency at most ZigZag's (relative 1e-6, `pytest.approx`'s tolerance); energies are printed.
//! The per-layer agreement with ZigZag's recorded data-locality runs is in `evaluate_zigzag.rs`.

use qc_tests::qc;

/// (workload, accelerator, mapping, mixed spatial mapping, ZigZag's energy, latency).
const ASSERTED: &[(&str, &str, &str, bool, f64, f64)] = &[
    ("resnet18.onnx", "tpu_like", "tpu_like", false, 1_735_241_704.22, 3_762_552.5),
    ("resnet18.onnx", "edge_tpu_like", "edge_tpu_like", false, 1_783_892_066.11, 2_957_953.5),
    ("resnet18.onnx", "ascend_like", "ascend_like", false, 1_813_915_548.47, 3_017_312.0),
    ("resnet18.onnx", "meta_prototype", "meta_prototype_like", false, 1_710_966_136.48, 2_689_737.0),
    ("resnet18.onnx", "tesla_npu_like", "tesla_npu_like", false, 1_725_111_410.78, 2_709_223.75),
    ("resnet18.yaml", "tpu_like", "tpu_like", false, 2_302_362_179.97, 5_548_138.0),
    ("resnet18.yaml", "edge_tpu_like", "edge_tpu_like", false, 2_115_121_959.87, 3_706_985.0),
    ("resnet18.yaml", "ascend_like", "ascend_like", false, 2_338_798_423.04, 3_961_239.0),
    ("resnet18.yaml", "meta_prototype", "meta_prototype_like", false, 2_204_158_604.12, 3_295_822.0),
    ("resnet18.yaml", "tesla_npu_like", "tesla_npu_like", false, 2_213_422_347.76, 3_296_500.58),
    ("resnet18.onnx", "tpu_like", "tpu_like_mixed", true, 1_759_424_218.32, 4_256_300.0),
    ("resnet18.onnx", "edge_tpu_like", "edge_tpu_like_mixed", true, 1_735_517_943.87, 3_834_226.0),
    ("resnet18.onnx", "ascend_like", "ascend_like_mixed", true, 1_811_468_387.52, 3_119_977.33),
    ("resnet18.onnx", "meta_prototype", "meta_prototype_like_mixed", true, 1_746_642_408.16, 2_688_913.66),
    ("resnet18.onnx", "tesla_npu_like", "tesla_npu_like_mixed", true, 1_599_110_638.5, 2_318_166.5),
    ("resnet18.yaml", "tpu_like", "tpu_like_mixed", true, 2_191_903_732.78, 4_657_608.0),
    ("resnet18.yaml", "edge_tpu_like", "edge_tpu_like_mixed", true, 2_029_477_205.31, 4_586_293.0),
    ("resnet18.yaml", "ascend_like", "ascend_like_mixed", true, 2_349_013_378.88, 3_718_548.66),
    ("resnet18.yaml", "meta_prototype", "meta_prototype_like_mixed", true, 2_249_214_190.04, 3_278_925.33),
    ("resnet18.yaml", "tesla_npu_like", "tesla_npu_like_mixed", true, 2_084_306_723.24, 2_889_873.0),
];

#[test]
fn data_locality_matches_zigzags_test_suite() {
    let Some(shared) = qc_tests::shared_or_say("locality_zigzag") else { return };
    let inputs = shared.join("peers/zigzag-inputs/zigzag/inputs");
    let path = |p: String| inputs.join(p).to_str().unwrap().to_string();
    let mut failures = Vec::new();
    let (mut equal, mut better) = (0, 0);
    for &(w, acc, map, mixed, energy, latency) in ASSERTED {
        let (w_path, a_path, m_path) = (
            path(format!("workload/{w}")),
            path(format!("hardware/{acc}.yaml")),
            path(format!("mapping/{map}.yaml")),
        );
        let mut args = vec![
            "evaluate",
            &w_path,
            "--accelerator",
            &a_path,
            "--mapping",
            &m_path,
            "--exploit-data-locality",
            "--latency-model",
            "zigzag-3d12a96",
            "--quiet",
            "--format",
            "json",
        ];
        if mixed {
            args.push("--mixed");
        }
        let (code, out, err) = qc(&args);
        assert_eq!(code, 0, "{w} {acc} {map}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let (e, l) = (v["total"]["energy"].as_f64().unwrap(), v["total"]["latency"].as_f64().unwrap());
        let rel = |a: f64, b: f64| (a - b) / b;
        println!(
            "{w:14} {map:26} energy {e:>18.2} (ZigZag {energy:>18.2}, {:+.1e}) latency {l:>12.2} (ZigZag {latency:>12.2}, {:+.1e})",
            rel(e, energy),
            rel(l, latency)
        );
        if rel(l, latency) > 1e-6 {
            failures.push(format!("{w} {map}: latency {l} > ZigZag's {latency}"));
        } else if rel(l, latency) < -1e-6 {
            better += 1;
        } else {
            equal += 1;
        }
    }
    println!("{equal} equal, {better} better than ZigZag's asserted latency, {} worse", failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Where the data-locality search puts resnet18's tensors on edge_tpu_like (`research/zigzag.md`
/// 4.4): the stem's output and every branch node's go to DRAM, the first conv of each block keeps
/// its output in sram_2MB for the block's second conv, the network's last output stays on chip
/// unless `--data-from-top-memory`, and the weights (93 Mbit) stay in DRAM.
#[test]
fn placements_on_edge_tpu_like() {
    let Some(shared) = qc_tests::shared_or_say("locality_zigzag") else { return };
    let inputs = shared.join("peers/zigzag-inputs/zigzag/inputs");
    let path = |p: &str| inputs.join(p).to_str().unwrap().to_string();
    let run = |extra: &[&str]| {
        let (w, a, m) = (
            path("workload/resnet18.onnx"),
            path("hardware/edge_tpu_like.yaml"),
            path("mapping/edge_tpu_like.yaml"),
        );
        let mut args =
            vec!["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--quiet", "--format", "json"];
        args.extend_from_slice(extra);
        let (code, out, err) = qc(&args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let v = run(&["--exploit-data-locality"]);
    let layers = v["layers"].as_array().unwrap();
    let place = |name: &str, role: &str| {
        let l = layers.iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("no {name}"));
        l["placement"][role].as_str().unwrap().to_string()
    };
    assert_eq!(place("/conv1/Conv", "O"), "dram");
    for block in
        ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"]
    {
        let stage = &block[..6];
        let conv = |n: &str| format!("/{stage}/{block}/{n}/Conv");
        assert_eq!(place(&conv("conv1"), "O"), "sram_2MB", "{block}");
        assert_eq!(place(&conv("conv2"), "I"), "sram_2MB", "{block}");
        assert_eq!(place(&conv("conv2"), "O"), "dram", "{block}");
    }
    assert!(layers.iter().all(|l| l["placement"]["W"] == "dram"));
    assert_eq!(place("/fc/Gemm", "O"), "sram_2MB");
    // ZigZag 3.9.1's totals for this run (v391_edge_tpu_like_onnx_edl).
    assert_eq!(v["total"]["latency"].as_f64(), Some(2_959_128.0));
    assert!((v["total"]["energy"].as_f64().unwrap() - 1_783_892_066.11).abs() < 0.01);

    let top = run(&["--exploit-data-locality", "--data-from-top-memory"]);
    let fc = top["layers"].as_array().unwrap().iter().find(|l| l["name"] == "/fc/Gemm").unwrap();
    assert_eq!(fc["placement"]["O"], "dram");
    assert!(top["total"]["energy"].as_f64() > v["total"]["energy"].as_f64());
    assert_eq!(top["data_locality"], "top-memory-io");
    // Without the flag: no placement, and the default run's energy (more DRAM traffic).
    let plain = run(&[]);
    assert!(plain["layers"][0]["placement"].is_null());
    assert!(plain["total"]["energy"].as_f64() > v["total"]["energy"].as_f64());
}
