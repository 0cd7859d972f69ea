//! Inline SVG charts: horizontal stacked bars with an axis, ticks, units and a legend.

use std::fmt::Write as _;

use super::si;

/// Colours of the series, in order (cycled beyond twelve).
const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac", "#2f4b7c", "#a05195",
];

/// The colour of series `i`.
pub(crate) fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// One row of a chart: its label and one value per series.
pub(crate) struct Row {
    pub label: String,
    /// A second, smaller label (the design, in comparisons).
    pub sublabel: Option<String>,
    pub values: Vec<f64>,
}

/// A horizontal stacked bar chart.
pub(crate) struct Chart<'a> {
    /// `id` of the `<svg>` element.
    pub id: &'a str,
    pub title: &'a str,
    /// The unit of the values, shown on the axis (`pJ`, `cycles`, `%`).
    pub unit: &'a str,
    pub series: Vec<String>,
    pub rows: Vec<Row>,
    /// A fixed end of the axis (100 for percentages); else the largest row, rounded up.
    pub axis_max: Option<f64>,
}

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 250.0;
const RIGHT: f64 = 24.0;
const ROW_H: f64 = 20.0;
const BAR_H: f64 = 14.0;
const TOP: f64 = 12.0;
const AXIS_H: f64 = 44.0;

/// `x` escaped for XML text and attributes.
pub(crate) fn esc(x: &str) -> String {
    let mut s = String::with_capacity(x.len());
    for c in x.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

/// The tick step for an axis from 0 to `max`: 1, 2 or 5 times a power of ten, about 5 ticks.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p)
}

/// The ticks from `start` to `end` (inclusive, up to rounding) every `step`, each computed from
/// `start` so that no error accumulates.
fn ticks(start: f64, end: f64, step: f64) -> impl Iterator<Item = f64> {
    let n = ((end - start) / step + 1e-9).floor().max(0.0) as usize;
    (0..=n).map(move |i| start + step * i as f64)
}

/// A tick's label: small whole numbers as they are, others with an SI prefix.
fn tick_label(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 1000.0 { format!("{t:.0}") } else { si(t) }
}

impl Chart<'_> {
    /// The chart as a `<figure>`: the SVG (bars are `rect.bar` with a `<title>` tooltip) and a
    /// legend of the series that occur.
    pub fn render(&self) -> String {
        let largest = self.rows.iter().map(|r| r.values.iter().sum::<f64>()).fold(0.0, f64::max);
        let step = tick_step(self.axis_max.unwrap_or(largest));
        let max = match self.axis_max {
            Some(m) => m,
            None => (largest / step).ceil().max(1.0) * step,
        };
        let plot_w = WIDTH - LABEL_W - RIGHT;
        let height = TOP + ROW_H * self.rows.len() as f64 + AXIS_H;
        let x_of = |v: f64| LABEL_W + plot_w * (v / max).clamp(0.0, 1.0);
        let mut s = String::new();
        let _ = write!(
            s,
            "<figure class=\"chart\"><figcaption>{}</figcaption>\
             <svg id=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" \
             width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
            esc(self.title),
            esc(self.id),
            esc(self.title)
        );
        // Grid and ticks.
        let axis_y = TOP + ROW_H * self.rows.len() as f64;
        for t in ticks(0.0, max, step) {
            let x = x_of(t);
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{axis_y}\"/>\
                 <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                axis_y + 14.0,
                esc(&tick_label(t))
            );
        }
        let _ = write!(
            s,
            "<line class=\"axis\" x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\"/>\
             <text class=\"unit\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            WIDTH - RIGHT,
            LABEL_W + plot_w / 2.0,
            axis_y + 34.0,
            esc(self.unit)
        );
        // Rows.
        for (i, row) in self.rows.iter().enumerate() {
            let y = TOP + ROW_H * i as f64;
            let label = match &row.sublabel {
                Some(sub) => format!("{} · {sub}", row.label),
                None => row.label.clone(),
            };
            let shown: String = if label.chars().count() > 38 {
                let tail: String =
                    label.chars().rev().take(37).collect::<Vec<_>>().into_iter().rev().collect();
                format!("…{tail}")
            } else {
                label.clone()
            };
            let _ = write!(
                s,
                "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{}</text>",
                LABEL_W - 6.0,
                y + ROW_H / 2.0 + 4.0,
                esc(&label),
                esc(&shown)
            );
            let mut x0 = 0.0;
            for (j, &v) in row.values.iter().enumerate() {
                if v <= 0.0 || !v.is_finite() {
                    continue;
                }
                let (a, b) = (x_of(x0), x_of(x0 + v));
                x0 += v;
                let _ = write!(
                    s,
                    "<rect class=\"bar\" data-series=\"{}\" x=\"{a:.2}\" y=\"{:.1}\" width=\"{:.2}\" \
                     height=\"{BAR_H}\" fill=\"{}\"><title>{}: {} = {} {}</title></rect>",
                    esc(&self.series[j]),
                    y + (ROW_H - BAR_H) / 2.0,
                    (b - a).max(0.5),
                    colour(j),
                    esc(&label),
                    esc(&self.series[j]),
                    esc(&super::thousands_or_fraction(v)),
                    esc(self.unit)
                );
            }
        }
        s.push_str("</svg>");
        // Legend: the series that have a value somewhere.
        s.push_str("<ul class=\"legend\">");
        for (j, name) in self.series.iter().enumerate() {
            if self.rows.iter().any(|r| r.values.get(j).is_some_and(|v| *v > 0.0)) {
                let _ = write!(
                    s,
                    "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
                    colour(j),
                    esc(name)
                );
            }
        }
        s.push_str("</ul></figure>\n");
        s
    }
}

