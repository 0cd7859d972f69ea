//! ONNX protobuf to IR.
//!
//! Import keeps everything the model says (names, documentation, metadata, attribute order and
//! discriminators, which data field a tensor used, unknown ops, subgraphs, functions, training
//! graphs) so that [`super::export`] gives the same message back. It collects every problem it
//! finds instead of stopping at the first; structural checks (cycles, undefined inputs, arity,
//! attribute kinds) are the verifier's.

use std::collections::HashSet;

use bytes::Bytes;
use prost::Message;
use qc_ir::graph::{Const, DeclList, DeclOverride, TensorAnnotation};
use qc_ir::{
    AttrKind, AttrValue, Attribute, Dim, ElemType, ExternalRef, Function, Graph, MetaEntry, Model, Op,
    OpsetImport, Shape, SparseTensor, Tensor, TensorData, TrainingInfo, TypeInfo, ValueId, ValueType,
};

use super::proto as pb;
use crate::diagnostics::{ImportError, LoadWarning};

/// Converts a decoded model into the IR. On failure, every problem found is returned.
pub fn import_model(m: pb::ModelProto) -> Result<Model, Vec<ImportError>> {
    import_model_warning(m).map(|(model, _)| model)
}

/// As [`import_model`], with the warnings: the negative dims, which load as unknown dims.
pub fn import_model_warning(m: pb::ModelProto) -> Result<(Model, Vec<LoadWarning>), Vec<ImportError>> {
    let mut cx = Cx::default();
    let graph = match m.graph {
        Some(g) => cx.graph(g, ""),
        None => {
            cx.errors.push(ImportError::NoGraph);
            Graph::new()
        }
    };
    let functions = m.functions.into_iter().map(|f| cx.function(f)).collect();
    let training_info = m
        .training_info
        .into_iter()
        .enumerate()
        .map(|(i, t)| TrainingInfo {
            initialization: t
                .initialization
                .map(|g| cx.graph(g, &format!("training_info[{i}].initialization: "))),
            algorithm: t.algorithm.map(|g| cx.graph(g, &format!("training_info[{i}].algorithm: "))),
            initialization_binding: meta(t.initialization_binding),
            update_binding: meta(t.update_binding),
        })
        .collect();
    let model = Model {
        ir_version: m.ir_version,
        opset_imports: m.opset_import.into_iter().map(opset).collect(),
        producer_name: m.producer_name,
        producer_version: m.producer_version,
        domain: m.domain,
        model_version: m.model_version,
        doc_string: m.doc_string,
        metadata: meta(m.metadata_props),
        graph,
        functions,
        training_info,
        device_configurations: m.configuration.iter().map(|c| Bytes::from(c.encode_to_vec())).collect(),
        resolver: None,
    };
    if !cx.errors.is_empty() {
        return Err(cx.errors);
    }
    let mut warnings = Vec::new();
    if let Some(first) = cx.negative.first() {
        warnings.push(LoadWarning::NegativeDim {
            count: cx.negative.len(),
            first: first.clone(),
            all: cx.negative.join(", "),
        });
    }
    Ok((model, warnings))
}

/// Converts one tensor (for example a test's `input_0.pb`) into the IR, checking its data.
pub fn import_tensor(t: pb::TensorProto) -> Result<Tensor, Vec<ImportError>> {
    let mut cx = Cx::default();
    let name = t.name.clone().unwrap_or_default();
    let tensor = cx.tensor(t, "", &name);
    if let Err(e) = tensor.check() {
        cx.errors.push(ImportError::Verify(qc_ir::VerifyError::Tensor {
            at: String::new(),
            tensor: name,
            problem: e.to_string(),
        }));
    }
    if cx.errors.is_empty() { Ok(tensor) } else { Err(cx.errors) }
}

pub(crate) fn opset(o: pb::OperatorSetIdProto) -> OpsetImport {
    OpsetImport { domain: o.domain, version: o.version }
}

