//! One self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

use std::fmt::Write as _;

use super::svg::{Chart, Row, esc};
use super::{Design, LayerReport, bytes, si, thousands};

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2430;margin:0;background:#f6f7f9}\
main{max-width:1000px;margin:0 auto;padding:24px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}\
h3{font-size:15px;margin:20px 0 6px}\
.sub{color:#5b6575;margin:0 0 16px}\
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}\
.card{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:10px 14px;min-width:150px}\
.card b{display:block;font-size:20px}.card span{color:#5b6575;font-size:12px}\
table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:13px}\
th,td{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure.chart{background:#fff;border:1px solid #d5d9e0;border-radius:6px;margin:12px 0;padding:8px 8px 4px;overflow-x:auto}\
figcaption{font-weight:600;margin:0 0 4px}\
svg text{font:11px system-ui,sans-serif;fill:#1d2430}svg .tick,svg .unit{fill:#5b6575}\
svg .grid{stroke:#e3e6eb}svg .axis{stroke:#8a93a3}\
ul.legend{list-style:none;padding:0;margin:4px 0 4px 250px;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}\
.swatch{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px;border-radius:2px}\
details{background:#fff;border:1px solid #d5d9e0;border-radius:6px;margin:6px 0;padding:4px 10px}\
summary{cursor:pointer;font-weight:600}\
table.nest td.loop{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre}\
.note{color:#8a4b00}.muted{color:#5b6575}\
.sev-error{color:#b3261e;font-weight:600}.sev-warning{color:#8a4b00;font-weight:600}.sev-info{color:#2f4b7c}\
.place-dla{color:#1b7a3a;font-weight:600}.place-cpu{color:#b3261e;font-weight:600}";

/// A complete page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body><main>\n{body}</main></body></html>\n",
        esc(title)
    )
}

/// `x` escaped for HTML.
pub fn escape(x: &str) -> String {
    esc(x)
}

/// The report of one or more designs of the same workload.
pub fn html(designs: &[Design]) -> String {
    let Some(first) = designs.first() else {
        return page("qc evaluate", "<h1>qc evaluate</h1><p>No design.</p>");
    };
    let names: Vec<&str> = designs.iter().map(|d| d.accelerator.name.as_str()).collect();
    let title = format!("{} on {}", first.workload, names.join(", "));
    let mut b = String::new();
    let _ = writeln!(b, "<h1>qc evaluate: {}</h1>", esc(&title));
    if !first.settings.is_empty() {
        let list: Vec<String> =
            first.settings.iter().map(|(k, v)| format!("{}: {}", esc(k), esc(v))).collect();
        let _ = writeln!(b, "<p class=\"sub\">{}</p>", list.join(" · "));
    }
    for line in &first.prepared {
        let _ = writeln!(b, "<p class=\"sub\">{}</p>", esc(line));
    }

    // Totals.
    b.push_str("<h2>Totals</h2>\n");
    for d in designs {
        if designs.len() > 1 {
            let _ = writeln!(b, "<h3>{}</h3>", esc(&d.accelerator.name));
        }
        totals(&mut b, d);
    }
    if designs.len() > 1 {
        comparison(&mut b, designs);
    }

    // Accelerators.
    b.push_str("<h2>Accelerator</h2>\n");
    for d in designs {
        accelerator(&mut b, d);
    }

    // Charts.
    let multi = designs.len() > 1;
    let sub = |d: &Design| multi.then(|| d.accelerator.name.clone());
    let mut parts: Vec<String> = Vec::new();
    for d in designs {
        for (k, _) in d.energy_by_part() {
            if !parts.contains(&k) {
                parts.push(k);
            }
        }
    }
    // MAC last.
    if let Some(i) = parts.iter().position(|p| p == "MAC") {
        let mac = parts.remove(i);
        parts.push(mac);
    }
    let mut energy_rows = Vec::new();
    let mut latency_rows = Vec::new();
    let mut util_rows = Vec::new();
    for (li, l0) in first.layers.iter().enumerate() {
        for d in designs {
            let Some(l) = d.layers.iter().find(|l| l.name == l0.name).or_else(|| d.layers.get(li)) else {
                continue;
            };
            let mut values = vec![0.0; parts.len()];
            for p in &l.energy_parts {
                let key = format!("{} {}", p.memory, p.operand);
                if let Some(j) = parts.iter().position(|x| *x == key) {
                    values[j] += p.energy;
                }
            }
            if let Some(j) = parts.iter().position(|x| x == "MAC") {
                values[j] += l.mac_energy;
            }
            energy_rows.push(Row { label: l.name.clone(), sublabel: sub(d), values });
            latency_rows.push(Row {
                label: l.name.clone(),
                sublabel: sub(d),
                values: l.latency_parts.labelled().iter().map(|p| p.1).collect(),
            });
            util_rows.push(Row {
                label: l.name.clone(),
                sublabel: sub(d),
                values: vec![100.0 * l.spatial_utilization],
            });
        }
    }
    b.push_str("<h2>Energy per layer</h2>\n<p class=\"muted\">Memory energy by memory level and operand, and MAC energy.</p>\n");
    b.push_str(
        &Chart {
            id: "energy-chart",
            title: "Energy per layer by memory level and operand",
            unit: "energy (pJ)",
            series: parts.clone(),
            rows: energy_rows,
            axis_max: None,
        }
        .render(),
    );
    b.push_str("<h2>Latency per layer</h2>\n<p class=\"muted\">Computation (temporal cycles of the array), stall waiting for memory ports, on-loading of inputs before computing, off-loading of outputs after, and the systolic drain.</p>\n");
    b.push_str(
        &Chart {
            id: "latency-chart",
            title: "Latency per layer",
            unit: "latency (cycles)",
            series: super::LatencyParts::default().labelled().iter().map(|p| p.0.to_string()).collect(),
            rows: latency_rows,
            axis_max: None,
        }
        .render(),
    );
    b.push_str("<h2>Spatial utilisation</h2>\n<p class=\"muted\">The share of the array's MAC units the spatial unrolling keeps busy.</p>\n");
    b.push_str(
        &Chart {
            id: "utilization-chart",
            title: "Spatial utilisation per layer",
            unit: "spatial utilisation (%)",
            series: vec!["spatial utilisation".into()],
            rows: util_rows,
            axis_max: Some(100.0),
        }
        .render(),
    );

    // Tables and schedules.
    for d in designs {
        let _ = writeln!(b, "<h2>Layers on {}</h2>", esc(&d.accelerator.name));
        layer_table(&mut b, d);
        let _ = writeln!(b, "<h3>Schedules</h3>");
        for (i, l) in d.layers.iter().enumerate() {
            schedule(&mut b, l, i == 0);
        }
        if !d.unfit.is_empty() {
            let _ = writeln!(
                b,
                "<h3>Layers that do not fit (not in the total)</h3><table><tr><th>layer</th><th>op</th><th>why, and what would fit</th></tr>"
            );
            for (n, op, why) in &d.unfit {
                let _ = writeln!(b, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(n), esc(op), esc(why));
            }
            b.push_str("</table>\n");
        }
        // The placement does not depend on the accelerator: once, under the first design.
        if let Some(split) = d.split.as_ref().filter(|_| std::ptr::eq(d, first)) {
            split_html(&mut b, split);
        }
        if !d.not_costed.is_empty() {
            let _ = writeln!(
                b,
                "<h3>Not costed</h3><table><tr><th>node</th><th>op</th><th>reason</th><th>elements</th></tr>"
            );
            for (n, op, reason, elements) in &d.not_costed {
                let elements = elements.map_or_else(String::new, |e| e.to_string());
                let _ = writeln!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(n),
                    esc(op),
                    esc(reason),
                    esc(&elements)
                );
            }
            b.push_str("</table>\n");
        }
    }
    page(&format!("qc evaluate: {title}"), &b)
}

/// The DLA/CPU split: the two units' ops and MACs, then every CPU op with its rule.
fn split_html(b: &mut String, split: &super::Split) {
    let _ = writeln!(
        b,
        "<h3>Placement on {} (only the DLA's layers are costed)</h3><table><tr><th>unit</th><th>ops</th><th>MACs</th><th>share of MACs</th></tr>",
        esc(&split.target)
    );
    for (name, u) in [("DLA", &split.dla), ("CPU", &split.cpu)] {
        let share = split.mac_share(u).map_or_else(|| "-".to_string(), |p| format!("{p:.1}%"));
        let _ = writeln!(
            b,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{share}</td></tr>",
            u.ops,
            super::thousands(u.macs as f64)
        );
    }
    b.push_str("</table>\n");
    if !split.cpu_ops.is_empty() {
        b.push_str("<table><tr><th>CPU op</th><th>op</th><th>MACs</th><th>rule</th><th>why</th></tr>\n");
        for op in &split.cpu_ops {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&op.node),
                esc(&op.op_type),
                super::thousands(op.macs as f64),
                esc(&op.rule),
                esc(&op.reason)
            );
        }
        b.push_str("</table>\n");
    }
}

fn card(b: &mut String, value: &str, label: &str) {
    let _ = write!(b, "<div class=\"card\"><b>{}</b><span>{}</span></div>", esc(value), esc(label));
}

fn totals(b: &mut String, d: &Design) {
    let e = d.total_energy();
    let mac: f64 = d.layers.iter().map(|l| l.mac_energy).sum();
    let macs = d.total_macs();
    let util = if macs > 0 {
        d.layers.iter().map(|l| l.spatial_utilization * l.macs as f64).sum::<f64>() / macs as f64
    } else {
        0.0
    };
    b.push_str("<div class=\"cards\">");
    card(b, &format!("{}J", si(e * 1e-12)), &format!("energy ({} pJ)", thousands(e)));
    card(b, &thousands(d.total_latency()), "latency (cycles)");
    card(b, &si(macs as f64), &format!("MACs ({})", thousands(macs as f64)));
    card(b, &d.layers.len().to_string(), "layers costed");
    card(b, &format!("{:.1}%", if e > 0.0 { 100.0 * mac / e } else { 0.0 }), "of the energy in MACs");
    card(b, &format!("{:.1}%", 100.0 * util), "spatial utilisation (MAC-weighted)");
    b.push_str("</div>\n");
    let top = d.energy_by_part().into_iter().max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some(line) = d.bound_line() {
        let _ = writeln!(
            b,
            "<p class=\"note\">{}: no mapping of these layers on this accelerator costs less (spec/bounds.md).</p>",
            esc(&line)
        );
    }
    if let Some(summary) = d.budget_summary() {
        let _ = writeln!(b, "<p class=\"note\">{}.</p>", esc(&summary));
    }
    if let Some((part, v)) = top
        && e > 0.0
    {
        let _ = writeln!(
            b,
            "<p>The largest share of the energy goes to <b>{}</b> ({:.1}%).</p>",
            esc(&part),
            100.0 * v / e
        );
    }
}

fn comparison(b: &mut String, designs: &[Design]) {
    let lat = super::latency_comparison(designs);
    let (e0, l0) = (designs[0].total_energy(), lat.values[0]);
    let _ = writeln!(
        b,
        "<h3>Side by side</h3><table><tr><th>design</th><th>energy (pJ)</th><th>latency ({})</th><th>energy vs first</th><th>latency vs first</th><th>EDP vs first</th></tr>",
        lat.unit
    );
    for (d, &l) in designs.iter().zip(&lat.values) {
        let e = d.total_energy();
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.3}x</td><td class=\"n\">{:.3}x</td><td class=\"n\">{:.3}x</td></tr>",
            esc(&d.accelerator.name),
            thousands(e),
            thousands(l),
            e / e0,
            l / l0,
            (e * l) / (e0 * l0)
        );
    }
    b.push_str("</table>\n");
    if let Some(n) = &lat.note {
        let _ = writeln!(b, "<p>{}</p>", esc(n));
    }
}

fn accelerator(b: &mut String, d: &Design) {
    let a = &d.accelerator;
    let dims: Vec<String> = a.array.iter().map(|(n, s)| format!("{n} {s}")).collect();
    let units: u64 = a.array.iter().map(|(_, s)| *s).product();
    let _ = writeln!(
        b,
        "<h3>{}</h3><p>Array: {} ({} MAC units), {}.</p>",
        esc(&a.name),
        esc(&dims.join(" x ")),
        thousands(units as f64),
        if a.imc.is_some() {
            "computing in memory".to_string()
        } else {
            format!("{} pJ per MAC", a.mac_energy)
        }
    );
    for line in d.imc_lines() {
        let _ = writeln!(b, "<p>{}</p>", esc(&line));
    }
    b.push_str("<table><tr><th>memory</th><th>size</th><th>operands</th><th>instances</th><th>bandwidth (bit/cycle)</th><th>read (pJ/word)</th><th>write (pJ/word)</th></tr>\n");
    for m in &a.memories {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&m.name),
            bytes(m.size_bits),
            esc(&m.operands.join(", ")),
            thousands(m.instances as f64),
            thousands(m.bandwidth as f64),
            m.r_cost,
            m.w_cost
        );
    }
    b.push_str("</table>\n");
}

