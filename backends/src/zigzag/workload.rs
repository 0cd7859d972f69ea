//! ZigZag's manual-workload YAML (`zigzag/parser/workload_validator.py`, `workload_factory.py`)
//! read as a [`Workload`] of [`LoopNest`]s, and written back so that ZigZag can run it.
//!
//! # Reading ([`read_workload_yaml`])
//!
//! The file is a list of layers; each layer is checked as ZigZag's validator checks it (unknown
//! keys, missing required keys and wrong types are errors; `operator_type` from ZigZag's list;
//! `equation` matching `^O(\[\w+\])+\+?=\w(\[\w+\])+[*+]\w(\[(?:\w+)?\])+$`, no spaces;
//! relations matching `a = [s*]b + [d*]c`; `operand_precision` with `O` and `O_final` required,
//! `W`, `I` optional; `operand_source` with keys `W`, `I`; `padding` and `pr_loop_sizes` only
//! with `pr_loop_dims` of the same length). Defaults are ZigZag's: `name` = `Layer<id>`, no
//! relations, no sources, no padding. `time_dim` (written by newer ZigZag ONNX parsers) is
//! accepted and ignored. Then:
//!
//! - `loop_dims`/`loop_sizes` -> [`LoopDim`]s (names upper-cased); sizes must be >= 1.
//! - the equation -> the output (role `O`) and the inputs in the order written, each index
//!   lower-cased; an index must be a loop dim or a relation name. `[]` in the last operand is an
//!   empty index (ZigZag allows it).
//! - `dimension_relations` `ix=2*ox+1*fx` -> [`Relation`] `{name: "ix", terms: [(2, "ox"),
//!   (1, "fx")], offset: -pad_low, extent, padding}`, where `padding` comes from `padding` at the
//!   position of `IX` in `pr_loop_dims` (else `(0, 0)`), and `extent` from `pr_loop_sizes`, else
//!   (as ZigZag computes it) the range of the relation `sum(coef * (size - 1)) + 1` minus the
//!   padding.
//! - [`Compute`]: `Conv`, `Conv_downsample`, `Gemm` -> `Mac`; `Pooling`, `Pool`, `MaxPool`,
//!   `Max` -> `Max`; `AveragePool`, `GlobalAveragePool` -> `Avg`; `Add` -> `Add`, or `Mul` when
//!   the equation multiplies (`O[..]=W[..]*I[..]`, how qc writes element-wise products).
//!   `op_type` is the `operator_type`.
//! - precisions: `W`, `I` on the operands with those roles, `O_final` on the output, `O` ->
//!   `psum_precision` with [`PsumRule::Given`].
//! - `operand_source`: the layer's own id -> [`Source::Constant`]; another id -> the
//!   [`Source::Layer`] named after the *earlier* layer with that id (ZigZag rejects references to
//!   later or missing layers); an input not listed -> [`Source::Other`].
//! - operand `value`s: the output writes the layer's name; an input from a layer reads that
//!   layer's name; other inputs `<layer>.<role>`. `quant` is `None`. `not_lowered` is empty.
//!
//! Deviations from ZigZag (stricter): duplicate layer ids, ids outside `0..2^32`, loop sizes
//! < 1, `loop_dims`/`loop_sizes` of different lengths (ZigZag zips them silently), duplicate
//! loop dims, a `pr_loop_dims` entry that no relation defines, an `operand_source` key for an
//! operand the equation does not have, and non-integer relation coefficients (ZigZag crashes)
//! are errors.
//!
//! # Writing ([`write_workload_yaml`])
//!
//! One YAML layer per [`LoopNest`], with `id` = the nest's id and `name` = its name (the ONNX
//! node name, so ZigZag's results pair with qc's by name). The nodes that were not lowered and
//! every deviation are written as `# qc: ...` comment lines (ZigZag ignores them).
//!
//! - `operator_type`: the nest's `op_type` if ZigZag accepts it and it reads back as the same
//!   compute; else by compute: `Mac` -> `Conv` (op types containing `Conv`) or `Gemm`; `Max` ->
//!   `MaxPool`; `Avg` -> `AveragePool` (`GlobalAveragePool` kept); `Add`, `Sub`, `Mul` -> `Add`.
//! - `Sub` has no ZigZag form: it is written as `Add` (`O=W+I`), which ZigZag costs the same
//!   (reading it back gives `Add`). `Mul` is written as `Add` with `O=W*I` (read back as `Mul`).
//! - the equation uses `+=` for `Mac`, `Max`, `Avg` and `=` for element-wise layers, `*` for
//!   `Mac`, `Max`, `Avg`, `Mul` and `+` for `Add`, `Sub`. Input roles other than `W`, `I` are
//!   renamed by position (first `W`, second `I`), since ZigZag only knows precisions and sources
//!   for `W` and `I`. A pooling nest with one input gets ZigZag's free weight `W` of 0 bits,
//!   indexed by the reduction dims (`O[b][g][oy][ox]+=W[fx][fy]*I[b][g][iy][ix]`).
//! - relations as `ix=2*ox+1*fx` (ZigZag's relation has exactly two terms and no offset: the low
//!   padding goes to `padding`, the extent to `pr_loop_sizes`, with `pr_loop_dims` the
//!   upper-cased relation names).
//! - precisions: unknown `W`, `I`, `O_final` are ZigZag's default 8; `O` is the psum precision,
//!   else 2 x the `I` bits (ZigZag's ONNX default).
//! - `operand_source`: a [`Source::Layer`] written earlier -> its id; a constant, a graph input
//!   (as ZigZag's ONNX parser does for graph inputs), [`Source::Other`] or a layer that was not
//!   written -> the layer's own id (ZigZag reads it as constant).
//! - Skipped with a comment (not expressible in ZigZag): a nest with more than two inputs, or
//!   no inputs, a relation without exactly two non-negative terms, an empty output or first-input
//!   index, or a pooling nest without reduction dims.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use qc_ir::{Compute, LoopDim, LoopNest, Operand, PsumRule, Relation, Source, Workload};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::yaml_error::{YamlError, YamlErrorKind, YamlSource};

