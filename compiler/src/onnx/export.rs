//! IR to ONNX protobuf: the inverse of [`super::import`].
//!
//! For a model that no pass changed, `export(import(m)) == m` field by field, and re-encoding
//! gives the same bytes (the exceptions are listed in `spec/onnx.md`).

use prost::Message;
use qc_ir::graph::{Const, DeclList};
use qc_ir::{
    AttrValue, Attribute, Dim, Function, Graph, MetaEntry, Model, OpsetImport, Shape, SparseTensor, Tensor,
    TensorData, TypeInfo, ValueId, ValueType,
};

use super::proto as pb;

/// Converts a model back into its protobuf form.
pub fn export_model(m: &Model) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: m.ir_version,
        producer_name: m.producer_name.clone(),
        producer_version: m.producer_version.clone(),
        domain: m.domain.clone(),
        model_version: m.model_version,
        doc_string: m.doc_string.clone(),
        graph: Some(graph(&m.graph)),
        opset_import: m.opset_imports.iter().map(opset).collect(),
        metadata_props: meta(&m.metadata),
        training_info: m
            .training_info
            .iter()
            .map(|t| pb::TrainingInfoProto {
                initialization: t.initialization.as_ref().map(graph),
                algorithm: t.algorithm.as_ref().map(graph),
                initialization_binding: meta(&t.initialization_binding),
                update_binding: meta(&t.update_binding),
            })
            .collect(),
        functions: m.functions.iter().map(function).collect(),
        configuration: m
            .device_configurations
            .iter()
            .map(|b| pb::DeviceConfigurationProto::decode(b.clone()).unwrap_or_default())
            .collect(),
    }
}

fn opset(o: &OpsetImport) -> pb::OperatorSetIdProto {
    pb::OperatorSetIdProto { domain: o.domain.clone(), version: o.version }
}

fn meta(entries: &[MetaEntry]) -> Vec<pb::StringStringEntryProto> {
    entries
        .iter()
        .map(|e| pb::StringStringEntryProto { key: Some(e.key.clone()), value: Some(e.value.clone()) })
        .collect()
}

fn graph(g: &Graph) -> pb::GraphProto {
    let decls = |list: DeclList, ids: &[ValueId]| -> Vec<pb::ValueInfoProto> {
        ids.iter()
            .enumerate()
            .map(|(index, &id)| match g.decl_overrides.iter().find(|o| o.list == list && o.index == index) {
                Some(o) => pb::ValueInfoProto {
                    name: Some(o.name.clone()),
                    r#type: o.ty.as_ref().map(type_proto),
                    doc_string: o.doc_string.clone(),
                    metadata_props: meta(&o.metadata),
                },
                None => {
                    let v = g.value(id);
                    pb::ValueInfoProto {
                        name: Some(v.name.clone()),
                        r#type: v.ty.as_ref().map(type_proto),
                        doc_string: v.doc_string.clone(),
                        metadata_props: meta(&v.metadata),
                    }
                }
            })
            .collect()
    };
    let name_of = |v: &Option<ValueId>| v.map(|v| g.value(v).name.clone()).unwrap_or_default();
    pb::GraphProto {
        node: g
            .ops()
            .map(|(_, op)| pb::NodeProto {
                input: op.inputs().iter().map(name_of).collect(),
                output: op.outputs().iter().map(name_of).collect(),
                name: op.name.clone(),
                op_type: Some(op.op_type().to_string()),
                attribute: op.attrs.iter().map(attribute).collect(),
                doc_string: op.doc_string.clone(),
                domain: op.domain_raw().map(str::to_string),
                overload: op.overload.clone(),
                metadata_props: meta(&op.metadata),
                device_configurations: op
                    .device_configurations
                    .iter()
                    .map(|b| pb::NodeDeviceConfigurationProto::decode(b.clone()).unwrap_or_default())
                    .collect(),
            })
            .collect(),
        name: g.name.clone(),
        initializer: g
            .initializers
            .iter()
            .filter_map(|&v| match &g.value(v).init {
                Some(Const::Dense(t)) => Some(tensor(t)),
                _ => None,
            })
            .collect(),
        doc_string: g.doc_string.clone(),
        input: decls(DeclList::Inputs, &g.inputs),
        output: decls(DeclList::Outputs, &g.outputs),
        value_info: decls(DeclList::ValueInfo, &g.value_info),
        quantization_annotation: annotations(g),
        sparse_initializer: g
            .sparse_initializers
            .iter()
            .filter_map(|&v| match &g.value(v).init {
                Some(Const::Sparse(s)) => Some(sparse(s)),
                _ => None,
            })
            .collect(),
        metadata_props: meta(&g.metadata),
    }
}

