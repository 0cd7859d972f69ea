//! The loop-nest IR as text: a deterministic printer and a parser for [`Workload`]s.
//!
//! The grammar is `loops.pest`, loaded into the same pest parser as `ir.pest` (whose lexical
//! rules and `quant(...)` it shares), and explained in `spec/ir.md`, section "Loop-nest IR".
//!
//! ```text
//! layer 0 "/conv1/Conv" Conv mac {
//!   dims B=1, G=1, K=64, C=3, OY=112, OX=112, FY=7, FX=7
//!   O[b][g][k][oy][ox] += W[g][k][c][fy][fx] * I[b][g][c][iy][ix]
//!   iy = 2*oy + 1*fy - 3 extent 224 pad (3, 3)
//!   ix = 2*ox + 1*fx - 3 extent 224 pad (3, 3)
//!   O bits 8 psum 16 twice-activation value "x1" source other
//!   W bits 8 value "conv1.weight" source constant
//!   I bits 8 value "input" source input "input"
//! }
//!
//! not_lowered "/relu/Relu" Relu "element-wise op without a cost model" reads [layer "/conv1/Conv"]
//! ```

use std::collections::HashSet;
use std::fmt::Write;

use pest::Parser;

use super::parse::{Cx, IrParser, Kind, Pair, R, Rule, check_depth, error};
use super::print::quant;
use super::{write_key, write_str};
use crate::loops::{Compute, LoopDim, LoopNest, NotLowered, Operand, PsumRule, Relation, Source, Workload};

// ---- printing ----

/// The assignment and the operator between inputs that the einsum line of `c` writes.
fn operators(c: Compute) -> (&'static str, &'static str) {
    match c {
        Compute::Mac | Compute::Avg => ("+=", "*"),
        Compute::Max => ("max=", "*"),
        Compute::Add => ("=", "+"),
        Compute::Sub => ("=", "-"),
        Compute::Mul => ("=", "*"),
    }
}

pub(super) fn workload(w: &Workload) -> String {
    let mut out = String::new();
    for (i, l) in w.layers.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        layer(&mut out, l);
    }
    if !w.layers.is_empty() && !w.not_lowered.is_empty() {
        out.push('\n');
    }
    for n in &w.not_lowered {
        out.push_str("not_lowered ");
        write_str(&mut out, &n.node);
        out.push(' ');
        write_key(&mut out, &n.op_type);
        out.push(' ');
        write_str(&mut out, &n.reason);
        if let Some(e) = n.elements {
            let _ = write!(out, " elements {e}");
        }
        if !n.inputs.is_empty() {
            out.push_str(" reads [");
            for (i, src) in n.inputs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                source(&mut out, src);
            }
            out.push(']');
        }
        out.push('\n');
    }
    out
}

pub(super) fn loop_nest(l: &LoopNest) -> String {
    let mut out = String::new();
    layer(&mut out, l);
    out
}

fn layer(out: &mut String, l: &LoopNest) {
    let _ = write!(out, "layer {} ", l.id);
    write_str(out, &l.name);
    out.push(' ');
    write_key(out, &l.op_type);
    let _ = writeln!(out, " {} {{", l.compute.name());

    out.push_str("  dims");
    for (i, d) in l.dims.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        write_key(out, &d.name);
        let _ = write!(out, "={}", d.size);
    }
    out.push('\n');

    let (assign, join) = operators(l.compute);
    out.push_str("  ");
    operand_ref(out, &l.output);
    let _ = write!(out, " {assign} ");
    if l.inputs.is_empty() {
        out.push('_');
    }
    for (i, x) in l.inputs.iter().enumerate() {
        if i > 0 {
            let _ = write!(out, " {join} ");
        }
        operand_ref(out, x);
    }
    out.push('\n');

    for r in &l.relations {
        relation(out, r);
    }

    details(out, &l.output, Some((l.psum_precision, l.psum_rule)));
    for x in &l.inputs {
        details(out, x, None);
    }
    out.push_str("}\n");
}

fn operand_ref(out: &mut String, o: &Operand) {
    write_key(out, &o.role);
    for i in &o.index {
        out.push('[');
        write_key(out, i);
        out.push(']');
    }
}

