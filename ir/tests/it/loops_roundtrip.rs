//! Property test of the loop-nest IR's text: every workload (valid as `spec/ir.md` describes:
//! unique dim names, relation names and operand roles; indices that are lower-cased dims or
//! relation names; relation terms over lower-cased dims) prints, parses back to an equal value
//! and prints again to identical text; printing is deterministic; and printed text with random
//! edits or truncations is parsed or refused without a panic.
//!
//! The generators cover names that need quoting (quotes, escapes, control characters, unicode,
//! the empty name, `_`, and the grammar's keywords), sizes and bit widths up to `u64::MAX` and
//! `u32::MAX`, coefficients and offsets down to `i64::MIN`, relations without terms, layers
//! without dims, indices or inputs, every compute, psum rule, source and quantization spec.
//!
//! Quantization parameters here are never NaN: `==` would not see their payload, and the graph
//! IR's own property test (`text_roundtrip.rs`) covers NaN payloads of the shared `quant(...)`.
//! Comparing the reprinted text catches the sign of zero.

use std::collections::HashSet;

use crate::common;

use proptest::prelude::*;
use proptest::sample::Index;
use qc_ir::text::{parse_workload, print_loop_nest, print_workload};
use qc_ir::{
    Compute, DataType, LoopDim, LoopNest, NotLowered, Operand, PsumRule, QuantSpec, Relation, Source,
    Workload,
};

// ---- names ----

/// Names that are easy to get wrong: quoting, escapes, keywords of the grammar.
const TRICKY: &[&str] = &[
    "x",
    "/conv1/Conv",
    "a b",
    "",
    "_",
    "\"",
    "\\",
    "\n",
    "\t\r",
    "\u{0}",
    "\u{7f}",
    "ü",
    "日本語",
    "layer",
    "dims",
    "bits",
    "psum",
    "value",
    "source",
    "other",
    "constant",
    "input",
    "extent",
    "pad",
    "quant",
    "not_lowered",
    "max",
    "mac",
    "none",
    "?",
    "[",
    "]",
    "=",
    "+=",
    "*",
    "-",
    "1",
    "{}",
    "// not a comment",
];

fn text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => prop::sample::select(TRICKY).prop_map(String::from),
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
    ]
}

/// Dim names: ZigZag's, and a few that need quotes or lower-case to something else.
const DIMS: &[&str] =
    &["B", "G", "K", "C", "OY", "OX", "FY", "FX", "H", "D", "A B", "Ü", "_", "X\"", "DIMS", "b"];
const RELATIONS: &[&str] = &["iy", "ix", "oy", "r\"q", "extent", "pad", "bits", "_", "", "ü", "k"];
const ROLES: &[&str] = &["O", "W", "I", "A", "B", "X", "_", "bits", "\"r\"", "quant", "dims", "", "max"];

fn opt<S: Strategy<Value: Clone> + Clone>(s: S) -> impl Strategy<Value = Option<S::Value>> + Clone {
    prop::option::weighted(0.5, s)
}

fn u64s() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![0u64..300, Just(u64::MAX), any::<u64>()]
}

fn u32s() -> impl Strategy<Value = u32> + Clone {
    prop_oneof![0u32..33, Just(u32::MAX), any::<u32>()]
}

fn i64s() -> impl Strategy<Value = i64> + Clone {
    prop_oneof![-8i64..8, Just(i64::MIN), Just(i64::MAX), any::<i64>()]
}

// ---- quantization (the shared generators, without NaN: workloads compare with `==`) ----

fn f64s() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        any::<f64>().prop_filter("not NaN", |x| !x.is_nan()),
        prop::sample::select(vec![0.0, -0.0, 1.0, 0.1, 1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::MIN]),
    ]
}

fn quant_spec() -> impl Strategy<Value = QuantSpec> + Clone {
    common::quant_spec(f64s())
}

// ---- loop nests ----

const COMPUTES: [Compute; 6] =
    [Compute::Mac, Compute::Max, Compute::Avg, Compute::Add, Compute::Sub, Compute::Mul];
const RULES: [PsumRule; 4] =
    [PsumRule::None, PsumRule::TwiceActivation, PsumRule::BitGrowth, PsumRule::Given];

