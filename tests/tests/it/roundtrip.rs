//! Conformance: every model under `../shared/models` and `../shared/conformance/onnx-backend`
//! loads (decode, import, external-data checks, verify), inspects, and round-trips: import then
//! export gives the same `ModelProto` field by field, and re-encoding gives the same bytes.

use std::path::Path;

use prost::Message;
use qc::load::{self, LoadOptions};
use qc::onnx::{export_model, proto::ModelProto};

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    byte_identical: usize,
    field_equal_only: Vec<String>,
    failures: Vec<String>,
}

fn check_dir(root: &Path, tally: &mut Tally) {
    for path in qc_tests::files_under(root, ".onnx") {
        tally.files += 1;
        let name = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let bytes = match load::read_file(&path, LoadOptions::default()) {
            Ok(b) => b,
            Err(e) => {
                tally.failures.push(format!("{name}: read: {e}"));
                continue;
            }
        };
        let loaded = match load::load_bytes(bytes.clone(), &name, path.parent(), LoadOptions::default()) {
            Ok(l) => l,
            Err(e) => {
                tally.failures.push(format!("{name}: load: {:?}", miette::Report::new(e)));
                continue;
            }
        };
        let report = qc::inspect::inspect(&loaded, &name);
        assert_eq!(report.nodes, loaded.model.graph.op_count());
        let mut original = ModelProto::decode(bytes.clone()).expect("decoded once already");
        // A negative dim loads as an unknown dim (spec/onnx.md, "Writing models"): compare with
        // the original as qc documents it is written back.
        let negative =
            loaded.warnings.iter().any(|w| matches!(w, qc::diagnostics::LoadWarning::NegativeDim { .. }));
        if negative {
            clear_negative_dims(&mut original);
        }
        let exported = export_model(&loaded.model);
        let reencoded = exported.encode_to_vec();
        if reencoded.as_slice() == &bytes[..] && !negative {
            tally.byte_identical += 1;
        } else if exported == original {
            tally.field_equal_only.push(name);
        } else {
            let again = ModelProto::decode(reencoded.as_slice()).expect("our own encoding decodes");
            // Bitwise comparison, so NaN payloads in float fields count as equal.
            if again.encode_to_vec() == original.encode_to_vec() {
                tally.field_equal_only.push(name);
            } else {
                tally.failures.push(format!("{name}: export differs from the original"));
            }
        }
    }
}

/// Removes the value of every negative dim in the main graph's declared shapes.
fn clear_negative_dims(m: &mut ModelProto) {
    use qc::onnx::proto::tensor_shape_proto::dimension::Value;
    use qc::onnx::proto::type_proto::Value as T;
    let Some(g) = m.graph.as_mut() else { return };
    for vi in g.input.iter_mut().chain(g.output.iter_mut()).chain(g.value_info.iter_mut()) {
        if let Some(T::TensorType(tt)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut())
            && let Some(shape) = tt.shape.as_mut()
        {
            for d in &mut shape.dim {
                if matches!(d.value, Some(Value::DimValue(v)) if v < 0) {
                    d.value = None;
                }
            }
        }
    }
}

#[test]
fn every_shared_model_loads_inspects_and_round_trips() {
    let Some(shared) = qc_tests::shared_or_say("roundtrip") else {
        return;
    };
    for sub in ["models", "conformance/onnx-backend"] {
        let mut t = Tally::default();
        let start = std::time::Instant::now();
        check_dir(&shared.join(sub), &mut t);
        eprintln!(
            "{sub}: {} files, {} byte-identical, {} field-equal only, {} failed ({:.2?})",
            t.files,
            t.byte_identical,
            t.field_equal_only.len(),
            t.failures.len(),
            start.elapsed()
        );
        for f in t.field_equal_only.iter().take(10) {
            eprintln!("  field-equal, bytes differ: {f}");
        }
        assert!(t.files > 0, "no .onnx files under {sub}");
        assert!(
            t.failures.is_empty(),
            "{} of {} failed:\n{}",
            t.failures.len(),
            t.files,
            t.failures.join("\n")
        );
    }
}

