//! The parser of the textual IR on small hand-written inputs: every `ParseError` variant comes
//! from a small bad input with its diagnostic code (`qc::ir::*`) and a span, line and column that
//! point at the offending text; nesting deeper than `MAX_DEPTH` (64) is refused without
//! exhausting the stack while nesting up to it parses; `%x#N` references, quoted names, the
//! `""::Op` default domain, comments and trailing commas are accepted; and the summary form of a
//! model with a large constant is refused, as `text/mod.rs` and `spec/ir.md` document.

use bytes::Bytes;
use miette::Diagnostic;
use qc_ir::text::{Form, ParseError, parse_graph, parse_model, print_model};
use qc_ir::{AttrValue, Const, ElemType, Graph, Model, OpKind, Tensor, TensorData, TypeInfo, ValueType};

/// `MAX_DEPTH` of `qc_ir::text` (not exported).
const MAX_DEPTH: usize = 64;

/// The code of each variant. The match has no wildcard, so a new variant fails to compile here
/// until it has a test in this file.
fn code_of(e: &ParseError) -> &'static str {
    match e {
        ParseError::Syntax { .. } => "qc::ir::parse",
        ParseError::UnknownValue { .. } => "qc::ir::unknown_value",
        ParseError::Duplicate { .. } => "qc::ir::duplicate_definition",
        ParseError::BadNumber { .. } => "qc::ir::bad_number",
        ParseError::BadString { .. } => "qc::ir::bad_string",
        ParseError::UnknownName { .. } => "qc::ir::unknown_name",
        ParseError::MixedList { .. } => "qc::ir::mixed_list",
        ParseError::TooDeep { .. } => "qc::ir::too_deep",
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// Parses `text` as a model, expects an error with `code`, and checks that it points at the
/// first occurrence of `at` (the span starts there and covers `at` exactly when `exact`).
fn expect_error(text: &str, code: &str, at: &str, exact: bool) -> ParseError {
    let start = text.find(at).unwrap_or_else(|| panic!("`{at}` is not in the text"));
    expect_error_at(text, code, start, exact.then_some(at))
}

/// Parses `text` as a model, expects an error with `code` whose span starts at byte `start` (and
/// is exactly `exact`, if given), and checks its line, column, message and label.
fn expect_error_at(text: &str, code: &str, start: usize, exact: Option<&str>) -> ParseError {
    let e = match parse_model(text) {
        Ok(_) => panic!("parsed, but expected {code}:\n{text}"),
        Err(e) => e,
    };
    let got = e.code().map(|c| c.to_string());
    assert_eq!(got.as_deref(), Some(code), "{e}\n{text}");
    assert_eq!(code_of(&e), code, "{e}");
    let at = exact.unwrap_or("");
    let span = e.span();
    assert_eq!(span.start, start, "{e}: span {span:?} ({:?}), expected `{at}`", &text[span.clone()]);
    assert!(!span.is_empty(), "{e}: empty span");
    if exact.is_some() {
        assert_eq!(&text[span.clone()], at, "{e}");
    }
    assert_eq!(e.line_col(), line_col(text, start), "{e}");
    // The message starts with the position, and miette gets a label at the span.
    let (line, col) = e.line_col();
    assert!(e.to_string().starts_with(&format!("{line}:{col}: ")), "{e}");
    let labels: Vec<_> = e.labels().expect("a label").collect();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].offset(), span.start);
    assert!(e.source_code().is_some());
    e
}

// ---- one test per variant ----

#[test]
fn syntax_errors_point_where_pest_stopped() {
    // The operand list is not closed. pest reports the last place where it tried a rule (the
    // alternatives of an operand), not the `}` where `)` was missing: the operand `%x`.
    let text = "graph {\n  %y = Relu(%x\n}\n";
    expect_error(text, "qc::ir::parse", "%x", false);
    // A misspelt keyword.
    let text = "graph {\n  init %w = f32[1] flaots [1.0]\n}\n";
    expect_error(text, "qc::ir::parse", "flaots", false);
    // A statement the grammar does not know.
    let text = "graph {\n  %y = Relu(%x)\n  ??\n}\n";
    expect_error(text, "qc::ir::parse", "??", false);
    // Text after the last item.
    let text = "graph {\n}\ntrailing\n";
    expect_error(text, "qc::ir::parse", "trailing", false);
    // An empty text is not a model.
    let e = parse_model("").unwrap_err();
    assert_eq!(e.code().unwrap().to_string(), "qc::ir::parse");
    assert_eq!(e.line_col(), (1, 1));
}

