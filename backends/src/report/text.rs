//! The terminal table and its Markdown twin.

use std::fmt::Write as _;

use super::{Design, thousands};

/// The columns of the per-layer table: header, right-aligned.
const COLUMNS: [(&str, bool); 9] = [
    ("layer", false),
    ("op", false),
    ("MACs", true),
    ("util", true),
    ("energy (pJ)", true),
    ("latency (cc)", true),
    ("E/bound", true),
    ("L/bound", true),
    ("dominant cost", false),
];

/// The columns of the gaps to the lower bounds, left out of a table too wide for the terminal.
const BOUND_COLUMNS: (usize, usize) = (6, 7);

/// The cells of one layer's row.
fn cells(l: &super::LayerReport) -> [String; 9] {
    let (part, share) = l.dominant();
    [
        l.name.clone(),
        l.op_type.clone(),
        thousands(l.macs as f64),
        format!("{:.1}%", 100.0 * l.spatial_utilization),
        thousands(l.energy),
        thousands(l.latency),
        l.energy_gap_text(),
        l.latency_gap_text(),
        format!("{part} {:.0}%", 100.0 * share),
    ]
}

/// Cuts `s` to `w` characters, keeping its end (layer names differ at the end).
fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    if w <= 1 {
        return "…".chars().take(w).collect();
    }
    let tail: String = s.chars().skip(n - (w - 1)).collect();
    format!("…{tail}")
}

/// The per-layer table of every design, then the totals (and, for several designs, a comparison),
/// fitted to `width` columns (the layer names are shortened to fit); `color` adds ANSI bold to
/// the headers.
pub fn text(designs: &[Design], width: usize, color: bool) -> String {
    let (bold, plain) = if color { ("\x1b[1m", "\x1b[0m") } else { ("", "") };
    let mut s = String::new();
    for (di, d) in designs.iter().enumerate() {
        if di > 0 {
            s.push('\n');
        }
        let _ = writeln!(s, "{bold}{} on {}{plain}", d.workload, d.accelerator.name);
        for line in &d.prepared {
            let _ = writeln!(s, "{line}");
        }
        let full: Vec<[String; 9]> = d.layers.iter().map(cells).collect();
        let widest = |keep: &[usize]| -> Vec<usize> {
            let mut w: Vec<usize> = keep.iter().map(|&i| COLUMNS[i].0.len()).collect();
            for r in &full {
                for (j, &i) in keep.iter().enumerate() {
                    w[j] = w[j].max(r[i].chars().count());
                }
            }
            w
        };
        // The columns shown: all, or without the gaps to the bounds (still in the summary line)
        // when they do not fit the width.
        let all: Vec<usize> = (0..COLUMNS.len()).collect();
        let keep: Vec<usize> = if widest(&all).iter().sum::<usize>() + 2 * (all.len() - 1) <= width {
            all
        } else {
            (0..COLUMNS.len()).filter(|&i| i != BOUND_COLUMNS.0 && i != BOUND_COLUMNS.1).collect()
        };
        let rows: Vec<Vec<String>> =
            full.iter().map(|r| keep.iter().map(|&i| r[i].clone()).collect()).collect();
        let mut w = widest(&keep);
        // Fit the layer (and, if need be, the dominant-cost) column to the width.
        let gaps = 2 * (keep.len() - 1);
        let others: usize = w[1..].iter().sum::<usize>() + gaps;
        w[0] = w[0].min(width.saturating_sub(others).max(12));
        let line = |cells: &[String], s: &mut String| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                let c = fit(c, w[i]);
                let pad = w[i] - c.chars().count();
                if i > 0 {
                    out.push_str("  ");
                }
                if COLUMNS[keep[i]].1 {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&c);
                } else if i + 1 < cells.len() {
                    out.push_str(&c);
                    out.push_str(&" ".repeat(pad));
                } else {
                    out.push_str(&c);
                }
            }
            let _ = writeln!(s, "{}", out.trim_end());
        };
        let header: Vec<String> = keep.iter().map(|&i| COLUMNS[i].0.to_string()).collect();
        s.push_str(bold);
        let mut h = String::new();
        line(&header, &mut h);
        s.push_str(h.trim_end_matches('\n'));
        let _ = writeln!(s, "{plain}");
        for (r, l) in rows.iter().zip(&d.layers) {
            line(r, &mut s);
            for n in &l.notes {
                let _ = writeln!(s, "  note: {n}");
            }
            if let Some(r) = l.search.filter(|r| r.cut()) {
                let _ = writeln!(s, "  {}", r.describe());
            }
            if let Some(c) = &l.certificate {
                let _ = writeln!(s, "  {}", c.summary());
            }
        }
        let _ = writeln!(
            s,
            "\ntotal: {} pJ, {} cycles, {} MACs, {} layer(s)",
            thousands(d.total_energy()),
            thousands(d.total_latency()),
            thousands(d.total_macs() as f64),
            d.layers.len()
        );
        for line in d.imc_lines() {
            let _ = writeln!(s, "{line}");
        }
        if let Some(line) = d.bound_line() {
            let _ = writeln!(s, "{line}");
        }
        if !d.not_costed.is_empty() {
            let _ = writeln!(s, "not costed: {} nodes (see --format json or html)", d.not_costed.len());
        }
        if let Some(line) = d.vector_work_line() {
            let _ = writeln!(s, "{line}");
        }
        if let Some(b) = d.budget_summary() {
            let _ = writeln!(s, "{b}");
        }
        if !d.unfit.is_empty() {
            let _ = writeln!(
                s,
                "{bold}{} layer(s) do not fit{plain} (not in the total; exit code 1):",
                d.unfit.len()
            );
            for (name, op, why) in &d.unfit {
                let _ = writeln!(s, "  {name} ({op}): {why}");
            }
        }
        // The placement does not depend on the accelerator: once, under the first design.
        if let Some(split) = d.split.as_ref().filter(|_| di == 0) {
            split_text(&mut s, split, bold, plain);
        }
    }
    if designs.len() > 1 {
        let _ = writeln!(s, "\n{bold}comparison{plain}");
        let (rows, note) = comparison(designs);
        for c in rows {
            let _ =
                writeln!(s, "{:<24}  {:>20}  {:>16}  {:>8}  {:>8}", fit(&c[0], 24), c[1], c[2], c[3], c[4]);
        }
        if let Some(n) = note {
            let _ = writeln!(s, "{n}");
        }
    }
    s
}

