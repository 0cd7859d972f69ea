//! Property test of the textual IR: every model (and lone graph) that qc-ir's public API can
//! build prints in full form, parses back to an equal value, and prints again to identical text;
//! printing is deterministic; a summary that abbreviates a constant does not parse; and printed
//! text with a few characters damaged is parsed or refused without a panic. Regression tests at
//! the end keep the minimal failing inputs the properties found.
//!
//! The generators cover value names that need quoting (spaces, unicode, `%`, quotes, control
//! characters, the empty name, keywords) and duplicate names (so `%x#N` references appear);
//! known, symbolic and unknown dimensions and every element type including `type#N`; tensors
//! with raw data, every typed list (floats with NaN payloads, -0.0 and infinities; strings with
//! bytes that are not UTF-8), external data and sparse tensors; attributes of every kind,
//! including nested graphs (two levels deep), a declared kind that differs from the value and
//! `ref_attr_name`; op domains (absent, empty, dotted, needing quotes), absent inputs and
//! outputs, op names, docs, metadata and device configurations; `value_info`, initializers,
//! quantization annotations, declaration overrides and quantization specs on values; and at model
//! level the header fields, functions and training information. Graphs are also edited after
//! they are built (`remove_op`, `set_input`), as passes do.
//!
//! Generated graphs nest at most two levels of graphs in attributes, so the text stays far below
//! the parser's nesting limit (64 brackets), which a deeper graph could exceed by design.
//!
//! `==` on the IR compares floats by value, so NaN payloads and the sign of zero would escape it:
//! the comparison here also checks every float bit for bit (see [`canonical`]).

use crate::common;
use bytes::Bytes;

use crate::common::small_i64;
use proptest::prelude::*;
use proptest::sample::Index;
use qc_ir::text::{Form, parse_graph, parse_model, print_graph, print_model};
use qc_ir::{
    AttrKind, AttrValue, Attribute, Const, DeclList, DeclOverride, Dim, ElemType, ExternalRef, Function,
    Graph, MetaEntry, Model, Op, OpId, OpsetImport, QuantParam, QuantSpec, Shape, SparseTensor, Tensor,
    TensorAnnotation, TensorData, TrainingInfo, TypeInfo, ValueId, ValueType,
};

// ---- text and scalars ----

/// Names that are easy to get wrong: quoting, escapes, keywords of the grammar, `#`, `//`.
const TRICKY: &[&str] = &[
    "x",
    "y",
    "a.b/c-d",
    "1",
    "_",
    "",
    " ",
    "a b",
    "%",
    "%x",
    "@",
    "\"",
    "\\",
    "x#1",
    "a//b",
    "a/",
    "ü",
    "日本語",
    "\n",
    "\t\r",
    "\u{0}",
    "\u{7f}",
    "\u{2028}",
    "graph",
    "name",
    "doc",
    "unnamed",
    "default_location",
    "denotations",
    "denotation",
    "segment",
    "values",
    "value",
    "info",
    "init",
    "quant",
    "none",
    "type",
    "ints",
    "?",
    "*",
    "inf",
    "nan",
    "{}",
    "a:b",
    "a::b",
    "->",
];

fn text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => prop::sample::select(TRICKY).prop_map(String::from),
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
    ]
}

fn opt<S: Strategy<Value: Clone> + Clone>(s: S) -> impl Strategy<Value = Option<S::Value>> + Clone {
    prop::option::weighted(0.4, s)
}

fn raw_bytes() -> impl Strategy<Value = Bytes> + Clone {
    prop::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from)
}

/// Attribute strings and string data: UTF-8 text or arbitrary bytes.
fn byte_string() -> impl Strategy<Value = Bytes> + Clone {
    prop_oneof![text().prop_map(Bytes::from), raw_bytes()]
}

fn meta() -> impl Strategy<Value = Vec<MetaEntry>> + Clone {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec((text(), text()).prop_map(|(k, v)| MetaEntry::new(k, v)), 1..3),
    ]
}

fn f32s() -> impl Strategy<Value = f32> + Clone {
    prop_oneof![
        any::<f32>(),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::from_bits(1),
        ]),
        // NaN with a payload (quiet or signalling, either sign).
        (any::<bool>(), 1u32..(1 << 23))
            .prop_map(|(s, m)| f32::from_bits((u32::from(s) << 31) | 0x7f80_0000 | m)),
        any::<u32>().prop_map(f32::from_bits),
    ]
}

