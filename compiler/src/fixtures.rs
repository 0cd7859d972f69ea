//! Models built in code: the example model that ships in `examples/`, the fixtures of the tests,
//! and the 1 GiB model of the load benchmark. Nothing here reads files.

use std::io::{self, Write};

use bytes::Bytes;
use prost::Message;

use crate::onnx::proto::{self as pb, AttributeType, DataType};

/// A tensor of `f32` values stored as `raw_data`.
pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into()),
        ..Default::default()
    }
}

/// A scalar `f32` tensor.
pub fn scalar_f32(name: &str, v: f32) -> pb::TensorProto {
    tensor_f32(name, &[], &[v])
}

/// A declaration of a tensor value with element type `elem` and fixed dims.
pub fn value_info(name: &str, elem: DataType, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value as D};
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension { value: Some(D::DimValue(d)), denotation: None })
                        .collect(),
                }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// A node in `domain` (`""` for the default domain).
pub fn node(
    op_type: &str,
    domain: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: Some(name.into()),
        op_type: Some(op_type.into()),
        domain: Some(domain.into()),
        attribute: attrs,
        ..Default::default()
    }
}

pub fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        r#type: Some(AttributeType::Int as i32),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        f: Some(v),
        r#type: Some(AttributeType::Float as i32),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        ints: v.to_vec(),
        r#type: Some(AttributeType::Ints as i32),
        ..Default::default()
    }
}

pub fn attr_string(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        s: Some(Bytes::copy_from_slice(v.as_bytes())),
        r#type: Some(AttributeType::String as i32),
        ..Default::default()
    }
}

/// An opset import.
pub fn opset(domain: &str, version: i64) -> pb::OperatorSetIdProto {
    pb::OperatorSetIdProto { domain: Some(domain.into()), version: Some(version) }
}

/// A model around `graph`, at IR version 8.
pub fn model(graph: pb::GraphProto, opsets: Vec<pb::OperatorSetIdProto>) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: Some(8),
        producer_name: Some("qc-fixtures".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        opset_import: opsets,
        ..Default::default()
    }
}

/// Deterministic pseudo-random weights in [-1, 1) (a fixed linear congruential sequence).
pub fn weights(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// A small QONNX network: 4-bit activations and weights (QONNX `Quant`), a 3x3 convolution with
/// 8 output channels, ReLU, global average pooling and a fully connected layer to 10 classes.
/// It is `examples/tiny_qonnx.onnx`.
pub fn tiny_qonnx() -> pb::ModelProto {
    const Q: &str = "qonnx.custom_op.general";
    let quant = |name: &str, x: &str, y: &str, scale: &str, signed: i64| {
        node(
            "Quant",
            Q,
            name,
            &[x, scale, "zero", "bits4"],
            &[y],
            vec![attr_int("signed", signed), attr_int("narrow", 0), attr_string("rounding_mode", "ROUND")],
        )
    };
    let graph = pb::GraphProto {
        name: Some("tiny_qonnx".into()),
        node: vec![
            quant("quant_in", "x", "x_q", "act_scale", 1),
            quant("quant_w1", "w1", "w1_q", "w_scale", 1),
            node(
                "Conv",
                "",
                "conv1",
                &["x_q", "w1_q", "b1"],
                &["c1"],
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                    attr_ints("strides", &[1, 1]),
                ],
            ),
            node("Relu", "", "relu1", &["c1"], &["r1"], vec![]),
            quant("quant_a1", "r1", "r1_q", "act_scale", 0),
            node("GlobalAveragePool", "", "gap", &["r1_q"], &["p"], vec![]),
            node("Flatten", "", "flatten", &["p"], &["f"], vec![attr_int("axis", 1)]),
            quant("quant_w2", "w2", "w2_q", "w_scale", 1),
            node("Gemm", "", "fc", &["f", "w2_q", "b2"], &["y"], vec![attr_int("transB", 1)]),
        ],
        initializer: vec![
            scalar_f32("act_scale", 0.125),
            scalar_f32("w_scale", 0.0625),
            scalar_f32("zero", 0.0),
            scalar_f32("bits4", 4.0),
            tensor_f32("w1", &[8, 3, 3, 3], &weights(8 * 3 * 3 * 3, 1)),
            tensor_f32("b1", &[8], &weights(8, 2)),
            tensor_f32("w2", &[10, 8], &weights(80, 3)),
            tensor_f32("b2", &[10], &weights(10, 4)),
        ],
        input: vec![value_info("x", DataType::Float, &[1, 3, 16, 16])],
        output: vec![value_info("y", DataType::Float, &[1, 10])],
        ..Default::default()
    };
    model(graph, vec![opset("", 13), opset(Q, 1)])
}

