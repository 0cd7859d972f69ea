//! DLA targets: the built-in descriptions (`spec/targets/<name>.yaml`, embedded in the binary),
//! a user's own YAML file, and the commands `qc targets list` and `qc targets show`.
//!
//! `--target NAME|PATH` resolves a built-in name first; anything else that looks like a path
//! (it contains a path separator or has a file extension, the rule `--accelerator` follows)
//! is read as a file. A file that does
//! not parse gives `qc::target::invalid` with a label on the offending key or value. The format
//! is `spec/targets.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};
use qc_ir::target::{Allowed, Limits, OperatorRule, Rule, ScaleFormat, Target, TensorLimits};

/// The built-in targets: name and YAML text.
pub const BUILTIN: &[(&str, &str)] = &[("access-dla", include_str!("../../spec/targets/access-dla.yaml"))];

/// A target that cannot be found or read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TargetError {
    #[error("no target is called `{name}`")]
    #[diagnostic(
        code(qc::target::unknown),
        help(
            "the built-in targets are: {names}; give the path of a YAML file for your own (spec/targets.md)"
        )
    )]
    Unknown { name: String, names: String },

    #[error("cannot read target file `{file}`")]
    #[diagnostic(code(qc::io::read), help("check the path; `qc targets list` lists the built-in targets"))]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{file}` is not a valid target description: {message}")]
    #[diagnostic(code(qc::target::invalid), help("the format is explained in spec/targets.md"))]
    Invalid {
        file: String,
        message: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{message}")]
        span: Option<SourceSpan>,
    },
}

/// Parses a target description; `file` names it in diagnostics.
pub fn parse(text: &str, file: &str) -> Result<Target, Box<TargetError>> {
    use serde_saphyr::MessageFormatter;
    serde_saphyr::from_str::<Target>(text).map_err(|e| {
        let e = e.without_snippet();
        let message = serde_saphyr::DefaultMessageFormatter.format_message(e).into_owned();
        let span = e.location().and_then(|loc| {
            let s = loc.span();
            let offset = s.byte_offset().and_then(|o| usize::try_from(o).ok())?;
            let len = s.byte_len().and_then(|l| usize::try_from(l).ok()).unwrap_or(0).max(1);
            (offset <= text.len()).then(|| SourceSpan::from((offset, len.min(text.len() - offset))))
        });
        Box::new(TargetError::Invalid {
            file: file.to_string(),
            message,
            src: NamedSource::new(file, text.to_string()),
            span,
        })
    })
}