/// How many CPU ops the text lists one by one (the other formats list them all).
const CPU_OPS_SHOWN: usize = 12;

/// `1,234 MACs, 5.6%` (no share when the model has no MACs).
fn share_text(split: &super::Split, u: &super::UnitShare) -> String {
    match split.mac_share(u) {
        Some(p) => format!("{} MACs, {p:.1}%", thousands(u.macs as f64)),
        None => format!("{} MACs", thousands(u.macs as f64)),
    }
}

/// The DLA/CPU split and the ops sent to the CPU, each with its rule.
fn split_text(s: &mut String, split: &super::Split, bold: &str, plain: &str) {
    let _ = writeln!(
        s,
        "{bold}placement on {}{plain}: {} op(s) on the DLA ({}), {} on the CPU ({}); only the DLA's layers are costed above",
        split.target,
        split.dla.ops,
        share_text(split, &split.dla),
        split.cpu.ops,
        share_text(split, &split.cpu),
    );
    if !split.uncounted.is_empty() {
        let _ = writeln!(
            s,
            "  MACs unknown for {} compute op(s) qc could not lower (see not costed): {}",
            split.uncounted.len(),
            split.uncounted.join(", ")
        );
    }
    if split.cpu_ops.len() > CPU_OPS_SHOWN {
        // Per op type and rule first: the list below is cut.
        let mut groups: Vec<(&str, &str, usize)> = Vec::new();
        for op in &split.cpu_ops {
            match groups.iter_mut().find(|(t, r, _)| *t == op.op_type && *r == op.rule) {
                Some(g) => g.2 += 1,
                None => groups.push((&op.op_type, &op.rule, 1)),
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.2));
        let list: Vec<String> = groups.iter().map(|(t, r, n)| format!("{t} x{n} ({r})")).collect();
        let _ = writeln!(s, "  cpu ops by type and rule: {}", list.join(", "));
    }
    for op in split.cpu_ops.iter().take(CPU_OPS_SHOWN) {
        let macs = if op.macs > 0 { format!(", {} MACs", thousands(op.macs as f64)) } else { String::new() };
        let _ = writeln!(s, "  cpu: {} ({}{macs}): {}: {}", op.node, op.op_type, op.rule, op.reason);
    }
    if split.cpu_ops.len() > CPU_OPS_SHOWN {
        let _ = writeln!(
            s,
            "  ... and {} more CPU op(s) (--format json, md or html lists every one)",
            split.cpu_ops.len() - CPU_OPS_SHOWN
        );
    }
}

/// The comparison of several designs: a header, then per design its energy and latency, and
/// both relative to the first design.
fn comparison(designs: &[Design]) -> (Vec<[String; 5]>, Option<String>) {
    let lat = super::latency_comparison(designs);
    let unit = if lat.unit == "ns" { "latency (ns)" } else { "latency (cc)" };
    let mut rows =
        vec![["design".to_string(), "energy (pJ)".into(), unit.into(), "energy".into(), "latency".into()]];
    let (e0, l0) = (designs[0].total_energy(), lat.values[0]);
    for (d, &l) in designs.iter().zip(&lat.values) {
        let e = d.total_energy();
        rows.push([
            d.accelerator.name.clone(),
            thousands(e),
            thousands(l),
            format!("{:.2}x", e / e0),
            format!("{:.2}x", l / l0),
        ]);
    }
    (rows, lat.note)
}

