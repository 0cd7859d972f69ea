//! The parser: text to models and graphs, with pest (`ir.pest`) and a walk over the parse tree.
//!
//! Errors carry the text and a span, so miette shows the offending line. Syntax errors have the
//! code `qc::ir::parse`; errors found while building the IR have their own codes. Input nested
//! deeper than [`MAX_DEPTH`] brackets is refused before pest runs, so no input can exhaust the
//! stack.

use std::collections::HashMap;

use bytes::Bytes;
use pest::Parser;

use crate::attr::{AttrKind, AttrValue, Attribute};
use crate::graph::{Const, DeclList, DeclOverride, Graph, TensorAnnotation, ValueId};
use crate::model::{Function, Model, OpsetImport, TrainingInfo};
use crate::op::Op;
use crate::quant::{DataType, ORIGIN_NAMES as ORIGINS, QuantParam, QuantSpec, ROUNDING_NAMES as ROUNDINGS};
use crate::tensor::{ExternalRef, SparseTensor, Tensor, TensorData};
use crate::types::{Dim, ElemType, MetaEntry, Shape, TypeInfo, ValueType};

/// The deepest bracket nesting the parser accepts.
pub const MAX_DEPTH: usize = 64;

#[derive(pest_derive::Parser)]
#[grammar = "src/text/ir.pest"]
#[grammar = "src/text/loops.pest"]
pub(super) struct IrParser;

pub(super) type Pair<'i> = pest::iterators::Pair<'i, Rule>;

/// Why a text is not a valid IR text. Every variant points at the offending text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum ParseError {
    #[error("{line}:{column}: cannot parse the IR text: {message}")]
    #[diagnostic(code(qc::ir::parse), help("the grammar of the textual IR is in spec/ir.md"))]
    Syntax {
        message: String,
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("here")]
        at: miette::SourceSpan,
    },
    #[error("{line}:{column}: {message}")]
    #[diagnostic(
        code(qc::ir::unknown_value),
        help("a graph with a `values` line must list there every value it mentions")
    )]
    UnknownValue {
        message: String,
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("not in the `values` line")]
        at: miette::SourceSpan,
    },
    #[error("{line}:{column}: {message}")]
    #[diagnostic(
        code(qc::ir::duplicate_definition),
        help(
            "a value's type, doc, meta, quant and constant are each given once; `values` lists a value once"
        )
    )]
    Duplicate {
        message: String,
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("given again here")]
        at: miette::SourceSpan,
    },
    #[error("{line}:{column}: {message}")]
    #[diagnostic(
        code(qc::ir::bad_number),
        help("integers must fit their field; hex needs an even number of digits; NaN bits must be a NaN")
    )]
    BadNumber {
        message: String,
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("this number")]
        at: miette::SourceSpan,
    },
    #[error("{line}:{column}: {message}")]
    #[diagnostic(
        code(qc::ir::bad_string),
        help(
            "escapes are \\\" \\\\ \\n \\t \\r \\0 \\xNN \\u{{N}}; \\xNN may only make UTF-8 in names and docs"
        )
    )]
    BadString {
        message: String,
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("this string")]
        at: miette::SourceSpan,
    },
    #[error("{line}:{column}: {message}")]
    #[diagnostic(
        code(qc::ir::unknown_name),
        help("element types, attribute kinds, data types, roundings and origins are listed in spec/ir.md")
    )]
    UnknownName {
        message: String,
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("not known")]
        at: miette::SourceSpan,
    },
    #[error("{line}:{column}: {message}")]
    #[diagnostic(
        code(qc::ir::mixed_list),
        help("a list holds values of one kind; write an empty list with its kind, such as `ints[]`")
    )]
    MixedList {
        message: String,
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("this list")]
        at: miette::SourceSpan,
    },
    #[error("{line}:{column}: the text nests brackets more than {MAX_DEPTH} deep")]
    #[diagnostic(
        code(qc::ir::too_deep),
        help("graphs, types and lists may nest at most {MAX_DEPTH} brackets deep")
    )]
    TooDeep {
        line: usize,
        column: usize,
        #[source_code]
        text: String,
        #[label("too deep")]
        at: miette::SourceSpan,
    },
}

impl ParseError {
    /// The byte range of the offending text.
    pub fn span(&self) -> std::ops::Range<usize> {
        let at = match self {
            ParseError::Syntax { at, .. }
            | ParseError::UnknownValue { at, .. }
            | ParseError::Duplicate { at, .. }
            | ParseError::BadNumber { at, .. }
            | ParseError::BadString { at, .. }
            | ParseError::UnknownName { at, .. }
            | ParseError::MixedList { at, .. }
            | ParseError::TooDeep { at, .. } => at,
        };
        at.offset()..at.offset() + at.len()
    }