fn layer_table(b: &mut String, d: &Design) {
    b.push_str("<table><tr><th>layer</th><th>op</th><th>MACs</th><th>spatial utilisation</th><th>energy (pJ)</th><th>latency (cycles)</th><th>energy bound (pJ)</th><th>above the energy bound</th><th>latency bound (cycles)</th><th>above the latency bound</th><th>dominant cost</th></tr>\n");
    for l in &d.layers {
        let (part, share) = l.dominant();
        let bound_e = l.bound.map_or_else(|| "-".to_string(), |x| thousands(x.energy));
        let bound_l = l.bound.and_then(|x| x.latency).map_or_else(|| "-".to_string(), thousands);
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{} {:.0}%</td></tr>",
            esc(&l.name),
            esc(&l.op_type),
            thousands(l.macs as f64),
            100.0 * l.spatial_utilization,
            thousands(l.energy),
            thousands(l.latency),
            bound_e,
            esc(&l.energy_gap_text()),
            bound_l,
            esc(&l.latency_gap_text()),
            esc(&part),
            100.0 * share
        );
    }
    b.push_str("</table>\n");
}

/// One layer's schedule: the spatial unrolling, then the temporal loops from the outermost in,
/// with the memory each operand keeps its data in at that loop.
fn schedule(b: &mut String, l: &LayerReport, open: bool) {
    let _ = write!(b, "<details{}><summary>", if open { " open" } else { "" });
    let _ = write!(b, "{} <span class=\"muted\">({})</span></summary>", esc(&l.name), esc(&l.op_type));
    if let Some(same) = &l.same_as {
        let _ = write!(b, "<p class=\"muted\">Same layer as {}: its search was reused.</p>", esc(same));
    }
    let spatial: Vec<String> = l
        .spatial
        .iter()
        .map(|(adim, u)| {
            let f: Vec<String> = u.iter().map(|(d, s)| format!("{d} {s}")).collect();
            format!("{adim}: {}", if f.is_empty() { "-".into() } else { f.join(" x ") })
        })
        .collect();
    let _ = write!(b, "<p>Spatial unrolling: {}.</p>", esc(&spatial.join("; ")));
    // Per operand: the flat loops, innermost first, each with its memory.
    let flat: Vec<Vec<(&str, u64, &str)>> = l
        .schedule
        .iter()
        .map(|(_, levels)| {
            levels
                .iter()
                .flat_map(|(mem, loops)| loops.iter().map(move |(d, s)| (d.as_str(), *s, mem.as_str())))
                .collect()
        })
        .collect();
    let same_order = flat
        .windows(2)
        .all(|w| w[0].len() == w[1].len() && w[0].iter().zip(&w[1]).all(|(a, b)| a.0 == b.0 && a.1 == b.1));
    if flat.iter().all(|f| f.is_empty()) {
        b.push_str("<p>No temporal loops: the layer fits the array at once.</p>");
    } else if same_order {
        b.push_str("<table class=\"nest\"><tr><th>loop (outermost first)</th>");
        for (role, _) in &l.schedule {
            let _ = write!(b, "<th>{} in</th>", esc(role));
        }
        b.push_str("</tr>");
        let n = flat[0].len();
        for (depth, i) in (0..n).rev().enumerate() {
            let (dim, size, _) = flat[0][i];
            let _ = write!(
                b,
                "<tr><td class=\"loop\">{}for {} in 0..{}</td>",
                "  ".repeat(depth),
                esc(dim),
                size
            );
            for f in &flat {
                let _ = write!(b, "<td>{}</td>", esc(f[i].2));
            }
            b.push_str("</tr>");
        }
        b.push_str("</table>");
    } else {
        for ((role, levels), _) in l.schedule.iter().zip(&flat) {
            let lv: Vec<String> = levels
                .iter()
                .rev()
                .map(|(mem, loops)| {
                    let ls: Vec<String> = loops.iter().rev().map(|(d, s)| format!("{d} {s}")).collect();
                    format!("{mem}: [{}]", ls.join(", "))
                })
                .collect();
            let _ = write!(b, "<p>{}: {}</p>", esc(role), esc(&lv.join(" / ")));
        }
    }
    for n in &l.notes {
        let _ = write!(b, "<p class=\"note\">{}</p>", esc(n));
    }
    if let Some(r) = l.search.filter(|r| r.cut()) {
        let _ = write!(b, "<p class=\"note\">{}.</p>", esc(&r.describe()));
    }
    if let Some(c) = &l.certificate {
        let _ = write!(b, "<p class=\"note\">{}.</p>", esc(&c.summary()));
    }
    b.push_str("</details>\n");
}