/// A model that uses every part of the format the shared models might not: functions, training
/// graphs, multi-device annotations, sparse initializers, every attribute kind, every typed data
/// field, external data, declarations that disagree, metadata everywhere, and fields present
/// with their default values.
fn every_feature_model() -> ModelProto {
    use bytes::Bytes;
    use qc::fixtures::{self as fx, node, value_info};
    use qc::onnx::proto::{self as pb, AttributeType as A, DataType as D};
    let kv = |k: &str, v: &str| pb::StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
    let typed = |name: &str, dt: D, dims: Vec<i64>| pb::TensorProto {
        name: Some(name.into()),
        data_type: Some(dt as i32),
        dims,
        doc_string: Some(String::new()),
        metadata_props: vec![kv("origin", "test")],
        ..Default::default()
    };
    let attr = |name: &str, t: A| pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(t as i32),
        ..Default::default()
    };
    let sub = pb::GraphProto {
        name: Some("then".into()),
        node: vec![node("Identity", "", "inner", &["x"], &["t_out"], vec![])],
        output: vec![value_info("t_out", D::Float, &[1, 4])],
        ..Default::default()
    };
    let mut attrs = vec![
        pb::AttributeProto { i: Some(0), ..attr("zero_int", A::Int) },
        pb::AttributeProto {
            f: Some(0.0),
            doc_string: Some("a float".into()),
            ..attr("zero_float", A::Float)
        },
        pb::AttributeProto { s: Some(Bytes::from_static(b"\xff\x00bytes")), ..attr("s", A::String) },
        pb::AttributeProto { floats: vec![1.5, f32::NAN], ..attr("fs", A::Floats) },
        pb::AttributeProto { ints: vec![-1, 0, i64::MAX], ..attr("is", A::Ints) },
        pb::AttributeProto {
            strings: vec![Bytes::from_static(b"a"), Bytes::new()],
            ..attr("ss", A::Strings)
        },
        pb::AttributeProto { t: Some(fx::tensor_f32("", &[2], &[1.0, 2.0])), ..attr("t", A::Tensor) },
        pb::AttributeProto { tensors: vec![fx::scalar_f32("a", 1.0)], ..attr("ts", A::Tensors) },
        pb::AttributeProto { g: Some(sub.clone()), ..attr("g", A::Graph) },
        pb::AttributeProto { graphs: vec![sub.clone(), pb::GraphProto::default()], ..attr("gs", A::Graphs) },
        pb::AttributeProto {
            tp: Some(value_info("", D::Int4, &[3]).r#type.unwrap()),
            ..attr("tp", A::TypeProto)
        },
        pb::AttributeProto { type_protos: vec![pb::TypeProto::default()], ..attr("tps", A::TypeProtos) },
        pb::AttributeProto {
            sparse_tensor: Some(pb::SparseTensorProto {
                values: Some(fx::tensor_f32("sv", &[1], &[3.0])),
                indices: Some(pb::TensorProto { int64_data: vec![2], ..typed("si", D::Int64, vec![1]) }),
                dims: vec![4],
            }),
            ..attr("sp", A::SparseTensor)
        },
        // IR version 1 style: no discriminator.
        pb::AttributeProto { name: Some("untyped".into()), i: Some(3), ..Default::default() },
    ];
    attrs.push(pb::AttributeProto { sparse_tensors: vec![], ..attr("sps", A::SparseTensors) });
    let mut custom = node("Frobnicate", "com.example", "", &["x", "", "w_ext"], &["y", ""], attrs);
    custom.overload = Some("v2".into());
    custom.doc_string = Some("an op qc does not know".into());
    custom.metadata_props = vec![kv("k", "v")];
    custom.device_configurations = vec![pb::NodeDeviceConfigurationProto {
        configuration_id: Some("cfg".into()),
        sharding_spec: vec![pb::ShardingSpecProto {
            tensor_name: Some("x".into()),
            device: vec![0, 1],
            index_to_device_group_map: vec![pb::IntIntListEntryProto { key: Some(0), value: vec![0, 1] }],
            sharded_dim: vec![pb::ShardedDimProto {
                axis: Some(1),
                simple_sharding: vec![pb::SimpleShardedDimProto {
                    dim: Some(pb::simple_sharded_dim_proto::Dim::DimParam("N".into())),
                    num_shards: Some(2),
                }],
            }],
        }],
        pipeline_stage: Some(0),
    }];
    let mut ext = typed("w_ext", D::Float, vec![4]);
    ext.data_location = Some(pb::DataLocation::External as i32);
    ext.external_data =
        vec![kv("location", "weights.bin"), kv("offset", "0"), kv("length", "16"), kv("checksum", "x")];
    let mut sym_input = value_info("x", D::Float, &[1, 4]);
    if let Some(pb::type_proto::Value::TensorType(t)) =
        sym_input.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        let d = &mut t.shape.as_mut().unwrap().dim[0];
        d.value = Some(pb::tensor_shape_proto::dimension::Value::DimParam("batch".into()));
        d.denotation = Some("DATA_BATCH".into());
    }
    sym_input.doc_string = Some("the input".into());
    sym_input.metadata_props = vec![kv("unit", "volt")];
    let mut redeclared = value_info("x", D::Float, &[7, 4]);
    redeclared.doc_string = Some("declared again, differently".into());
    let graph = pb::GraphProto {
        name: Some(String::new()),
        doc_string: Some("graph doc".into()),
        node: vec![
            custom,
            node(
                "If",
                "",
                "if0",
                &["cond"],
                &["z"],
                vec![
                    pb::AttributeProto { g: Some(sub.clone()), ..attr("then_branch", A::Graph) },
                    pb::AttributeProto { g: Some(sub), ..attr("else_branch", A::Graph) },
                ],
            ),
        ],
        initializer: vec![
            pb::TensorProto { int32_data: vec![1, -2], ..typed("i8s", D::Int8, vec![2]) },
            pb::TensorProto { int32_data: vec![0x21], ..typed("i4s", D::Int4, vec![2]) },
            pb::TensorProto { int64_data: vec![i64::MIN], ..typed("i64s", D::Int64, vec![1]) },
            pb::TensorProto { double_data: vec![0.5], ..typed("f64s", D::Double, vec![1]) },
            pb::TensorProto { uint64_data: vec![u64::MAX], ..typed("u64s", D::Uint64, vec![1]) },
            pb::TensorProto {
                string_data: vec![Bytes::from_static(b"s")],
                ..typed("strs", D::String, vec![1])
            },
            pb::TensorProto { raw_data: Some(Bytes::new()), ..typed("empty", D::Float, vec![0]) },
            pb::TensorProto {
                data_location: Some(0),
                segment: Some(pb::tensor_proto::Segment { begin: Some(0), end: Some(1) }),
                raw_data: Some(Bytes::from_static(&[0x3c, 0x00])),
                ..typed("f16", D::Float16, vec![1])
            },
            pb::TensorProto {
                raw_data: Some(Bytes::from_static(&[1])),
                ..typed("f8", D::Float8e8m0, vec![1])
            },
            pb::TensorProto { raw_data: Some(Bytes::from_static(&[0x1b])), ..typed("u2", D::Uint2, vec![4]) },
            pb::TensorProto {
                raw_data: Some(Bytes::from_static(&[7])),
                data_type: Some(99),
                ..typed("future", D::Undefined, vec![])
            },
            ext,
        ],
        sparse_initializer: vec![pb::SparseTensorProto {
            values: Some(fx::tensor_f32("sparse_w", &[2], &[1.0, 2.0])),
            indices: Some(pb::TensorProto { int64_data: vec![0, 3], ..typed("", D::Int64, vec![2]) }),
            dims: vec![4],
        }],
        input: vec![sym_input, value_info("cond", D::Bool, &[])],
        output: vec![value_info("y", D::Float, &[]), value_info("z", D::Float, &[1, 4])],
        value_info: vec![
            redeclared,
            pb::ValueInfoProto {
                name: Some("seq".into()),
                r#type: Some(pb::TypeProto {
                    value: Some(pb::type_proto::Value::SequenceType(pb::type_proto::Sequence {
                        elem_type: Some(Box::new(pb::TypeProto {
                            value: Some(pb::type_proto::Value::MapType(pb::type_proto::Map {
                                key_type: Some(D::Int64 as i32),
                                value_type: Some(Box::new(pb::TypeProto {
                                    value: Some(pb::type_proto::Value::OptionalType(
                                        pb::type_proto::Optional { elem_type: None },
                                    )),
                                    denotation: Some("X".into()),
                                })),
                            })),
                            denotation: None,
                        })),
                    })),
                    denotation: None,
                }),
                ..Default::default()
            },
            pb::ValueInfoProto {
                name: Some("opaque".into()),
                r#type: Some(pb::TypeProto {
                    value: Some(pb::type_proto::Value::OpaqueType(pb::type_proto::Opaque {
                        domain: Some("d".into()),
                        name: None,
                    })),
                    denotation: None,
                }),
                ..Default::default()
            },
            pb::ValueInfoProto {
                name: Some("unranked".into()),
                r#type: Some(pb::TypeProto {
                    value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                        elem_type: Some(99),
                        shape: None,
                    })),
                    denotation: None,
                }),
                ..Default::default()
            },
        ],
        quantization_annotation: vec![pb::TensorAnnotation {
            tensor_name: Some("y".into()),
            quant_parameter_tensor_names: vec![kv("SCALE_TENSOR", "s"), kv("ZERO_POINT_TENSOR", "z")],
        }],
        metadata_props: vec![kv("graph", "meta")],
    };
    let function = pb::FunctionProto {
        name: Some("MyFn".into()),
        domain: Some("com.example".into()),
        overload: Some("v2".into()),
        input: vec!["a".into()],
        output: vec!["b".into()],
        attribute: vec!["alpha".into()],
        attribute_proto: vec![pb::AttributeProto { f: Some(0.5), ..attr("beta", A::Float) }],
        node: vec![node(
            "LeakyRelu",
            "",
            "lr",
            &["a"],
            &["b"],
            vec![pb::AttributeProto { ref_attr_name: Some("alpha".into()), ..attr("alpha", A::Float) }],
        )],
        value_info: vec![value_info("b", D::Float, &[])],
        opset_import: vec![fx::opset("", 18)],
        doc_string: Some("fn doc".into()),
        metadata_props: vec![kv("f", "m")],
    };
    let training = pb::TrainingInfoProto {
        initialization: Some(pb::GraphProto {
            node: vec![node(
                "Constant",
                "",
                "c",
                &[],
                &["w0"],
                vec![pb::AttributeProto { t: Some(fx::scalar_f32("", 0.0)), ..attr("value", A::Tensor) }],
            )],
            output: vec![value_info("w0", D::Float, &[])],
            ..Default::default()
        }),
        algorithm: Some(pb::GraphProto {
            node: vec![node("Identity", "", "step", &["i8s"], &["i8s_next"], vec![])],
            ..Default::default()
        }),
        initialization_binding: vec![kv("i8s", "w0")],
        update_binding: vec![kv("i8s", "i8s_next")],
    };
    ModelProto {
        ir_version: Some(13),
        producer_name: Some("every-feature".into()),
        producer_version: Some(String::new()),
        domain: Some("org.example".into()),
        model_version: Some(0),
        doc_string: Some("model doc".into()),
        graph: Some(graph),
        opset_import: vec![
            pb::OperatorSetIdProto { domain: None, version: Some(21) },
            fx::opset("com.example", 1),
        ],
        metadata_props: vec![kv("author", "qc")],
        training_info: vec![training],
        functions: vec![function],
        configuration: vec![pb::DeviceConfigurationProto {
            name: Some("cfg".into()),
            num_devices: Some(2),
            device: vec!["gpu0".into(), "gpu1".into()],
        }],
    }
}