/// Markdown cell text: `|` escaped.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The same tables as [`text`], in Markdown.
pub fn markdown(designs: &[Design]) -> String {
    let mut s = String::new();
    for (di, d) in designs.iter().enumerate() {
        let _ = writeln!(s, "## `{}` on {}\n", md(&d.workload), md(&d.accelerator.name));
        for line in &d.prepared {
            let _ = writeln!(s, "{}\n", md(line));
        }
        if !d.settings.is_empty() {
            let list: Vec<String> = d.settings.iter().map(|(k, v)| format!("{k}: {}", md(v))).collect();
            let _ = writeln!(s, "{}\n", list.join("; "));
        }
        let header: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
        let _ = writeln!(s, "| {} |", header.join(" | "));
        let align: Vec<&str> = COLUMNS.iter().map(|c| if c.1 { "---:" } else { "---" }).collect();
        let _ = writeln!(s, "|{}|", align.join("|"));
        for l in &d.layers {
            let c = cells(l);
            let c: Vec<String> = c.iter().map(|x| md(x)).collect();
            let _ = writeln!(s, "| {} |", c.join(" | "));
        }
        let _ = writeln!(
            s,
            "\nTotal: {} pJ, {} cycles, {} MACs, {} layers.",
            thousands(d.total_energy()),
            thousands(d.total_latency()),
            thousands(d.total_macs() as f64),
            d.layers.len()
        );
        let imc = d.imc_lines();
        if !imc.is_empty() {
            s.push('\n');
            for line in imc {
                let _ = writeln!(s, "- {}", md(&line));
            }
        }
        if let Some(line) = d.bound_line() {
            let _ = writeln!(s, "\n{}.", md(&line));
        }
        if let Some(b) = d.budget_summary() {
            let _ = writeln!(s, "\n{}:\n", md(&b));
            for l in d.layers.iter().filter(|l| l.search.is_some_and(|r| r.cut())) {
                let r = l.search.unwrap_or_default();
                let _ = writeln!(s, "- `{}`: {}", md(&l.name), md(&r.describe()));
            }
        }
        if d.layers.iter().any(|l| l.certificate.is_some()) {
            let _ = writeln!(s, "\nOptimality certificates:\n");
            for l in d.layers.iter() {
                if let Some(c) = &l.certificate {
                    let _ = writeln!(s, "- `{}`: {}", md(&l.name), md(&c.summary()));
                }
            }
        }
        if !d.unfit.is_empty() {
            let _ = writeln!(s, "\nDo not fit (not in the total):\n");
            for (name, op, why) in &d.unfit {
                let _ = writeln!(s, "- `{}` ({}): {}", md(name), md(op), md(why));
            }
        }
        if let Some(split) = d.split.as_ref().filter(|_| di == 0) {
            let _ = writeln!(
                s,
                "\nPlacement on {}: {} op(s) on the DLA ({}), {} on the CPU ({}); only the DLA's layers are costed.\n",
                md(&split.target),
                split.dla.ops,
                share_text(split, &split.dla),
                split.cpu.ops,
                share_text(split, &split.cpu),
            );
            if !split.cpu_ops.is_empty() {
                s.push_str("| CPU op | op | MACs | rule | why |\n|---|---|---:|---|---|\n");
                for op in &split.cpu_ops {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} |",
                        md(&op.node),
                        md(&op.op_type),
                        thousands(op.macs as f64),
                        md(&op.rule),
                        md(&op.reason)
                    );
                }
            }
        }
        if !d.not_costed.is_empty() {
            let _ = writeln!(s, "\nNot costed:\n");
            for (name, op, reason, elements) in &d.not_costed {
                let _ = match elements {
                    Some(n) => writeln!(
                        s,
                        "- `{}` ({}): {}; {} elements",
                        md(name),
                        md(op),
                        md(reason),
                        thousands(*n as f64)
                    ),
                    None => writeln!(s, "- `{}` ({}): {}", md(name), md(op), md(reason)),
                };
            }
        }
        s.push('\n');
    }
    if designs.len() > 1 {
        s.push_str("## Comparison\n\n");
        let (rows, note) = comparison(designs);
        for (i, c) in rows.iter().enumerate() {
            let _ = writeln!(s, "| {} | {} | {} | {} | {} |", md(&c[0]), c[1], c[2], c[3], c[4]);
            if i == 0 {
                s.push_str("|---|---:|---:|---:|---:|\n");
            }
        }
        if let Some(n) = note {
            let _ = writeln!(s, "\n{}", md(&n));
        }
    }
    s
}