fn relation(out: &mut String, r: &Relation) {
    out.push_str("  ");
    write_key(out, &r.name);
    out.push_str(" =");
    for (i, (c, d)) in r.terms.iter().enumerate() {
        if i == 0 {
            let _ = write!(out, " {c}*");
        } else {
            let sign = if *c < 0 { '-' } else { '+' };
            let _ = write!(out, " {sign} {}*", c.unsigned_abs());
        }
        write_key(out, d);
    }
    if r.terms.is_empty() {
        let _ = write!(out, " {}", r.offset);
    } else if r.offset != 0 {
        let sign = if r.offset < 0 { '-' } else { '+' };
        let _ = write!(out, " {sign} {}", r.offset.unsigned_abs());
    }
    let _ = writeln!(out, " extent {} pad ({}, {})", r.extent, r.padding.0, r.padding.1);
}

fn opt_u32(out: &mut String, x: Option<u32>) {
    match x {
        Some(x) => {
            let _ = write!(out, "{x}");
        }
        None => out.push('?'),
    }
}

/// The line of an operand; `psum` is the layer's psum precision and rule, for the output.
fn details(out: &mut String, o: &Operand, psum: Option<(Option<u32>, PsumRule)>) {
    out.push_str("  ");
    write_key(out, &o.role);
    out.push_str(" bits ");
    opt_u32(out, o.precision);
    if let Some((bits, rule)) = psum.filter(|(b, r)| b.is_some() || *r != PsumRule::None) {
        out.push_str(" psum ");
        opt_u32(out, bits);
        let _ = write!(out, " {}", rule.name());
    }
    out.push_str(" value ");
    write_str(out, &o.value);
    out.push_str(" source ");
    source(out, &o.source);
    if let Some(q) = &o.quant {
        out.push(' ');
        quant(out, q);
    }
    out.push('\n');
}

fn source(out: &mut String, s: &Source) {
    match s {
        Source::Layer(n) => {
            out.push_str("layer ");
            write_str(out, n);
        }
        Source::Node(n) => {
            out.push_str("node ");
            write_str(out, n);
        }
        Source::GraphInput(n) => {
            out.push_str("input ");
            write_str(out, n);
        }
        Source::Constant => out.push_str("constant"),
        Source::Other => out.push_str("other"),
    }
}

// ---- parsing ----

/// What a syntax error calls each rule of `loops.pest`.
fn rule_name(r: &Rule) -> String {
    match r {
        Rule::workload => "a workload",
        Rule::ln_layer => "a `layer` block",
        Rule::ln_not_lowered => "a `not_lowered` line",
        Rule::ln_compute => "a compute (mac, max, avg, add, sub, mul)",
        Rule::ln_dims => "the `dims` line",
        Rule::ln_dim => "a loop dim `NAME=size`",
        Rule::ln_einsum => "the einsum line",
        Rule::ln_operand => "an operand `R[i][j]`",
        Rule::ln_assign => "`+=`, `max=` or `=`",
        Rule::ln_binop => "`*`, `+` or `-`",
        Rule::ln_none => "`_`",
        Rule::ln_relation => "a relation `i = c*d + ... extent E pad (lo, hi)`",
        Rule::ln_expr => "a sum `c*d + ... + offset`",
        Rule::ln_first | Rule::ln_next => "a term `c*d`",
        Rule::ln_const => "an offset",
        Rule::ln_neg | Rule::ln_sign => "`+` or `-`",
        Rule::ln_detail => "an operand line `R bits B value \"v\" source S`",
        Rule::ln_psum => "`psum`",
        Rule::ln_extent => "`extent E`",
        Rule::ln_pad => "`pad (lo, hi)`",
        Rule::ln_bits => "`bits B`",
        Rule::ln_value => "`value \"v\"`",

        Rule::ln_rule => "a psum rule",
        Rule::ln_opt_index => "a number or `?`",
        Rule::ln_source => "`source S`",
        Rule::ln_src_layer => "`layer \"name\"`",
        Rule::ln_src_node => "`node \"name\"`",
        Rule::ln_reads => "`reads [SOURCE, ...]`",
        Rule::ln_src_input => "`input \"name\"`",
        Rule::ln_src_constant => "`constant`",
        Rule::ln_src_other => "`other`",
        r => return format!("{r:?}"),
    }
    .to_string()
}