fn f64s() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        any::<f64>(),
        prop::sample::select(vec![
            0.0,
            -0.0,
            0.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::from_bits(1),
        ]),
        (any::<bool>(), 1u64..(1 << 52))
            .prop_map(|(s, m)| f64::from_bits((u64::from(s) << 63) | 0x7ff0_0000_0000_0000 | m)),
        any::<u64>().prop_map(f64::from_bits),
    ]
}

// ---- types ----

/// Every element type; unknown codes become `Other` through `from_code`, which never makes
/// `Other(c)` for a known code `c` (the text spells those by name, so that value is not one the
/// IR can hold).
fn elem_type() -> impl Strategy<Value = ElemType> + Clone {
    prop_oneof![
        3 => (0i32..=26).prop_map(ElemType::from_code),
        1 => any::<i32>().prop_map(ElemType::from_code),
    ]
}

fn dim() -> impl Strategy<Value = Dim> + Clone {
    prop_oneof![
        2 => prop_oneof![0u64..10, any::<u64>()].prop_map(Dim::Known),
        2 => text().prop_map(Dim::Sym),
        1 => Just(Dim::Unknown),
    ]
}

fn shape() -> impl Strategy<Value = Shape> + Clone {
    (
        prop::collection::vec(dim(), 0..4),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec((prop_oneof![0usize..6, any::<usize>()], text()), 1..3),
        ],
    )
        .prop_map(|(dims, denotations)| Shape { dims, denotations })
}

fn type_info(depth: u32) -> BoxedStrategy<TypeInfo> {
    let leaf = prop_oneof![
        Just(None),
        (opt(elem_type()), opt(shape())).prop_map(|(elem, shape)| Some(ValueType::Tensor { elem, shape })),
        (opt(elem_type()), opt(shape()))
            .prop_map(|(elem, shape)| Some(ValueType::SparseTensor { elem, shape })),
        (opt(text()), opt(text())).prop_map(|(domain, name)| Some(ValueType::Opaque { domain, name })),
    ];
    let ty = if depth == 0 {
        leaf.boxed()
    } else {
        let inner = opt(type_info(depth - 1).prop_map(Box::new));
        prop_oneof![
            3 => leaf,
            1 => inner.clone().prop_map(|t| Some(ValueType::Sequence(t))),
            1 => (opt(elem_type()), inner.clone()).prop_map(|(key, value)| Some(ValueType::Map { key, value })),
            1 => inner.prop_map(|t| Some(ValueType::Optional(t))),
        ]
        .boxed()
    };
    (ty, opt(text())).prop_map(|(ty, denotation)| TypeInfo { ty, denotation }).boxed()
}

// ---- constants ----

fn external_ref() -> impl Strategy<Value = ExternalRef> + Clone {
    (meta(), text(), any::<u64>(), opt(any::<u64>()))
        .prop_map(|(entries, location, offset, length)| ExternalRef { entries, location, offset, length })
}

fn tensor_data() -> impl Strategy<Value = TensorData> + Clone {
    use prop::collection::vec;
    prop_oneof![
        Just(TensorData::Empty),
        raw_bytes().prop_map(TensorData::Raw),
        vec(f32s(), 0..4).prop_map(TensorData::Floats),
        vec(any::<i32>(), 0..4).prop_map(TensorData::Int32s),
        vec(any::<i64>(), 0..4).prop_map(TensorData::Int64s),
        vec(f64s(), 0..4).prop_map(TensorData::Doubles),
        vec(any::<u64>(), 0..4).prop_map(TensorData::Uint64s),
        vec(byte_string(), 0..3).prop_map(TensorData::Strings),
        external_ref().prop_map(TensorData::External),
        // More than the summary form shows.
        vec(f32s(), 17..24).prop_map(TensorData::Floats),
        vec(any::<u8>(), 65..80).prop_map(|b| TensorData::Raw(Bytes::from(b))),
    ]
}

fn tensor() -> impl Strategy<Value = Tensor> + Clone {
    (
        opt(text()),
        opt(elem_type()),
        prop::collection::vec(small_i64(), 0..4),
        tensor_data(),
        opt((opt(any::<i64>()), opt(any::<i64>()))),
        opt(text()),
        meta(),
        any::<bool>(),
    )
        .prop_map(
            |(name, elem, dims, data, segment, doc_string, metadata, explicit_default_location)| Tensor {
                name,
                elem,
                dims,
                data,
                segment,
                doc_string,
                metadata,
                explicit_default_location,
            },
        )
}