/// The graph's `quantization_annotation`s, then a `finn_datatype` annotation (QONNX's way of
/// storing a datatype) for every value whose spec a pass derived and that has none yet, so that
/// QONNX tools read the datatypes `infer-datatypes` and `absorb-quant` found. A model that was
/// only loaded has no specs, so it exports as it was read.
fn annotations(g: &Graph) -> Vec<pb::TensorAnnotation> {
    let mut out: Vec<pb::TensorAnnotation> = g
        .quantization_annotations
        .iter()
        .map(|a| pb::TensorAnnotation {
            tensor_name: a.tensor_name.clone(),
            quant_parameter_tensor_names: meta(&a.entries),
        })
        .collect();
    let annotated: std::collections::HashSet<&str> = g
        .quantization_annotations
        .iter()
        .filter(|a| a.entries.iter().any(|e| e.key == "finn_datatype"))
        .filter_map(|a| a.tensor_name.as_deref())
        .collect();
    let mut live = vec![false; g.value_count()];
    for &v in g.inputs.iter().chain(&g.outputs).chain(&g.initializers) {
        live[v.index()] = true;
    }
    for (_, op) in g.ops() {
        for v in op.inputs().iter().chain(op.outputs()).flatten() {
            live[v.index()] = true;
        }
    }
    for (id, v) in g.values() {
        let Some(q) = &v.quant else { continue };
        if !live[id.index()] {
            continue;
        }
        if q.origin == qc_ir::QuantOrigin::Annotation
            || annotated.contains(v.name.as_str())
            || v.name.is_empty()
        {
            continue;
        }
        out.push(pb::TensorAnnotation {
            tensor_name: Some(v.name.clone()),
            quant_parameter_tensor_names: vec![pb::StringStringEntryProto {
                key: Some("finn_datatype".into()),
                value: Some(q.dtype.name()),
            }],
        });
    }
    out
}

fn attribute(a: &Attribute) -> pb::AttributeProto {
    let mut p = pb::AttributeProto {
        name: Some(a.name.clone()),
        r#type: a.declared_kind.map(|k| k.code()),
        doc_string: a.doc_string.clone(),
        ref_attr_name: a.ref_attr_name.clone(),
        ..Default::default()
    };
    match &a.value {
        AttrValue::None => {}
        AttrValue::Float(f) => p.f = Some(*f),
        AttrValue::Int(i) => p.i = Some(*i),
        AttrValue::String(s) => p.s = Some(s.clone()),
        AttrValue::Tensor(t) => p.t = Some(tensor(t)),
        AttrValue::Graph(g) => p.g = Some(graph(g)),
        AttrValue::SparseTensor(s) => p.sparse_tensor = Some(sparse(s)),
        AttrValue::TypeProto(t) => p.tp = Some(type_proto(t)),
        AttrValue::Floats(v) => p.floats = v.clone(),
        AttrValue::Ints(v) => p.ints = v.clone(),
        AttrValue::Strings(v) => p.strings = v.clone(),
        AttrValue::Tensors(v) => p.tensors = v.iter().map(tensor).collect(),
        AttrValue::Graphs(v) => p.graphs = v.iter().map(graph).collect(),
        AttrValue::SparseTensors(v) => p.sparse_tensors = v.iter().map(sparse).collect(),
        AttrValue::TypeProtos(v) => p.type_protos = v.iter().map(type_proto).collect(),
    }
    p
}