pub(super) fn parse(text: &str) -> R<Workload> {
    check_depth(text)?;
    let root = IrParser::parse(Rule::workload, text)
        .map_err(|e| {
            let e = e.renamed_rules(rule_name);
            let (start, end) = match e.location {
                pest::error::InputLocation::Pos(p) => (p, p),
                pest::error::InputLocation::Span((s, e)) => (s, e),
            };
            error(Kind::Syntax, text, start, end, e.variant.message().into_owned())
        })?
        .next()
        .ok_or_else(|| error(Kind::Syntax, text, 0, 0, "empty parse".into()))?;
    let cx = Cx { text };
    let mut w = Workload::default();
    for p in root.into_inner() {
        match p.as_rule() {
            Rule::ln_layer => w.layers.push(layer_of(&cx, p)?),
            Rule::ln_not_lowered => {
                let mut it = p.clone().into_inner();
                let node = cx.string(&next(&cx, &mut it, &p)?)?;
                let op_type = cx.key(&next(&cx, &mut it, &p)?)?;
                let reason = cx.string(&next(&cx, &mut it, &p)?)?;
                let (mut elements, mut inputs) = (None, Vec::new());
                for x in it {
                    match x.as_rule() {
                        Rule::ln_elements => {
                            elements = Some(cx.uint(&next(&cx, &mut x.clone().into_inner(), &x)?)?)
                        }
                        _ => inputs = x.into_inner().map(|s| source_of(&cx, s)).collect::<R<_>>()?,
                    }
                }
                w.not_lowered.push(NotLowered { node, op_type, reason, elements, inputs });
            }
            _ => {}
        }
    }
    Ok(w)
}

type Pairs<'i> = pest::iterators::Pairs<'i, super::parse::Rule>;

/// The next part of `parent`; the grammar guarantees it, so a missing one is a syntax error.
fn next<'i>(cx: &Cx<'_>, it: &mut Pairs<'i>, parent: &Pair<'i>) -> R<Pair<'i>> {
    it.next().ok_or_else(|| cx.err(Kind::Syntax, parent, "missing part"))
}

fn u32_of(cx: &Cx<'_>, p: &Pair<'_>) -> R<u32> {
    p.as_str().parse().map_err(|_| {
        cx.err(Kind::BadNumber, p, format!("`{}` is not an unsigned 32-bit integer", p.as_str()))
    })
}

/// `?` or a number (`ln_opt_index`).
fn opt_u32_of(cx: &Cx<'_>, p: &Pair<'_>) -> R<Option<u32>> {
    match p.clone().into_inner().next() {
        Some(n) => u32_of(cx, &n).map(Some),
        None => Ok(None),
    }
}

/// `-magnitude` or `magnitude` as an `i64`; the error covers `whole` up to the magnitude.
fn signed(cx: &Cx<'_>, neg: bool, mag: &Pair<'_>, whole: &Pair<'_>) -> R<i64> {
    let m = i128::from(cx.uint(mag)?);
    let v = if neg { -m } else { m };
    i64::try_from(v).map_err(|_| {
        let (s, e) = (whole.as_span().start(), mag.as_span().end());
        error(Kind::BadNumber, cx.text, s, e, format!("`{v}` is not a 64-bit integer"))
    })
}

/// A byte range of the text, for errors found after the walk.
type Span = (usize, usize);

fn span(p: &Pair<'_>) -> Span {
    (p.as_span().start(), p.as_span().end())
}

/// One source (`layer "x"`, `node "x"`, `input "x"`, `constant`, `other`).
fn source_of(cx: &Cx<'_>, s: Pair<'_>) -> R<Source> {
    let name = |s: &Pair<'_>| cx.string(&next(cx, &mut s.clone().into_inner(), s)?);
    Ok(match s.as_rule() {
        Rule::ln_src_layer => Source::Layer(name(&s)?),
        Rule::ln_src_node => Source::Node(name(&s)?),
        Rule::ln_src_input => Source::GraphInput(name(&s)?),
        Rule::ln_src_constant => Source::Constant,
        _ => Source::Other,
    })
}