fn sparse() -> impl Strategy<Value = SparseTensor> + Clone {
    (opt(tensor()), opt(tensor()), prop::collection::vec(small_i64(), 0..3))
        .prop_map(|(values, indices, dims)| SparseTensor { values, indices, dims })
}

// ---- quantization ----

fn quant_spec() -> impl Strategy<Value = QuantSpec> + Clone {
    common::quant_spec(f64s())
}

// ---- attributes ----

fn attr_value(depth: u32) -> BoxedStrategy<AttrValue> {
    use prop::collection::vec;
    let leaf = prop_oneof![
        Just(AttrValue::None),
        f32s().prop_map(AttrValue::Float),
        any::<i64>().prop_map(AttrValue::Int),
        byte_string().prop_map(AttrValue::String),
        tensor().prop_map(|t| AttrValue::Tensor(Box::new(t))),
        sparse().prop_map(|s| AttrValue::SparseTensor(Box::new(s))),
        type_info(1).prop_map(|t| AttrValue::TypeProto(Box::new(t))),
        vec(f32s(), 0..4).prop_map(AttrValue::Floats),
        vec(any::<i64>(), 0..4).prop_map(AttrValue::Ints),
        vec(byte_string(), 0..3).prop_map(AttrValue::Strings),
        vec(tensor(), 0..3).prop_map(AttrValue::Tensors),
        vec(sparse(), 0..2).prop_map(AttrValue::SparseTensors),
        vec(type_info(1), 0..3).prop_map(AttrValue::TypeProtos),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        6 => leaf,
        1 => graph(depth - 1).prop_map(|g| AttrValue::Graph(Box::new(g))),
        1 => vec(graph(depth - 1), 0..3).prop_map(AttrValue::Graphs),
    ]
    .boxed()
}

/// The `type` discriminator: usually the kind of the value, sometimes absent or another kind.
#[derive(Clone, Debug)]
enum Declared {
    OfValue,
    Absent,
    Kind(AttrKind),
}

fn attribute(depth: u32) -> BoxedStrategy<Attribute> {
    let declared = prop_oneof![
        4 => Just(Declared::OfValue),
        1 => Just(Declared::Absent),
        1 => (0i32..15).prop_map(|c| Declared::Kind(AttrKind::from_code(c).expect("kind code"))),
    ];
    (text(), attr_value(depth), declared, opt(text()), opt(text()))
        .prop_map(|(name, value, declared, doc_string, ref_attr_name)| {
            let declared_kind = match declared {
                Declared::OfValue => Some(value.kind()),
                Declared::Absent => None,
                Declared::Kind(k) => Some(k),
            };
            Attribute { name, value, declared_kind, doc_string, ref_attr_name }
        })
        .boxed()
}

// ---- graphs ----

fn domain() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "ai.onnx",
            "com.example.ops",
            "qonnx.custom_op.general",
            "onnx.brevitas",
            "a-b.c_d",
            "_",
            "1abc",
            "with space",
        ])
        .prop_map(String::from),
        text(),
    ]
}

fn op_type() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        prop::sample::select(vec!["Relu", "Conv", "Quant", "If", "Loop", "Add", "MyCustomOp"])
            .prop_map(String::from),
        text(),
    ]
}

/// An op before it is added to a graph, with its inputs and outputs as picks among the values.
#[derive(Clone, Debug)]
struct OpSpec {
    op: Op,
    inputs: Vec<Option<Index>>,
    outputs: Vec<Option<Index>>,
}

fn op_spec(depth: u32) -> impl Strategy<Value = OpSpec> {
    use prop::collection::vec;
    let slot = || prop::option::weighted(0.8, any::<Index>());
    (
        (op_type(), opt(domain()), opt(text()), opt(text()), opt(text()), meta()),
        vec(raw_bytes(), 0..2),
        vec(attribute(depth), 0..3),
        vec(slot(), 0..4),
        vec(slot(), 0..3),
    )
        .prop_map(
            |((ty, domain, name, overload, doc_string, metadata), devices, attrs, inputs, outputs)| {
                let mut op = Op::new(ty, domain);
                op.name = name;
                op.overload = overload;
                op.doc_string = doc_string;
                op.metadata = metadata;
                op.device_configurations = devices;
                op.attrs = attrs;
                OpSpec { op, inputs, outputs }
            },
        )
}

#[derive(Clone, Debug)]
enum ConstSpec {
    /// A dense constant; `true`: its tensor is named like the value (the usual case).
    Dense(Box<Tensor>, bool),
    Sparse(Box<SparseTensor>),
}

