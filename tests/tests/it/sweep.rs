//! `qc sweep` end to end on fixtures written here (`qc_tests::fixtures`): a 24-design sweep whose
//! Pareto front must be the brute-force front of its lines; shards that merge into the same lines
//! and front; a seeded sample; the HTML page; and bad input (a parameter the accelerator lacks, a
//! bad shard, shards of two sweeps, an interrupted line).

use qc_tests::fixtures::{SMALL_NET, SMALL_NPU};
use qc_tests::qc;
use serde_json::Value;

const SWEEP: &str = "\
parameters:
  - {name: operational_array.sizes.D1, values: [4, 8, 16]}
  - {name: operational_array.sizes.D2, values: [4, 16]}
  - {name: memories.sram.size, values: [1048576, 8388608]}
  - {name: memories.dram.r_cost, values: [700, 1400]}
";

/// Writes the fixtures and `sweep`; returns (workload, accelerator, sweep file) paths.
fn files(dir: &std::path::Path, sweep: &str) -> [String; 3] {
    let p = |n: &str, t: &str| {
        let path = dir.join(n);
        std::fs::write(&path, t).unwrap();
        path.to_str().unwrap().to_string()
    };
    [p("net.yaml", SMALL_NET), p("npu.yaml", SMALL_NPU), p("sweep.yaml", sweep)]
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    let mut v: Vec<Value> =
        std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    v.sort_by_key(|l| l["design"].as_str().unwrap().parse::<u64>().unwrap());
    for l in &mut v {
        l["seconds"] = Value::Null;
    }
    v
}

/// The designs no other line dominates in energy, latency and area.
fn brute_front(lines: &[Value]) -> Vec<String> {
    let c = |l: &Value| {
        (l["energy"].as_f64().unwrap(), l["latency"].as_f64().unwrap(), l["area"].as_f64().unwrap())
    };
    lines
        .iter()
        .filter(|b| {
            let b = c(b);
            !lines.iter().any(|a| {
                let a = c(a);
                a.0 <= b.0 && a.1 <= b.1 && a.2 <= b.2 && (a.0 < b.0 || a.1 < b.1 || a.2 < b.2)
            })
        })
        .map(|l| l["design"].as_str().unwrap().to_string())
        .collect()
}

fn front_of(summary: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(summary).unwrap();
    let mut f: Vec<String> =
        v["front"].as_array().unwrap().iter().map(|l| l["design"].as_str().unwrap().to_string()).collect();
    f.sort_by_key(|d| d.parse::<u64>().unwrap());
    f
}

#[test]
fn a_sweep_its_front_and_its_shards() {
    let dir = tempfile::tempdir().unwrap();
    let [w, a, s] = files(dir.path(), SWEEP);
    let out = dir.path().join("all.jsonl");
    let html = dir.path().join("front.html");
    let args = |o: &std::path::Path| {
        vec![
            "sweep".to_string(),
            w.clone(),
            "--accelerator".into(),
            a.clone(),
            "--sweep".into(),
            s.clone(),
            "--opt".into(),
            "energy".into(),
            "--format".into(),
            "json".into(),
            "-o".into(),
            o.to_str().unwrap().into(),
        ]
    };
    let mut full = args(&out);
    full.extend(["--html".to_string(), html.to_str().unwrap().to_string()]);
    let (code, summary, err) = qc(&full.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let all = lines(&out);
    assert_eq!(all.len(), 24);
    assert!(all.iter().all(|l| l["area"].as_f64().is_some() && l["energy"].as_f64().unwrap() > 0.0));
    let front = front_of(&summary);
    assert_eq!(front, brute_front(&all), "the front is the brute-force front");
    assert!(!front.is_empty() && front.len() <= 12, "{front:?}");
    // Dearer DRAM reads never pay: no design with them is on the front.
    assert!(
        all.iter()
            .filter(|l| l["parameters"]["memories.dram.r_cost"] == 1400)
            .all(|l| !front.contains(&l["design"].as_str().unwrap().to_string()))
    );
    // More MAC units: more area, fewer cycles for the big conv.
    let by = |d1: u64, d2: u64, sram: u64| {
        all.iter()
            .find(|l| {
                let p = &l["parameters"];
                p["operational_array.sizes.D1"] == d1
                    && p["operational_array.sizes.D2"] == d2
                    && p["memories.sram.size"] == sram
            })
            .unwrap()
    };
    assert!(by(16, 16, 8388608)["latency"].as_f64() < by(4, 4, 8388608)["latency"].as_f64());
    assert!(by(16, 16, 8388608)["area"].as_f64() > by(4, 4, 8388608)["area"].as_f64());

    // Two shards, merged: the same lines and front.
    let mut shard_files = Vec::new();
    for sh in ["1/2", "2/2"] {
        let o = dir.path().join(format!("shard{}.jsonl", &sh[..1]));
        let mut a = args(&o);
        a.extend(["--shard".to_string(), sh.to_string()]);
        let (code, _, err) = qc(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, 0, "{err}");
        assert_eq!(lines(&o).len(), 12);
        shard_files.push(o.to_str().unwrap().to_string());
    }
    let merged = dir.path().join("merged.jsonl");
    let (code, msummary, err) = qc(&[
        "sweep",
        "merge",
        &shard_files[0],
        &shard_files[1],
        "-o",
        merged.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&merged), all, "merged shards differ from the whole sweep");
    assert_eq!(front_of(&msummary), front);

    // The page: one point per design, the front marked.
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<circle class=\"point").count(), 24);
    assert_eq!(page.matches("<circle class=\"point front\"").count(), front.len());
    assert!(!page.contains("<script"));

    // An interrupted shard: its unfinished last line is skipped with a warning.
    let cut = dir.path().join("cut.jsonl");
    let text = std::fs::read_to_string(&shard_files[0]).unwrap();
    std::fs::write(&cut, &text[..text.len() - 20]).unwrap();
    let (code, _, err) = qc(&["sweep", "merge", cut.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("qc::sweep::partial_line"), "{err}");
}