#[test]
fn a_value_missing_from_the_values_line_is_unknown() {
    let text = "graph {\n  values %a, %b\n  %b = Relu(%a)\n  %c = Relu(%b)\n}\n";
    let e = expect_error(text, "qc::ir::unknown_value", "%c", true);
    assert!(matches!(e, ParseError::UnknownValue { .. }));
    // A `#N` reference counts as a different value.
    let text = "graph {\n  values %a\n  %a#1 = Relu(%a)\n}\n";
    expect_error(text, "qc::ir::unknown_value", "%a#1", true);
}

#[test]
fn properties_given_twice_are_duplicates() {
    // A second type for an input.
    let text = "graph (%x: f32[1]) -> () {\n  info %x: f32[2]\n}\n";
    let e = expect_error(text, "qc::ir::duplicate_definition", "f32[2]", true);
    assert!(matches!(e, ParseError::Duplicate { .. }));
    // A second constant.
    let text = "graph {\n  init %w = f32[] floats [1.0]\n  value %w = f32[] floats [2.0]\n}\n";
    expect_error(text, "qc::ir::duplicate_definition", "f32[] floats [2.0]", true);
    // A second doc and a second quant.
    let text = "graph (%x doc \"a\") -> () {\n  info %x doc \"b\"\n}\n";
    expect_error(text, "qc::ir::duplicate_definition", "doc \"b\"", true);
    let q = "quant(INT8, rounding = half_even, origin = onnx_qdq)";
    let text = format!("graph (%x {q}) -> () {{\n  info %x {q}\n}}\n");
    let second = text.rfind("quant(").unwrap();
    let e = parse_model(&text).unwrap_err();
    assert_eq!(e.code().unwrap().to_string(), "qc::ir::duplicate_definition");
    assert_eq!(e.span().start, second);
    // A value listed twice, and two `values` lines.
    let text = "graph {\n  values %a, %b, %a\n}\n";
    let e = parse_model(text).unwrap_err();
    assert_eq!(e.code().unwrap().to_string(), "qc::ir::duplicate_definition");
    assert_eq!(e.span(), text.rfind("%a").unwrap()..text.rfind("%a").unwrap() + 2);
    let text = "graph {\n  values %a\n  values %b\n}\n";
    expect_error(text, "qc::ir::duplicate_definition", "values %b", true);
}

#[test]
fn numbers_that_do_not_fit_are_bad_numbers() {
    let text = "ir_version 99999999999999999999\ngraph {\n}\n";
    let e = expect_error(text, "qc::ir::bad_number", "99999999999999999999", true);
    assert!(matches!(e, ParseError::BadNumber { .. }));
    // Negative where only unsigned fits (a dim), an int32 datum out of range.
    expect_error("graph (%x: f32[-1]) -> () {\n}\n", "qc::ir::parse", "-1", false);
    let text = "graph {\n  init %w = i32[1] int32s [4294967296]\n}\n";
    expect_error(text, "qc::ir::bad_number", "4294967296", true);
    let text = "graph {\n  init %w = u64[1] uint64s [-1]\n}\n";
    expect_error(text, "qc::ir::bad_number", "-1", true);
    // Hex with an odd number of digits.
    let text = "graph {\n  init %w = u8[2] raw 0x123\n}\n";
    expect_error(text, "qc::ir::bad_number", "0x123", true);
    // NaN bits that are not a NaN, and too many of them.
    let text = "graph {\n  Relu() {a = nan(0x00000001)}\n}\n";
    expect_error(text, "qc::ir::bad_number", "nan(0x00000001)", true);
    let text = "graph {\n  Relu() {a = nan(0x7fc000000)}\n}\n";
    expect_error(text, "qc::ir::bad_number", "nan(0x7fc000000)", true);
    // A data type parameter out of range.
    let text = "graph (%x quant(FIXED<-1, 2>, rounding = half_even, origin = onnx_qdq)) -> () {\n}\n";
    expect_error(text, "qc::ir::bad_number", "FIXED<-1, 2>", true);
    // A negative declaration-override index.
    let text = "graph {\n  decl_override inputs[-3] x\n}\n";
    expect_error(text, "qc::ir::bad_number", "-3", true);
}

