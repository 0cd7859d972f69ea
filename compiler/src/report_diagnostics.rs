//! Diagnostics at scale: the warnings of one run, grouped and capped, and the closing summary.
//!
//! A real model can give thousands of warnings of a few kinds (one per node of an op without a
//! rule, one per unchecked node). Printed one by one they drown the result, so the warnings of a
//! run are grouped by code and message shape (the message with its quoted names and numbers
//! taken out): each group is rendered once, in full, followed by how many more are like it and
//! the first few names. `--max-diagnostics N` caps the groups rendered in full (the rest get one
//! line each), `-q` prints none, and a summary line closes the run whenever there was any. JSON
//! outputs keep every finding: this is only how warnings reach the terminal.

use std::fmt::Write as _;

/// How many warnings are rendered (`--max-diagnostics`, `-q`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Groups rendered in full; the others get one line.
    pub max_full: usize,
    /// Print no warnings at all (the summary still says how many there were).
    pub quiet: bool,
}

/// Names shown after "and N more like this".
const NAMES_SHOWN: usize = 5;

/// The shape of a message: backquoted spans become `_`, runs of digits `N`.
pub fn shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quote = false;
    let mut last_digit = false;
    for c in message.chars() {
        if c == '`' {
            if !in_quote {
                out.push_str("`_`");
            }
            in_quote = !in_quote;
            last_digit = false;
            continue;
        }
        if in_quote {
            continue;
        }
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
        } else {
            out.push(c);
            last_digit = false;
        }
    }
    out
}

/// The first backquoted span of a message (the node or value it is about), if any.
fn first_name(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// One group: the first report, and the names of the others.
struct Group {
    code: String,
    shape: String,
    first: miette::Report,
    others: Vec<String>,
}

/// Renders `warnings` grouped, capped by `limits`, followed by a summary line; `render` turns
/// one report into text. Empty when there is nothing to say.
pub fn render_all(
    warnings: Vec<miette::Report>,
    limits: Limits,
    render: &dyn Fn(&miette::Report) -> String,
) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let total = warnings.len();
    let mut groups: Vec<Group> = Vec::new();
    for w in warnings {
        let code = w.code().map(|c| c.to_string()).unwrap_or_default();
        let message = w.to_string();
        let key = shape(&message);
        match groups.iter_mut().find(|g| g.code == code && g.shape == key) {
            Some(g) => g.others.push(first_name(&message).unwrap_or(&message).to_string()),
            None => groups.push(Group { code, shape: key, first: w, others: Vec::new() }),
        }
    }
    let mut s = String::new();
    if !limits.quiet {
        for (i, g) in groups.iter().enumerate() {
            if i < limits.max_full {
                s.push_str(&render(&g.first));
                if !g.others.is_empty() {
                    let shown: Vec<String> =
                        g.others.iter().take(NAMES_SHOWN).map(|n| format!("`{n}`")).collect();
                    let more = if g.others.len() > NAMES_SHOWN { ", ..." } else { "" };
                    let _ = writeln!(
                        s,
                        "  ... and {} more like this: {}{more}\n",
                        g.others.len(),
                        shown.join(", ")
                    );
                }
            } else {
                if i == limits.max_full {
                    let _ =
                        writeln!(s, "further warnings, one line per kind (--max-diagnostics N shows more):");
                }
                let first = g.first.to_string();
                let line = first.lines().next().unwrap_or_default();
                let _ = writeln!(s, "  {} x{}: {line}", g.code, g.others.len() + 1);
            }
        }
    }
    let _ = writeln!(
        s,
        "qc: {total} warning(s) of {} kind(s){}",
        groups.len(),
        if limits.quiet {
            " (not shown: -q)"
        } else if groups.len() > limits.max_full {
            " (--max-diagnostics caps those shown in full)"
        } else {
            ""
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(code: &'static str, msg: String) -> miette::Report {
        miette::miette!(severity = miette::Severity::Warning, code = code, "{msg}")
    }

    #[test]
    fn shapes_drop_names_and_numbers() {
        assert_eq!(shape("node `conv_12`: dim 3 of `x` is 17"), "node `_`: dim N of `_` is N");
    }

    #[test]
    fn identical_warnings_are_grouped_and_capped() {
        let mut w: Vec<miette::Report> = (0..1000)
            .map(|i| warning("qc::shape::unsupported_op", format!("node `n{i}`: shape unknown")))
            .collect();
        w.extend((0..3).map(|i| warning("qc::cost::uncosted", format!("value `v{i}` has {i} dims"))));
        w.push(warning("qc::onnx::negative_dim", "something else".into()));
        let render = |r: &miette::Report| format!("{r}\n");
        let text = render_all(w, Limits { max_full: 2, quiet: false }, &render);
        assert!(
            text.contains("node `n0`: shape unknown\n  ... and 999 more like this: `n1`, `n2`"),
            "{text}"
        );
        assert!(text.contains("... and 2 more like this: `v1`, `v2`"), "{text}");
        assert!(text.contains("  qc::onnx::negative_dim x1: something else"), "{text}");
        assert!(
            text.ends_with("qc: 1004 warning(s) of 3 kind(s) (--max-diagnostics caps those shown in full)\n")
        );
        assert!(text.lines().count() < 12, "{text}");
        let quiet = render_all(
            vec![warning("qc::shape::unsupported_op", "x".into())],
            Limits { max_full: 2, quiet: true },
            &render,
        );
        assert_eq!(quiet, "qc: 1 warning(s) of 1 kind(s) (not shown: -q)\n");
    }
}
