//! The loop-nest IR parser on small bad inputs: each error has its diagnostic code
//! (`qc::ir::*`, shared with the graph IR's text), a label, and a span, line and column that
//! point at the offending text, as `spec/ir.md` ("Loop-nest IR") documents.

use miette::Diagnostic;
use qc_ir::text::parse_workload;

/// A valid layer; the tests below break one part of it.
const GOOD: &str = r#"layer 0 "/conv1/Conv" Conv mac {
  dims B=1, K=64, C=3, OY=112, FY=7
  O[b][k][oy] += W[k][c][fy] * I[b][c][iy]
  iy = 2*oy + 1*fy - 3 extent 224 pad (3, 3)
  O bits 8 psum 16 twice-activation value "x1" source other
  W bits 8 value "conv1.weight" source constant
  I bits 8 value "input" source input "input"
}
not_lowered "/relu/Relu" Relu "no cost model"
"#;

/// Parses `GOOD` with `from` replaced by `to`, expects an error with `code` whose span is exactly
/// `at` (searched from the start of `to` in the new text) at `line`:`column`.
fn expect(from: &str, to: &str, code: &str, at: &str, line: usize, column: usize) -> String {
    assert!(GOOD.contains(from), "`{from}` is not in the text");
    let text = GOOD.replacen(from, to, 1);
    let e = match parse_workload(&text) {
        Ok(_) => panic!("parsed, but expected {code}:\n{text}"),
        Err(e) => e,
    };
    assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some(code), "{e}");
    let base = text.find(to).expect("the replacement");
    let start = base + text[base..].find(at).unwrap_or_else(|| panic!("`{at}` is not in `{to}`"));
    assert_eq!(e.span(), start..start + at.len(), "{e}: span {:?}", &text[e.span()]);
    assert_eq!(e.line_col(), (line, column), "{e}");
    assert!(e.to_string().starts_with(&format!("{line}:{column}: ")), "{e}");
    let labels: Vec<_> = e.labels().expect("a label").collect();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].offset(), start);
    e.to_string()
}

#[test]
fn the_base_text_parses() {
    let w = parse_workload(GOOD).unwrap();
    assert_eq!(w.layers.len(), 1);
    assert_eq!(w.not_lowered.len(), 1);
}

#[test]
fn an_unknown_compute_is_an_unknown_name() {
    expect("Conv mac {", "Conv conv {", "qc::ir::unknown_name", "conv", 1, 28);
}

#[test]
fn a_duplicate_dim_is_a_duplicate_definition() {
    expect("C=3, OY=112", "C=3, K=112", "qc::ir::duplicate_definition", "K", 2, 24);
}

#[test]
fn an_index_that_is_neither_a_dim_nor_a_relation_is_an_unknown_name() {
    expect("I[b][c][iy]", "I[b][c][iz]", "qc::ir::unknown_name", "iz", 3, 40);
}

#[test]
fn a_relation_term_over_a_non_dim_is_an_unknown_name() {
    expect("1*fy - 3", "1*fz - 3", "qc::ir::unknown_name", "fz", 4, 17);
}

#[test]
fn numbers_out_of_range_are_bad_numbers() {
    // bits are u32, dims u64, coefficients i64.
    expect("W bits 8", "W bits 4294967296", "qc::ir::bad_number", "4294967296", 6, 10);
    expect("K=64", "K=18446744073709551616", "qc::ir::bad_number", "18446744073709551616", 2, 15);
    expect(
        "2*oy + 1*fy",
        "2*oy - 9223372036854775809*fy",
        "qc::ir::bad_number",
        "- 9223372036854775809",
        4,
        13,
    );
    expect("layer 0", "layer 4294967296", "qc::ir::bad_number", "4294967296", 1, 7);
}

#[test]
fn a_duplicate_relation_or_operand_is_a_duplicate_definition() {
    expect(
        "pad (3, 3)\n",
        "pad (3, 3)\n  iy = 1*oy extent 1 pad (0, 0)\n",
        "qc::ir::duplicate_definition",
        "iy",
        5,
        3,
    );
    expect("* I[b][c][iy]", "* W[b][c][iy]", "qc::ir::duplicate_definition", "W", 3, 32);
    expect(
        "  I bits 8 value \"input\"",
        "  W bits 8 value \"w\" source other\n  I bits 8 value \"input\"",
        "qc::ir::duplicate_definition",
        "W",
        7,
        3,
    );
}

#[test]
fn operand_lines_must_match_the_einsum_line() {
    // A line for an operand that is not there.
    expect("  W bits 8", "  V bits 8", "qc::ir::unknown_name", "V", 6, 3);
    // An operand without its line: the error points at the operand in the einsum line.
    expect("  I bits 8 value \"input\" source input \"input\"\n", "", "qc::ir::parse", "I", 3, 32);
    // A psum on an input.
    expect("W bits 8 value", "W bits 8 psum 8 given value", "qc::ir::parse", "psum 8 given", 6, 12);
    // An unknown psum rule.
    expect("twice-activation", "thrice-activation", "qc::ir::unknown_name", "thrice-activation", 5, 20);
}

#[test]
fn the_einsum_operators_must_match_the_compute() {
    expect("O[b][k][oy] +=", "O[b][k][oy] =", "qc::ir::parse", "=", 3, 15);
    expect("W[k][c][fy] *", "W[k][c][fy] +", "qc::ir::parse", "+", 3, 30);
}

#[test]
fn grammar_errors_are_syntax_errors() {
    // An unknown source kind.
    let m = expect("source constant", "source weights", "qc::ir::parse", "w", 6, 40);
    assert!(
        m.ends_with("expected `layer \"name\"`, `node \"name\"`, `input \"name\"`, `constant`, or `other`"),
        "{m}"
    );
    // A missing `extent`.
    let m = expect("- 3 extent 224", "- 3 224", "qc::ir::parse", "2", 4, 24);
    assert!(m.ends_with("expected `extent E`"), "{m}");
    // A layer without its closing brace: `not_lowered` reads as the role of an operand line.
    let m = expect("}\nnot_lowered", "not_lowered", "qc::ir::parse", "\"", 8, 13);
    assert!(m.ends_with("expected `bits B`"), "{m}");
}

#[test]
fn a_bad_escape_is_a_bad_string() {
    expect("\"/conv1/Conv\"", "\"/conv1\\q\"", "qc::ir::bad_string", "\"/conv1\\q\"", 1, 9);
}