#[test]
fn a_model_using_every_feature_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = every_feature_model().encode_to_vec();
    let path = dir.path().join("every.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let loaded =
        load::load(&path, LoadOptions::default()).unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert_eq!(loaded.warnings.len(), 1, "weights.bin is missing: {:?}", loaded.warnings);
    let m = &loaded.model;
    assert_eq!(m.graph.op_count(), 2);
    assert_eq!(m.functions.len(), 1);
    assert_eq!(m.training_info.len(), 1);
    assert_eq!(m.graph.decl_overrides.len(), 1, "`x` is declared twice, differently");
    let custom = m.graph.ops().next().unwrap().1;
    assert_eq!(custom.kind(), qc_ir::OpKind::Custom);
    assert_eq!(custom.attrs.len(), 15);
    assert_eq!(custom.attr("untyped").unwrap().declared_kind, None);
    assert_eq!(custom.inputs()[1], None, "an omitted optional input stays omitted");
    let report = qc::inspect::inspect(&loaded, "every.onnx");
    assert_eq!(
        report.nested_nodes,
        2 + 2 + 1 + 2,
        "If branches, attribute subgraphs, the function, training graphs"
    );
    let again = export_model(m).encode_to_vec();
    if again != bytes {
        let back = ModelProto::decode(again.as_slice()).unwrap();
        panic!("round trip differs:\n{:#?}\nvs\n{:#?}", back, every_feature_model());
    }
}