#[derive(Clone, Debug)]
struct ValueSpec {
    name: String,
    ty: Option<TypeInfo>,
    doc_string: Option<String>,
    metadata: Vec<MetaEntry>,
    init: Option<ConstSpec>,
    quant: Option<QuantSpec>,
}

fn value_spec() -> impl Strategy<Value = ValueSpec> {
    let init = prop_oneof![
        3 => (tensor(), prop::bool::weighted(0.7)).prop_map(|(t, same)| ConstSpec::Dense(Box::new(t), same)),
        1 => sparse().prop_map(|s| ConstSpec::Sparse(Box::new(s))),
    ];
    (text(), opt(type_info(2)), opt(text()), meta(), prop::option::weighted(0.3, init), opt(quant_spec()))
        .prop_map(|(name, ty, doc_string, metadata, init, quant)| ValueSpec {
            name,
            ty,
            doc_string,
            metadata,
            init,
            quant,
        })
}

#[derive(Clone, Debug)]
struct GraphSpec {
    name: Option<String>,
    doc_string: Option<String>,
    metadata: Vec<MetaEntry>,
    values: Vec<ValueSpec>,
    ops: Vec<OpSpec>,
    /// inputs, outputs, value_info, initializers, sparse_initializers
    lists: [Vec<Index>; 5],
    annotations: Vec<TensorAnnotation>,
    overrides: Vec<DeclOverride>,
    /// Edits after building, as passes make them: rewire an input, remove an op.
    edits: Vec<Edit>,
}

#[derive(Clone, Debug)]
enum Edit {
    SetInput { op: Index, slot: Index, value: Option<Index> },
    RemoveOp(Index),
}

fn graph(depth: u32) -> BoxedStrategy<Graph> {
    use prop::collection::vec;
    let list = || vec(any::<Index>(), 0..3);
    let annotation =
        (opt(text()), meta()).prop_map(|(tensor_name, entries)| TensorAnnotation { tensor_name, entries });
    let decl_override = (
        prop::sample::select(vec![DeclList::Inputs, DeclList::Outputs, DeclList::ValueInfo]),
        prop_oneof![0usize..100, any::<usize>()],
        text(),
        opt(type_info(1)),
        opt(text()),
        meta(),
    )
        .prop_map(|(list, index, name, ty, doc_string, metadata)| DeclOverride {
            list,
            index,
            name,
            ty,
            doc_string,
            metadata,
        });
    let edit = prop_oneof![
        (any::<Index>(), any::<Index>(), prop::option::weighted(0.8, any::<Index>()))
            .prop_map(|(op, slot, value)| Edit::SetInput { op, slot, value }),
        any::<Index>().prop_map(Edit::RemoveOp),
    ];
    let max_ops = if depth == 0 { 3 } else { 5 };
    (
        (opt(text()), opt(text()), meta()),
        vec(value_spec(), 0..7),
        vec(op_spec(depth), 0..max_ops),
        [list(), list(), list(), list(), list()],
        vec(annotation, 0..2),
        vec(decl_override, 0..2),
        prop_oneof![2 => Just(Vec::new()), 1 => vec(edit, 1..3)],
    )
        .prop_map(|((name, doc_string, metadata), values, ops, lists, annotations, overrides, edits)| {
            build_graph(GraphSpec {
                name,
                doc_string,
                metadata,
                values,
                ops,
                lists,
                annotations,
                overrides,
                edits,
            })
        })
        .boxed()
}