/// A straight-line graph of `layers` blocks, each `MatMul` by a 16x16 weight, `Add` of a bias and
/// `Relu` (three nodes and two initializers a block): a large graph for import and verifier
/// benchmarks.
pub fn deep_mlp(layers: usize) -> pb::ModelProto {
    let mut g = pb::GraphProto { name: Some(format!("mlp{layers}")), ..Default::default() };
    g.input.push(value_info("x0", DataType::Float, &[1, 16]));
    for i in 0..layers {
        let (x, w, b, m, a, y) = (
            format!("x{i}"),
            format!("w{i}"),
            format!("b{i}"),
            format!("m{i}"),
            format!("a{i}"),
            format!("x{}", i + 1),
        );
        g.node.push(node("MatMul", "", &format!("matmul{i}"), &[&x, &w], &[&m], vec![]));
        g.node.push(node("Add", "", &format!("add{i}"), &[&m, &b], &[&a], vec![]));
        g.node.push(node("Relu", "", &format!("relu{i}"), &[&a], &[&y], vec![]));
        g.initializer.push(tensor_f32(&w, &[16, 16], &weights(256, i as u32)));
        g.initializer.push(tensor_f32(&b, &[16], &weights(16, i as u32 + 7)));
    }
    g.output.push(value_info(&format!("x{layers}"), DataType::Float, &[1, 16]));
    model(g, vec![opset("", 13)])
}

/// An i64 tensor.
pub fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Int64 as i32),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into()),
        ..Default::default()
    }
}