pub(crate) fn meta(entries: Vec<pb::StringStringEntryProto>) -> Vec<MetaEntry> {
    entries
        .into_iter()
        .map(|e| MetaEntry { key: e.key.unwrap_or_default(), value: e.value.unwrap_or_default() })
        .collect()
}

#[derive(Default)]
struct Cx {
    errors: Vec<ImportError>,
    /// Negative dims (`-1`), as `value dim i (-1)`; they load as unknown dims.
    negative: Vec<String>,
}

impl Cx {
    fn graph(&mut self, g: pb::GraphProto, at: &str) -> Graph {
        let mut out = Graph::new();
        out.name = g.name;
        out.doc_string = g.doc_string;
        out.metadata = meta(g.metadata_props);
        let mut declared: HashSet<ValueId> = HashSet::new();
        for (list, infos) in
            [(DeclList::Inputs, g.input), (DeclList::Outputs, g.output), (DeclList::ValueInfo, g.value_info)]
        {
            for (index, vi) in infos.into_iter().enumerate() {
                let name = vi.name.unwrap_or_default();
                let ty = vi.r#type.map(|t| self.type_info(t, at, &name));
                let doc_string = vi.doc_string;
                let metadata = meta(vi.metadata_props);
                let id = out.value_named(&name);
                if declared.insert(id) {
                    let v = out.value_mut(id);
                    v.ty = ty;
                    v.doc_string = doc_string;
                    v.metadata = metadata;
                } else {
                    let v = out.value(id);
                    if v.ty != ty || v.doc_string != doc_string || v.metadata != metadata {
                        out.decl_overrides.push(DeclOverride { list, index, name, ty, doc_string, metadata });
                    }
                }
                match list {
                    DeclList::Inputs => out.inputs.push(id),
                    DeclList::Outputs => out.outputs.push(id),
                    DeclList::ValueInfo => out.value_info.push(id),
                }
            }
        }
        for t in g.initializer {
            let name = t.name.clone().unwrap_or_default();
            let tensor = self.tensor(t, at, &name);
            let id = out.value_named(&name);
            if out.value(id).init.is_none() {
                out.value_mut(id).init = Some(Const::Dense(Box::new(tensor)));
            }
            out.initializers.push(id);
        }
        for s in g.sparse_initializer {
            let name = s.values.as_ref().and_then(|v| v.name.clone()).unwrap_or_default();
            let sparse = self.sparse(s, at, &name);
            let id = out.value_named(&name);
            if out.value(id).init.is_none() {
                out.value_mut(id).init = Some(Const::Sparse(Box::new(sparse)));
            }
            out.sparse_initializers.push(id);
        }
        for (index, n) in g.node.into_iter().enumerate() {
            let label = match n.name.as_deref() {
                Some(s) if !s.is_empty() => std::borrow::Cow::Borrowed(s),
                _ => std::borrow::Cow::Owned(format!("{}#{index}", n.op_type.as_deref().unwrap_or("?"))),
            };
            let label = label.into_owned();
            let ins: Vec<Option<ValueId>> =
                n.input.iter().map(|s| (!s.is_empty()).then(|| out.value_named(s))).collect();
            let outs: Vec<Option<ValueId>> =
                n.output.iter().map(|s| (!s.is_empty()).then(|| out.value_named(s))).collect();
            let op = self.node(n, at, &label);
            out.add_op(op, ins, outs);
        }
        out.quantization_annotations = g
            .quantization_annotation
            .into_iter()
            .map(|a| TensorAnnotation {
                tensor_name: a.tensor_name,
                entries: meta(a.quant_parameter_tensor_names),
            })
            .collect();
        out
    }

    fn node(&mut self, n: pb::NodeProto, at: &str, label: &str) -> Op {
        let op_type = match n.op_type {
            Some(t) if !t.is_empty() => t,
            _ => {
                self.errors.push(ImportError::NoOpType { at: at.into(), node: label.into() });
                String::new()
            }
        };
        let mut op = Op::new(op_type, n.domain);
        op.name = n.name;
        op.overload = n.overload;
        op.doc_string = n.doc_string;
        op.metadata = meta(n.metadata_props);
        op.device_configurations =
            n.device_configurations.iter().map(|c| Bytes::from(c.encode_to_vec())).collect();
        op.attrs = n.attribute.into_iter().map(|a| self.attribute(a, &Owner::Op { at, label })).collect();
        op
    }