fn source() -> impl Strategy<Value = Source> + Clone {
    prop_oneof![
        text().prop_map(Source::Layer),
        text().prop_map(Source::Node),
        Just(Source::Constant),
        text().prop_map(Source::GraphInput),
        Just(Source::Other),
    ]
}

/// An operand whose indices are still positions in the list of names an index may take.
#[derive(Clone, Debug)]
struct OperandSpec {
    role: String,
    index: Vec<Index>,
    precision: Option<u32>,
    quant: Option<QuantSpec>,
    source: Source,
    value: String,
}

fn operand() -> impl Strategy<Value = OperandSpec> + Clone {
    (
        prop_oneof![3 => prop::sample::select(ROLES).prop_map(String::from), 1 => text()],
        prop::collection::vec(any::<Index>(), 0..6),
        opt(u32s()),
        prop::option::weighted(0.3, quant_spec()),
        source(),
        text(),
    )
        .prop_map(|(role, index, precision, quant, source, value)| OperandSpec {
            role,
            index,
            precision,
            quant,
            source,
            value,
        })
}

type RelationSpec = (String, Vec<(i64, Index)>, i64, u64, (u64, u64));

fn relation() -> impl Strategy<Value = RelationSpec> + Clone {
    (
        prop_oneof![3 => prop::sample::select(RELATIONS).prop_map(String::from), 1 => text()],
        prop::collection::vec((i64s(), any::<Index>()), 0..4),
        i64s(),
        u64s(),
        (u64s(), u64s()),
    )
}

fn dim_name() -> impl Strategy<Value = String> + Clone {
    prop_oneof![3 => prop::sample::select(DIMS).prop_map(String::from), 1 => text()]
}

fn loop_nest() -> impl Strategy<Value = LoopNest> {
    (
        (
            text(),
            u32s(),
            prop_oneof![Just("Conv".to_string()), text()],
            prop::sample::select(COMPUTES.to_vec()),
        ),
        prop::collection::vec((dim_name(), u64s()), 0..9),
        operand(),
        prop::collection::vec(operand(), 0..4),
        prop::collection::vec(relation(), 0..4),
        (opt(u32s()), prop::sample::select(RULES.to_vec())),
    )
        .prop_map(
            |((name, id, op_type, compute), dims, output, inputs, relations, (psum_precision, psum_rule))| {
                let mut seen = HashSet::new();
                let dims: Vec<LoopDim> = dims
                    .into_iter()
                    .filter(|d| seen.insert(d.0.clone()))
                    .map(|(name, size)| LoopDim { name, size })
                    .collect();
                let lower: Vec<String> = dims.iter().map(|d| d.name.to_lowercase()).collect();
                let mut seen = HashSet::new();
                let relations: Vec<Relation> = relations
                    .into_iter()
                    .filter(|r| seen.insert(r.0.clone()))
                    .map(|(name, terms, offset, extent, padding)| Relation {
                        name,
                        terms: if lower.is_empty() {
                            Vec::new()
                        } else {
                            terms.into_iter().map(|(c, i)| (c, i.get(&lower).clone())).collect()
                        },
                        offset,
                        extent,
                        padding,
                    })
                    .collect();
                let names: Vec<String> =
                    lower.iter().cloned().chain(relations.iter().map(|r| r.name.clone())).collect();
                let mut seen = HashSet::new();
                let mut operands: Vec<Operand> = std::iter::once(output)
                    .chain(inputs)
                    .filter(|o| seen.insert(o.role.clone()))
                    .map(|o| Operand {
                        role: o.role,
                        index: if names.is_empty() {
                            Vec::new()
                        } else {
                            o.index.iter().map(|i| i.get(&names).clone()).collect()
                        },
                        precision: o.precision,
                        quant: o.quant,
                        source: o.source,
                        value: o.value,
                    })
                    .collect();
                let output = operands.remove(0);
                LoopNest {
                    name,
                    id,
                    op_type,
                    compute,
                    dims,
                    output,
                    inputs: operands,
                    relations,
                    psum_precision,
                    psum_rule,
                }
            },
        )
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        prop::collection::vec(loop_nest(), 0..4),
        prop::collection::vec(
            (
                text(),
                prop_oneof![Just("Relu".to_string()), text()],
                text(),
                prop::option::of(any::<u64>()),
                prop::collection::vec(source(), 0..3),
            )
                .prop_map(|(node, op_type, reason, elements, inputs)| NotLowered {
                    node,
                    op_type,
                    reason,
                    elements,
                    inputs,
                }),
            0..3,
        ),
    )
        .prop_map(|(layers, not_lowered)| Workload { layers, not_lowered })
}