#[test]
fn bad_escapes_and_non_utf8_names_are_bad_strings() {
    let text = "graph @\"a\\qb\" {\n}\n";
    let e = expect_error(text, "qc::ir::bad_string", "\"a\\qb\"", true);
    assert!(matches!(e, ParseError::BadString { .. }));
    let text = "graph {\n  Relu() name \"\\x4\"\n}\n";
    expect_error(text, "qc::ir::bad_string", "\"\\x4\"", true);
    let text = "graph {\n  Relu() name \"\\u{d800}\"\n}\n";
    expect_error(text, "qc::ir::bad_string", "\"\\u{d800}\"", true);
    // `\xff` is fine in an attribute string (bytes) but not in a name.
    parse_model("graph {\n  Relu() {s = \"\\xff\"}\n}\n").expect("bytes in an attribute");
    let text = "graph {\n  %\"\\xff\" = Relu()\n}\n";
    expect_error(text, "qc::ir::bad_string", "\"\\xff\"", true);
}

#[test]
fn unknown_type_kind_and_quant_names_are_unknown_names() {
    let text = "graph (%x: f99[1]) -> () {\n}\n";
    let e = expect_error(text, "qc::ir::unknown_name", "f99", true);
    assert!(matches!(e, ParseError::UnknownName { .. }));
    let text = "graph {\n  Relu() {a: bogus = 1}\n}\n";
    expect_error(text, "qc::ir::unknown_name", "bogus", true);
    let text = "graph (%x quant(INT8, rounding = sideways, origin = onnx_qdq)) -> () {\n}\n";
    expect_error(text, "qc::ir::unknown_name", "sideways", true);
    let text = "graph (%x quant(INT8, rounding = half_even, origin = nowhere)) -> () {\n}\n";
    expect_error(text, "qc::ir::unknown_name", "nowhere", true);
    let text = "graph (%x quant(WEIRD8, rounding = half_even, origin = onnx_qdq)) -> () {\n}\n";
    expect_error(text, "qc::ir::unknown_name", "WEIRD8", true);
}

#[test]
fn lists_of_mixed_kinds_are_mixed_lists() {
    let text = "graph {\n  Relu() {a = [1, \"s\"]}\n}\n";
    let e = expect_error(text, "qc::ir::mixed_list", "\"s\"", true);
    assert!(matches!(e, ParseError::MixedList { .. }));
    let text = "graph {\n  Relu() {a = ints[1, 2.5, \"s\"]}\n}\n";
    expect_error(text, "qc::ir::mixed_list", "\"s\"", true);
    // An empty list needs its kind.
    let text = "graph {\n  Relu() {a = []}\n}\n";
    expect_error(text, "qc::ir::mixed_list", "[]", true);
    // Tensor data of the wrong kind.
    let text = "graph {\n  init %w = f32[2] floats [1.0, \"x\"]\n}\n";
    expect_error(text, "qc::ir::mixed_list", "\"x\"", true);
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = "graph {\n  %\"日本\" = Relu() {a = [1, \"s\"]}\n}\n";
    let e = expect_error(text, "qc::ir::mixed_list", "\"s\"", true);
    // `  %"日本" = Relu() {a = [1, ` is 26 characters (30 bytes).
    assert_eq!(e.line_col(), (2, 27));
}

// ---- nesting ----

#[test]
fn nesting_deeper_than_max_depth_is_refused_without_overflow() {
    let text = "[".repeat(100_000);
    // The span is the first bracket too many.
    let e = expect_error_at(&text, "qc::ir::too_deep", MAX_DEPTH, Some("["));
    assert!(matches!(e, ParseError::TooDeep { .. }));
    assert_eq!(e.line_col(), (1, MAX_DEPTH + 1));
    for open in ["(", "{", "<"] {
        let e = parse_model(&open.repeat(100_000)).unwrap_err();
        assert!(matches!(e, ParseError::TooDeep { .. }), "{open}: {e}");
    }
    assert!(matches!(parse_graph(&"{".repeat(100_000)).unwrap_err(), ParseError::TooDeep { .. }));
    // Deep nesting inside a real graph: types nested one level too deep.
    let depth = MAX_DEPTH; // `(` plus 64 `seq<`
    let text = format!("graph (%x: {}?{}) -> () {{\n}}\n", "seq<".repeat(depth), ">".repeat(depth));
    let e = parse_model(&text).unwrap_err();
    assert!(matches!(e, ParseError::TooDeep { .. }), "{e}");
    // The `<` of the 64th `seq<`.
    let at = "graph (%x: ".len() + 4 * (MAX_DEPTH - 1) + 3;
    assert_eq!(e.span(), at..at + 1);
    assert_eq!(&text[at - 3..=at], "seq<");
}

