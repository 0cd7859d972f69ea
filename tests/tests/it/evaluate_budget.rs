//! `qc evaluate --search-budget`: a budget too small for the search cuts layers short, and the
//! reports say which and how far each got (orderings visited of the layer's total, spatial
//! mappings searched to the end); the totals are those of the uncut search, and an uncut search
//! says nothing extra. On ResNet-18 and `tpu_like` from `../shared`.

use qc_tests::qc;
use serde_json::Value;

/// `qc evaluate` of ResNet-18 on tpu_like with `extra` options: (exit code, stdout).
fn evaluate(extra: &[&str]) -> Option<(u8, String)> {
    let shared = qc_tests::shared_or_say("evaluate_budget")?;
    let inputs = shared.join("peers/zigzag-inputs/zigzag/inputs");
    let model = inputs.join("workload/resnet18.onnx");
    let acc = inputs.join("hardware/tpu_like.yaml");
    let mut args = vec!["-q", "evaluate", model.to_str()?, "--accelerator", acc.to_str()?];
    args.extend_from_slice(extra);
    let (code, out, err) = qc(&args);
    assert!(code == 0, "qc {args:?} failed: {err}");
    Some((code, out))
}

fn json(extra: &[&str]) -> Option<Value> {
    let mut a = extra.to_vec();
    a.extend_from_slice(&["--format", "json"]);
    let (_, out) = evaluate(&a)?;
    Some(serde_json::from_str(&out).expect("JSON"))
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Every layer's counts are consistent; returns the layers cut.
fn check_layers(v: &Value) -> usize {
    let mut cut = 0;
    for l in v["layers"].as_array().expect("layers") {
        let s = &l["search"];
        let (visited, total) = (n(&s["orderings_visited"]), n(&s["orderings_total"]));
        let (complete, candidates) = (n(&s["spatial_candidates_complete"]), n(&s["spatial_candidates"]));
        assert!(visited <= total && complete <= candidates, "{}: {s}", l["name"]);
        let is_cut = s["cut_by_budget"].as_bool().expect("cut_by_budget");
        assert_eq!(is_cut, complete < candidates, "{}: {s}", l["name"]);
        assert_eq!(is_cut, !s["exhaustive"].as_bool().expect("exhaustive"), "{}: {s}", l["name"]);
        if !is_cut {
            assert_eq!(visited, total, "{}: an uncut search visits its whole space: {s}", l["name"]);
        }
        if s["same_as_layer"].is_null() && is_cut {
            cut += 1;
        }
    }
    assert_eq!(n(&v["search"]["layers_cut"]) as usize, cut, "{}", v["search"]);
    cut
}

#[test]
fn a_tiny_budget_on_a_huge_space_cuts_layers_and_says_how_far_they_got() {
    // Every spatial mapping, no factor merging: spaces of up to 10^13 orderings per candidate.
    let opts = ["--spatial-mappings", "all", "--lpf-limit", "none", "--search-budget", "1ms"];
    let Some(v) = json(&opts) else { return };
    let cut = check_layers(&v);
    let searched = n(&v["search"]["layers_searched"]) as usize;
    assert!(cut >= 1 && cut <= searched, "{}", v["search"]);
    assert_eq!(v["search"]["budget_seconds"].as_f64(), Some(0.001));
    // Every layer still has a mapping: the budget stops a search once an ordering fits.
    assert_eq!(v["layers"].as_array().map(Vec::len), Some(21));
    assert!(v["unfit"].as_array().is_some_and(Vec::is_empty));

    let Some((_, text)) = evaluate(&opts) else { return };
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("search cut short by the budget: ")).collect();
    assert!(lines.len() >= cut, "{text}");
    assert!(
        lines[0].contains(" orderings visited (") && lines[0].contains(" of 512 spatial mappings searched"),
        "{text}"
    );
    let summary = format!("--search-budget 1ms cut {cut} of {searched} layer searches short: ");
    assert!(text.contains(&summary), "no `{summary}` in\n{text}");
}

#[test]
fn the_totals_of_a_cut_search_are_those_of_the_uncut_one() {
    let Some(full) = json(&["--jobs", "1"]) else { return };
    assert_eq!(check_layers(&full), 0, "{}", full["search"]);
    let Some(cut) = json(&["--jobs", "1", "--search-budget", "1ms"]) else { return };
    assert!(check_layers(&cut) >= 1, "{}", cut["search"]);
    for (a, b) in full["layers"].as_array().unwrap().iter().zip(cut["layers"].as_array().unwrap()) {
        assert_eq!(a["name"], b["name"]);
        let (a, b) = (&a["search"], &b["search"]);
        assert_eq!(a["orderings_total"], b["orderings_total"], "{a} / {b}");
        assert_eq!(a["spatial_candidates"], b["spatial_candidates"], "{a} / {b}");
        // The uncut search visited (allocated or pruned) everything; the cut one at most that.
        assert_eq!(a["orderings_visited"], a["orderings_total"], "{a}");
        assert!(n(&b["orderings_visited"]) <= n(&a["orderings_visited"]), "{a} / {b}");
    }
    assert_eq!(full["search"]["orderings_total"], cut["search"]["orderings_total"]);
    assert!(full["search"]["budget_seconds"].is_null());
    // An uncut search says nothing about the budget.
    let Some((_, text)) = evaluate(&["--jobs", "1"]) else { return };
    assert!(!text.contains("cut short") && !text.contains("--search-budget"), "{text}");
    // Nor does one with a budget it did not need.
    let Some((_, text)) = evaluate(&["--jobs", "1", "--search-budget", "1h"]) else { return };
    assert!(!text.contains("cut short") && !text.contains("--search-budget"), "{text}");
}

#[test]
fn markdown_and_html_name_the_cut_layers() {
    let opts = ["--search-budget", "1ms", "--jobs", "1"];
    let Some((_, md)) = evaluate(&[&opts[..], &["--format", "md"]].concat()) else { return };
    assert!(md.contains("search budget: 1ms"), "{md}");
    assert!(
        md.contains("layer searches short: ")
            && md.contains("- `/conv1/Conv`: search cut short by the budget: "),
        "{md}"
    );
    let Some((_, html)) = evaluate(&[&opts[..], &["--format", "html"]].concat()) else { return };
    assert!(html.contains("layer searches short: ") && html.contains("search cut short by the budget: "));
}