fn assert_round_trips(w: &Workload) {
    let text = print_workload(w);
    let parsed = parse_workload(&text).unwrap_or_else(|e| panic!("{e}\n--- text ---\n{text}"));
    assert!(parsed == *w, "the parsed workload differs\n--- text ---\n{text}\n--- parsed ---\n{parsed:#?}");
    assert_eq!(print_workload(&parsed), text);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn workloads_round_trip(w in workload()) {
        assert_round_trips(&w);
        // Deterministic: the same workload, and a clone of it, print the same text.
        prop_assert_eq!(print_workload(&w), print_workload(&w.clone()));
        // A lone loop nest prints as the workload of that one layer.
        for l in &w.layers {
            let one = Workload { layers: vec![l.clone()], not_lowered: Vec::new() };
            prop_assert_eq!(print_loop_nest(l), print_workload(&one));
        }
    }

    #[test]
    fn damaged_text_does_not_panic(
        w in workload(),
        edits in prop::collection::vec(
            (any::<Index>(), 0usize..4, prop::sample::select(vec![
                "", "\"", "\\", "[", "]", "{", "}", "(", ")", "=", "+=", "-", "*", "_", "?", ",", "9",
                "99999999999999999999", "-9223372036854775809", "x", "layer", "dims", "bits", "psum",
                "source", "quant(", "\n", " ", "//", "é",
            ])),
            1..4,
        ),
        truncate in any::<Option<Index>>(),
    ) {
        let mut text: Vec<char> = print_workload(&w).chars().collect();
        for (at, len, insert) in edits {
            let a = at.index(text.len() + 1);
            let b = (a + len).min(text.len());
            text.splice(a..b, insert.chars());
        }
        if let Some(t) = truncate {
            text.truncate(t.index(text.len() + 1));
        }
        let text: String = text.into_iter().collect();
        if let Ok(w) = parse_workload(&text) {
            // Whatever parses prints and parses back to itself.
            assert_round_trips(&w);
        }
    }
}

// ---- fixed examples ----

/// The example of `spec/ir.md`, written by hand, parses, and prints back byte for byte.
#[test]
fn the_spec_example_round_trips() {
    let text = r#"layer 0 "/conv1/Conv" Conv mac {
  dims B=1, G=1, K=64, C=3, OY=112, OX=112, FY=7, FX=7
  O[b][g][k][oy][ox] += W[g][k][c][fy][fx] * I[b][g][c][iy][ix]
  iy = 2*oy + 1*fy - 3 extent 224 pad (3, 3)
  ix = 2*ox + 1*fx - 3 extent 224 pad (3, 3)
  O bits 8 psum 16 twice-activation value "x1" source other
  W bits 8 value "conv1.weight" source constant quant(INT8, scale = 0.05, zero_point = 0.0, narrow, rounding = half_even, origin = onnx_qdq)
  I bits 8 value "input" source input "input"
}

layer 1 "/pool/MaxPool" MaxPool max {
  dims B=1, G=64, OY=56, OX=56, FY=3, FX=3
  O[b][g][oy][ox] max= I[b][g][iy][ix]
  iy = 2*oy + 1*fy - 1 extent 112 pad (1, 1)
  ix = 2*ox + 1*fx - 1 extent 112 pad (1, 1)
  O bits ? value "p1" source other
  I bits ? value "x1" source layer "/conv1/Conv"
}

layer 2 "/add/Add" Add add {
  dims B=1, K=64, OY=56, OX=56
  O[b][k][oy][ox] = A[b][k][oy][ox] + B[b][k][oy][ox]
  O bits 8 value "s" source other
  A bits 8 value "p1" source layer "/pool/MaxPool"
  B bits 8 value "r" source node "/relu/Relu"
}