#[test]
fn brackets_in_strings_and_comments_do_not_count() {
    let deep = "[".repeat(1000);
    let text = format!("// {deep}\ngraph @\"{deep}\" {{ // {deep}\n}}\n");
    let m = parse_model(&text).expect("brackets in strings and comments");
    assert_eq!(m.graph.name.as_deref(), Some(deep.as_str()));
}

/// `{` of the graph, then per level the `{` of the attributes and the `{` of the nested graph.
fn nested_graphs(levels: usize) -> String {
    let mut text = String::from("graph {\n");
    for _ in 0..levels {
        text.push_str("If(%c) {then_branch = graph {\n");
    }
    text.push_str("%y = Relu(%x)\n");
    for _ in 0..levels {
        text.push_str("}}\n");
    }
    text.push_str("}\n");
    text
}

#[test]
fn nesting_up_to_max_depth_parses_on_a_test_thread() {
    // 1 + 2 * 31 = 63 braces, and the `(` of the innermost op makes 64.
    let m = parse_model(&nested_graphs((MAX_DEPTH - 2) / 2)).expect("64 levels");
    let mut depth = 0;
    let mut g: &Graph = &m.graph;
    while let Some((_, op)) = g.ops().next() {
        match op.attr("then_branch").map(|a| &a.value) {
            Some(AttrValue::Graph(inner)) => {
                depth += 1;
                g = inner;
            }
            _ => break,
        }
    }
    assert_eq!(depth, 31);
    // It prints and parses back.
    let text = print_model(&m, Form::Full);
    assert!(parse_model(&text).expect("printed") == m);
    // One level more is refused.
    let e = parse_model(&nested_graphs(MAX_DEPTH / 2)).unwrap_err();
    assert!(matches!(e, ParseError::TooDeep { .. }), "{e}");
    // Types nested as deep as allowed: `(` and 63 `seq<`.
    let text =
        format!("graph (%x: {}?{}) -> () {{\n}}\n", "seq<".repeat(MAX_DEPTH - 1), ">".repeat(MAX_DEPTH - 1));
    let m = parse_model(&text).expect("64 levels of types");
    let mut t = m.graph.value(m.graph.inputs[0]).ty.clone().expect("a type");
    let mut levels = 0;
    while let Some(ValueType::Sequence(Some(inner))) = t.ty {
        levels += 1;
        t = *inner;
    }
    assert_eq!(levels, MAX_DEPTH - 1);
}

// ---- what is accepted ----

#[test]
fn duplicate_names_are_told_apart_by_index() {
    // With a `values` line.
    let g = parse_graph("graph {\n  values %x, %x#1\n  %x#1 = Relu(%x)\n}\n").expect("parses");
    assert_eq!(g.value_count(), 2);
    let (_, op) = g.ops().next().unwrap();
    assert_eq!(g.value(op.inputs()[0].unwrap()).name, "x");
    assert_eq!(g.value(op.outputs()[0].unwrap()).name, "x");
    assert_ne!(op.inputs()[0], op.outputs()[0]);
    assert_eq!(op.outputs()[0].unwrap().index(), 1);
    // Without one: values are made in the order they are met.
    let g = parse_graph("graph (%x) -> (%x#1) {\n  %x#1 = Relu(%x)\n}\n").expect("parses");
    assert_eq!(g.value_count(), 2);
    assert_eq!(g.inputs[0].index(), 0);
    assert_eq!(g.outputs[0].index(), 1);
    // `find` reaches the first of the name.
    assert_eq!(g.find("x"), Some(g.inputs[0]));
}