pub(crate) fn tensor(t: &Tensor) -> pb::TensorProto {
    let mut p = pb::TensorProto {
        dims: t.dims.clone(),
        data_type: t.elem.map(|e| e.code()),
        segment: t.segment.map(|(begin, end)| pb::tensor_proto::Segment { begin, end }),
        name: t.name.clone(),
        doc_string: t.doc_string.clone(),
        metadata_props: meta(&t.metadata),
        data_location: t.explicit_default_location.then_some(pb::DataLocation::Default as i32),
        ..Default::default()
    };
    match &t.data {
        TensorData::Empty => {}
        TensorData::Raw(b) => p.raw_data = Some(b.clone()),
        TensorData::Floats(v) => p.float_data = v.clone(),
        TensorData::Int32s(v) => p.int32_data = v.clone(),
        TensorData::Int64s(v) => p.int64_data = v.clone(),
        TensorData::Doubles(v) => p.double_data = v.clone(),
        TensorData::Uint64s(v) => p.uint64_data = v.clone(),
        TensorData::Strings(v) => p.string_data = v.clone(),
        TensorData::External(r) => {
            p.external_data = meta(&r.entries);
            p.data_location = Some(pb::DataLocation::External as i32);
        }
    }
    p
}

fn sparse(s: &SparseTensor) -> pb::SparseTensorProto {
    pb::SparseTensorProto {
        values: s.values.as_ref().map(tensor),
        indices: s.indices.as_ref().map(tensor),
        dims: s.dims.clone(),
    }
}

fn type_proto(t: &TypeInfo) -> pb::TypeProto {
    use pb::type_proto as tp;
    let boxed = |t: &Option<Box<TypeInfo>>| t.as_ref().map(|t| Box::new(type_proto(t)));
    let value = t.ty.as_ref().map(|ty| match ty {
        ValueType::Tensor { elem, shape: s } => tp::Value::TensorType(tp::Tensor {
            elem_type: elem.map(|e| e.code()),
            shape: s.as_ref().map(shape),
        }),
        ValueType::SparseTensor { elem, shape: s } => tp::Value::SparseTensorType(tp::SparseTensor {
            elem_type: elem.map(|e| e.code()),
            shape: s.as_ref().map(shape),
        }),
        ValueType::Sequence(e) => tp::Value::SequenceType(tp::Sequence { elem_type: boxed(e) }),
        ValueType::Optional(e) => tp::Value::OptionalType(tp::Optional { elem_type: boxed(e) }),
        ValueType::Map { key, value } => {
            tp::Value::MapType(tp::Map { key_type: key.map(|k| k.code()), value_type: boxed(value) })
        }
        ValueType::Opaque { domain, name } => {
            tp::Value::OpaqueType(tp::Opaque { domain: domain.clone(), name: name.clone() })
        }
    });
    pb::TypeProto { value, denotation: t.denotation.clone() }
}

fn shape(s: &Shape) -> pb::TensorShapeProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value as D};
    pb::TensorShapeProto {
        dim: s
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| Dimension {
                value: match d {
                    Dim::Known(n) => Some(D::DimValue(*n as i64)),
                    Dim::Sym(p) => Some(D::DimParam(p.clone())),
                    Dim::Unknown => None,
                },
                denotation: s.denotations.iter().find(|(j, _)| *j == i).map(|(_, d)| d.clone()),
            })
            .collect(),
    }
}

fn function(f: &Function) -> pb::FunctionProto {
    let body = graph(&f.body);
    pb::FunctionProto {
        name: f.name.clone(),
        input: f.inputs.clone(),
        output: f.outputs.clone(),
        attribute: f.attributes.clone(),
        node: body.node,
        doc_string: f.doc_string.clone(),
        opset_import: f.opset_imports.iter().map(opset).collect(),
        domain: f.domain.clone(),
        attribute_proto: f.attribute_defaults.iter().map(attribute).collect(),
        value_info: body.value_info,
        overload: f.overload.clone(),
        metadata_props: meta(&f.metadata),
    }
}