not_lowered "/relu/Relu" Relu "element-wise op without a cost model" reads [layer "/conv1/Conv"]
"#;
    let w = parse_workload(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(print_workload(&w), text);
    let conv = &w.layers[0];
    assert_eq!((conv.id, conv.name.as_str(), conv.op_type.as_str()), (0, "/conv1/Conv", "Conv"));
    assert_eq!(conv.compute, Compute::Mac);
    assert_eq!(conv.size("FY"), Some(7));
    assert_eq!(conv.iterations(), 64 * 3 * 112 * 112 * 49);
    assert_eq!(
        conv.relation("iy"),
        Some(&Relation {
            name: "iy".into(),
            terms: vec![(2, "oy".into()), (1, "fy".into())],
            offset: -3,
            extent: 224,
            padding: (3, 3)
        })
    );
    assert_eq!((conv.psum_precision, conv.psum_rule), (Some(16), PsumRule::TwiceActivation));
    let wgt = conv.operand("W").expect("W");
    assert_eq!(wgt.source, Source::Constant);
    assert_eq!(wgt.quant.as_ref().map(|q| q.dtype), Some(DataType::Int { bits: 8, signed: true }));
    assert_eq!(conv.operand("I").map(|o| &o.source), Some(&Source::GraphInput("input".into())));
    assert_eq!(w.layers[1].inputs[0].source, Source::Layer("/conv1/Conv".into()));
    assert_eq!(w.layers[1].output.precision, None);
    assert_eq!(w.not_lowered[0].reason, "element-wise op without a cost model");
}

/// Edge cases written out: no dims, no inputs, scalar operands, a relation without terms,
/// extreme numbers, names that need quotes, a psum without bits, and comments.
#[test]
fn edge_cases_round_trip() {
    let op = |role: &str, index: Vec<&str>| Operand {
        role: role.into(),
        index: index.into_iter().map(String::from).collect(),
        precision: None,
        quant: None,
        source: Source::Other,
        value: String::new(),
    };
    let w = Workload {
        layers: vec![
            LoopNest {
                name: "a \"b\"\n\\".into(),
                id: u32::MAX,
                op_type: "my op".into(),
                compute: Compute::Sub,
                dims: vec![],
                output: op("_", vec![]),
                inputs: vec![],
                relations: vec![Relation {
                    name: "iy".into(),
                    terms: vec![],
                    offset: i64::MIN,
                    extent: u64::MAX,
                    padding: (u64::MAX, 0),
                }],
                psum_precision: None,
                psum_rule: PsumRule::Given,
            },
            LoopNest {
                name: String::new(),
                id: 0,
                op_type: "Gemm".into(),
                compute: Compute::Mul,
                dims: vec![
                    LoopDim { name: "K".into(), size: u64::MAX },
                    LoopDim { name: "A B".into(), size: 0 },
                ],
                output: op("O", vec!["k", "a b"]),
                inputs: vec![op("bits", vec![]), op("", vec!["r"])],
                relations: vec![Relation {
                    name: "r".into(),
                    terms: vec![
                        (i64::MIN, "k".into()),
                        (-1, "a b".into()),
                        (0, "k".into()),
                        (i64::MAX, "k".into()),
                    ],
                    offset: i64::MAX,
                    extent: 0,
                    padding: (0, 0),
                }],
                psum_precision: Some(u32::MAX),
                psum_rule: PsumRule::None,
            },
        ],
        not_lowered: vec![NotLowered {
            node: "".into(),
            op_type: "".into(),
            reason: "\u{0}".into(),
            elements: Some(u64::MAX),
            inputs: vec![Source::Node("\u{1}".into())],
        }],
    };
    assert_round_trips(&w);
    let text = print_workload(&w);
    assert!(text.contains("  \"_\" = _\n"), "{text}");
    assert!(text.contains("r = -9223372036854775808*k - 1*\"a b\" + 0*k + 9223372036854775807*k + 9223372036854775807 extent"), "{text}");
    assert!(
        text.contains("iy = -9223372036854775808 extent 18446744073709551615 pad (18446744073709551615, 0)"),
        "{text}"
    );
    assert!(text.contains("\"_\" bits ? psum ? given value"), "{text}");

    // Comments and free layout are accepted.
    let w2 =
        parse_workload(&format!("// a workload\n{}", text.replace("\n  ", "\n    // indented\n  "))).unwrap();
    assert_eq!(w2, w);
    assert_eq!(parse_workload("").unwrap(), Workload::default());
    assert_eq!(print_workload(&Workload::default()), "");
}