/// The operator types ZigZag's workload validator accepts.
pub const ALLOWED_OPERATORS: &[&str] = &[
    "Max",
    "Conv",
    "Pooling",
    "Add",
    "Conv_downsample",
    "Gemm",
    "Pool",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
];

/// What is wrong with a workload file; the diagnostic code is `qc::zigzag::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Not YAML, not a list of layers, an unknown or missing key, or a value of the wrong type.
    Schema,
    /// A duplicate layer id, or one outside `0..2^32`.
    Id,
    /// An `operator_type` ZigZag does not know.
    Operator,
    /// An equation not of ZigZag's form, or with an index that is neither a loop dim nor a
    /// relation.
    Equation,
    /// A dimension relation not of ZigZag's form, or over unknown dims.
    Relation,
    /// `loop_dims` and `loop_sizes` that do not match, or a size < 1.
    LoopDims,
    /// `pr_loop_dims`, `pr_loop_sizes` and `padding` that do not match.
    PrDims,
    /// A negative precision.
    Precision,
    /// An `operand_source` that names no earlier layer or no operand.
    Source,
}

impl ErrorKind {
    /// The last part of the diagnostic code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Schema => "schema",
            ErrorKind::Id => "id",
            ErrorKind::Operator => "operator",
            ErrorKind::Equation => "equation",
            ErrorKind::Relation => "relation",
            ErrorKind::LoopDims => "loop-dims",
            ErrorKind::PrDims => "pr-dims",
            ErrorKind::Precision => "precision",
            ErrorKind::Source => "source",
        }
    }

    /// The full diagnostic code (`qc::zigzag::equation`), written out so that the tidy test
    /// finds each one documented in spec/diagnostics.md.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Schema => "qc::zigzag::schema",
            ErrorKind::Id => "qc::zigzag::id",
            ErrorKind::Operator => "qc::zigzag::operator",
            ErrorKind::Equation => "qc::zigzag::equation",
            ErrorKind::Relation => "qc::zigzag::relation",
            ErrorKind::LoopDims => "qc::zigzag::loop-dims",
            ErrorKind::PrDims => "qc::zigzag::pr-dims",
            ErrorKind::Precision => "qc::zigzag::precision",
            ErrorKind::Source => "qc::zigzag::source",
        }
    }
}

impl YamlErrorKind for ErrorKind {
    const FILE_KIND: &'static str = "ZigZag workload";

    fn code(self) -> &'static str {
        ErrorKind::code(self)
    }
}

/// A ZigZag workload file that qc cannot read: a diagnostic with a code, the layer and key at
/// fault, a label on the offending value and a hint.
pub type WorkloadError = YamlError<ErrorKind>;

impl YamlError<ErrorKind> {
    /// The layer at fault (`layer 3 (conv1)`), if the error is in one.
    pub fn layer(&self) -> Option<&str> {
        self.item()
    }
}