/// Builds the graph through the public API: `add_value` (so names may repeat), `add_op`, then
/// `set_input` and `remove_op` (which leave op ids and use lists unlike a freshly built graph's).
fn build_graph(s: GraphSpec) -> Graph {
    let mut g = Graph::new();
    g.name = s.name;
    g.doc_string = s.doc_string;
    g.metadata = s.metadata;
    let n = s.values.len();
    for v in s.values {
        let id = g.add_value(&v.name);
        let name = v.name.clone();
        let value = g.value_mut(id);
        value.ty = v.ty;
        value.doc_string = v.doc_string;
        value.metadata = v.metadata;
        value.quant = v.quant;
        value.init = v.init.map(|c| match c {
            ConstSpec::Dense(mut t, same) => {
                if same {
                    t.name = Some(name);
                }
                Const::Dense(t)
            }
            ConstSpec::Sparse(sp) => Const::Sparse(sp),
        });
    }
    let pick = |i: &Index| ValueId::from_index(i.index(n));
    for o in s.ops {
        let map = |slots: Vec<Option<Index>>| -> Vec<Option<ValueId>> {
            slots.iter().map(|x| x.as_ref().filter(|_| n > 0).map(pick)).collect()
        };
        let inputs = map(o.inputs);
        let outputs = map(o.outputs);
        g.add_op(o.op, inputs, outputs);
    }
    for e in s.edits {
        let ops: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
        if ops.is_empty() {
            break;
        }
        match e {
            Edit::SetInput { op, slot, value } => {
                let id = *op.get(&ops);
                let slots = g.op(id).inputs().len();
                if slots > 0 {
                    let value = value.filter(|_| n > 0).map(|v| pick(&v));
                    g.set_input(id, slot.index(slots), value);
                }
            }
            Edit::RemoveOp(op) => {
                g.remove_op(*op.get(&ops));
            }
        }
    }
    if n > 0 {
        let [inputs, outputs, value_info, inits, sparse_inits] = s.lists;
        g.inputs = inputs.iter().map(pick).collect();
        g.outputs = outputs.iter().map(pick).collect();
        g.value_info = value_info.iter().map(pick).collect();
        g.initializers = inits.iter().map(pick).collect();
        g.sparse_initializers = sparse_inits.iter().map(pick).collect();
    }
    g.quantization_annotations = s.annotations;
    g.decl_overrides = s.overrides;
    g
}

// ---- models ----

fn opset() -> impl Strategy<Value = OpsetImport> + Clone {
    (opt(domain()), opt(any::<i64>())).prop_map(|(domain, version)| OpsetImport { domain, version })
}

fn function() -> impl Strategy<Value = Function> {
    use prop::collection::vec;
    (
        (opt(text()), opt(domain()), opt(text()), opt(text()), meta()),
        (vec(text(), 0..3), vec(text(), 0..3), vec(text(), 0..3)),
        vec(attribute(1), 0..2),
        graph(1),
        vec(opset(), 0..2),
    )
        .prop_map(
            |(
                (name, domain, overload, doc_string, metadata),
                (inputs, outputs, attributes),
                attribute_defaults,
                body,
                opset_imports,
            )| Function {
                name,
                domain,
                overload,
                inputs,
                outputs,
                attributes,
                attribute_defaults,
                body,
                opset_imports,
                doc_string,
                metadata,
            },
        )
}

fn training() -> impl Strategy<Value = TrainingInfo> {
    (opt(graph(1)), opt(graph(1)), meta(), meta()).prop_map(
        |(initialization, algorithm, initialization_binding, update_binding)| TrainingInfo {
            initialization,
            algorithm,
            initialization_binding,
            update_binding,
        },
    )
}

fn model() -> impl Strategy<Value = Model> {
    use prop::collection::vec;
    (
        (opt(any::<i64>()), vec(opset(), 0..3), opt(text()), opt(text()), opt(text()), opt(any::<i64>())),
        (opt(text()), meta(), vec(raw_bytes(), 0..2)),
        graph(2),
        prop_oneof![2 => Just(Vec::new()), 1 => vec(function(), 1..3)],
        prop_oneof![2 => Just(Vec::new()), 1 => vec(training(), 1..3)],
    )
        .prop_map(
            |(
                (ir_version, opset_imports, producer_name, producer_version, domain, model_version),
                (doc_string, metadata, device_configurations),
                graph,
                functions,
                training_info,
            )| Model {
                ir_version,
                opset_imports,
                producer_name,
                producer_version,
                domain,
                model_version,
                doc_string,
                metadata,
                graph,
                functions,
                training_info,
                device_configurations,
                resolver: None,
            },
        )
}

// ---- comparison ----