#[test]
fn quoted_names_hold_any_text() {
    let text = concat!(
        "graph @\"main graph\" (%\"input 0\": f32[\"batch size\", 3], %\"%\\\"q\\\"\": ?[*]) -> (%\"é\") {\n",
        "  %\"é\" = \"my.domain\"::\"Odd Op\"(%\"input 0\", _) {\"attr name\" = 1} name \"\\u{1f600}\\n\"\n",
        "}\n",
    );
    let m = parse_model(text).expect("parses");
    let g = &m.graph;
    assert_eq!(g.name.as_deref(), Some("main graph"));
    assert_eq!(g.value(g.inputs[0]).name, "input 0");
    assert_eq!(g.value(g.inputs[1]).name, "%\"q\"");
    assert_eq!(g.value(g.outputs[0]).name, "é");
    let ty = g.value(g.inputs[0]).ty.clone().unwrap();
    let ValueType::Tensor { shape: Some(s), .. } = ty.ty.unwrap() else { panic!("a tensor type") };
    assert_eq!(s.dims[0], qc_ir::Dim::Sym("batch size".into()));
    let (_, op) = g.ops().next().unwrap();
    assert_eq!(op.domain_raw(), Some("my.domain"));
    assert_eq!(op.op_type(), "Odd Op");
    assert_eq!(op.inputs()[1], None);
    assert_eq!(op.attrs[0].name, "attr name");
    assert_eq!(op.name.as_deref(), Some("\u{1f600}\n"));
}

#[test]
fn an_empty_domain_is_kept_apart_from_no_domain() {
    let g = parse_graph("graph {\n  %a = \"\"::Conv(%x, %w)\n  %b = Conv(%x, %w)\n}\n").expect("parses");
    let ops: Vec<_> = g.ops().map(|(_, o)| o).collect();
    assert_eq!(ops[0].domain_raw(), Some(""));
    assert_eq!(ops[1].domain_raw(), None);
    assert_eq!(ops[0].domain(), "");
    assert_eq!(ops[0].kind(), OpKind::Conv);
    assert_eq!(ops[1].kind(), OpKind::Conv);
    assert!(ops[0] != ops[1]);
}

#[test]
fn comments_and_trailing_commas_are_accepted() {
    let text = "// a model\nir_version 8 // the IR version\nmeta {a = \"1\", b = \"2\",}\n\
                graph { // the main graph\n  // a whole line\n  \
                %y = Relu(%x) {ints = [1, 2,], f = 1.5, t = floats[],} meta {k = \"v\",} // the op\n}\n";
    let m = parse_model(text).expect("parses");
    assert_eq!(m.ir_version, Some(8));
    assert_eq!(m.metadata.len(), 2);
    let (_, op) = m.graph.ops().next().unwrap();
    assert_eq!(op.attrs.len(), 3);
    assert_eq!(op.attrs[0].value, AttrValue::Ints(vec![1, 2]));
    assert_eq!(op.attrs[1].value, AttrValue::Float(1.5));
    assert_eq!(op.attrs[2].value, AttrValue::Floats(vec![]));
    assert_eq!(op.metadata.len(), 1);
}

// ---- the summary form ----

fn model_with_big_constants() -> Model {
    let mut m = Model::default();
    let g = &mut m.graph;
    let tensor = |elem, dims: Vec<i64>, data| Tensor {
        name: None,
        elem: Some(elem),
        dims,
        data,
        segment: None,
        doc_string: None,
        metadata: vec![],
        explicit_default_location: false,
    };
    let w = g.add_value("w");
    g.value_mut(w).ty = Some(TypeInfo::tensor(ElemType::F32, None));
    g.value_mut(w).init = Some(Const::Dense(Box::new(tensor(
        ElemType::F32,
        vec![20],
        TensorData::Floats((0..20).map(|i| i as f32).collect()),
    ))));
    g.initializers.push(w);
    let r = g.add_value("r");
    g.value_mut(r).init = Some(Const::Dense(Box::new(tensor(
        ElemType::U8,
        vec![100],
        TensorData::Raw(Bytes::from(vec![7u8; 100])),
    ))));
    g.initializers.push(r);
    m
}

#[test]
fn the_summary_form_is_not_accepted() {
    let m = model_with_big_constants();
    let full = print_model(&m, Form::Full);
    assert!(parse_model(&full).expect("the full form parses") == m);
    let summary = print_model(&m, Form::Summary);
    assert!(summary.contains("<20 values: "), "{summary}");
    assert!(summary.contains("<100 values: "), "{summary}");
    let e = parse_model(&summary).unwrap_err();
    assert_eq!(e.code().unwrap().to_string(), "qc::ir::parse");
    // The error points at the first abbreviation.
    let first = summary.find("floats <20").unwrap();
    assert!(e.span().start >= first && e.span().start <= first + "floats <".len(), "{e}\n{summary}");
    // Each abbreviation alone is refused too.
    for (i, line) in summary.lines().enumerate().filter(|(_, l)| l.contains(" values: ")) {
        let text = format!("graph {{\n{line}\n}}\n");
        assert!(parse_model(&text).is_err(), "line {i} parses: {line}");
    }
}
