//! The output formats of every command, in one place. Each command offers the formats that make
//! sense for what it writes, so there is one enum per kind of output rather than one for all;
//! the names are shared: `text` for the terminal, `json` for scripts (versioned schemas in
//! `spec/cli.md`), `md` (alias `markdown`) for pull requests and papers.
//!
//! | enum | commands |
//! |---|---|
//! | [`TextOrJson`] | `qc inspect`, `qc sweep` |
//! | [`ReportFormat`] | `qc evaluate`, `qc check` |
//! | [`CostFormat`] | `qc cost` |
//! | [`LowerFormat`] | `qc lower` |
//! | [`AcceleratorFormat`] | `qc accelerators show` |

use clap::ValueEnum;

/// A summary for the terminal or the same facts as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    /// For the terminal.
    Text,
    /// For scripts (`spec/cli.md`).
    Json,
}

/// The formats of the commands whose reports people read (`qc evaluate`, `qc check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For the terminal.
    Text,
    /// The versioned schema of `spec/cli.md`, for scripts.
    Json,
    /// Markdown tables, for pull requests and papers.
    #[value(alias = "markdown")]
    Md,
    /// One self-contained page (inline CSS and SVG, no script, nothing fetched).
    Html,
}

/// The formats of `qc cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CostFormat {
    /// For the terminal.
    Text,
    /// The reference tool's keys (`spec/cli.md`).
    Json,
    /// Markdown tables, for pull requests and papers.
    #[value(alias = "markdown")]
    Md,
}

/// The formats of `qc lower`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LowerFormat {
    /// The textual loop-nest IR.
    Text,
    /// JSON, `schema_version` 1 (spec/cli.md).
    Json,
    /// ZigZag's manual-workload YAML.
    ZigzagYaml,
}

/// What `qc accelerators show` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AcceleratorFormat {
    /// The hierarchy as Markdown tables.
    #[value(alias = "markdown")]
    Md,
    /// The accelerator in qc's format: a file to edit and give to `--accelerator`.
    Yaml,
    /// Every field, for scripts.
    Json,
}