/// A float somewhere in the IR.
enum Float<'a> {
    F32(&'a mut f32),
    F64(&'a mut f64),
}

fn visit_tensor(t: &mut Tensor, f: &mut dyn FnMut(Float<'_>)) {
    match &mut t.data {
        TensorData::Floats(v) => v.iter_mut().for_each(|x| f(Float::F32(x))),
        TensorData::Doubles(v) => v.iter_mut().for_each(|x| f(Float::F64(x))),
        _ => {}
    }
}

fn visit_sparse(s: &mut SparseTensor, f: &mut dyn FnMut(Float<'_>)) {
    for t in s.values.iter_mut().chain(s.indices.iter_mut()) {
        visit_tensor(t, f);
    }
}

fn visit_attr(v: &mut AttrValue, f: &mut dyn FnMut(Float<'_>)) {
    match v {
        AttrValue::Float(x) => f(Float::F32(x)),
        AttrValue::Floats(v) => v.iter_mut().for_each(|x| f(Float::F32(x))),
        AttrValue::Tensor(t) => visit_tensor(t, f),
        AttrValue::Tensors(ts) => ts.iter_mut().for_each(|t| visit_tensor(t, f)),
        AttrValue::SparseTensor(s) => visit_sparse(s, f),
        AttrValue::SparseTensors(ss) => ss.iter_mut().for_each(|s| visit_sparse(s, f)),
        AttrValue::Graph(g) => visit_graph(g, f),
        AttrValue::Graphs(gs) => gs.iter_mut().for_each(|g| visit_graph(g, f)),
        _ => {}
    }
}

fn visit_qparam(p: &mut QuantParam, f: &mut dyn FnMut(Float<'_>)) {
    match p {
        QuantParam::PerTensor(x) => f(Float::F64(x)),
        QuantParam::PerAxis { values, .. } | QuantParam::Blocked { values, .. } => {
            values.iter_mut().for_each(|x| f(Float::F64(x)))
        }
    }
}

fn visit_graph(g: &mut Graph, f: &mut dyn FnMut(Float<'_>)) {
    for i in 0..g.value_count() {
        let v = g.value_mut(ValueId::from_index(i));
        match &mut v.init {
            Some(Const::Dense(t)) => visit_tensor(t, f),
            Some(Const::Sparse(s)) => visit_sparse(s, f),
            None => {}
        }
        if let Some(q) = &mut v.quant {
            q.scale.iter_mut().chain(q.zero_point.iter_mut()).for_each(|p| visit_qparam(p, f));
        }
    }
    let ops: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
    for id in ops {
        for a in &mut g.op_mut(id).attrs {
            visit_attr(&mut a.value, f);
        }
    }
}

fn visit_model(m: &mut Model, f: &mut dyn FnMut(Float<'_>)) {
    visit_graph(&mut m.graph, f);
    for func in &mut m.functions {
        func.attribute_defaults.iter_mut().for_each(|a| visit_attr(&mut a.value, f));
        visit_graph(&mut func.body, f);
    }
    for t in &mut m.training_info {
        for g in t.initialization.iter_mut().chain(t.algorithm.iter_mut()) {
            visit_graph(g, f);
        }
    }
}

/// Calls a function on every float of a `T`.
type Visit<T> = fn(&mut T, &mut dyn FnMut(Float<'_>));

/// Makes `==` exact: returns the bits of every float in visiting order, and a copy in which every
/// NaN is replaced by zero (so that `==` compares everything else).
fn canonical<T: Clone>(x: &T, visit: Visit<T>) -> (T, Vec<u64>) {
    let mut x = x.clone();
    let mut bits = Vec::new();
    visit(&mut x, &mut |fl| match fl {
        Float::F32(v) => {
            bits.push(u64::from(v.to_bits()));
            if v.is_nan() {
                *v = 0.0;
            }
        }
        Float::F64(v) => {
            bits.push(v.to_bits());
            if v.is_nan() {
                *v = 0.0;
            }
        }
    });
    (x, bits)
}

/// Print, parse, compare, print again.
fn check_model(m: &Model) -> Result<(), TestCaseError> {
    let text = print_model(m, Form::Full);
    prop_assert_eq!(&print_model(m, Form::Full), &text, "printing is not deterministic");
    let parsed = match parse_model(&text) {
        Ok(p) => p,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "the printed model does not parse: {e}\n--- text ---\n{text}"
            )));
        }
    };
    let (a, abits) = canonical(m, visit_model);
    let (b, bbits) = canonical(&parsed, visit_model);
    prop_assert!(abits == bbits, "float bits differ\n--- text ---\n{}", text);
    prop_assert!(a == b, "the parsed model differs\n--- text ---\n{}\n--- parsed ---\n{:#?}", text, b.graph);
    prop_assert_eq!(&print_model(&parsed, Form::Full), &text, "printing the parsed model gives other text");
    // The summary form is the full form unless it abbreviates, and then it does not parse.
    let summary = print_model(m, Form::Summary);
    prop_assert!(summary == text || parse_model(&summary).is_err(), "an abbreviated summary parses");
    Ok(())
}

fn check_graph(g: &Graph) -> Result<(), TestCaseError> {
    let text = print_graph(g, Form::Full);
    prop_assert_eq!(&print_graph(g, Form::Full), &text, "printing is not deterministic");
    let parsed = match parse_graph(&text) {
        Ok(p) => p,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "the printed graph does not parse: {e}\n--- text ---\n{text}"
            )));
        }
    };
    let (a, abits) = canonical(g, visit_graph);
    let (b, bbits) = canonical(&parsed, visit_graph);
    prop_assert!(abits == bbits, "float bits differ\n--- text ---\n{}", text);
    prop_assert!(a == b, "the parsed graph differs\n--- text ---\n{}\n--- parsed ---\n{:#?}", text, b);
    prop_assert_eq!(&print_graph(&parsed, Form::Full), &text, "printing the parsed graph gives other text");
    let summary = print_graph(g, Form::Summary);
    prop_assert!(summary == text || parse_graph(&summary).is_err(), "an abbreviated summary parses");
    Ok(())
}

proptest! {
    // Failures are kept as the regression tests below, not in a persistence file.
    // 256 cases unless PROPTEST_CASES says otherwise.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn models_round_trip_through_text(m in model()) {
        check_model(&m)?;
    }

    #[test]
    fn graphs_round_trip_through_text(g in graph(2)) {
        check_graph(&g)?;
    }

    /// Printed text with a few characters replaced by bits of syntax parses or is refused, but
    /// never panics.
    #[test]
    fn damaged_text_never_panics(
        m in model(),
        edits in prop::collection::vec(
            (any::<Index>(), 0usize..4, "[\\[\\]{}()<>\"%#_=:,\\\\ a0x.-]{0,3}"),
            1..4,
        ),
    ) {
        let mut text: Vec<char> = print_model(&m, Form::Full).chars().collect();
        for (at, len, insert) in edits {
            let a = at.index(text.len() + 1);
            let b = (a + len).min(text.len());
            text.splice(a..b, insert.chars());
        }
        let _ = parse_model(&text.into_iter().collect::<String>());
    }
}

