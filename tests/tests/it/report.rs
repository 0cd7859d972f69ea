//! The reports for people of `qc evaluate`, `qc check` and `qc cost`: the text and Markdown tables
//! (snapshots) and the HTML pages, which a real browser loads when `QC_BROWSER_TEST=1` (`.ci/run`
//! installs Debian's `chromium` and sets it): no console error, every chart drawn, a screenshot
//! written for a person to look at. Plain `cargo test` on a machine without a browser checks the
//! pages' structure only.

use prost::Message;
use qc_tests::browser::{Browser, base64_decode, find_chromium};
use qc_tests::fixtures::{SMALL_NET as WORKLOAD, SMALL_NPU as ACCELERATOR};
use qc_tests::qc;
use serde_json::json;

/// Writes the fixtures; returns (workload, accelerator, the 8 x 8 variant).
fn files(dir: &std::path::Path) -> [String; 3] {
    let p = |n: &str, t: &str| {
        let path = dir.join(n);
        std::fs::write(&path, t).unwrap();
        path.to_str().unwrap().to_string()
    };
    let small = ACCELERATOR
        .replace("name: small_npu", "name: smaller_npu")
        .replace("sizes: [16, 16]", "sizes: [8, 8]");
    [p("net.yaml", WORKLOAD), p("small_npu.yaml", ACCELERATOR), p("smaller_npu.yaml", &small)]
}

/// `qc evaluate` with the fixtures and `extra` arguments; the report, with the temporary folder
/// replaced by `DIR` so that snapshots are stable.
fn evaluate(dir: &std::path::Path, extra: &[&str]) -> String {
    let [w, a, b] = files(dir);
    let mut args = vec!["evaluate", &w, "--accelerator", &a, "--compare", &b, "--opt", "energy", "--quiet"];
    args.extend_from_slice(extra);
    let (code, out, err) = qc(&args);
    assert_eq!(code, 0, "{err}");
    out.replace(dir.to_str().unwrap(), "DIR")
}

/// `qc check` of the tiny QONNX network (built in code) against `access-dla`, with `extra`
/// arguments; exit code 1 (it does not fit), the folder replaced by `DIR`.
fn check(dir: &std::path::Path, extra: &[&str]) -> String {
    let model = dir.join("tiny_qonnx.onnx");
    std::fs::write(&model, qc::fixtures::tiny_qonnx().encode_to_vec()).unwrap();
    let mut args = vec!["check", model.to_str().unwrap(), "--target", "access-dla"];
    args.extend_from_slice(extra);
    let (code, out, err) = qc(&args);
    assert_eq!(code, 1, "{err}");
    out.replace(dir.to_str().unwrap(), "DIR")
}

#[test]
fn check_reports() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!("check_markdown", check(dir.path(), &["--format", "md"]));
    let page = check(dir.path(), &["--format", "html"]);
    assert!(page.starts_with("<!DOCTYPE html>") && !page.contains("<script"));
    // Findings grouped by node, each with its placement.
    let relu = page.split("<td>relu1</td>").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(relu.contains("place-dla") && relu.contains("qc::check::channels"), "{relu}");
    let gap = page.split("<td>gap</td>").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(gap.contains("place-cpu") && gap.contains("qc::check::kernel-size"), "{gap}");
}

#[test]
fn cost_markdown_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny_qonnx.onnx");
    std::fs::write(&model, qc::fixtures::tiny_qonnx().encode_to_vec()).unwrap();
    let (code, md, err) = qc(&["cost", model.to_str().unwrap(), "--format", "md", "--cost-breakdown"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("cost_markdown", md.replace(dir.path().to_str().unwrap(), "DIR"));
}

#[test]
fn text_and_markdown_reports() {
    let dir = tempfile::tempdir().unwrap();
    let text = evaluate(dir.path(), &["--width", "100"]);
    assert!(text.lines().all(|l| l.chars().count() <= 100), "wider than 100 columns:\n{text}");
    assert!(!text.contains('\x1b'), "colour in a pipe:\n{text}");
    insta::assert_snapshot!("evaluate_text", text);
    let narrow = evaluate(dir.path(), &["--width", "72"]);
    assert!(narrow.lines().filter(|l| l.contains("conv")).all(|l| l.chars().count() <= 72), "{narrow}");
    insta::assert_snapshot!("evaluate_markdown", evaluate(dir.path(), &["--format", "md"]));
}

/// The JSON report gives each layer's lower bounds and the network's, and the found costs are
/// at or above them (`spec/bounds.md`).
#[test]
fn the_json_report_gives_the_bounds_and_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let r: serde_json::Value = serde_json::from_str(&evaluate(dir.path(), &["--format", "json"])).unwrap();
    for d in r["designs"].as_array().unwrap() {
        for l in d["layers"].as_array().unwrap() {
            let b = &l["bound"];
            let (e, be) = (l["energy"].as_f64().unwrap(), b["energy"].as_f64().unwrap());
            let (t, bt) = (l["latency"].as_f64().unwrap(), b["latency"].as_f64().unwrap());
            assert!(be > b["mac_energy"].as_f64().unwrap() && e >= be, "{l}");
            assert!(bt >= b["ideal_cycles"].as_f64().unwrap() && t >= bt, "{l}");
            assert!((b["energy_gap"].as_f64().unwrap() - e / be).abs() < 1e-9, "{b}");
            assert!(!b["traffic"].as_array().unwrap().is_empty(), "{b}");
        }
        let (total, bound) = (&d["total"], &d["bound"]);
        assert!(total["energy"].as_f64().unwrap() >= bound["energy"].as_f64().unwrap(), "{bound}");
        assert!(bound["energy_gap"].as_f64().unwrap() >= 1.0, "{bound}");
        assert!(bound["seconds"].as_f64().unwrap() >= 0.0, "{bound}");
    }
}