#[test]
fn samples_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let [w, a, s] = files(dir.path(), &format!("{SWEEP}sample: 5\nseed: 3\n"));
    let out = dir.path().join("s.jsonl");
    let run = |sweep: &str, extra: &[&str]| {
        let mut v = vec!["sweep", &w, "--accelerator", &a, "--sweep", sweep, "-o", out.to_str().unwrap()];
        v.extend_from_slice(extra);
        qc(&v)
    };
    let (code, _, err) = run(&s, &[]);
    assert_eq!(code, 0, "{err}");
    let first = lines(&out);
    assert_eq!(first.len(), 5);
    let (_, _, _) = run(&s, &[]);
    assert_eq!(lines(&out), first, "the sample is seeded");

    let bad = |yaml: &str, code: &str| {
        let p = dir.path().join("bad.yaml");
        std::fs::write(&p, yaml).unwrap();
        let (c, stdout, err) = run(p.to_str().unwrap(), &[]);
        assert_eq!(c, 2, "{yaml}: {err}");
        assert!(stdout.is_empty());
        assert!(err.contains(code), "{yaml}: {err}");
    };
    bad("parameters:\n  - {name: memories.l3.size, values: [1]}\n", "qc::sweep::parameter");
    bad("parameters:\n  - {name: operational_array.sizes.D1, values: [0]}\n", "qc::sweep::values");
    bad(
        "parameters:\n  - {name: memories.sram.size, range: {from: 1, to: 8, step: -1}}\n",
        "qc::sweep::values",
    );
    bad("parameters: 3\n", "qc::sweep::schema");
    let (code, _, err) = run(&s, &["--shard", "3/2"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::sweep::shard"), "{err}");

    // A design that cannot run the workload (an SRAM of 8 bits) is recorded, not fatal.
    let tiny = dir.path().join("tiny.yaml");
    std::fs::write(&tiny, "parameters:\n  - {name: memories.sram.size, values: [8, 8388608]}\n").unwrap();
    let (code, summary, err) = run(tiny.to_str().unwrap(), &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!((v["designs"].as_u64(), v["infeasible"].as_u64()), (Some(2), Some(1)), "{summary}");
    let l = lines(&out);
    assert!(l[0]["error"].as_str().is_some_and(|e| e.contains("sram")), "{:?}", l[0]);
    assert!(l[1]["energy"].as_f64().is_some());
    // It is listed with its reason: in the JSON summary, the text summary and the page.
    let listed = v["infeasible_designs"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{summary}");
    assert_eq!(listed[0]["design"], "0");
    assert_eq!(listed[0]["parameters"]["memories.sram.size"], 8);
    assert!(listed[0]["error"].as_str().unwrap().contains("sram"), "{summary}");
    let page = dir.path().join("tiny.html");
    let (code, text, err) = run(tiny.to_str().unwrap(), &["--html", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("1 cannot run the workload"), "{text}");
    let listing = text.split("Designs that cannot run the workload (1):\n").nth(1).expect(&text);
    assert!(listing.starts_with("  design      0  memories.sram.size=8  qc::"), "{text}");
    assert!(listing.contains("sram"), "{text}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Designs that cannot run the workload (1)"), "{html}");
    assert!(html.contains("design 0: memories.sram.size=8</td><td>qc::"), "{html}");
    assert!(html.contains("2 designs; 1 on the Pareto front"), "{html}");
    let (code, msummary, err) = qc(&["sweep", "merge", out.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(msummary.contains("\"infeasible\": 1"), "{msummary}");
    let m: Value = serde_json::from_str(&msummary).unwrap();
    assert_eq!(m["infeasible_designs"], v["infeasible_designs"], "merge lists them too");
    let (code, mtext, err) = qc(&["sweep", "merge", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(mtext.contains("Designs that cannot run the workload (1):\n  design      0"), "{mtext}");

    // Lines of two different sweeps do not merge.
    let other = dir.path().join("other.jsonl");
    let s2 = dir.path().join("s2.yaml");
    std::fs::write(&s2, SWEEP).unwrap();
    let (code, _, err) = qc(&[
        "sweep",
        &w,
        "--accelerator",
        &a,
        "--sweep",
        s2.to_str().unwrap(),
        "-o",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = qc(&["sweep", "merge", out.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::sweep::mismatch"), "{err}");
}

/// A mapping entry pinning the unrolling of D1 (`K, 4`) for every layer.
const PINNING: &str = "\
- name: default
  spatial_mapping:
    D1:
      - K, 4
    D2:
      - C, 4
  memory_operand_links: {O: O, W: I2, I: I1}
";

#[test]
fn a_swept_array_dim_the_mapping_pins_is_searched_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = "parameters:\n  - {name: operational_array.sizes.D1, values: [4, 8, 16]}\n";
    let [w, a, s] = files(dir.path(), sweep);
    let m = dir.path().join("map.yaml");
    std::fs::write(&m, PINNING).unwrap();
    let out = dir.path().join("p.jsonl");
    let run = |extra: &[&str]| {
        let mut v = vec![
            "sweep",
            &w,
            "--accelerator",
            &a,
            "--sweep",
            &s,
            "--mapping",
            m.to_str().unwrap(),
            "--opt",
            "latency",
            "-o",
            out.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        let (code, stdout, err) = qc(&v);
        assert_eq!(code, 0, "{err}");
        (stdout, err, lines(&out))
    };
    let latency = |l: &[Value]| -> Vec<f64> { l.iter().map(|l| l["latency"].as_f64().unwrap()).collect() };

    // By default: the warning names the parameter, the entry and its key, and the sweep searches
    // D1's unrolling, so a larger array is faster.
    let (text, err, searched) = run(&[]);
    assert!(err.contains("qc::sweep::pinned_by_mapping"), "{err}");
    for part in [
        "`operational_array.sizes.D1` (4, 8, 16)",
        "entry `default`",
        "`spatial_mapping.D1`: K, 4",
        "3 layer(s)",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(err.contains("--keep-mapping-spatial"), "{err}");
    assert!(text.contains("note: `operational_array.sizes.D1`: mapping entry `default` pins spatial_mapping.D1 (K, 4); set aside"), "{text}");
    let l = latency(&searched);
    assert!(l[2] < l[1] && l[1] < l[0], "latency falls as D1 grows: {l:?}");

    // --keep-mapping-spatial: the same warning, the mapping as given, so every design maps the
    // same way and the array size changes nothing but the area.
    let (text, err, kept) = run(&["--keep-mapping-spatial", "--format", "json"]);
    assert!(err.contains("qc::sweep::pinned_by_mapping"), "{err}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["notes"][0].as_str().unwrap().contains("kept as given"), "{text}");
    let l = latency(&kept);
    assert!(l.iter().all(|x| *x == l[0]), "a pinned unrolling ignores the array: {l:?}");
    assert_eq!(kept[0]["energy"], searched[0]["energy"], "D1 = 4: K 4 either way");
    assert_ne!(kept[0]["sweep"], searched[0]["sweep"], "the flag is part of the fingerprint");

    // A dim the mapping does not pin (D2 swept, D1 pinned): no warning. Neither without a
    // mapping file.
    let s2 = dir.path().join("d2.yaml");
    let m2 = dir.path().join("map2.yaml");
    std::fs::write(&s2, "parameters:\n  - {name: operational_array.sizes.D2, values: [4, 16]}\n").unwrap();
    std::fs::write(&m2, PINNING.replace("    D2:\n      - C, 4\n", "")).unwrap();
    let (code, _, err) = qc(&[
        "sweep",
        &w,
        "--accelerator",
        &a,
        "--sweep",
        s2.to_str().unwrap(),
        "--mapping",
        m2.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("pinned_by_mapping"), "{err}");
}

/// An in-memory-compute accelerator swept over its ADC resolution and array size: each line has
/// the design's clock period and latency in ns, the front compares the latency in ns, and the
/// IMC parameters are checked against the accelerator.
#[test]
fn an_imc_sweep_over_adc_resolution_and_array_size() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = "\
parameters:
  - {name: operational_array.adc_resolution, values: [4, 8]}
  - {name: operational_array.sizes.D1, values: [32, 128]}
";
    let [w, _, s] = files(dir.path(), sweep);
    // The sweep on aimc under energy, in `format`, its lines written to `out`: the summary.
    let run = |format: &str, out: &std::path::Path| -> String {
        let base = ["sweep", &w, "--accelerator", "aimc", "--sweep", &s, "--opt", "energy"];
        let (code, summary, err) =
            qc(&[&base[..], &["--format", format, "-o", out.to_str().unwrap()]].concat());
        assert_eq!(code, 0, "{format}: {err}");
        summary
    };
    let out = dir.path().join("imc.jsonl");
    let summary = run("json", &out);
    let all = lines(&out);
    assert_eq!(all.len(), 4);
    let f = |l: &Value, k: &str| l[k].as_f64().unwrap_or_else(|| panic!("no {k} in {l}"));
    for l in &all {
        assert_eq!(f(l, "latency_ns"), f(l, "latency") * f(l, "tclk_ns"), "{l}");
    }
    let by = |adc: u64, d1: u64| {
        all.iter()
            .find(|l| {
                l["parameters"]["operational_array.adc_resolution"] == adc
                    && l["parameters"]["operational_array.sizes.D1"] == d1
            })
            .unwrap()
    };
    // Finer ADCs: a slower clock (the ADC delay grows with its bits) and a larger array.
    assert!(f(by(8, 128), "tclk_ns") > f(by(4, 128), "tclk_ns"));
    assert!(f(by(8, 128), "area") > f(by(4, 128), "area"));
    assert!(f(by(4, 128), "area") > f(by(4, 32), "area"));
    // The front, in energy, latency in ns and area.
    let c = |l: &Value| (f(l, "energy"), f(l, "latency_ns"), f(l, "area"));
    let brute: Vec<String> = all
        .iter()
        .filter(|b| {
            let b = c(b);
            !all.iter().any(|a| {
                let a = c(a);
                a.0 <= b.0 && a.1 <= b.1 && a.2 <= b.2 && (a.0 < b.0 || a.1 < b.1 || a.2 < b.2)
            })
        })
        .map(|l| l["design"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(front_of(&summary), brute);
    // The text front says its latencies are in ns.
    let text = run("text", &dir.path().join("imc_text.jsonl"));
    let front: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("design")).collect();
    assert!(!front.is_empty() && front.iter().all(|l| l.contains(" ns ") && !l.contains(" cc")), "{text}");

    // IMC parameters the accelerator does not have, or values it cannot take.
    for (acc, sweep, code) in [
        (
            "dimc",
            "parameters:\n  - {name: operational_array.adc_resolution, values: [4]}\n",
            "qc::sweep::parameter",
        ),
        (
            "tpu_like",
            "parameters:\n  - {name: operational_array.bit_serial_precision, values: [2]}\n",
            "qc::sweep::parameter",
        ),
        (
            "aimc",
            "parameters:\n  - {name: operational_array.unit_energy, values: [0.1]}\n",
            "qc::sweep::parameter",
        ),
        ("dimc", "parameters:\n  - {name: operational_array.sizes.D2, values: [96]}\n", "qc::sweep::values"),
        (
            "aimc",
            "parameters:\n  - {name: operational_array.bit_serial_precision, values: [3]}\n",
            "qc::sweep::values",
        ),
        (
            "aimc",
            "parameters:\n  - {name: operational_array.adc_resolution, values: [40]}\n",
            "qc::sweep::values",
        ),
    ] {
        std::fs::write(&s, sweep).unwrap();
        let refused = dir.path().join("refused.jsonl");
        let (status, _, err) =
            qc(&["sweep", &w, "--accelerator", acc, "--sweep", &s, "-o", refused.to_str().unwrap()]);
        assert_eq!(status, 2, "{acc} {sweep}: {err}");
        assert!(err.contains(code), "{acc} {sweep}: {err}");
        assert!(!refused.exists(), "{acc} {sweep}: a refused sweep writes nothing");
    }
}
