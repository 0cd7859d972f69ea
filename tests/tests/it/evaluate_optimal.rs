//! `qc evaluate --optimal` end to end on ZigZag's GEMM and `gemm_l1` (the files of
//! `evaluate.rs`): every layer gets a certificate whose counts add up to its space, the result is
//! never worse than the ordinary search's choice, the text report says what was proven, and bad
//! options are diagnostics.

use crate::evaluate::{ACCELERATOR, MAPPING, WORKLOAD};
use qc_tests::qc;
use serde_json::Value;

fn files(dir: &std::path::Path) -> [String; 3] {
    let p = |n: &str, t: &str| {
        let path = dir.join(n);
        std::fs::write(&path, t).unwrap();
        path.to_str().unwrap().to_string()
    };
    [p("gemm.yaml", WORKLOAD), p("acc.yaml", ACCELERATOR), p("map.yaml", MAPPING)]
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn every_layer_has_a_certificate_that_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let [w, a, m] = files(dir.path());
    for opt in ["latency", "energy"] {
        let base = ["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--opt", opt, "--quiet"];
        let mut args = base.to_vec();
        args.extend(["--optimal", "--optimal-budget", "4000", "--format", "json"]);
        let (code, json, err) = qc(&args);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(n(&v["search"]["optimal"]["budget_orderings_per_layer"]), 4000);
        let c = &v["layers"][0]["search"]["certificate"];
        assert_eq!(c["objective"], opt);
        let pruned: u64 = c["pruned"].as_array().unwrap().iter().map(|p| n(&p["orderings"])).sum();
        assert_eq!(
            n(&c["orderings"]),
            n(&c["orderings_evaluated_in_space"]) + pruned + n(&c["orderings_unexplored"]),
            "{c}"
        );
        assert!(n(&c["orderings_evaluated"]) <= 4000, "{c}");
        let (best, seed) = (c["best"].as_f64().unwrap(), c["seed_value"].as_f64().unwrap());
        assert!(best <= seed, "{c}");
        let layer_value = v["layers"][0][opt].as_f64().unwrap();
        assert_eq!(layer_value, best, "the layer reports the optimum");
        if c["complete"].as_bool().unwrap() {
            assert_eq!(c["gap"].as_f64(), Some(0.0));
        } else {
            let lb = c["lower_bound"].as_f64().unwrap();
            assert!(lb <= best && c["gap"].as_f64().unwrap() >= 0.0, "{c}");
        }
        // The ordinary search alone: the optimum is never worse.
        let (code, json, err) = qc(&[&base[..], &["--format", "json"]].concat());
        assert_eq!(code, 0, "{err}");
        let plain: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(plain["layers"][0][opt].as_f64(), Some(seed));
        assert!(plain["layers"][0]["search"]["certificate"].is_null());

        let (code, text, err) = qc(&[&args[..args.len() - 2], &["--format", "text"]].concat());
        assert_eq!(code, 0, "{err}");
        assert!(
            text.contains("optimal (whole space searched)") || text.contains("best found, at most"),
            "{text}"
        );
    }
}

/// `--optimal-gap` as a percentage and as a fraction: the JSON says the tolerance, a complete
/// layer's gap is at most it, and the result is within it of the exact search's.
#[test]
fn a_gap_is_a_proven_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let [w, a, m] = files(dir.path());
    let run = |extra: &[&str]| -> Value {
        let base = ["evaluate", &w, "--accelerator", &a, "--mapping", &m, "--opt", "latency", "--quiet"];
        let (code, json, err) = qc(&[&base[..], &["--optimal", "--format", "json"], extra].concat());
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&json).unwrap()
    };
    let exact = run(&[]);
    let exact_best = exact["layers"][0]["search"]["certificate"]["best"].as_f64().unwrap();
    assert_eq!(exact["search"]["optimal"]["tolerance"].as_f64(), Some(0.0));
    for gap in ["5%", "0.05"] {
        let v = run(&["--optimal-gap", gap]);
        assert_eq!(v["search"]["optimal"]["tolerance"].as_f64(), Some(0.05), "{gap}");
        let c = &v["layers"][0]["search"]["certificate"];
        assert_eq!(c["tolerance"].as_f64(), Some(0.05));
        assert!(c["complete"].as_bool().unwrap(), "{c}");
        assert!(c["gap"].as_f64().unwrap() <= 0.05, "{c}");
        let best = c["best"].as_f64().unwrap();
        assert!(exact_best <= best && best <= exact_best * 1.05, "{best} against {exact_best}");
        assert!(c["lower_bound"].as_f64().unwrap() <= exact_best, "{c}");
    }
}

#[test]
fn bad_optimal_options_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let [w, a, m] = files(dir.path());
    let base = ["evaluate", w.as_str(), "--accelerator", a.as_str(), "--mapping", m.as_str()];
    for bad in ["0", "many"] {
        let (code, out, err) = qc(&[&base[..], &["--optimal", "--optimal-budget", bad]].concat());
        assert_ne!(code, 0, "{bad}: {out}");
        assert!(out.is_empty(), "nothing is written: {out}");
        assert!(err.contains("qc::evaluate::option") && err.contains("--optimal-budget"), "{err}");
    }
    for bad in ["-1%", "x", "inf", "1%%"] {
        let (code, out, err) = qc(&[&base[..], &["--optimal", "--optimal-gap", bad]].concat());
        assert_ne!(code, 0, "{bad}: {out}");
        assert!(out.is_empty(), "nothing is written: {out}");
        assert!(err.contains("qc::evaluate::option") && err.contains("--optimal-gap"), "{err}");
    }
    // The budget or the gap without --optimal, and --optimal with a fixed mapping, are usage
    // errors.
    for flag in [["--optimal-budget", "100"], ["--optimal-gap", "1%"]] {
        let (code, _, err) = qc(&[&base[..], &flag].concat());
        assert_eq!(code, 2, "{err}");
    }
    let (code, _, err) = qc(&[&base[..], &["--optimal", "--fixed-mapping"]].concat());
    assert_eq!(code, 2, "{err}");
}