// ---------------------------------------------------------------------------------------------
// The raw form, as ZigZag's schema has it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    id: Spanned<i64>,
    #[serde(default)]
    name: Option<Spanned<String>>,
    operator_type: Spanned<String>,
    equation: Spanned<String>,
    #[serde(default)]
    dimension_relations: Option<Vec<Spanned<String>>>,
    loop_dims: Spanned<Vec<Spanned<String>>>,
    loop_sizes: Spanned<Vec<Spanned<i128>>>,
    #[serde(default)]
    #[allow(dead_code)]
    time_dim: Option<String>,
    operand_precision: Spanned<RawPrecision>,
    #[serde(default)]
    operand_source: Option<Spanned<RawSource>>,
    #[serde(default)]
    pr_loop_dims: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pr_loop_sizes: Option<Spanned<Vec<Spanned<i128>>>>,
    #[serde(default)]
    padding: Option<Spanned<Vec<Spanned<Vec<i64>>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrecision {
    #[serde(rename = "W", default)]
    w: Option<Spanned<i64>>,
    #[serde(rename = "I", default)]
    i: Option<Spanned<i64>>,
    #[serde(rename = "O")]
    o: Spanned<i64>,
    #[serde(rename = "O_final")]
    o_final: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(rename = "W", default)]
    w: Option<Spanned<i64>>,
    #[serde(rename = "I", default)]
    i: Option<Spanned<i64>>,
}

// ---------------------------------------------------------------------------------------------
// Reading.

type Reader<'a> = YamlSource<'a>;

const EQUATION_HELP: &str = "ZigZag's form is `O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]`: the output `O`, \
     `+=` or `=`, two one-letter operands joined by `*` or `+`, indices in brackets, no spaces";
const RELATION_HELP: &str = "ZigZag's form is `ix=2*ox+1*fx`: a derived index, `=`, two terms with optional integer \
     coefficients, over loop dims";

/// Reads ZigZag's manual-workload YAML as a workload; `file` names it in diagnostics. The
/// rules are in the module documentation and `spec/zigzag.md`.
pub fn read_workload_yaml(text: &str, file: &str) -> Result<Workload, WorkloadError> {
    let r = Reader { text, file };
    let raw: Vec<RawLayer> = r.parse(
        serde_saphyr::Options::default(),
        ErrorKind::Schema,
        "a ZigZag workload is a YAML list of layers with the keys id, name, operator_type, equation, \
         dimension_relations, loop_dims, loop_sizes, operand_precision, operand_source, pr_loop_dims, \
         pr_loop_sizes, padding (spec/zigzag.md); write `[]` for no layers",
    )?;
    let mut workload = Workload::default();
    // Layer id -> index in `workload.layers`, for the layers read so far.
    let mut ids: HashMap<i64, usize> = HashMap::new();
    for layer in &raw {
        let nest = read_layer(&r, layer, &ids, &workload.layers)?;
        ids.insert(layer.id.value, workload.layers.len());
        workload.layers.push(nest);
    }
    Ok(workload)
}

/// One parsed operand of an equation: its letter and indices.
struct EqOperand {
    role: String,
    index: Vec<String>,
}

struct Equation {
    output: EqOperand,
    inputs: [EqOperand; 2],
    op: char,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_word_str(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_word)
}

/// Parses `X[a][b]...` at the start of `s`: the letter, the indices (empty ones allowed when
/// `allow_empty`), and the rest.
fn parse_operand(s: &str, allow_empty: bool) -> Option<(EqOperand, &str)> {
    let mut chars = s.chars();
    let letter = chars.next().filter(|c| is_word(*c))?;
    let mut rest = chars.as_str();
    let mut index = Vec::new();
    let mut any = false;
    while let Some(after) = rest.strip_prefix('[') {
        let end = after.find(']')?;
        let name = &after[..end];
        if name.is_empty() {
            if !allow_empty {
                return None;
            }
        } else if is_word_str(name) {
            index.push(name.to_lowercase());
        } else {
            return None;
        }
        any = true;
        rest = &after[end + 1..];
    }
    any.then(|| (EqOperand { role: letter.to_string(), index }, rest))
}

/// ZigZag's `^O(\[\w+\])+\+?=\w(\[\w+\])+[*+]\w(\[(?:\w+)?\])+$`.
fn parse_equation(s: &str) -> Option<Equation> {
    let (output, rest) = parse_operand(s, false)?;
    if output.role != "O" {
        return None;
    }
    // `+=` (accumulate) or `=`: the same to ZigZag once parsed.
    let rest = match rest.strip_prefix("+=") {
        Some(r) => r,
        None => rest.strip_prefix('=')?,
    };
    let (a, rest) = parse_operand(rest, false)?;
    let op = rest.chars().next().filter(|c| *c == '*' || *c == '+')?;
    let (b, rest) = parse_operand(&rest[1..], true)?;
    rest.is_empty().then_some(Equation { output, inputs: [a, b], op })
}

/// ZigZag's `^(\w+)\s*=\s*(?:(\w+)\s*\*\s*)?(\w+)\s*\+\s*(?:(\w+)\s*\*\s*)?(\w+)$`: the name
/// and two `(coefficient, dim)` terms, coefficients as written (`None`: 1).
/// A relation term as written: the coefficient (`None`: 1) and the dim.
type Term = (Option<String>, String);