/// The built-in target called `name`.
pub fn builtin(name: &str) -> Option<Arc<Target>> {
    let (n, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    let t = parse(text, &format!("spec/targets/{n}.yaml")).expect("the built-in targets parse");
    Some(Arc::new(t))
}

/// Resolves `--target NAME|PATH`.
pub fn resolve(spec: &str) -> Result<Arc<Target>, Box<TargetError>> {
    if let Some(t) = builtin(spec) {
        return Ok(t);
    }
    // Names and paths are told apart as `--accelerator`'s are (`crate::accelerators::is_path`).
    if crate::accelerators::is_path(spec) || Path::new(spec).is_file() {
        let file = spec.to_string();
        let text = std::fs::read_to_string(PathBuf::from(spec))
            .map_err(|source| Box::new(TargetError::Read { file: file.clone(), source }))?;
        return parse(&text, &file).map(Arc::new);
    }
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    Err(Box::new(TargetError::Unknown { name: spec.to_string(), names: names.join(", ") }))
}

/// Arguments of `qc targets`.
#[derive(Debug, clap::Args)]
pub struct TargetsArgs {
    #[command(subcommand)]
    pub command: TargetsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TargetsCommand {
    /// List the built-in targets.
    List,
    /// Print a target's rules as Markdown: operators and their limits, tensor limits, scales.
    Show {
        /// A built-in target name, or the path of a YAML target file.
        target: String,
    },
}

/// Runs `qc targets`.
pub fn run(args: &TargetsArgs, out: &mut dyn std::io::Write) -> miette::Result<()> {
    let text = match &args.command {
        TargetsCommand::List => {
            let mut s = String::new();
            let targets: Vec<Arc<Target>> = BUILTIN.iter().filter_map(|(n, _)| builtin(n)).collect();
            let w = targets.iter().map(|t| t.name.len()).max().unwrap_or(0);
            for t in &targets {
                let _ = writeln!(s, "{:<w$}  {}", t.name, t.title);
            }
            s
        }
        TargetsCommand::Show { target } => markdown(&*resolve(target).map_err(|e| *e)?),
    };
    out.write_all(text.as_bytes()).map_err(|e| miette::miette!(code = "qc::io::write", "cannot write: {e}"))
}

/// A target's rules as Markdown, in the manner of Vela's `SUPPORTED_OPS.md`: one table of the
/// operators the DLA runs with their limits, one of the tensor limits, then the scale rules.
pub fn markdown(t: &Target) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Target `{}`\n\n{}\n", t.name, t.title);
    if let Some(src) = &t.source {
        let _ = writeln!(s, "Source: {src}\n");
    }
    let _ = writeln!(s, "### Operators\n");
    let _ = writeln!(s, "| operator | ONNX ops | limits | notes | guide |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for op in &t.operators {
        let ops: Vec<String> = op.op_types.iter().map(|o| format!("`{o}`")).collect();
        let ops = match op.when {
            Some(c) => format!("{} ({})", ops.join(", "), c.describe()),
            None => ops.join(", "),
        };
        let mut limits = limit_lines(op);
        if op.fused {
            limits.insert(0, "fused with the op before it".into());
        }
        let limits = if limits.is_empty() { "none".to_string() } else { limits.join("; ") };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            op.title,
            ops,
            limits,
            op.note.as_deref().unwrap_or(""),
            op.guide.as_deref().unwrap_or("")
        );
    }
    let fallback = t.severity(Rule::UnsupportedOp).name();
    let _ = writeln!(s, "\nAny other op runs on the CPU (`{}`, {fallback}).", Rule::UnsupportedOp.code());
    if !t.absorbed.is_empty() {
        let list: Vec<String> = t.absorbed.iter().map(|o| format!("`{o}`")).collect();
        let _ = writeln!(
            s,
            "Not placed on either unit (they describe the quantization of the tensor they write, or are constants): {}.",
            list.join(", ")
        );
    }
    let _ = writeln!(s, "\n### Tensors\n");
    let _ = writeln!(s, "| tensor | channels | size (H and W) | bit depth |");
    let _ = writeln!(s, "|---|---|---|---|");
    let rows: [(&str, &TensorLimits); 4] = [
        ("graph input", &t.tensors.input),
        ("feature map", &t.tensors.feature_map),
        ("weight", &t.tensors.weight),
        ("bias", &t.tensors.bias),
    ];
    for (name, l) in rows {
        let d = |a: &Option<Allowed>| a.as_ref().map_or("any".to_string(), Allowed::describe);
        let size = l.size.as_ref().map_or("any".to_string(), Allowed::describe_square);
        let _ = writeln!(s, "| {name} | {} | {size} | {} |", d(&l.channels), d(&l.bits));
    }
    let _ = writeln!(s, "\nChannels and sizes apply to 4-D (N, C, H, W) tensors.");
    let sc = &t.scales;
    let _ = writeln!(s, "\n### Scales\n");
    let _ = writeln!(s, "- feature maps: {}, one per tensor", sc.feature_map.describe(sc.max_denominator));
    let _ = writeln!(
        s,
        "- weights: {}, one per output channel (or one for the whole tensor)",
        sc.weight.describe(sc.max_denominator)
    );
    if sc.feature_map != ScaleFormat::Any || sc.weight != ScaleFormat::Any {
        let _ = writeln!(s, "- relative tolerance: {:e}", sc.tolerance);
    }
    if sc.zero_point_zero {
        let _ = writeln!(s, "- zero points: 0");
    }
    let may: Vec<String> = sc.may_change.iter().map(|o| format!("`{o}`")).collect();
    let _ = writeln!(
        s,
        "- may change scale: {}; every other op on the DLA writes its output with its input's scale",
        if may.is_empty() { "none".to_string() } else { may.join(", ") }
    );
    let _ = writeln!(
        s,
        "- a feature map read by several ops has one scale: each consumer's declared input scale equals its producer's output scale"
    );
    if !t.deprecated_attributes.is_empty() {
        let _ = writeln!(s, "\n### Deprecated attributes\n");
        for (attr, instead) in &t.deprecated_attributes {
            let _ = writeln!(s, "- `{attr}`: {instead}");
        }
    }
    let overrides: Vec<String> =
        t.severity.iter().map(|(r, sev)| format!("`{}` is {}", r.code(), sev.name())).collect();
    if !overrides.is_empty() {
        let _ = writeln!(s, "\n### Severities\n\n{}.", overrides.join("; "));
    }
    s
}

/// The limits of one operator as short phrases.
fn limit_lines(op: &OperatorRule) -> Vec<String> {
    let l: &Limits = &op.limits;
    let mut v = Vec::new();
    if let Some(r) = &l.rank {
        v.push(format!("input rank {}", r.describe()));
    }
    if let Some(k) = &l.kernel {
        let mut text = format!("kernel {}", k.describe_square());
        text.push_str(if l.square_kernel { " (square)" } else { " (H and W may differ)" });
        v.push(text);
    }
    if let Some(f) = &l.feature_map {
        v.push(format!("feature map {}", f.describe_square()));
    }
    if let Some(c) = &l.channels {
        v.push(format!("channels {}", c.describe()));
    }
    if let Some(x) = &l.stride {
        v.push(format!("stride {}", x.describe()));
    }
    if let Some(p) = &l.padding {
        let mut text = format!("padding {}", p.describe());
        if let Some(sides) = &l.pad_sides {
            let names: Vec<&str> = sides.iter().map(|s| s.name()).collect();
            text.push_str(&format!(" ({} only)", names.join(" and ")));
        }
        if let Some(val) = l.pad_value {
            text.push_str(&format!(" with value {val}"));
        }
        v.push(text);
    }
    if let Some(d) = &l.dilation {
        v.push(format!("dilation {}", d.describe()));
    }
    if let Some(i) = &l.inputs {
        v.push(format!("inputs {}", i.describe()));
    }
    if let Some(f) = &l.follows {
        let names: Vec<String> = f.iter().map(|o| format!("`{o}`")).collect();
        v.push(format!("follows {}", names.join(", ")));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_targets_parse() {
        for (name, _) in BUILTIN {
            let t = builtin(name).unwrap();
            assert_eq!(&t.name, name);
        }
    }
}