/// A scatter plot of points `(x, y)`, some of them marked (the front, joined by a line).
pub(crate) struct Scatter<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub x_unit: &'a str,
    pub y_unit: &'a str,
    /// `(x, y, tooltip)`.
    pub points: Vec<(f64, f64, String)>,
    /// Indices into `points` of the marked ones.
    pub marked: Vec<usize>,
    /// Indices into `points` joined by a line (in x order), with its legend label.
    pub line: Vec<usize>,
    pub line_label: &'a str,
    pub marked_label: &'a str,
    pub label: &'a str,
}

/// An axis from about `lo` to `hi`: (start, end, step), on round numbers.
fn axis(lo: f64, hi: f64) -> (f64, f64, f64) {
    let (lo, hi) =
        if hi > lo { (lo, hi) } else { (lo - lo.abs().max(1.0) * 0.5, hi + hi.abs().max(1.0) * 0.5) };
    let step = tick_step(hi - lo);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

impl Scatter<'_> {
    pub fn render(&self) -> String {
        const W: f64 = 960.0;
        const H: f64 = 560.0;
        const L: f64 = 90.0;
        const B: f64 = 56.0;
        const T: f64 = 16.0;
        const R: f64 = 24.0;
        let xs = self.points.iter().map(|p| p.0);
        let ys = self.points.iter().map(|p| p.1);
        let (x0, x1, xs_step) =
            axis(xs.clone().fold(f64::INFINITY, f64::min), xs.fold(f64::NEG_INFINITY, f64::max));
        let (y0, y1, ys_step) =
            axis(ys.clone().fold(f64::INFINITY, f64::min), ys.fold(f64::NEG_INFINITY, f64::max));
        let px = |x: f64| L + (W - L - R) * (x - x0) / (x1 - x0);
        let py = |y: f64| H - B - (H - B - T) * (y - y0) / (y1 - y0);
        let mut s = String::new();
        let _ = write!(
            s,
            "<figure class=\"chart\"><figcaption>{}</figcaption><svg id=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" \
             viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">",
            esc(self.title),
            esc(self.id),
            esc(self.title)
        );
        for x in ticks(x0, x1, xs_step) {
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{0:.1}\" y1=\"{T}\" x2=\"{0:.1}\" y2=\"{1}\"/><text class=\"tick\" x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>",
                px(x),
                H - B,
                H - B + 16.0,
                esc(&tick_label(x))
            );
        }
        for y in ticks(y0, y1, ys_step) {
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{L}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\"/><text class=\"tick\" x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
                py(y),
                W - R,
                L - 6.0,
                py(y) + 4.0,
                esc(&tick_label(y))
            );
        }
        let _ = write!(
            s,
            "<line class=\"axis\" x1=\"{L}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/><line class=\"axis\" x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{0}\"/>\
             <text class=\"unit\" x=\"{2:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\
             <text class=\"unit\" transform=\"translate(16 {5:.1}) rotate(-90)\" text-anchor=\"middle\">{6}</text>",
            H - B,
            W - R,
            L + (W - L - R) / 2.0,
            H - 12.0,
            esc(self.x_unit),
            T + (H - B - T) / 2.0,
            esc(self.y_unit)
        );
        let mut front: Vec<usize> = self.line.clone();
        front.sort_by(|&a, &b| self.points[a].0.total_cmp(&self.points[b].0));
        if front.len() > 1 {
            let pts: Vec<String> = front
                .iter()
                .map(|&i| format!("{:.1},{:.1}", px(self.points[i].0), py(self.points[i].1)))
                .collect();
            let _ = write!(
                s,
                "<polyline class=\"front-line\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
                colour(1),
                pts.join(" ")
            );
        }
        for (i, (x, y, tip)) in self.points.iter().enumerate() {
            let marked = self.marked.contains(&i);
            let _ = write!(
                s,
                "<circle class=\"point{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{}\" fill-opacity=\"{}\"><title>{}</title></circle>",
                if marked { " front" } else { "" },
                px(*x),
                py(*y),
                if marked { 5 } else { 3 },
                if marked { colour(1) } else { colour(0) },
                if marked { "1" } else { "0.55" },
                esc(tip)
            );
        }
        let _ = writeln!(
            s,
            "</svg><ul class=\"legend\" style=\"margin-left:90px\"><li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>\
             <li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>\
             <li><span class=\"swatch\" style=\"height:2px;vertical-align:3px;background:{}\"></span>{}</li></ul></figure>",
            colour(0),
            esc(self.label),
            colour(1),
            esc(self.marked_label),
            colour(1),
            esc(self.line_label)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(1.86e9), 5e8);
        assert_eq!(tick_step(7.0), 2.0);
        assert_eq!(tick_step(0.0), 1.0);
    }

    #[test]
    fn a_chart_has_bars_axis_and_legend() {
        let c = Chart {
            id: "energy",
            title: "Energy <per> layer",
            unit: "pJ",
            series: vec!["DRAM I".into(), "MAC".into()],
            rows: vec![
                Row { label: "conv1".into(), sublabel: None, values: vec![3.0, 1.0] },
                Row { label: "fc".into(), sublabel: Some("tpu".into()), values: vec![0.0, 2.0] },
            ],
            axis_max: None,
        };
        let svg = c.render();
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3);
        assert!(svg.contains("Energy &lt;per&gt; layer"));
        assert!(svg.contains(">pJ</text>"));
        assert!(svg.contains("fc · tpu"));
        assert_eq!(svg.matches("class=\"swatch\"").count(), 2);
    }
}