fn parse_relation(s: &str) -> Option<(String, [Term; 2])> {
    let (name, rhs) = s.split_once('=')?;
    let name = name.trim_end();
    if !is_word_str(name) {
        return None;
    }
    let (t1, t2) = rhs.split_once('+')?;
    let term = |t: &str| -> Option<Term> {
        let t = t.trim();
        match t.split_once('*') {
            Some((c, d)) => {
                let (c, d) = (c.trim(), d.trim());
                (is_word_str(c) && is_word_str(d)).then(|| (Some(c.to_string()), d.to_string()))
            }
            None => is_word_str(t).then(|| (None, t.to_string())),
        }
    };
    // The regex allows spaces only around `=`, `*` and `+`, which `trim` covers; a leading
    // space before the name or a trailing one after the last dim is not allowed.
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    Some((name.to_string(), [term(t1)?, term(t2)?]))
}

fn compute_of(operator_type: &str, op: char) -> Compute {
    match operator_type {
        "Pooling" | "Pool" | "MaxPool" | "Max" => Compute::Max,
        "AveragePool" | "GlobalAveragePool" => Compute::Avg,
        "Add" if op == '*' => Compute::Mul,
        "Add" => Compute::Add,
        _ => Compute::Mac,
    }
}

fn read_layer(
    r: &Reader<'_>,
    raw: &RawLayer,
    ids: &HashMap<i64, usize>,
    earlier: &[LoopNest],
) -> Result<LoopNest, WorkloadError> {
    let id_value = raw.id.value;
    let name = match &raw.name {
        Some(n) => n.value.clone(),
        None => format!("Layer{id_value}"),
    };
    let layer_desc = format!("layer {id_value} ({name})");
    let layer = Some(layer_desc.as_str());
    let err = |kind, key: &str, loc: Option<&Location>, msg: String, help: &str| {
        r.error(kind, layer, key, loc, msg, help)
    };

    let id = u32::try_from(id_value).map_err(|_| {
        err(
            ErrorKind::Id,
            "id",
            Some(&raw.id.referenced),
            format!("the id {id_value} is outside 0..2^32"),
            "layer ids are non-negative integers, in program order",
        )
    })?;
    if ids.contains_key(&id_value) {
        return Err(err(
            ErrorKind::Id,
            "id",
            Some(&raw.id.referenced),
            format!("the id {id_value} is used by an earlier layer"),
            "give every layer its own id (operand_source refers to layers by id)",
        ));
    }

    let op_type = raw.operator_type.value.clone();
    if !ALLOWED_OPERATORS.contains(&op_type.as_str()) {
        return Err(err(
            ErrorKind::Operator,
            "operator_type",
            Some(&raw.operator_type.referenced),
            format!("ZigZag does not know the operator type `{op_type}`"),
            &format!("ZigZag accepts: {}", ALLOWED_OPERATORS.join(", ")),
        ));
    }

    let eq_loc = Some(&raw.equation.referenced);
    let Some(eq) = parse_equation(&raw.equation.value) else {
        return Err(err(
            ErrorKind::Equation,
            "equation",
            eq_loc,
            format!("`{}` is not of ZigZag's equation form", raw.equation.value),
            EQUATION_HELP,
        ));
    };
    let [a, b] = &eq.inputs;
    if a.role == "O" || b.role == "O" || a.role == b.role {
        return Err(err(
            ErrorKind::Equation,
            "equation",
            eq_loc,
            format!("the operands of `{}` must have distinct letters other than `O`", raw.equation.value),
            EQUATION_HELP,
        ));
    }

    // Loop dims.
    let dims_raw = &raw.loop_dims.value;
    let sizes_raw = &raw.loop_sizes.value;
    if dims_raw.len() != sizes_raw.len() {
        return Err(err(
            ErrorKind::LoopDims,
            "loop_sizes",
            Some(&raw.loop_sizes.referenced),
            format!("{} loop dims but {} loop sizes", dims_raw.len(), sizes_raw.len()),
            "give one size per loop dim, in the same order",
        ));
    }
    let mut dims = Vec::with_capacity(dims_raw.len());
    let mut dim_names: HashSet<String> = HashSet::new();
    for (d, s) in dims_raw.iter().zip(sizes_raw) {
        if !is_word_str(&d.value) {
            return Err(err(
                ErrorKind::LoopDims,
                "loop_dims",
                Some(&d.referenced),
                format!("`{}` is not a loop dim name", d.value),
                "loop dims are names of letters, digits and `_` (`B`, `K`, `OX`)",
            ));
        }
        let upper = d.value.to_uppercase();
        if !dim_names.insert(upper.clone()) {
            return Err(err(
                ErrorKind::LoopDims,
                "loop_dims",
                Some(&d.referenced),
                format!("the loop dim `{}` is listed twice", d.value),
                "list every loop dim once",
            ));
        }
        let size = u64::try_from(s.value).ok().filter(|s| *s >= 1).ok_or_else(|| {
            err(
                ErrorKind::LoopDims,
                "loop_sizes",
                Some(&s.referenced),
                format!("the size of `{}` is {}", d.value, s.value),
                "loop sizes are integers from 1 to 2^64 - 1",
            )
        })?;
        dims.push(LoopDim { name: upper, size });
    }
    if dims.iter().try_fold(1u128, |n, d| n.checked_mul(u128::from(d.size))).is_none() {
        return Err(err(
            ErrorKind::LoopDims,
            "loop_sizes",
            Some(&raw.loop_sizes.referenced),
            "the loop sizes multiply past 2^128 iterations".into(),
            "a layer's loop sizes must multiply to a count qc can hold: check them",
        ));
    }

    // pr_loop_dims, pr_loop_sizes, padding.
    let pr_dims: Vec<String> = match &raw.pr_loop_dims {
        Some(p) => p.value.iter().map(|d| d.value.to_lowercase()).collect(),
        None => Vec::new(),
    };
    let pr_help = "pr_loop_dims lists the relation-defined dims (`[IX, IY]`); pr_loop_sizes and padding give one \
                   entry per pr_loop_dims entry";
    if let Some(p) = &raw.padding {
        if raw.pr_loop_dims.is_none() || p.value.len() != pr_dims.len() {
            return Err(err(
                ErrorKind::PrDims,
                "padding",
                Some(&p.referenced),
                format!("{} paddings for {} pr_loop_dims", p.value.len(), pr_dims.len()),
                pr_help,
            ));
        }
        for q in &p.value {
            if q.value.len() != 2 || q.value.iter().any(|v| *v < 0) {
                return Err(err(
                    ErrorKind::PrDims,
                    "padding",
                    Some(&q.referenced),
                    format!("the padding {:?} is not a pair of non-negative integers", q.value),
                    "each padding is `[low, high]`",
                ));
            }
        }
    }
    if let Some(p) = &raw.pr_loop_sizes {
        if raw.pr_loop_dims.is_none() || p.value.len() != pr_dims.len() {
            return Err(err(
                ErrorKind::PrDims,
                "pr_loop_sizes",
                Some(&p.referenced),
                format!("{} pr_loop_sizes for {} pr_loop_dims", p.value.len(), pr_dims.len()),
                pr_help,
            ));
        }
        for s in &p.value {
            if s.value < 1 || s.value > i128::from(u64::MAX) {
                return Err(err(
                    ErrorKind::PrDims,
                    "pr_loop_sizes",
                    Some(&s.referenced),
                    format!("the pr loop size {} is not from 1 to 2^64 - 1", s.value),
                    "pr_loop_sizes are the true (unpadded) input extents, >= 1",
                ));
            }
        }
    }

    // Relations.
    let size_of = |d: &str| dims.iter().find(|x| x.name.eq_ignore_ascii_case(d)).map(|x| x.size);
    let mut relations: Vec<Relation> = Vec::new();
    for rel in raw.dimension_relations.iter().flatten() {
        let loc = Some(&rel.referenced);
        let bad = |msg: String| err(ErrorKind::Relation, "dimension_relations", loc, msg, RELATION_HELP);
        let Some((rname, terms_raw)) = parse_relation(&rel.value) else {
            return Err(bad(format!("`{}` is not of ZigZag's relation form", rel.value)));
        };
        let rname = rname.to_lowercase();
        if size_of(&rname).is_some() {
            return Err(bad(format!("`{rname}` is a loop dim and cannot also be defined by a relation")));
        }
        if relations.iter().any(|x| x.name == rname) {
            return Err(bad(format!("`{rname}` is defined twice")));
        }
        let mut terms = Vec::with_capacity(2);
        // In 128 bits: a range past 2^64 is fine when pr_loop_sizes gives the extent.
        let mut range: u128 = 1;
        for (coef, dim) in terms_raw {
            let c: i64 = match coef {
                None => 1,
                Some(c) => c.parse().map_err(|_| {
                    bad(format!("the coefficient `{c}` in `{}` is not an integer", rel.value))
                })?,
            };
            let Some(size) = size_of(&dim) else {
                return Err(bad(format!("`{dim}` in `{}` is not a loop dim", rel.value)));
            };
            let grow = u128::try_from(c).ok().and_then(|c| c.checked_mul(u128::from(size - 1)));
            range = grow
                .and_then(|g| range.checked_add(g))
                .ok_or_else(|| bad(format!("the range of `{}` overflows", rel.value)))?;
            terms.push((c, dim.to_lowercase()));
        }
        let pos = pr_dims.iter().position(|d| *d == rname);
        let padding = match (pos, &raw.padding) {
            (Some(i), Some(p)) => {
                let q = &p.value[i].value;
                (q[0] as u64, q[1] as u64)
            }
            _ => (0, 0),
        };
        let extent = match (pos, &raw.pr_loop_sizes) {
            (Some(i), Some(p)) => p.value[i].value as u64,
            _ => u64::try_from(range.saturating_sub(u128::from(padding.0) + u128::from(padding.1)))
                .map_err(|_| bad(format!("the range of `{}` is past 2^64: give pr_loop_sizes", rel.value)))?,
        };
        let offset = -i64::try_from(padding.0).unwrap_or(i64::MAX);
        relations.push(Relation { name: rname, terms, offset, extent, padding });
    }
    if let Some(p) = &raw.pr_loop_dims {
        for d in &p.value {
            if !relations.iter().any(|x| x.name.eq_ignore_ascii_case(&d.value)) {
                return Err(err(
                    ErrorKind::PrDims,
                    "pr_loop_dims",
                    Some(&d.referenced),
                    format!("no dimension relation defines `{}`", d.value),
                    pr_help,
                ));
            }
        }
    }

    // Equation indices.
    for operand in [&eq.output, a, b] {
        for i in &operand.index {
            if size_of(i).is_none() && !relations.iter().any(|x| x.name == *i) {
                return Err(err(
                    ErrorKind::Equation,
                    "equation",
                    eq_loc,
                    format!(
                        "the index `{i}` of `{}` is neither a loop dim nor defined by a relation",
                        operand.role
                    ),
                    "list it in loop_dims (with a size) or define it in dimension_relations",
                ));
            }
        }
    }

    // Precisions.
    let prec = &raw.operand_precision.value;
    let bits = |p: &Spanned<i64>, key: &str| {
        u32::try_from(p.value).map_err(|_| {
            err(
                ErrorKind::Precision,
                "operand_precision",
                Some(&p.referenced),
                format!("the precision of `{key}` is {}", p.value),
                "precisions are bits, integers >= 0",
            )
        })
    };
    let w_bits = prec.w.as_ref().map(|p| bits(p, "W")).transpose()?;
    let i_bits = prec.i.as_ref().map(|p| bits(p, "I")).transpose()?;
    let o_bits = bits(&prec.o, "O")?;
    let o_final_bits = bits(&prec.o_final, "O_final")?;

    // Sources.
    let mut sources: HashMap<&str, Source> = HashMap::new();
    if let Some(src) = &raw.operand_source {
        for (key, v) in [("W", &src.value.w), ("I", &src.value.i)] {
            let Some(v) = v else { continue };
            if a.role != key && b.role != key {
                return Err(err(
                    ErrorKind::Source,
                    "operand_source",
                    Some(&v.referenced),
                    format!("the equation has no operand `{key}`"),
                    "operand_source gives, for each input operand of the equation, the id of the layer it comes \
                     from (the layer's own id for a constant)",
                ));
            }
            let source = if v.value == id_value {
                Source::Constant
            } else if let Some(&i) = ids.get(&v.value) {
                Source::Layer(earlier[i].name.clone())
            } else {
                return Err(err(
                    ErrorKind::Source,
                    "operand_source",
                    Some(&v.referenced),
                    format!("no earlier layer has the id {}", v.value),
                    "an operand comes from a layer listed before this one (by id), or is constant (this layer's \
                     own id)",
                ));
            };
            sources.insert(key, source);
        }
    }

    let make_input = |e: &EqOperand| {
        let source = sources.get(e.role.as_str()).cloned().unwrap_or(Source::Other);
        let value = match &source {
            Source::Layer(p) => p.clone(),
            _ => format!("{name}.{}", e.role),
        };
        let precision = match e.role.as_str() {
            "W" => w_bits,
            "I" => i_bits,
            _ => None,
        };
        Operand { role: e.role.clone(), index: e.index.clone(), precision, quant: None, source, value }
    };
    let output = Operand {
        role: "O".to_string(),
        index: eq.output.index.clone(),
        precision: Some(o_final_bits),
        quant: None,
        source: Source::Other,
        value: name.clone(),
    };
    Ok(LoopNest {
        name: name.clone(),
        id,
        op_type: op_type.clone(),
        compute: compute_of(&op_type, eq.op),
        dims,
        output,
        inputs: vec![make_input(a), make_input(b)],
        relations,
        psum_precision: Some(o_bits),
        psum_rule: PsumRule::Given,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// A YAML double-quoted string (also the accelerator writer's, `crate::accelerator_file`).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20
                || c == '\u{7f}'
                || c == '\u{85}'
                || c == '\u{2028}'
                || c == '\u{2029}' =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A comment line: one line, whatever the text.
fn comment(out: &mut String, text: &str) {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let _ = writeln!(out, "# qc: {one_line}");
}

fn operator_type_for(nest: &LoopNest) -> &str {
    let op = match nest.compute {
        Compute::Add | Compute::Sub => '+',
        _ => '*',
    };
    if ALLOWED_OPERATORS.contains(&nest.op_type.as_str()) && compute_of(&nest.op_type, op) == nest.compute {
        return &nest.op_type;
    }
    match nest.compute {
        Compute::Mac if nest.op_type.contains("Conv") => "Conv",
        Compute::Mac => "Gemm",
        Compute::Max => "MaxPool",
        Compute::Avg if nest.op_type == "GlobalAveragePool" => "GlobalAveragePool",
        Compute::Avg => "AveragePool",
        Compute::Add | Compute::Sub | Compute::Mul => "Add",
    }
}

fn index_text(index: &[String]) -> String {
    index.iter().map(|i| format!("[{i}]")).collect()
}

/// Writes a workload as ZigZag's manual-workload YAML (see the module documentation for the
/// rules and what is skipped). The text is deterministic.
pub fn write_workload_yaml(w: &Workload) -> String {
    let mut out = String::new();
    out.push_str("# ZigZag manual-workload YAML written by qc (spec/zigzag.md).\n");
    for n in &w.not_lowered {
        comment(&mut out, &format!("not lowered: {} ({}): {}", n.node, n.op_type, n.reason));
    }
    // Name -> id of the layers written so far.
    let mut written: HashMap<&str, u32> = HashMap::new();
    let mut any = false;
    for nest in &w.layers {
        match layer_yaml(nest, &written) {
            Ok((text, notes)) => {
                out.push('\n');
                for note in notes {
                    comment(&mut out, &note);
                }
                out.push_str(&text);
                written.insert(&nest.name, nest.id);
                any = true;
            }
            Err(reason) => {
                out.push('\n');
                comment(
                    &mut out,
                    &format!("skipped layer {} `{}` ({}): {reason}", nest.id, nest.name, nest.op_type),
                );
            }
        }
    }
    if !any {
        out.push_str("[]\n");
    }
    out
}

fn layer_yaml(nest: &LoopNest, written: &HashMap<&str, u32>) -> Result<(String, Vec<String>), String> {
    let mut notes = Vec::new();
    let operator_type = operator_type_for(nest);
    if nest.compute == Compute::Sub {
        notes.push(format!(
            "`{}` is a Sub; ZigZag has no Sub and costs it like an Add, so it is written as an Add",
            nest.name
        ));
    }
    if operator_type != nest.op_type {
        notes.push(format!(
            "`{}`: op {} written as ZigZag operator_type {operator_type}",
            nest.name, nest.op_type
        ));
    }

    // The two inputs as ZigZag sees them: (role, index, precision, source).
    let pooling = matches!(nest.compute, Compute::Max | Compute::Avg);
    let mut inputs: Vec<(String, Vec<String>, Option<u32>, Source)> = Vec::new();
    match nest.inputs.len() {
        1 if pooling => {
            // ZigZag's free weight, indexed by the reduction dims.
            let out_index: HashSet<&str> = nest.output.index.iter().map(String::as_str).collect();
            let reduction: Vec<String> = nest
                .dims
                .iter()
                .map(|d| d.name.to_lowercase())
                .filter(|d| !out_index.contains(d.as_str()))
                .collect();
            if reduction.is_empty() {
                return Err("a pooling layer without reduction dims has no ZigZag form".into());
            }
            notes.push(format!("`{}`: ZigZag's pooling form, with a free 0-bit weight W", nest.name));
            let i = &nest.inputs[0];
            inputs.push(("W".into(), reduction, Some(0), Source::Constant));
            inputs.push(("I".into(), i.index.clone(), i.precision, i.source.clone()));
        }
        2 => {
            let roles: HashSet<&str> = nest.inputs.iter().map(|o| o.role.as_str()).collect();
            let keep = roles == HashSet::from(["W", "I"]);
            for (k, o) in nest.inputs.iter().enumerate() {
                let role = if keep { o.role.clone() } else { ["W", "I"][k].to_string() };
                if role != o.role {
                    notes.push(format!("`{}`: operand {} written as {role}", nest.name, o.role));
                }
                inputs.push((role, o.index.clone(), o.precision, o.source.clone()));
            }
        }
        n => return Err(format!("{n} inputs; ZigZag's equation has exactly two")),
    }

    // The equation.
    let bad_index = |ix: &[String]| ix.iter().any(|i| !is_word_str(i));
    if nest.output.index.is_empty() || inputs[0].1.is_empty() {
        return Err("ZigZag needs indices on the output and the first input".into());
    }
    if bad_index(&nest.output.index) || inputs.iter().any(|i| bad_index(&i.1)) {
        return Err("an index is not a plain name".into());
    }
    let (assign, op) = match nest.compute {
        Compute::Mac | Compute::Max | Compute::Avg => ("+=", '*'),
        Compute::Add | Compute::Sub => ("=", '+'),
        Compute::Mul => ("=", '*'),
    };
    let last_index = if inputs[1].1.is_empty() { "[]".to_string() } else { index_text(&inputs[1].1) };
    let equation = format!(
        "O{}{assign}{}{}{op}{}{last_index}",
        index_text(&nest.output.index),
        inputs[0].0,
        index_text(&inputs[0].1),
        inputs[1].0,
    );

    // Relations.
    let mut relations = Vec::new();
    for r in &nest.relations {
        let ok = r.terms.len() == 2
            && r.terms.iter().all(|(c, d)| *c >= 0 && is_word_str(d))
            && is_word_str(&r.name);
        if !ok {
            return Err(format!("the relation `{}` is not of ZigZag's two-term form", r.name));
        }
        if r.offset != -(r.padding.0 as i64) {
            notes.push(format!(
                "`{}`: relation {} has offset {} but low padding {}; ZigZag has no offset, the padding is written",
                nest.name, r.name, r.offset, r.padding.0
            ));
        }
        relations
            .push(format!("{}={}*{}+{}*{}", r.name, r.terms[0].0, r.terms[0].1, r.terms[1].0, r.terms[1].1));
    }

    // Precisions.
    let prec_of = |role: &str| inputs.iter().find(|i| i.0 == role).and_then(|i| i.2);
    let w_bits = prec_of("W").unwrap_or(8);
    let i_bits = prec_of("I").unwrap_or(8);
    let o_final = nest.output.precision.unwrap_or(8);
    let o_bits = nest.psum_precision.unwrap_or(2 * i_bits);

    // Sources.
    let mut source_ids = Vec::new();
    for (role, _, _, source) in &inputs {
        let id = match source {
            Source::Layer(p) => match written.get(p.as_str()) {
                Some(&id) => id,
                None => {
                    notes.push(format!(
                        "`{}`: operand {role} comes from `{p}`, which is not written; ZigZag reads it as constant",
                        nest.name
                    ));
                    nest.id
                }
            },
            _ => nest.id,
        };
        source_ids.push((role.clone(), id));
    }
    source_ids.sort_by(|a, b| b.0.cmp(&a.0)); // W before I, as ZigZag's files have it.

    let mut t = String::new();
    let _ = writeln!(t, "- id: {}", nest.id);
    let _ = writeln!(t, "  name: {}", quote(&nest.name));
    let _ = writeln!(t, "  operator_type: {operator_type}");
    let _ = writeln!(t, "  equation: {equation}");
    let _ = writeln!(t, "  dimension_relations: [{}]", relations.join(", "));
    let dims: Vec<&str> = nest.dims.iter().map(|d| d.name.as_str()).collect();
    let sizes: Vec<String> = nest.dims.iter().map(|d| d.size.to_string()).collect();
    let _ = writeln!(t, "  loop_dims: [{}]", dims.join(", "));
    let _ = writeln!(t, "  loop_sizes: [{}]", sizes.join(", "));
    t.push_str("  operand_precision:\n");
    let _ = writeln!(t, "    W: {w_bits}");
    let _ = writeln!(t, "    I: {i_bits}");
    let _ = writeln!(t, "    O: {o_bits}");
    let _ = writeln!(t, "    O_final: {o_final}");
    t.push_str("  operand_source:\n");
    for (role, id) in &source_ids {
        let _ = writeln!(t, "    {role}: {id}");
    }
    if !nest.relations.is_empty() {
        let names: Vec<String> = nest.relations.iter().map(|r| r.name.to_uppercase()).collect();
        let extents: Vec<String> = nest.relations.iter().map(|r| r.extent.to_string()).collect();
        let pads: Vec<String> =
            nest.relations.iter().map(|r| format!("[{}, {}]", r.padding.0, r.padding.1)).collect();
        let _ = writeln!(t, "  pr_loop_dims: [{}]", names.join(", "));
        let _ = writeln!(t, "  pr_loop_sizes: [{}]", extents.join(", "));
        let _ = writeln!(t, "  padding: [{}]", pads.join(", "));
    }
    Ok((t, notes))
}