/// Guards the generators: in 256 samples from a fixed seed, every construct listed appears in
/// some printed workload.
#[test]
fn generators_reach_every_construct() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let constructs = [
        ("a mac layer", " mac {"),
        ("a max layer", " max= "),
        ("an add layer", " + "),
        ("a sub layer", " sub {"),
        ("no inputs", " _\n"),
        ("two indices", "]["),
        ("a quoted index", "[\""),
        ("a quoted dim", "dims \""),
        ("an empty dims line", "  dims\n"),
        ("a quoted role", "\n  \""),
        ("a relation with terms", "*"),
        ("a negative term", " - "),
        ("a relation without terms", "= -"),
        ("i64::MIN", "9223372036854775808"),
        ("u64::MAX", "18446744073709551615"),
        ("u32::MAX", "4294967295"),
        ("unknown bits", "bits ?"),
        ("a psum", " psum "),
        ("twice-activation", "twice-activation"),
        ("bit-growth", "bit-growth"),
        ("a layer source", "source layer \""),
        ("an input source", "source input \""),
        ("a constant source", "source constant"),
        ("a node source", "source node \""),
        ("a not_lowered line that reads", "\" reads ["),
        ("a quantization spec", "quant("),
        ("an escape", "\\\""),
        ("a not_lowered line", "not_lowered "),
    ];
    let mut seen = vec![false; constructs.len()];
    let mut runner = TestRunner::deterministic();
    let workloads = workload();
    for _ in 0..256 {
        let w = workloads.new_tree(&mut runner).expect("a workload").current();
        let text = print_workload(&w);
        for (s, (_, pat)) in seen.iter_mut().zip(&constructs) {
            *s |= text.contains(pat);
        }
    }
    let missing: Vec<&str> = constructs.iter().zip(&seen).filter(|(_, s)| !**s).map(|(c, _)| c.0).collect();
    assert!(missing.is_empty(), "the generators never made: {missing:?}");
}

/// The example of `spec/ir.md` ("Loop-nest IR", "An example") parses and prints back as written.
#[test]
fn the_example_in_the_spec_parses() {
    let spec = include_str!("../../../spec/ir.md");
    let section = &spec[spec.find("## Loop-nest IR").expect("the section")..];
    let block = &section[section.find("```\n").expect("a block") + 4..];
    let block = &block[..block.find("```").expect("the end of the block")];
    let w = parse_workload(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
    assert_eq!(w.layers.len(), 2);
    assert_eq!(w.not_lowered.len(), 1);
    assert_eq!(print_workload(&w), block);
}

/// [`Workload::dataflow`] follows data through layers not kept and nodes not lowered, as ZigZag
/// connects the predecessors of a removed node to its successors.
#[test]
fn dataflow_skips_what_is_not_kept() {
    let text = r#"layer 0 "conv1" Conv mac {
  dims K=2
  O[k] += W[k]
  O bits 8 value "a" source other
  W bits 8 value "w" source input "x"
}

layer 1 "pool" MaxPool max {
  dims K=2
  O[k] max= I[k]
  O bits 8 value "p" source other
  I bits 8 value "r" source node "relu"
}

layer 2 "conv2" Conv mac {
  dims K=2
  O[k] += W[k] * I[k]
  O bits 8 value "b" source other
  W bits 8 value "w2" source constant
  I bits 8 value "p" source layer "pool"
}

layer 3 "conv3" Conv mac {
  dims K=2
  O[k] += W[k] * I[k]
  O bits 8 value "c" source other
  W bits 8 value "w3" source constant
  I bits 8 value "s" source node "add"
}

not_lowered "relu" Relu "no cost model" reads [layer "conv1"]
not_lowered "add" Add "no cost model" reads [layer "conv2", node "relu"]
"#;
    let w = parse_workload(text).unwrap_or_else(|e| panic!("{e}"));
    let convs = w.dataflow(|l| l.op_type == "Conv");
    assert_eq!(convs, vec![vec![], vec![], vec![0], vec![2, 0]]);
    let all = w.dataflow(|_| true);
    assert_eq!(all, vec![vec![], vec![0], vec![1], vec![2, 0]]);
}