/// A transformer-like encoder stack of `layers` layers (32 nodes each) over a `[1, 16, 32]`
/// input, written the way exporters write it: attention heads are split and merged with
/// `Reshape`s whose target shapes are computed at run time by `Shape -> Gather -> Unsqueeze ->
/// Concat` chains. The benchmark for shape inference, constant folding and dead-code
/// elimination (`layers = 313` gives 10,016 nodes).
pub fn transformer_like(layers: usize) -> pb::ModelProto {
    const SEQ: i64 = 16;
    const HID: i64 = 32;
    const HEADS: i64 = 4;
    const MLP: i64 = 64;
    let mut g = pb::GraphProto { name: Some(format!("encoder{layers}")), ..Default::default() };
    g.input.push(value_info("x0", DataType::Float, &[1, SEQ, HID]));
    g.initializer.push(tensor_i64("zero", &[], &[0]));
    g.initializer.push(tensor_i64("one", &[], &[1]));
    g.initializer.push(tensor_i64("heads", &[1], &[HEADS]));
    g.initializer.push(tensor_i64("head_dim", &[1], &[HID / HEADS]));
    g.initializer.push(tensor_i64("hidden", &[1], &[HID]));
    g.initializer.push(scalar_f32("sqrt_d", ((HID / HEADS) as f32).sqrt()));
    let mut seed = 0u32;
    let mut weight = |g: &mut pb::GraphProto, name: String, dims: &[i64]| {
        seed += 1;
        let n = dims.iter().product::<i64>() as usize;
        g.initializer.push(tensor_f32(&name, dims, &weights(n, seed)));
        name
    };
    for l in 0..layers {
        let v = |s: &str| format!("l{l}_{s}");
        let x = format!("x{l}");
        let n =
            |g: &mut pb::GraphProto, op: &str, ins: &[&str], out: &str, attrs: Vec<pb::AttributeProto>| {
                g.node.push(node(op, "", &format!("{out}_{op}"), ins, &[out], attrs));
            };
        let (wq, wk, wv, wo) = (
            weight(&mut g, v("wq"), &[HID, HID]),
            weight(&mut g, v("wk"), &[HID, HID]),
            weight(&mut g, v("wv"), &[HID, HID]),
            weight(&mut g, v("wo"), &[HID, HID]),
        );
        let (w1, b1, w2, b2) = (
            weight(&mut g, v("w1"), &[HID, MLP]),
            weight(&mut g, v("b1"), &[MLP]),
            weight(&mut g, v("w2"), &[MLP, HID]),
            weight(&mut g, v("b2"), &[HID]),
        );
        let (g1, be1, g2, be2) = (
            weight(&mut g, v("ln1_g"), &[HID]),
            weight(&mut g, v("ln1_b"), &[HID]),
            weight(&mut g, v("ln2_g"), &[HID]),
            weight(&mut g, v("ln2_b"), &[HID]),
        );
        for (w, out) in [(&wq, "q"), (&wk, "k"), (&wv, "v")] {
            n(&mut g, "MatMul", &[&x, w], &v(out), vec![]);
        }
        n(&mut g, "Shape", &[&x], &v("shape"), vec![]);
        n(&mut g, "Gather", &[&v("shape"), "zero"], &v("batch"), vec![attr_int("axis", 0)]);
        n(&mut g, "Gather", &[&v("shape"), "one"], &v("seq"), vec![attr_int("axis", 0)]);
        n(&mut g, "Unsqueeze", &[&v("batch"), "zero_axes"], &v("batch1"), vec![]);
        n(&mut g, "Unsqueeze", &[&v("seq"), "zero_axes"], &v("seq1"), vec![]);
        n(
            &mut g,
            "Concat",
            &[&v("batch1"), &v("seq1"), "heads", "head_dim"],
            &v("split_shape"),
            vec![attr_int("axis", 0)],
        );
        for (src, out, perm) in
            [("q", "qh", [0, 2, 1, 3]), ("k", "kh", [0, 2, 3, 1]), ("v", "vh", [0, 2, 1, 3])]
        {
            n(&mut g, "Reshape", &[&v(src), &v("split_shape")], &v(&format!("{src}4")), vec![]);
            n(&mut g, "Transpose", &[&v(&format!("{src}4"))], &v(out), vec![attr_ints("perm", &perm)]);
        }
        n(&mut g, "MatMul", &[&v("qh"), &v("kh")], &v("scores"), vec![]);
        n(&mut g, "Div", &[&v("scores"), "sqrt_d"], &v("scaled"), vec![]);
        n(&mut g, "Softmax", &[&v("scaled")], &v("attn"), vec![attr_int("axis", -1)]);
        n(&mut g, "MatMul", &[&v("attn"), &v("vh")], &v("ctx"), vec![]);
        n(&mut g, "Transpose", &[&v("ctx")], &v("ctx_t"), vec![attr_ints("perm", &[0, 2, 1, 3])]);
        n(
            &mut g,
            "Concat",
            &[&v("batch1"), &v("seq1"), "hidden"],
            &v("merge_shape"),
            vec![attr_int("axis", 0)],
        );
        n(&mut g, "Reshape", &[&v("ctx_t"), &v("merge_shape")], &v("merged"), vec![]);
        n(&mut g, "MatMul", &[&v("merged"), &wo], &v("proj"), vec![]);
        n(&mut g, "Add", &[&x, &v("proj")], &v("res1"), vec![]);
        n(&mut g, "LayerNormalization", &[&v("res1"), &g1, &be1], &v("ln1"), vec![attr_int("axis", -1)]);
        n(&mut g, "MatMul", &[&v("ln1"), &w1], &v("h1"), vec![]);
        n(&mut g, "Add", &[&v("h1"), &b1], &v("h1b"), vec![]);
        n(&mut g, "Relu", &[&v("h1b")], &v("h1r"), vec![]);
        n(&mut g, "MatMul", &[&v("h1r"), &w2], &v("h2"), vec![]);
        n(&mut g, "Add", &[&v("h2"), &b2], &v("h2b"), vec![]);
        n(&mut g, "Add", &[&v("ln1"), &v("h2b")], &v("res2"), vec![]);
        n(
            &mut g,
            "LayerNormalization",
            &[&v("res2"), &g2, &be2],
            &format!("x{}", l + 1),
            vec![attr_int("axis", -1)],
        );
    }
    g.initializer.push(tensor_i64("zero_axes", &[1], &[0]));
    g.output.push(value_info(&format!("x{layers}"), DataType::Float, &[1, SEQ, HID]));
    model(g, vec![opset("", 17)])
}