/// Guards the generators: in 256 samples from a fixed seed, every construct listed appears in
/// some printed model.
#[test]
fn generators_reach_every_construct() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let constructs = [
        ("a quoted value name", "%\""),
        ("a duplicate name", "#"),
        ("a values line", "values %"),
        ("a NaN payload", "nan("),
        ("negative zero", "-0.0"),
        ("infinity", "inf"),
        ("a byte that is not UTF-8", "\\x"),
        ("external data", " external "),
        ("a sparse tensor", "sparse["),
        ("a quantization spec", "quant("),
        ("blocked quantization", " block "),
        ("per-axis quantization", "= axis "),
        ("a function", "\nfunction "),
        ("training information", "\ntraining {"),
        ("a declaration override", "decl_override "),
        ("a quantization annotation", "quant_annotation "),
        ("an unknown element type", "type#"),
        ("ref_attr_name", " ref \""),
        ("an absent declared kind", ": ?"),
        ("another declared kind", ": undefined"),
        ("an absent output", "_ ="),
        ("an absent input", "(_"),
        ("the empty domain", "\"\"::"),
        ("a dotted domain", "com.example.ops::"),
        ("a sequence type", "seq<"),
        ("a map type", "map<"),
        ("an opaque type", "opaque<"),
        ("dim denotations", "denotations("),
        ("an unknown dim", ",?"),
        ("an unranked shape", "[*]"),
        ("raw data", " raw 0x"),
        ("string data", " strings ["),
        ("int32 data", " int32s ["),
        ("int64 data", " int64s ["),
        ("uint64 data", " uint64s ["),
        ("double data", " doubles ["),
        ("a graphs attribute", "[graph"),
        ("a graph attribute", "= graph"),
        ("a type_protos attribute", "[type "),
        ("value_info", "info %"),
        ("an initializer", "init %"),
        ("a sparse initializer", "sparse_init %"),
        ("a value statement", "value %"),
        ("a device configuration", "device 0x"),
        ("an op overload", " overload \""),
        ("an unnamed initializer", " unnamed"),
        ("a segment", " segment("),
        ("an explicit default location", " default_location"),
        ("a graph name", "graph @"),
        ("a model header", "ir_version "),
        ("an opset import", "opset_import"),
    ];
    let mut seen = vec![false; constructs.len()];
    let mut nested = false;
    let mut runner = TestRunner::deterministic();
    let models = model();
    for _ in 0..256 {
        let m = models.new_tree(&mut runner).expect("a model").current();
        let text = print_model(&m, Form::Full);
        for (s, (_, pat)) in seen.iter_mut().zip(&constructs) {
            *s |= text.contains(pat);
        }
        // A graph attribute of an op in a graph attribute.
        nested |= text.lines().any(|l| l.starts_with("        ") && l.contains("graph"));
    }
    let missing: Vec<&str> = constructs.iter().zip(&seen).filter(|(_, s)| !**s).map(|(c, _)| c.0).collect();
    assert!(missing.is_empty(), "the generators never made: {missing:?}");
    assert!(nested, "the generators never nested a graph two levels deep");
}