    /// The 1-based line and column (in characters) where the offending text starts.
    pub fn line_col(&self) -> (usize, usize) {
        match self {
            ParseError::Syntax { line, column, .. }
            | ParseError::UnknownValue { line, column, .. }
            | ParseError::Duplicate { line, column, .. }
            | ParseError::BadNumber { line, column, .. }
            | ParseError::BadString { line, column, .. }
            | ParseError::UnknownName { line, column, .. }
            | ParseError::MixedList { line, column, .. }
            | ParseError::TooDeep { line, column, .. } => (*line, *column),
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Syntax,
    UnknownValue,
    Duplicate,
    BadNumber,
    BadString,
    UnknownName,
    MixedList,
    TooDeep,
}

pub(super) fn error(kind: Kind, text: &str, start: usize, end: usize, message: String) -> ParseError {
    let start = start.min(text.len());
    let end = end.clamp(start, text.len());
    // A rule that ends in an optional part also covers the white space before it.
    let end = start + text[start..end].trim_end_matches([' ', '\t', '\r', '\n']).len();
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before, |i| &before[i + 1..]).chars().count() + 1;
    let text = text.to_string();
    let at: miette::SourceSpan = (start, (end - start).max(usize::from(start < text.len()))).into();
    match kind {
        Kind::Syntax => ParseError::Syntax { message, line, column, text, at },
        Kind::UnknownValue => ParseError::UnknownValue { message, line, column, text, at },
        Kind::Duplicate => ParseError::Duplicate { message, line, column, text, at },
        Kind::BadNumber => ParseError::BadNumber { message, line, column, text, at },
        Kind::BadString => ParseError::BadString { message, line, column, text, at },
        Kind::UnknownName => ParseError::UnknownName { message, line, column, text, at },
        Kind::MixedList => ParseError::MixedList { message, line, column, text, at },
        Kind::TooDeep => ParseError::TooDeep { line, column, text, at },
    }
}

pub(super) type R<T> = Result<T, ParseError>;

/// Refuses text nested deeper than [`MAX_DEPTH`] (outside strings and comments).
pub(super) fn check_depth(text: &str) -> R<()> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' | b'<' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(error(Kind::TooDeep, text, i, i + 1, String::new()));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'>' if i == 0 || b[i - 1] != b'-' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn parse_tree(text: &str, rule: Rule) -> R<Pair<'_>> {
    check_depth(text)?;
    let mut pairs = IrParser::parse(rule, text).map_err(|e| {
        let (start, end) = match e.location {
            pest::error::InputLocation::Pos(p) => (p, p),
            pest::error::InputLocation::Span((s, e)) => (s, e),
        };
        error(Kind::Syntax, text, start, end, e.variant.message().into_owned())
    })?;
    pairs.next().ok_or_else(|| error(Kind::Syntax, text, 0, 0, "empty parse".into()))
}

pub(super) fn model(text: &str) -> R<Model> {
    let root = parse_tree(text, Rule::model)?;
    let cx = Cx { text };
    let mut m = Model::default();
    for p in root.into_inner() {
        match p.as_rule() {
            Rule::header => cx.header(p, &mut m)?,
            Rule::graph => m.graph = cx.graph(p)?,
            Rule::function => m.functions.push(cx.function(p)?),
            Rule::training => m.training_info.push(cx.training(p)?),
            _ => {}
        }
    }
    Ok(m)
}

pub(super) fn graph_only(text: &str) -> R<Graph> {
    let root = parse_tree(text, Rule::graph_file)?;
    let cx = Cx { text };
    for p in root.into_inner() {
        if p.as_rule() == Rule::graph {
            return cx.graph(p);
        }
    }
    Err(error(Kind::Syntax, text, 0, 0, "no graph".into()))
}

pub(super) struct Cx<'t> {
    pub(super) text: &'t str,
}

/// Which properties of a value have been given.
const TY: u8 = 1;
const DOC: u8 = 2;
const META: u8 = 4;
const QUANT: u8 = 8;
const CONST: u8 = 16;

/// The state of one graph being built.
struct GraphCx {
    g: Graph,
    by_key: HashMap<(String, Option<u64>), ValueId>,
    strict: bool,
    given: Vec<u8>,
}

impl<'t> Cx<'t> {
    pub(super) fn err(&self, kind: Kind, p: &Pair<'_>, message: impl Into<String>) -> ParseError {
        let s = p.as_span();
        error(kind, self.text, s.start(), s.end(), message.into())
    }