fn layer_of(cx: &Cx<'_>, p: Pair<'_>) -> R<LoopNest> {
    let mut it = p.clone().into_inner();
    let id = u32_of(cx, &next(cx, &mut it, &p)?)?;
    let name = cx.string(&next(cx, &mut it, &p)?)?;
    let op_type = cx.key(&next(cx, &mut it, &p)?)?;
    let c = next(cx, &mut it, &p)?;
    let compute = Compute::parse(c.as_str()).ok_or_else(|| {
        cx.err(
            Kind::UnknownName,
            &c,
            format!("`{}` is not a compute (mac, max, avg, add, sub, mul)", c.as_str()),
        )
    })?;

    // dims
    let mut dims = Vec::new();
    let mut dim_names = HashSet::new();
    for d in next(cx, &mut it, &p)?.into_inner() {
        let mut di = d.clone().into_inner();
        let k = next(cx, &mut di, &d)?;
        let name = cx.key(&k)?;
        let size = cx.uint(&next(cx, &mut di, &d)?)?;
        if !dim_names.insert(name.clone()) {
            return Err(cx.err(Kind::Duplicate, &k, format!("the loop dim `{name}` is given twice")));
        }
        dims.push(LoopDim { name, size });
    }

    // the einsum line
    let (want_assign, want_join) = operators(compute);
    let cname = compute.name();
    let e = next(cx, &mut it, &p)?;
    let mut operands: Vec<(Operand, Span, Vec<Span>)> = Vec::new();
    for x in e.into_inner() {
        match x.as_rule() {
            Rule::ln_operand => {
                let mut oi = x.clone().into_inner();
                let r = next(cx, &mut oi, &x)?;
                let role = cx.key(&r)?;
                if operands.iter().any(|o| o.0.role == role) {
                    return Err(cx.err(Kind::Duplicate, &r, format!("the operand `{role}` is given twice")));
                }
                let mut index = Vec::new();
                let mut spans = Vec::new();
                for i in oi {
                    index.push(cx.key(&i)?);
                    spans.push(span(&i));
                }
                let o = Operand {
                    role,
                    index,
                    precision: None,
                    quant: None,
                    source: Source::Other,
                    value: String::new(),
                };
                operands.push((o, span(&r), spans));
            }
            Rule::ln_assign if x.as_str() != want_assign => {
                return Err(cx.err(Kind::Syntax, &x, format!("a `{cname}` layer writes `{want_assign}`")));
            }
            Rule::ln_binop if x.as_str() != want_join => {
                return Err(cx.err(
                    Kind::Syntax,
                    &x,
                    format!("a `{cname}` layer joins its inputs with `{want_join}`"),
                ));
            }
            _ => {}
        }
    }
    if operands.is_empty() {
        return Err(cx.err(Kind::Syntax, &p, "the einsum line has no output"));
    }

    // relations and the operands' lines
    let mut relations = Vec::new();
    let mut term_spans = Vec::new();
    let mut seen_details: HashSet<usize> = HashSet::new();
    let mut psum = (None, PsumRule::None);
    let mut details = Vec::new();
    for x in it {
        match x.as_rule() {
            Rule::ln_relation => {
                let (r, spans) = relation_of(cx, x.clone())?;
                if relations.iter().any(|o: &Relation| o.name == r.name) {
                    let k = next(cx, &mut x.clone().into_inner(), &x)?;
                    return Err(cx.err(
                        Kind::Duplicate,
                        &k,
                        format!("the relation `{}` is given twice", r.name),
                    ));
                }
                relations.push(r);
                term_spans.push(spans);
            }
            Rule::ln_detail => details.push(x),
            _ => {}
        }
    }

    // every index names a loop dim (lower case) or a relation; terms name loop dims
    let lower: HashSet<String> = dims.iter().map(|d| d.name.to_lowercase()).collect();
    for (r, spans) in relations.iter().zip(&term_spans) {
        for ((_, d), s) in r.terms.iter().zip(spans) {
            if !lower.contains(d) {
                let m = format!("`{d}` is not a loop dim (the lower-case name of one in `dims`)");
                return Err(error(Kind::UnknownName, cx.text, s.0, s.1, m));
            }
        }
    }
    for (o, _, spans) in &operands {
        for (i, s) in o.index.iter().zip(spans) {
            if !lower.contains(i) && !relations.iter().any(|r| &r.name == i) {
                let m = format!("the index `{i}` is neither a loop dim (lower case) nor a relation");
                return Err(error(Kind::UnknownName, cx.text, s.0, s.1, m));
            }
        }
    }

    for x in details {
        let mut di = x.clone().into_inner();
        let r = next(cx, &mut di, &x)?;
        let role = cx.key(&r)?;
        let Some(pos) = operands.iter().position(|o| o.0.role == role) else {
            return Err(cx.err(Kind::UnknownName, &r, format!("the einsum line has no operand `{role}`")));
        };
        if !seen_details.insert(pos) {
            return Err(cx.err(Kind::Duplicate, &r, format!("the operand `{role}` is described twice")));
        }
        let o = &mut operands[pos].0;
        for f in di {
            match f.as_rule() {
                Rule::ln_bits => o.precision = opt_u32_of(cx, &next(cx, &mut f.clone().into_inner(), &f)?)?,
                Rule::ln_psum => {
                    if pos != 0 {
                        return Err(cx.err(
                            Kind::Syntax,
                            &f,
                            "only the output (the einsum's first operand) has a psum",
                        ));
                    }
                    let mut pi = f.clone().into_inner();
                    let bits = opt_u32_of(cx, &next(cx, &mut pi, &f)?)?;
                    let n = next(cx, &mut pi, &f)?;
                    let rule = PsumRule::parse(n.as_str()).ok_or_else(|| {
                        cx.err(
                            Kind::UnknownName,
                            &n,
                            format!(
                                "`{}` is not a psum rule (none, twice-activation, bit-growth, given)",
                                n.as_str()
                            ),
                        )
                    })?;
                    psum = (bits, rule);
                }
                Rule::ln_value => o.value = cx.string(&next(cx, &mut f.clone().into_inner(), &f)?)?,
                Rule::ln_source => o.source = source_of(cx, next(cx, &mut f.clone().into_inner(), &f)?)?,
                Rule::quant => o.quant = Some(cx.quant(f)?),
                _ => {}
            }
        }
    }
    if let Some((o, s, _)) = operands.iter().enumerate().find(|(i, _)| !seen_details.contains(i)).map(|x| x.1)
    {
        let m = format!("the operand `{}` has no line with its bits, value and source", o.role);
        return Err(error(Kind::Syntax, cx.text, s.0, s.1, m));
    }

    let mut operands = operands.into_iter().map(|o| o.0);
    let output = operands.next().ok_or_else(|| cx.err(Kind::Syntax, &p, "the einsum line has no output"))?;
    Ok(LoopNest {
        name,
        id,
        op_type,
        compute,
        dims,
        output,
        inputs: operands.collect(),
        relations,
        psum_precision: psum.0,
        psum_rule: psum.1,
    })
}