    fn attribute(&mut self, a: pb::AttributeProto, owner: &Owner<'_>) -> Attribute {
        let name = a.name.clone().unwrap_or_default();
        let declared_kind = match a.r#type {
            None => None,
            Some(code) => match AttrKind::from_code(code) {
                Some(k) => Some(k),
                None => {
                    self.errors.push(ImportError::AttributeKind {
                        owner: owner.to_string(),
                        attr: name.clone(),
                        code,
                    });
                    None
                }
            },
        };
        let mut held: Vec<AttrKind> = Vec::new();
        macro_rules! mark {
            ($cond:expr, $k:expr) => {
                if $cond {
                    held.push($k);
                }
            };
        }
        mark!(a.f.is_some(), AttrKind::Float);
        mark!(a.i.is_some(), AttrKind::Int);
        mark!(a.s.is_some(), AttrKind::String);
        mark!(a.t.is_some(), AttrKind::Tensor);
        mark!(a.g.is_some(), AttrKind::Graph);
        mark!(a.sparse_tensor.is_some(), AttrKind::SparseTensor);
        mark!(a.tp.is_some(), AttrKind::TypeProto);
        mark!(!a.floats.is_empty(), AttrKind::Floats);
        mark!(!a.ints.is_empty(), AttrKind::Ints);
        mark!(!a.strings.is_empty(), AttrKind::Strings);
        mark!(!a.tensors.is_empty(), AttrKind::Tensors);
        mark!(!a.graphs.is_empty(), AttrKind::Graphs);
        mark!(!a.sparse_tensors.is_empty(), AttrKind::SparseTensors);
        mark!(!a.type_protos.is_empty(), AttrKind::TypeProtos);
        let kind = match (declared_kind, held.as_slice()) {
            (Some(k), h) if h.iter().all(|x| *x == k) => Some(k),
            (None, [k]) => Some(*k),
            (None, []) => None,
            (_, h) => {
                let held_names: Vec<&str> = h.iter().map(|k| k.name()).collect();
                self.errors.push(ImportError::AttributeMismatch {
                    owner: owner.to_string(),
                    attr: name.clone(),
                    declared: declared_kind.map_or("nothing", |k| k.name()).to_string(),
                    held: held_names.join(", "),
                });
                None
            }
        };
        let sub = || format!("{owner} attribute `{name}`");
        let value = match kind {
            None | Some(AttrKind::Undefined) => AttrValue::None,
            Some(AttrKind::Float) => a.f.map_or(AttrValue::None, AttrValue::Float),
            Some(AttrKind::Int) => a.i.map_or(AttrValue::None, AttrValue::Int),
            Some(AttrKind::String) => a.s.map_or(AttrValue::None, AttrValue::String),
            Some(AttrKind::Tensor) => {
                a.t.map_or(AttrValue::None, |t| AttrValue::Tensor(Box::new(self.tensor(t, "", &sub()))))
            }
            Some(AttrKind::Graph) => a.g.map_or(AttrValue::None, |g| {
                AttrValue::Graph(Box::new(self.graph(g, &format!("{}: ", sub()))))
            }),
            Some(AttrKind::SparseTensor) => a
                .sparse_tensor
                .map_or(AttrValue::None, |s| AttrValue::SparseTensor(Box::new(self.sparse(s, "", &sub())))),
            Some(AttrKind::TypeProto) => a
                .tp
                .map_or(AttrValue::None, |t| AttrValue::TypeProto(Box::new(self.type_info(t, "", &sub())))),
            Some(AttrKind::Floats) => AttrValue::Floats(a.floats),
            Some(AttrKind::Ints) => AttrValue::Ints(a.ints),
            Some(AttrKind::Strings) => AttrValue::Strings(a.strings),
            Some(AttrKind::Tensors) => {
                AttrValue::Tensors(a.tensors.into_iter().map(|t| self.tensor(t, "", &sub())).collect())
            }
            Some(AttrKind::Graphs) => AttrValue::Graphs(
                a.graphs
                    .into_iter()
                    .enumerate()
                    .map(|(i, g)| self.graph(g, &format!("{}[{i}]: ", sub())))
                    .collect(),
            ),
            Some(AttrKind::SparseTensors) => AttrValue::SparseTensors(
                a.sparse_tensors.into_iter().map(|s| self.sparse(s, "", &sub())).collect(),
            ),
            Some(AttrKind::TypeProtos) => AttrValue::TypeProtos(
                a.type_protos.into_iter().map(|t| self.type_info(t, "", &sub())).collect(),
            ),
        };
        Attribute { name, value, declared_kind, doc_string: a.doc_string, ref_attr_name: a.ref_attr_name }
    }

    fn tensor(&mut self, t: pb::TensorProto, at: &str, name: &str) -> Tensor {
        let label = t.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| name.to_string());
        let mut fields: Vec<&'static str> = Vec::new();
        if t.raw_data.is_some() {
            fields.push("raw_data");
        }
        for (present, f) in [
            (!t.float_data.is_empty(), "float_data"),
            (!t.int32_data.is_empty(), "int32_data"),
            (!t.string_data.is_empty(), "string_data"),
            (!t.int64_data.is_empty(), "int64_data"),
            (!t.double_data.is_empty(), "double_data"),
            (!t.uint64_data.is_empty(), "uint64_data"),
        ] {
            if present {
                fields.push(f);
            }
        }
        let external = match t.data_location {
            None | Some(0) => false,
            Some(1) => true,
            Some(code) => {
                self.errors.push(ImportError::DataLocation { at: at.into(), tensor: label.clone(), code });
                false
            }
        };
        if external {
            fields.push("external_data");
        } else if !t.external_data.is_empty() {
            self.errors.push(ImportError::TensorData {
                at: at.into(),
                tensor: label.clone(),
                problem: "has external_data entries but data_location is not EXTERNAL".into(),
            });
        }
        if fields.len() > 1 {
            self.errors.push(ImportError::TensorData {
                at: at.into(),
                tensor: label.clone(),
                problem: format!("stores its data in several fields: {}", fields.join(", ")),
            });
        }
        let data = if external {
            match parse_external(&t.external_data) {
                Ok(r) => TensorData::External(r),
                Err(problem) => {
                    self.errors.push(ImportError::ExternalEntries {
                        at: at.into(),
                        tensor: label.clone(),
                        problem,
                    });
                    TensorData::Empty
                }
            }
        } else if let Some(raw) = t.raw_data {
            TensorData::Raw(raw)
        } else if !t.float_data.is_empty() {
            TensorData::Floats(t.float_data)
        } else if !t.int32_data.is_empty() {
            TensorData::Int32s(t.int32_data)
        } else if !t.string_data.is_empty() {
            TensorData::Strings(t.string_data)
        } else if !t.int64_data.is_empty() {
            TensorData::Int64s(t.int64_data)
        } else if !t.double_data.is_empty() {
            TensorData::Doubles(t.double_data)
        } else if !t.uint64_data.is_empty() {
            TensorData::Uint64s(t.uint64_data)
        } else {
            TensorData::Empty
        };
        Tensor {
            name: t.name,
            elem: t.data_type.map(ElemType::from_code),
            dims: t.dims,
            data,
            segment: t.segment.map(|s| (s.begin, s.end)),
            doc_string: t.doc_string,
            metadata: meta(t.metadata_props),
            explicit_default_location: t.data_location == Some(0),
        }
    }

    fn sparse(&mut self, s: pb::SparseTensorProto, at: &str, name: &str) -> SparseTensor {
        SparseTensor {
            values: s.values.map(|t| self.tensor(t, at, name)),
            indices: s.indices.map(|t| self.tensor(t, at, &format!("{name} (indices)"))),
            dims: s.dims,
        }
    }

    fn type_info(&mut self, t: pb::TypeProto, at: &str, name: &str) -> TypeInfo {
        use pb::type_proto::Value as V;
        let boxed =
            |cx: &mut Cx, t: Option<Box<pb::TypeProto>>| t.map(|t| Box::new(cx.type_info(*t, at, name)));
        let ty = t.value.map(|v| match v {
            V::TensorType(tt) => ValueType::Tensor {
                elem: tt.elem_type.map(ElemType::from_code),
                shape: tt.shape.map(|s| self.shape(s, at, name)),
            },
            V::SparseTensorType(tt) => ValueType::SparseTensor {
                elem: tt.elem_type.map(ElemType::from_code),
                shape: tt.shape.map(|s| self.shape(s, at, name)),
            },
            V::SequenceType(s) => ValueType::Sequence(boxed(self, s.elem_type)),
            V::OptionalType(s) => ValueType::Optional(boxed(self, s.elem_type)),
            V::MapType(m) => {
                ValueType::Map { key: m.key_type.map(ElemType::from_code), value: boxed(self, m.value_type) }
            }
            V::OpaqueType(o) => ValueType::Opaque { domain: o.domain, name: o.name },
        });
        TypeInfo { ty, denotation: t.denotation }
    }

    fn shape(&mut self, s: pb::TensorShapeProto, at: &str, name: &str) -> Shape {
        use pb::tensor_shape_proto::dimension::Value as D;
        let mut shape = Shape::default();
        for (i, d) in s.dim.into_iter().enumerate() {
            let dim = match d.value {
                Some(D::DimValue(v)) if v >= 0 => Dim::Known(v as u64),
                Some(D::DimValue(v)) => {
                    self.negative.push(format!("{at}`{name}` dim {i} ({v})"));
                    Dim::Unknown
                }
                Some(D::DimParam(p)) => Dim::Sym(p),
                None => Dim::Unknown,
            };
            shape.dims.push(dim);
            if let Some(den) = d.denotation {
                shape.denotations.push((i, den));
            }
        }
        shape
    }

    fn function(&mut self, f: pb::FunctionProto) -> Function {
        let at = format!("function `{}`: ", f.name.as_deref().unwrap_or("?"));
        let body =
            self.graph(pb::GraphProto { node: f.node, value_info: f.value_info, ..Default::default() }, &at);
        Function {
            name: f.name,
            domain: f.domain,
            overload: f.overload,
            inputs: f.input,
            outputs: f.output,
            attributes: f.attribute,
            attribute_defaults: f
                .attribute_proto
                .into_iter()
                .map(|a| self.attribute(a, &Owner::Function(&at)))
                .collect(),
            body,
            opset_imports: f.opset_import.into_iter().map(opset).collect(),
            doc_string: f.doc_string,
            metadata: meta(f.metadata_props),
        }
    }
}

/// What an attribute belongs to, formatted only when a diagnostic needs it.
enum Owner<'a> {
    Op { at: &'a str, label: &'a str },
    Function(&'a str),
}

impl std::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Op { at, label } => write!(f, "{at}op `{label}`"),
            Owner::Function(at) => f.write_str(at.trim_end_matches(": ")),
        }
    }
}

/// Parses `external_data` entries (`location` required; `offset`, `length` decimal).
fn parse_external(entries: &[pb::StringStringEntryProto]) -> Result<ExternalRef, String> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for e in entries {
        let value = e.value.as_deref().unwrap_or("");
        match e.key.as_deref().unwrap_or("") {
            "location" => location = Some(value.to_string()),
            "offset" => {
                offset = value.parse().map_err(|_| format!("offset `{value}` is not a byte count"))?
            }
            "length" => {
                length = Some(value.parse().map_err(|_| format!("length `{value}` is not a byte count"))?)
            }
            _ => {}
        }
    }
    let location = location.ok_or("no `location` entry")?;
    Ok(ExternalRef { entries: meta(entries.to_vec()), location, offset, length })
}