/// The page's structure, without a browser: self-contained, one bar per (layer, design, part).
#[test]
fn the_html_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let page = evaluate(dir.path(), &["--format", "html"]);
    assert!(page.starts_with("<!DOCTYPE html>"));
    for forbidden in ["<script", "http://", "https://", "<link", "@import", "url("] {
        let allowed = forbidden == "http://"
            && page.matches(forbidden).count() == page.matches("http://www.w3.org/2000/svg").count();
        assert!(allowed || !page.contains(forbidden), "the page refers to `{forbidden}`");
    }
    for id in ["energy-chart", "latency-chart", "utilization-chart"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no {id}");
    }
    // 3 layers x 2 designs in the utilisation chart: one bar each.
    let util = page.split("id=\"utilization-chart\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert_eq!(util.matches("<rect class=\"bar\"").count(), 6);
    assert!(page.contains("<details>"), "no schedules");
    assert!(page.contains("Side by side"));
    assert!(page.contains("above the energy bound") && page.contains("lower bound:"), "no bounds");
}

/// Loads the page in headless Chromium when `QC_BROWSER_TEST=1`.
#[test]
fn the_html_report_renders_in_a_browser() {
    if std::env::var_os("QC_BROWSER_TEST").is_none() {
        eprintln!("browser test not run: set QC_BROWSER_TEST=1 with chromium installed (.ci/run does)");
        return;
    }
    let chromium =
        find_chromium().expect("QC_BROWSER_TEST is set but no chromium was found (or set QC_BROWSER)");
    let dir = tempfile::tempdir().unwrap();
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reports");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut pages = vec![("fixture", {
        let page = dir.path().join("fixture.html");
        evaluate(dir.path(), &["--format", "html", "-o", page.to_str().unwrap()]);
        page
    })];
    let check_page = dir.path().join("check.html");
    check(dir.path(), &["--format", "html", "-o", check_page.to_str().unwrap()]);
    // The real case when the reference material is there: ResNet-18 on two of ZigZag's designs.
    match qc_tests::shared_dir() {
        Some(shared) => {
            let inputs = shared.join("peers/zigzag-inputs/zigzag/inputs");
            let page = dir.path().join("resnet18.html");
            let s = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
            let (code, _, err) = qc(&[
                "evaluate",
                &s(inputs.join("workload/resnet18.onnx")),
                "--accelerator",
                &s(inputs.join("hardware/tpu_like.yaml")),
                "--mapping",
                &s(inputs.join("mapping/tpu_like.yaml")),
                "--compare",
                &format!(
                    "{},{}",
                    s(inputs.join("hardware/meta_prototype.yaml")),
                    s(inputs.join("mapping/meta_prototype_like.yaml"))
                ),
                "--quiet",
                "--format",
                "html",
                "-o",
                page.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{err}");
            pages.push(("resnet18", page));
        }
        None => eprintln!("../shared is missing: only the fixture report is loaded in the browser"),
    }
    // A sweep's page: the scatter plot with the front.
    {
        let [w, a, _] = files(dir.path());
        let sweep = dir.path().join("sweep.yaml");
        std::fs::write(
            &sweep,
            "parameters:\n  - {name: operational_array.sizes.D1, values: [4, 8, 16]}\n  - {name: operational_array.sizes.D2, values: [4, 8, 16]}\n",
        )
        .unwrap();
        let page = dir.path().join("sweep.html");
        let jsonl = dir.path().join("sweep.jsonl");
        let (code, _, err) = qc(&[
            "sweep",
            &w,
            "--accelerator",
            &a,
            "--sweep",
            sweep.to_str().unwrap(),
            "-o",
            jsonl.to_str().unwrap(),
            "--html",
            page.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let mut b = load(&chromium, &page);
        let drawn = b
            .eval("[...document.querySelectorAll('circle.point')].filter(c => c.getBoundingClientRect().width > 0).length")
            .unwrap();
        let front = b.eval("document.querySelectorAll('circle.point.front').length").unwrap();
        let ticks = b.eval("document.querySelectorAll('#sweep-scatter text.tick').length").unwrap();
        screenshot(&mut b, &out_dir.join("sweep.png"));
        assert!(b.errors().is_empty(), "sweep: console errors: {:#?}", b.errors());
        assert_eq!(drawn.as_u64(), Some(9), "sweep: points drawn");
        assert!(
            front.as_u64().is_some_and(|f| f >= 1) && ticks.as_u64().is_some_and(|t| t >= 4),
            "sweep page"
        );
        println!("sweep: 9 designs drawn, {front} on the front, no console error");
    }
    // The check report: findings grouped by node, with the placement.
    {
        let mut b = load(&chromium, &check_page);
        let rows = b.eval("document.querySelectorAll('td.place-dla, td.place-cpu').length").unwrap();
        let errors = b.eval("document.querySelectorAll('.sev-error').length").unwrap();
        screenshot(&mut b, &out_dir.join("check.png"));
        assert!(b.errors().is_empty(), "check: console errors: {:#?}", b.errors());
        assert_eq!((rows.as_u64(), errors.as_u64()), (Some(5), Some(3)), "check page");
        println!("check: 5 placed ops, 3 errors shown, no console error");
    }
    for (name, page) in pages {
        let mut b = load(&chromium, &page);
        let bars = b.eval("document.querySelectorAll('svg rect.bar').length").unwrap();
        let drawn = b
            .eval("[...document.querySelectorAll('svg rect.bar')].filter(r => { const x = r.getBoundingClientRect(); return x.width > 0 && x.height > 0; }).length")
            .unwrap();
        let per_chart = b
            .eval("[...document.querySelectorAll('svg')].map(s => [s.id, s.querySelectorAll('rect.bar').length, s.querySelectorAll('text.tick').length, s.closest('figure').querySelectorAll('.legend li').length])")
            .unwrap();
        let fetched = b.eval("performance.getEntriesByType('resource').length").unwrap();
        let path = out_dir.join(format!("{name}.png"));
        let png = screenshot(&mut b, &path);
        let errors = b.errors();
        assert!(errors.is_empty(), "{name}: console errors: {errors:#?}");
        assert_eq!(fetched, 0, "{name}: the page fetched resources");
        let bars = bars.as_u64().unwrap();
        assert!(bars > 0 && drawn.as_u64() == Some(bars), "{name}: {drawn} of {bars} bars drawn");
        for chart in per_chart.as_array().unwrap() {
            let (id, n, ticks, legend) = (
                &chart[0],
                chart[1].as_u64().unwrap(),
                chart[2].as_u64().unwrap(),
                chart[3].as_u64().unwrap(),
            );
            assert!(
                n > 0 && ticks >= 2 && legend >= 1,
                "{name}: chart {id}: {n} bars, {ticks} ticks, {legend} legend entries"
            );
        }
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: screenshot of {} bytes",
            png.len()
        );
        println!(
            "{name}: {bars} bars drawn, charts {per_chart}, no console error; screenshot {}",
            path.display()
        );
    }
}

/// A fresh headless Chromium with `page` loaded (console and log events recorded).
fn load(chromium: &std::path::Path, page: &std::path::Path) -> Browser {
    let mut b = Browser::start(chromium).unwrap();
    b.call("Runtime.enable", json!({})).unwrap();
    b.call("Log.enable", json!({})).unwrap();
    b.call("Page.enable", json!({})).unwrap();
    let size = json!({"width": 1100, "height": 1400, "deviceScaleFactor": 1, "mobile": false});
    b.call("Emulation.setDeviceMetricsOverride", size).unwrap();
    b.call("Page.navigate", json!({"url": format!("file://{}", page.display())})).unwrap();
    b.wait_event("Page.loadEventFired").unwrap();
    b
}

/// A PNG of the whole page, written to `path`; returns its bytes.
fn screenshot(b: &mut Browser, path: &std::path::Path) -> Vec<u8> {
    let shot =
        b.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).unwrap();
    let png = base64_decode(shot["data"].as_str().unwrap()).unwrap();
    std::fs::write(path, &png).unwrap();
    png
}