/// One design of a sweep, for [`sweep_html`].
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPoint {
    /// The design and its parameters, shown as the point's tooltip.
    pub label: String,
    pub energy: f64,
    pub latency: f64,
    pub area: Option<f64>,
}

/// A design of a sweep that cannot run the workload, for [`sweep_html`].
#[derive(Clone, Debug, PartialEq)]
pub struct SweepInfeasible {
    /// The design and its parameters.
    pub label: String,
    /// Why it cannot run the workload (the diagnostic's code and message).
    pub reason: String,
}

/// The page of a sweep: `notes` (how the sweep was run, for example a mapping's spatial
/// unrolling set aside), the energy-latency scatter plot with the Pareto front (`front`: indices
/// into `points`) marked and joined, the front's designs as a table, and beside them the designs
/// that cannot run the workload with their reasons.
pub fn sweep_html(
    title: &str,
    points: &[SweepPoint],
    front: &[usize],
    infeasible: &[SweepInfeasible],
    notes: &[String],
) -> String {
    use super::svg::Scatter;
    let mut b = String::new();
    let _ = writeln!(b, "<h1>qc sweep: {}</h1>", esc(title));
    let with_area = points.iter().any(|p| p.area.is_some());
    let _ = writeln!(
        b,
        "<p class=\"sub\">{} designs; {} on the Pareto front of energy, latency{}{}.</p>",
        points.len() + infeasible.len(),
        front.len(),
        if with_area { " and area" } else { "" },
        if infeasible.is_empty() {
            String::new()
        } else {
            format!("; {} cannot run the workload", infeasible.len())
        }
    );
    for n in notes {
        let _ = writeln!(b, "<p class=\"note\">{}</p>", esc(n));
    }
    if points.is_empty() {
        infeasible_table(&mut b, infeasible);
        return page(&format!("qc sweep: {title}"), &b);
    }
    b.push_str(
        &Scatter {
            id: "sweep-scatter",
            title: "Energy against latency, one point per design",
            x_unit: "latency (cycles)",
            y_unit: "energy (pJ)",
            points: points.iter().map(|p| (p.latency, p.energy, p.label.clone())).collect(),
            marked: front.to_vec(),
            marked_label: if with_area { "Pareto front (energy, latency, area)" } else { "Pareto front" },
            line: crate::sweep::pareto_front(
                &points.iter().map(|p| (p.energy, p.latency, None)).collect::<Vec<_>>(),
            ),
            line_label: "energy-latency front",
            label: "design",
        }
        .render(),
    );
    b.push_str(
        "<h2>Pareto front</h2><table><tr><th>design</th><th>energy (pJ)</th><th>latency (cycles)</th>",
    );
    if with_area {
        b.push_str("<th>area</th>");
    }
    b.push_str("</tr>\n");
    let mut f = front.to_vec();
    f.sort_by(|&a, &c| points[a].energy.total_cmp(&points[c].energy));
    for i in f {
        let p = &points[i];
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            esc(&p.label),
            thousands(p.energy),
            thousands(p.latency)
        );
        if with_area {
            let _ = write!(b, "<td class=\"n\">{}</td>", p.area.map_or("-".into(), |a| format!("{a:.3}")));
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</table>\n");
    infeasible_table(&mut b, infeasible);
    page(&format!("qc sweep: {title}"), &b)
}

/// The designs that cannot run the workload, with their reasons (nothing when there are none).
fn infeasible_table(b: &mut String, infeasible: &[SweepInfeasible]) {
    if infeasible.is_empty() {
        return;
    }
    let _ = writeln!(
        b,
        "<h2 id=\"infeasible\">Designs that cannot run the workload ({})</h2>\n<table class=\"infeasible\"><tr><th>design</th><th>why</th></tr>",
        infeasible.len()
    );
    for d in infeasible {
        let _ = writeln!(b, "<tr><td>{}</td><td>{}</td></tr>", esc(&d.label), esc(&d.reason));
    }
    b.push_str("</table>\n");
}