// ---- regressions: minimal inputs of failures the properties found ----

/// Prints, parses and compares a graph, panicking with the text on failure.
fn assert_round_trips(g: &Graph) {
    let text = print_graph(g, Form::Full);
    let parsed = parse_graph(&text).unwrap_or_else(|e| panic!("{e}\n--- text ---\n{text}"));
    assert!(parsed == *g, "the parsed graph differs\n--- text ---\n{text}");
    assert_eq!(print_graph(&parsed, Form::Full), text);
}

/// `[] denotations(0 = "*")` (a rank-0 shape whose denotation text holds `*`) was read as the
/// unranked shape `[*]`.
#[test]
fn a_star_in_a_denotation_is_not_an_unranked_shape() {
    let mut g = Graph::new();
    let x = g.add_value("x");
    let shape = Shape { dims: vec![], denotations: vec![(0, "*".into())] };
    g.value_mut(x).ty = Some(TypeInfo::tensor(ElemType::F32, Some(shape)));
    g.inputs.push(x);
    assert_round_trips(&g);
}

/// An op without results whose domain or type is `unnamed`, `default_location` or
/// `denotations` was read as a property of the tensor or shape that ended the statement before.
#[test]
fn an_op_named_like_a_trailing_keyword_starts_its_own_statement() {
    for (domain, ty) in [
        (None, "unnamed"),
        (Some("unnamed"), "Relu"),
        (None, "default_location"),
        (Some("default_location"), "Relu"),
        (None, "denotations"),
        (Some("denotations"), "Relu"),
    ] {
        let mut g = Graph::new();
        // `info %s: f32[2]` ends with a shape; `value %c = f32[] unnamed` with a tensor.
        let s = g.add_value("s");
        g.value_mut(s).ty = Some(TypeInfo::tensor(ElemType::F32, Some(Shape::known(&[2]))));
        g.value_info.push(s);
        let c = g.add_value("c");
        let t = Tensor {
            name: None,
            elem: Some(ElemType::F32),
            dims: vec![],
            data: TensorData::Empty,
            segment: None,
            doc_string: None,
            metadata: vec![],
            explicit_default_location: false,
        };
        g.value_mut(c).init = Some(Const::Dense(Box::new(t)));
        g.add_op(Op::new(ty, domain.map(String::from)), vec![], vec![]);
        assert_round_trips(&g);
    }
}

/// After `remove_op` and `set_input` (as `eliminate-dead` and `fold-constants` do), the op ids
/// and use lists differ from those of the parsed graph, which `==` used to compare.
#[test]
fn graphs_edited_by_passes_round_trip() {
    let mut g = Graph::new();
    let x = g.value_named("x");
    let y = g.value_named("y");
    let z = g.value_named("z");
    g.inputs.push(x);
    let a = g.add_op(Op::new("Relu", None), vec![Some(x)], vec![Some(y)]);
    g.add_op(Op::new("Relu", None), vec![Some(x)], vec![Some(z)]);
    g.remove_op(a);
    assert_round_trips(&g);

    let mut g = Graph::new();
    let x = g.value_named("x");
    let y = g.value_named("y");
    let a = g.add_op(Op::new("Relu", None), vec![Some(y)], vec![]);
    g.add_op(Op::new("Relu", None), vec![Some(x)], vec![]);
    g.set_input(a, 0, Some(x));
    assert_round_trips(&g);
}

/// A declaration-override index above `i64::MAX` was printed but read back as an `i64`.
#[test]
fn a_large_override_index_round_trips() {
    let mut g = Graph::new();
    g.decl_overrides.push(DeclOverride {
        list: DeclList::Inputs,
        index: usize::MAX,
        name: "x".into(),
        ty: None,
        doc_string: None,
        metadata: vec![],
    });
    assert_round_trips(&g);
}