    fn first<'i>(&self, p: &Pair<'i>) -> R<Pair<'i>> {
        p.clone().into_inner().next().ok_or_else(|| self.err(Kind::Syntax, p, "missing part"))
    }

    // ---- lexical ----

    fn bytes(&self, p: &Pair<'_>) -> R<Vec<u8>> {
        let s = p.as_str();
        let body = s.get(1..s.len().saturating_sub(1)).unwrap_or("");
        let mut out = Vec::with_capacity(body.len());
        let mut chars = body.char_indices();
        while let Some((_, c)) = chars.next() {
            if c != '\\' {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let bad = |m: &str| self.err(Kind::BadString, p, m.to_string());
            match chars.next().map(|x| x.1) {
                Some('"') => out.push(b'"'),
                Some('\\') => out.push(b'\\'),
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('0') => out.push(0),
                Some('x') => {
                    let h: String = chars.by_ref().take(2).map(|x| x.1).collect();
                    let v = (h.len() == 2).then(|| u8::from_str_radix(&h, 16).ok()).flatten();
                    out.push(v.ok_or_else(|| bad("`\\x` needs two hex digits"))?);
                }
                Some('u') => {
                    if chars.next().map(|x| x.1) != Some('{') {
                        return Err(bad("`\\u` needs `{hex}`"));
                    }
                    let h: String = chars.by_ref().map(|x| x.1).take_while(|c| *c != '}').collect();
                    let c = u32::from_str_radix(&h, 16).ok().and_then(char::from_u32);
                    let c = c.ok_or_else(|| bad("`\\u{...}` is not a character"))?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => return Err(bad("unknown escape")),
            }
        }
        Ok(out)
    }

    pub(super) fn string(&self, p: &Pair<'_>) -> R<String> {
        String::from_utf8(self.bytes(p)?).map_err(|_| self.err(Kind::BadString, p, "the string is not UTF-8"))
    }

    /// An `ident` or a `string`.
    pub(super) fn key(&self, p: &Pair<'_>) -> R<String> {
        match p.as_rule() {
            Rule::string => self.string(p),
            _ => Ok(p.as_str().to_string()),
        }
    }

    pub(super) fn int(&self, p: &Pair<'_>) -> R<i64> {
        p.as_str()
            .parse()
            .map_err(|_| self.err(Kind::BadNumber, p, format!("`{}` is not a 64-bit integer", p.as_str())))
    }

    pub(super) fn uint(&self, p: &Pair<'_>) -> R<u64> {
        p.as_str().parse().map_err(|_| {
            self.err(Kind::BadNumber, p, format!("`{}` is not an unsigned 64-bit integer", p.as_str()))
        })
    }

    fn int32(&self, p: &Pair<'_>) -> R<i32> {
        p.as_str()
            .parse()
            .map_err(|_| self.err(Kind::BadNumber, p, format!("`{}` is not a 32-bit integer", p.as_str())))
    }

    fn nan_bits(&self, p: &Pair<'_>, digits: usize) -> R<Option<u64>> {
        let s = p.as_str().trim_start_matches('-');
        let Some(rest) = s.strip_prefix("nan") else {
            return Ok(None);
        };
        let Some(h) = rest.strip_prefix("(0x").and_then(|r| r.strip_suffix(')')) else {
            return Ok(Some(u64::MAX));
        };
        if h.is_empty() || h.len() > digits {
            return Err(self.err(Kind::BadNumber, p, format!("NaN bits need 1 to {digits} hex digits")));
        }
        u64::from_str_radix(h, 16).map(Some).map_err(|_| self.err(Kind::BadNumber, p, "bad NaN bits"))
    }

    fn f32(&self, p: &Pair<'_>) -> R<f32> {
        let neg = p.as_str().starts_with('-');
        match self.nan_bits(p, 8)? {
            Some(u64::MAX) => Ok(if neg { -f32::NAN } else { f32::NAN }),
            Some(bits) => {
                let x = f32::from_bits(bits as u32);
                if x.is_nan() { Ok(x) } else { Err(self.err(Kind::BadNumber, p, "the bits are not a NaN")) }
            }
            None => p.as_str().parse().map_err(|_| self.err(Kind::BadNumber, p, "not a float")),
        }
    }

    fn f64(&self, p: &Pair<'_>) -> R<f64> {
        let neg = p.as_str().starts_with('-');
        match self.nan_bits(p, 16)? {
            Some(u64::MAX) => Ok(if neg { -f64::NAN } else { f64::NAN }),
            Some(bits) => {
                let x = f64::from_bits(bits);
                if x.is_nan() { Ok(x) } else { Err(self.err(Kind::BadNumber, p, "the bits are not a NaN")) }
            }
            None => p.as_str().parse().map_err(|_| self.err(Kind::BadNumber, p, "not a float")),
        }
    }

    fn hex(&self, p: &Pair<'_>) -> R<Bytes> {
        let h = &p.as_str().as_bytes()[2..];
        if !h.len().is_multiple_of(2) {
            return Err(self.err(Kind::BadNumber, p, "hex data needs an even number of digits"));
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => c.wrapping_sub(b'A').wrapping_add(10) & 15,
        };
        Ok(Bytes::from(h.chunks_exact(2).map(|c| (digit(c[0]) << 4) | digit(c[1])).collect::<Vec<u8>>()))
    }

    fn meta_map(&self, p: Pair<'_>) -> R<Vec<MetaEntry>> {
        let mut out = Vec::new();
        for e in p.into_inner() {
            let mut it = e.into_inner();
            let (Some(k), Some(v)) = (it.next(), it.next()) else { continue };
            out.push(MetaEntry { key: self.key(&k)?, value: self.string(&v)? });
        }
        Ok(out)
    }

    fn doc(&self, p: &Pair<'_>) -> R<String> {
        self.string(&self.first(p)?)
    }

    // ---- model ----

    fn header(&self, p: Pair<'_>, m: &mut Model) -> R<()> {
        for h in p.into_inner() {
            match h.as_rule() {
                Rule::ir_version => m.ir_version = Some(self.int(&self.first(&h)?)?),
                Rule::opset_import => m.opset_imports.push(self.opset(h)?),
                Rule::producer_name => m.producer_name = Some(self.doc(&h)?),
                Rule::producer_version => m.producer_version = Some(self.doc(&h)?),
                Rule::model_domain => m.domain = Some(self.doc(&h)?),
                Rule::model_version => m.model_version = Some(self.int(&self.first(&h)?)?),
                Rule::doc => m.doc_string = Some(self.doc(&h)?),
                Rule::meta => m.metadata = self.meta_map(self.first(&h)?)?,
                Rule::device_configuration => m.device_configurations.push(self.hex(&self.first(&h)?)?),
                _ => {}
            }
        }
        Ok(())
    }

    fn opset(&self, p: Pair<'_>) -> R<OpsetImport> {
        let mut o = OpsetImport { domain: None, version: None };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::string => o.domain = Some(self.string(&x)?),
                _ => o.version = Some(self.int(&x)?),
            }
        }
        Ok(o)
    }

    fn names(&self, p: Pair<'_>) -> R<Vec<String>> {
        p.into_inner().map(|x| self.key(&x)).collect()
    }

    fn function(&self, p: Pair<'_>) -> R<Function> {
        let mut f = Function {
            name: None,
            domain: None,
            overload: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            attributes: Vec::new(),
            attribute_defaults: Vec::new(),
            body: Graph::new(),
            opset_imports: Vec::new(),
            doc_string: None,
            metadata: Vec::new(),
        };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::fn_callee => {
                    for c in x.into_inner() {
                        match c.as_rule() {
                            Rule::op_domain => f.domain = Some(self.key(&self.first(&c)?)?),
                            Rule::absent => f.name = None,
                            _ => f.name = Some(self.key(&c)?),
                        }
                    }
                }
                Rule::fn_in => f.inputs = self.names(x)?,
                Rule::fn_out => f.outputs = self.names(x)?,
                Rule::fn_overload => f.overload = Some(self.doc(&x)?),
                Rule::doc => f.doc_string = Some(self.doc(&x)?),
                Rule::meta => f.metadata = self.meta_map(self.first(&x)?)?,
                Rule::opset_import => f.opset_imports.push(self.opset(x)?),
                Rule::fn_attributes => {
                    if let Some(n) = x.into_inner().next() {
                        f.attributes = self.names(n)?;
                    }
                }
                Rule::fn_default => f.attribute_defaults.push(self.attr(self.first(&x)?)?),
                Rule::graph => f.body = self.graph(x)?,
                _ => {}
            }
        }
        Ok(f)
    }

    fn training(&self, p: Pair<'_>) -> R<TrainingInfo> {
        let mut t = TrainingInfo {
            initialization: None,
            algorithm: None,
            initialization_binding: Vec::new(),
            update_binding: Vec::new(),
        };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::tr_init => t.initialization = Some(self.graph(self.first(&x)?)?),
                Rule::tr_algo => t.algorithm = Some(self.graph(self.first(&x)?)?),
                Rule::tr_init_binding => t.initialization_binding = self.meta_map(self.first(&x)?)?,
                Rule::tr_update_binding => t.update_binding = self.meta_map(self.first(&x)?)?,
                _ => {}
            }
        }
        Ok(t)
    }

    // ---- graphs ----

    fn graph(&self, p: Pair<'_>) -> R<Graph> {
        let mut gc = GraphCx { g: Graph::new(), by_key: HashMap::new(), strict: false, given: Vec::new() };
        let parts: Vec<Pair<'_>> = p.into_inner().collect();
        let mut values_seen = false;
        for x in parts.iter().filter(|x| x.as_rule() == Rule::values_stmt) {
            if std::mem::replace(&mut values_seen, true) {
                return Err(self.err(Kind::Duplicate, x, "a graph has at most one `values` line"));
            }
            for r in x.clone().into_inner() {
                let key = self.ref_key(&r)?;
                if gc.by_key.contains_key(&key) {
                    return Err(self.err(Kind::Duplicate, &r, format!("`{}` is listed twice", r.as_str())));
                }
                let id = gc.g.add_value(&key.0);
                gc.by_key.insert(key, id);
                gc.given.push(0);
            }
            gc.strict = true;
        }
        for x in parts {
            match x.as_rule() {
                Rule::graph_name => {
                    let n = self.first(&x)?;
                    gc.g.name = Some(self.key(&n)?);
                }
                Rule::signature => {
                    for side in x.into_inner() {
                        let inputs = side.as_rule() == Rule::sig_in;
                        for d in side.into_inner() {
                            let id = self.decl(&mut gc, d)?;
                            if inputs { gc.g.inputs.push(id) } else { gc.g.outputs.push(id) }
                        }
                    }
                }
                Rule::doc => gc.g.doc_string = Some(self.doc(&x)?),
                Rule::meta => gc.g.metadata = self.meta_map(self.first(&x)?)?,
                Rule::info_stmt => {
                    let id = self.decl(&mut gc, self.first(&x)?)?;
                    gc.g.value_info.push(id);
                }
                Rule::init_stmt => {
                    let id = self.decl(&mut gc, self.first(&x)?)?;
                    gc.g.initializers.push(id);
                }
                Rule::sparse_init_stmt => {
                    let id = self.decl(&mut gc, self.first(&x)?)?;
                    gc.g.sparse_initializers.push(id);
                }
                Rule::value_stmt => {
                    self.decl(&mut gc, self.first(&x)?)?;
                }
                Rule::annotation_stmt => {
                    let mut a = TensorAnnotation { tensor_name: None, entries: Vec::new() };
                    for c in x.into_inner() {
                        match c.as_rule() {
                            Rule::absent => {}
                            Rule::meta_map => a.entries = self.meta_map(c)?,
                            _ => a.tensor_name = Some(self.key(&c)?),
                        }
                    }
                    gc.g.quantization_annotations.push(a);
                }
                Rule::override_stmt => gc.g.decl_overrides.push(self.decl_override(x)?),
                Rule::op_stmt => self.op(&mut gc, x)?,
                _ => {}
            }
        }
        Ok(gc.g)
    }

    fn ref_key(&self, p: &Pair<'_>) -> R<(String, Option<u64>)> {
        let mut name = String::new();
        let mut index = None;
        for c in p.clone().into_inner() {
            match c.as_rule() {
                Rule::index => index = Some(self.uint(&c)?),
                _ => name = self.key(&c)?,
            }
        }
        Ok((name, index))
    }

    fn value(&self, gc: &mut GraphCx, p: &Pair<'_>) -> R<ValueId> {
        let key = self.ref_key(p)?;
        if let Some(&id) = gc.by_key.get(&key) {
            return Ok(id);
        }
        if gc.strict {
            return Err(self.err(
                Kind::UnknownValue,
                p,
                format!("`{}` is not in the `values` line", p.as_str()),
            ));
        }
        let id = gc.g.add_value(&key.0);
        gc.by_key.insert(key, id);
        gc.given.push(0);
        Ok(id)
    }

    fn mark(&self, gc: &mut GraphCx, id: ValueId, what: u8, p: &Pair<'_>) -> R<()> {
        let g = &mut gc.given[id.index()];
        if *g & what != 0 {
            let name = match what {
                TY => "type",
                DOC => "doc",
                META => "meta",
                QUANT => "quant",
                _ => "constant",
            };
            return Err(self.err(Kind::Duplicate, p, format!("the {name} of this value was given before")));
        }
        *g |= what;
        Ok(())
    }

    /// A value with optional type, doc, meta, quant and constant.
    fn decl(&self, gc: &mut GraphCx, p: Pair<'_>) -> R<ValueId> {
        let mut it = p.into_inner();
        let r = it.next().ok_or_else(|| error(Kind::Syntax, self.text, 0, 0, "missing value".into()))?;
        let id = self.value(gc, &r)?;
        for x in it {
            match x.as_rule() {
                Rule::type_info => {
                    self.mark(gc, id, TY, &x)?;
                    gc.g.value_mut(id).ty = Some(self.type_info(x)?);
                }
                Rule::doc => {
                    self.mark(gc, id, DOC, &x)?;
                    gc.g.value_mut(id).doc_string = Some(self.doc(&x)?);
                }
                Rule::meta => {
                    self.mark(gc, id, META, &x)?;
                    gc.g.value_mut(id).metadata = self.meta_map(self.first(&x)?)?;
                }
                Rule::quant => {
                    self.mark(gc, id, QUANT, &x)?;
                    gc.g.value_mut(id).quant = Some(self.quant(x)?);
                }
                Rule::tensor_lit => {
                    self.mark(gc, id, CONST, &x)?;
                    let name = gc.g.value(id).name.clone();
                    gc.g.value_mut(id).init = Some(Const::Dense(Box::new(self.tensor(x, Some(name))?)));
                }
                Rule::sparse_lit => {
                    self.mark(gc, id, CONST, &x)?;
                    gc.g.value_mut(id).init = Some(Const::Sparse(Box::new(self.sparse(x)?)));
                }
                _ => {}
            }
        }
        Ok(id)
    }

    fn decl_override(&self, p: Pair<'_>) -> R<DeclOverride> {
        let mut d = DeclOverride {
            list: DeclList::Inputs,
            index: 0,
            name: String::new(),
            ty: None,
            doc_string: None,
            metadata: Vec::new(),
        };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::decl_list => {
                    d.list = match x.as_str() {
                        "inputs" => DeclList::Inputs,
                        "outputs" => DeclList::Outputs,
                        _ => DeclList::ValueInfo,
                    }
                }
                Rule::int => {
                    d.index = usize::try_from(self.uint(&x)?)
                        .map_err(|_| self.err(Kind::BadNumber, &x, "index too large"))?
                }
                Rule::type_info => d.ty = Some(self.type_info(x)?),
                Rule::doc => d.doc_string = Some(self.doc(&x)?),
                Rule::meta => d.metadata = self.meta_map(self.first(&x)?)?,
                _ => d.name = self.key(&x)?,
            }
        }
        Ok(d)
    }

    fn op(&self, gc: &mut GraphCx, p: Pair<'_>) -> R<()> {
        let parts: Vec<Pair<'_>> = p.into_inner().collect();
        let mut op = None;
        for x in &parts {
            if x.as_rule() == Rule::callee {
                let mut domain = None;
                let mut ty = String::new();
                for c in x.clone().into_inner() {
                    match c.as_rule() {
                        Rule::op_domain => domain = Some(self.key(&self.first(&c)?)?),
                        _ => ty = self.key(&c)?,
                    }
                }
                op = Some(Op::new(ty, domain));
            }
        }
        let mut op = op.ok_or_else(|| error(Kind::Syntax, self.text, 0, 0, "missing op type".into()))?;
        let mut inputs = Vec::new();
        for x in parts.iter().filter(|x| x.as_rule() == Rule::operands) {
            for o in x.clone().into_inner() {
                let c = self.first(&o)?;
                inputs.push(if c.as_rule() == Rule::absent_ref { None } else { Some(self.value(gc, &c)?) });
            }
        }
        let mut outputs = Vec::new();
        for x in parts.iter().filter(|x| x.as_rule() == Rule::results) {
            for r in x.clone().into_inner() {
                let c = self.first(&r)?;
                outputs.push(if c.as_rule() == Rule::absent_ref { None } else { Some(self.decl(gc, r)?) });
            }
        }
        for x in parts {
            match x.as_rule() {
                Rule::attrs => {
                    for a in x.into_inner() {
                        op.attrs.push(self.attr(a)?);
                    }
                }
                Rule::op_name => op.name = Some(self.doc(&x)?),
                Rule::op_overload => op.overload = Some(self.doc(&x)?),
                Rule::doc => op.doc_string = Some(self.doc(&x)?),
                Rule::meta => op.metadata = self.meta_map(self.first(&x)?)?,
                Rule::op_device => op.device_configurations.push(self.hex(&self.first(&x)?)?),
                _ => {}
            }
        }
        gc.g.add_op(op, inputs, outputs);
        Ok(())
    }

    // ---- attributes ----

    fn attr(&self, p: Pair<'_>) -> R<Attribute> {
        let mut name = String::new();
        let mut kind: Option<Option<AttrKind>> = None;
        let mut ref_attr_name = None;
        let mut doc_string = None;
        let mut value = AttrValue::None;
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::ident | Rule::string => name = self.key(&x)?,
                Rule::attr_kind => {
                    kind = Some(if x.as_str() == "?" {
                        None
                    } else {
                        Some(
                            (0..15)
                                .filter_map(AttrKind::from_code)
                                .find(|k| k.name() == x.as_str())
                                .ok_or_else(|| self.err(Kind::UnknownName, &x, "unknown attribute kind"))?,
                        )
                    })
                }
                Rule::attr_ref => ref_attr_name = Some(self.doc(&x)?),
                Rule::doc => doc_string = Some(self.doc(&x)?),
                Rule::attr_value => value = self.attr_value(x)?,
                _ => {}
            }
        }
        let declared_kind = kind.unwrap_or(Some(value.kind()));
        Ok(Attribute { name, value, declared_kind, doc_string, ref_attr_name })
    }

    fn attr_value(&self, p: Pair<'_>) -> R<AttrValue> {
        let x = self.first(&p)?;
        Ok(match x.as_rule() {
            Rule::none => AttrValue::None,
            Rule::graph => AttrValue::Graph(Box::new(self.graph(x)?)),
            Rule::sparse_lit => AttrValue::SparseTensor(Box::new(self.sparse(x)?)),
            Rule::type_attr => AttrValue::TypeProto(Box::new(self.type_info(self.first(&x)?)?)),
            Rule::tensor_lit => AttrValue::Tensor(Box::new(self.tensor(x, None)?)),
            Rule::number => {
                if is_int(x.as_str()) {
                    AttrValue::Int(self.int(&x)?)
                } else {
                    AttrValue::Float(self.f32(&x)?)
                }
            }
            Rule::string => AttrValue::String(Bytes::from(self.bytes(&x)?)),
            Rule::typed_list => {
                let mut it = x.clone().into_inner();
                let (Some(k), Some(l)) = (it.next(), it.next()) else {
                    return Err(self.err(Kind::Syntax, &x, "bad list"));
                };
                self.list(l, Some(k.as_str()))?
            }
            _ => self.list(x, None)?,
        })
    }

    /// A list attribute; `kind` is the written kind of a typed list (`ints[...]`).
    fn list(&self, p: Pair<'_>, kind: Option<&str>) -> R<AttrValue> {
        let items: Vec<Pair<'_>> = p.clone().into_inner().map(|x| self.first(&x)).collect::<R<Vec<_>>>()?;
        let rule_of = |r: Rule| match r {
            Rule::number => "numbers",
            Rule::string => "strings",
            Rule::tensor_lit => "tensors",
            Rule::graph => "graphs",
            Rule::sparse_lit => "sparse_tensors",
            Rule::type_attr => "type_protos",
            _ => "?",
        };
        let kind = match kind {
            Some(k) => k.to_string(),
            None => match items.first() {
                None => {
                    return Err(self.err(
                        Kind::MixedList,
                        &p,
                        "an empty list needs its kind, such as `ints[]`",
                    ));
                }
                Some(_) if items.iter().all(|x| x.as_rule() == Rule::number) => {
                    if items.iter().all(|x| is_int(x.as_str())) { "ints".into() } else { "floats".into() }
                }
                Some(f) => rule_of(f.as_rule()).to_string(),
            },
        };
        let want = if kind == "ints" || kind == "floats" { "numbers" } else { kind.as_str() };
        if let Some(bad) = items.iter().find(|x| rule_of(x.as_rule()) != want) {
            return Err(self.err(Kind::MixedList, bad, format!("a list of {kind} cannot hold this")));
        }
        Ok(match kind.as_str() {
            "ints" => AttrValue::Ints(items.iter().map(|x| self.int(x)).collect::<R<_>>()?),
            "floats" => AttrValue::Floats(items.iter().map(|x| self.f32(x)).collect::<R<_>>()?),
            "strings" => {
                AttrValue::Strings(items.iter().map(|x| self.bytes(x).map(Bytes::from)).collect::<R<_>>()?)
            }
            "tensors" => {
                AttrValue::Tensors(items.into_iter().map(|x| self.tensor(x, None)).collect::<R<_>>()?)
            }
            "graphs" => AttrValue::Graphs(items.into_iter().map(|x| self.graph(x)).collect::<R<_>>()?),
            "sparse_tensors" => {
                AttrValue::SparseTensors(items.into_iter().map(|x| self.sparse(x)).collect::<R<_>>()?)
            }
            "type_protos" => AttrValue::TypeProtos(
                items
                    .into_iter()
                    .map(|x| self.first(&x).and_then(|t| self.type_info(t)))
                    .collect::<R<_>>()?,
            ),
            _ => return Err(self.err(Kind::MixedList, &p, "this list mixes kinds")),
        })
    }

    // ---- types ----

    fn elem(&self, p: &Pair<'_>) -> R<Option<ElemType>> {
        let s = p.as_str();
        if s == "?" {
            return Ok(None);
        }
        if let Some(code) = s.strip_prefix("type#") {
            let code = code.parse().map_err(|_| self.err(Kind::BadNumber, p, "bad element type code"))?;
            return Ok(Some(ElemType::from_code(code)));
        }
        (0..=26)
            .map(ElemType::from_code)
            .find(|e| e.name() == s)
            .map(Some)
            .ok_or_else(|| self.err(Kind::UnknownName, p, format!("`{s}` is not an element type")))
    }

    fn type_info(&self, p: Pair<'_>) -> R<TypeInfo> {
        let mut t = TypeInfo { ty: None, denotation: None };
        for x in p.into_inner() {
            t.ty = match x.as_rule() {
                Rule::string => {
                    t.denotation = Some(self.string(&x)?);
                    continue;
                }
                Rule::unknown => None,
                Rule::tensor_type | Rule::sparse_type => {
                    let sparse = x.as_rule() == Rule::sparse_type;
                    let mut it = x.clone().into_inner();
                    let (Some(e), Some(s)) = (it.next(), it.next()) else {
                        return Err(self.err(Kind::Syntax, &x, "bad tensor type"));
                    };
                    let elem = self.elem(&e)?;
                    let shape = self.shape(s)?;
                    Some(if sparse {
                        ValueType::SparseTensor { elem, shape }
                    } else {
                        ValueType::Tensor { elem, shape }
                    })
                }
                Rule::seq_type => Some(ValueType::Sequence(self.inner_type(x)?)),
                Rule::optional_type => Some(ValueType::Optional(self.inner_type(x)?)),
                Rule::map_type => {
                    let mut it = x.clone().into_inner();
                    let k = it.next().ok_or_else(|| self.err(Kind::Syntax, &x, "bad map"))?;
                    let value = match it.next() {
                        Some(v) => Some(Box::new(self.type_info(v)?)),
                        None => None,
                    };
                    Some(ValueType::Map { key: self.elem(&k)?, value })
                }
                Rule::opaque_type => {
                    let mut parts = Vec::new();
                    for o in x.into_inner() {
                        parts.push(match o.clone().into_inner().next() {
                            Some(s) => Some(self.string(&s)?),
                            None => None,
                        });
                    }
                    let mut it = parts.into_iter();
                    Some(ValueType::Opaque { domain: it.next().flatten(), name: it.next().flatten() })
                }
                _ => None,
            };
        }
        Ok(t)
    }

    fn inner_type(&self, p: Pair<'_>) -> R<Option<Box<TypeInfo>>> {
        match p.into_inner().next() {
            Some(t) => Ok(Some(Box::new(self.type_info(t)?))),
            None => Ok(None),
        }
    }

    fn shape(&self, p: Pair<'_>) -> R<Option<Shape>> {
        let mut s = Shape::default();
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::unranked => return Ok(None),
                Rule::dim => {
                    let d = self.first(&x)?;
                    s.dims.push(match d.as_rule() {
                        Rule::index => Dim::Known(self.uint(&d)?),
                        Rule::unknown => Dim::Unknown,
                        _ => Dim::Sym(self.key(&d)?),
                    });
                }
                Rule::dim_denotations => {
                    for dd in x.into_inner() {
                        let mut it = dd.into_inner();
                        let (Some(i), Some(t)) = (it.next(), it.next()) else { continue };
                        let i = usize::try_from(self.uint(&i)?)
                            .map_err(|_| self.err(Kind::BadNumber, &i, "index too large"))?;
                        s.denotations.push((i, self.string(&t)?));
                    }
                }
                _ => {}
            }
        }
        Ok(Some(s))
    }

    // ---- constants ----

    /// A tensor literal; `value_name` is the default tensor name (for initializers).
    fn tensor(&self, p: Pair<'_>, value_name: Option<String>) -> R<Tensor> {
        let mut t = Tensor {
            name: value_name,
            elem: None,
            dims: Vec::new(),
            data: TensorData::Empty,
            segment: None,
            doc_string: None,
            metadata: Vec::new(),
            explicit_default_location: false,
        };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::elem => t.elem = self.elem(&x)?,
                Rule::int => t.dims.push(self.int(&x)?),
                Rule::raw_data => t.data = TensorData::Raw(self.hex(&self.first(&x)?)?),
                Rule::list_data => t.data = self.list_data(x)?,
                Rule::external_data => t.data = TensorData::External(self.external(x)?),
                Rule::t_name => t.name = Some(self.doc(&x)?),
                Rule::t_unnamed => t.name = None,
                Rule::t_segment => {
                    let mut seg = [None, None];
                    for (i, o) in x.into_inner().take(2).enumerate() {
                        seg[i] = match o.clone().into_inner().next() {
                            Some(n) => Some(self.int(&n)?),
                            None => None,
                        };
                    }
                    t.segment = Some((seg[0], seg[1]));
                }
                Rule::doc => t.doc_string = Some(self.doc(&x)?),
                Rule::meta => t.metadata = self.meta_map(self.first(&x)?)?,
                Rule::t_default_location => t.explicit_default_location = true,
                _ => {}
            }
        }
        Ok(t)
    }

    fn list_data(&self, p: Pair<'_>) -> R<TensorData> {
        let mut it = p.clone().into_inner();
        let kind = it.next().ok_or_else(|| self.err(Kind::Syntax, &p, "bad data"))?;
        let items: Vec<Pair<'_>> = it.collect();
        let strings = kind.as_str() == "strings";
        if let Some(bad) = items.iter().find(|x| (x.as_rule() == Rule::string) != strings) {
            return Err(self.err(Kind::MixedList, bad, format!("{} data cannot hold this", kind.as_str())));
        }
        Ok(match kind.as_str() {
            "floats" => TensorData::Floats(items.iter().map(|x| self.f32(x)).collect::<R<_>>()?),
            "int32s" => TensorData::Int32s(items.iter().map(|x| self.int32(x)).collect::<R<_>>()?),
            "int64s" => TensorData::Int64s(items.iter().map(|x| self.int(x)).collect::<R<_>>()?),
            "doubles" => TensorData::Doubles(items.iter().map(|x| self.f64(x)).collect::<R<_>>()?),
            "uint64s" => TensorData::Uint64s(items.iter().map(|x| self.uint(x)).collect::<R<_>>()?),
            _ => TensorData::Strings(items.iter().map(|x| self.bytes(x).map(Bytes::from)).collect::<R<_>>()?),
        })
    }

    fn external(&self, p: Pair<'_>) -> R<ExternalRef> {
        let mut r = ExternalRef { entries: Vec::new(), location: String::new(), offset: 0, length: None };
        let mut ints = 0;
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::string => r.location = self.string(&x)?,
                Rule::int => {
                    let v = self.uint(&x)?;
                    if ints == 0 {
                        r.offset = v
                    } else {
                        r.length = Some(v)
                    }
                    ints += 1;
                }
                Rule::meta_map => r.entries = self.meta_map(x)?,
                _ => {}
            }
        }
        Ok(r)
    }

    fn sparse(&self, p: Pair<'_>) -> R<SparseTensor> {
        let mut s = SparseTensor { values: None, indices: None, dims: Vec::new() };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::int => s.dims.push(self.int(&x)?),
                Rule::sp_values => s.values = Some(self.tensor(self.first(&x)?, None)?),
                Rule::sp_indices => s.indices = Some(self.tensor(self.first(&x)?, None)?),
                _ => {}
            }
        }
        Ok(s)
    }

    // ---- quantization ----

    pub(super) fn quant(&self, p: Pair<'_>) -> R<QuantSpec> {
        let mut q = QuantSpec {
            dtype: DataType::F32,
            scale: None,
            zero_point: None,
            narrow: false,
            rounding: crate::quant::Rounding::HalfEven,
            origin: crate::quant::QuantOrigin::QonnxQuant,
        };
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::dtype => q.dtype = self.dtype(x)?,
                Rule::q_scale => q.scale = Some(self.qparam(self.first(&x)?)?),
                Rule::q_zero_point => q.zero_point = Some(self.qparam(self.first(&x)?)?),
                Rule::q_narrow => q.narrow = true,
                Rule::q_rounding => {
                    let n = self.first(&x)?;
                    q.rounding = ROUNDINGS
                        .iter()
                        .find(|r| r.1 == n.as_str())
                        .ok_or_else(|| self.err(Kind::UnknownName, &n, "unknown rounding"))?
                        .0;
                }
                Rule::q_origin => {
                    let n = self.first(&x)?;
                    q.origin = ORIGINS
                        .iter()
                        .find(|r| r.1 == n.as_str())
                        .ok_or_else(|| self.err(Kind::UnknownName, &n, "unknown origin"))?
                        .0;
                }
                _ => {}
            }
        }
        Ok(q)
    }

    fn dtype(&self, p: Pair<'_>) -> R<DataType> {
        let mut it = p.clone().into_inner();
        let name = it.next().ok_or_else(|| self.err(Kind::Syntax, &p, "bad data type"))?;
        let args: Vec<i64> = it.map(|a| self.int(&a)).collect::<R<_>>()?;
        let s = name.as_str();
        let unknown = || self.err(Kind::UnknownName, &p, format!("`{}` is not a data type", p.as_str()));
        let range = || self.err(Kind::BadNumber, &p, "a data type parameter is out of range");
        let u = |x: i64| u32::try_from(x).map_err(|_| range());
        let bits = |digits: &str| digits.parse::<u32>().map_err(|_| unknown());
        Ok(match (s, args.as_slice()) {
            ("BIPOLAR", []) => DataType::Bipolar,
            ("TERNARY", []) => DataType::Ternary,
            ("BINARY", []) => DataType::Binary,
            ("FLOAT32", []) => DataType::F32,
            ("FLOAT16", []) => DataType::F16,
            ("FIXED", [w, i]) => DataType::Fixed { w: u(*w)?, i: u(*i)? },
            ("SCALEDINT", [b]) => DataType::ScaledInt { bits: u(*b)? },
            ("FLOAT", [e, m, b]) => {
                DataType::Float { e: u(*e)?, m: u(*m)?, bias: i32::try_from(*b).map_err(|_| range())? }
            }
            (s, []) if s.starts_with("UINT") => DataType::Int { bits: bits(&s[4..])?, signed: false },
            (s, []) if s.starts_with("INT") => DataType::Int { bits: bits(&s[3..])?, signed: true },
            _ => return Err(unknown()),
        })
    }

    fn qparam(&self, p: Pair<'_>) -> R<QuantParam> {
        let items: Vec<Pair<'_>> = p.into_inner().collect();
        if let Some(b) = items.first().filter(|x| x.as_rule() == Rule::q_blocked) {
            let parts: Vec<Pair<'_>> = b.clone().into_inner().collect();
            let (ints, nums): (Vec<_>, Vec<_>) = parts.iter().partition(|x| x.as_rule() == Rule::int);
            let ints: Vec<i64> = ints.iter().map(|x| self.int(x)).collect::<R<_>>()?;
            return Ok(QuantParam::Blocked {
                axis: ints[0],
                block_size: ints[1],
                dims: ints[2..].to_vec(),
                values: nums.iter().map(|x| self.f64(x)).collect::<R<_>>()?,
            });
        }
        match items.first() {
            Some(a) if a.as_rule() == Rule::int => Ok(QuantParam::PerAxis {
                axis: self.int(a)?,
                values: items[1..].iter().map(|x| self.f64(x)).collect::<R<_>>()?,
            }),
            Some(x) => Ok(QuantParam::PerTensor(self.f64(x)?)),
            None => Err(error(Kind::Syntax, self.text, 0, 0, "bad quantization parameter".into())),
        }
    }
}

fn is_int(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
}