/// A relation line, and the spans of its terms' dims.
fn relation_of(cx: &Cx<'_>, p: Pair<'_>) -> R<(Relation, Vec<Span>)> {
    let mut it = p.clone().into_inner();
    let name = cx.key(&next(cx, &mut it, &p)?)?;
    let expr = next(cx, &mut it, &p)?;
    let e = next(cx, &mut it, &p)?;
    let extent = cx.uint(&next(cx, &mut e.clone().into_inner(), &e)?)?;
    let pad = next(cx, &mut it, &p)?;
    let mut pi = pad.clone().into_inner();
    let lo = cx.uint(&next(cx, &mut pi, &pad)?)?;
    let hi = cx.uint(&next(cx, &mut pi, &pad)?)?;
    let mut r = Relation { name, terms: Vec::new(), offset: 0, extent, padding: (lo, hi) };
    let mut spans = Vec::new();
    for x in expr.into_inner() {
        match x.as_rule() {
            Rule::int => r.offset = cx.int(&x)?,
            Rule::ln_first | Rule::ln_next | Rule::ln_const => {
                let mut xi = x.clone().into_inner().peekable();
                let neg = match xi.peek().map(|s| s.as_rule()) {
                    Some(Rule::ln_neg) => {
                        xi.next();
                        true
                    }
                    Some(Rule::ln_sign) => xi.next().is_some_and(|s| s.as_str() == "-"),
                    _ => false,
                };
                let mag = xi.next().ok_or_else(|| cx.err(Kind::Syntax, &x, "missing number"))?;
                let v = signed(cx, neg, &mag, &x)?;
                match xi.next() {
                    Some(d) => {
                        spans.push(span(&d));
                        r.terms.push((v, cx.key(&d)?));
                    }
                    None => r.offset = v,
                }
            }
            _ => {}
        }
    }
    Ok((r, spans))
}