/// Writes a model with `tensors` initializers of `tensor_bytes` bytes each (f32 `raw_data`),
/// streaming, so a 1 GiB model needs no 1 GiB buffer. The graph adds them all to its input.
pub fn write_big_model(w: &mut dyn Write, tensors: usize, tensor_bytes: usize) -> io::Result<()> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
    let elems = (tensor_bytes / 4) as i64;
    let mut nodes = Vec::new();
    let mut prev = "x".to_string();
    for i in 0..tensors {
        let out = format!("sum{i}");
        nodes.push(node("Add", "", &format!("add{i}"), &[&prev, &format!("w{i}")], &[&out], vec![]));
        prev = out;
    }
    let head = pb::GraphProto {
        name: Some("big".into()),
        node: nodes,
        input: vec![value_info("x", DataType::Float, &[elems])],
        output: vec![value_info(&prev, DataType::Float, &[elems])],
        ..Default::default()
    };
    // Each initializer: the tensor without data, then the raw_data field written by hand.
    let raw_len = elems as usize * 4;
    let shell = |i: usize| pb::TensorProto {
        name: Some(format!("w{i}")),
        dims: vec![elems],
        data_type: Some(DataType::Float as i32),
        ..Default::default()
    };
    let tensor_len = |i: usize| shell(i).encoded_len() + 1 + encoded_len_varint(raw_len as u64) + raw_len;
    let head_bytes = head.encode_to_vec();
    let graph_len: usize = head_bytes.len()
        + (0..tensors)
            .map(|i| {
                let l = tensor_len(i);
                1 + encoded_len_varint(l as u64) + l
            })
            .sum::<usize>();
    let prefix = pb::ModelProto { graph: None, ..model(pb::GraphProto::default(), vec![opset("", 13)]) };
    let mut buf = prefix.encode_to_vec();
    encode_key(7, WireType::LengthDelimited, &mut buf);
    encode_varint(graph_len as u64, &mut buf);
    buf.extend_from_slice(&head_bytes);
    w.write_all(&buf)?;
    let chunk: Vec<u8> = weights(1 << 16, 9).iter().flat_map(|v| v.to_le_bytes()).collect();
    for i in 0..tensors {
        let mut b = Vec::new();
        encode_key(5, WireType::LengthDelimited, &mut b);
        encode_varint(tensor_len(i) as u64, &mut b);
        shell(i).encode(&mut b).map_err(io::Error::other)?;
        encode_key(9, WireType::LengthDelimited, &mut b);
        encode_varint(raw_len as u64, &mut b);
        w.write_all(&b)?;
        let mut left = raw_len;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n])?;
            left -= n;
        }
    }
    Ok(())
}
