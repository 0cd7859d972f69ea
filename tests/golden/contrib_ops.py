"""Generates contrib_ops.json: single-node models of onnxruntime's com.microsoft ops, run by
onnxruntime's CPU provider on fixed pseudo-random inputs. The Rust test `contrib_ops` checks qc's
evaluator against the outputs. Regenerate with: python contrib_ops.py > contrib_ops.json
(needs onnx, onnxruntime and numpy; made with onnxruntime 1.32)."""
import json, sys
import numpy as np
import onnx
from onnx import helper, TensorProto
import onnxruntime as ort

rng = np.random.default_rng(19)
cases = []

def f32(*dims, lo=-2.0, hi=2.0):
    return np.round(rng.uniform(lo, hi, dims), 3).astype(np.float32)

def u8(*dims):
    return rng.integers(0, 256, dims).astype(np.uint8)

def i8(*dims):
    return rng.integers(-128, 128, dims).astype(np.int8)

def attr_json(k, v):
    if isinstance(v, str):
        return {"name": k, "s": v}
    if isinstance(v, float):
        return {"name": k, "f": v}
    if isinstance(v, int):
        return {"name": k, "i": v}
    if all(isinstance(x, int) for x in v):
        return {"name": k, "ints": list(v)}
    return {"name": k, "floats": [float(x) for x in v]}

def tensor_json(a):
    if a is None:
        return None
    code = helper.np_dtype_to_tensor_dtype(a.dtype)
    return {"elem": int(code), "dims": list(a.shape), "data": [float(x) for x in a.reshape(-1)]}

def case(name, op, inputs, n_out=1, domain="com.microsoft", **attrs):
    names = [f"i{k}" if a is not None else "" for k, a in enumerate(inputs)]
    outs = [f"o{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, domain=domain, **attrs)
    g_in = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, inputs) if a is not None]
    g_out = [onnx.ValueInfoProto(name=o) for o in outs]
    g = helper.make_graph([node], name, g_in, g_out)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 1 if domain == "" else 17), helper.make_opsetid("com.microsoft", 1)])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {n: a for n, a in zip(names, inputs) if a is not None}
    res = s.run(None, feeds)
    cases.append({
        "name": name, "op": op, "domain": domain,
        "attrs": [attr_json(k, v) for k, v in attrs.items()],
        "inputs": [tensor_json(a) for a in inputs],
        "outputs": [tensor_json(np.asarray(r)) for r in res],
    })

sc = lambda v: np.array(v, dtype=np.float32)
zp8 = lambda v: np.array(v, dtype=np.uint8)
zpi8 = lambda v: np.array(v, dtype=np.int8)

x, w, b = f32(1, 2, 5, 5), f32(3, 2, 3, 3), f32(3)
case("fused_conv_relu", "FusedConv", [x, w, b], activation="Relu", pads=[1, 1, 1, 1])
case("fused_conv_sum_leaky", "FusedConv", [x, w, b, f32(1, 3, 3, 3)], activation="LeakyRelu", activation_params=[0.1])
case("fused_conv_clip_strided", "FusedConv", [x, w, b], activation="Clip", activation_params=[0.0, 6.0], strides=[2, 2], pads=[1, 1, 1, 1])
case("fused_conv_hardsigmoid_group", "FusedConv", [f32(1, 4, 4, 4), f32(4, 2, 3, 3)], activation="HardSigmoid", activation_params=[0.2, 0.5], group=2)
case("fused_conv_sigmoid", "FusedConv", [x, w], activation="Sigmoid")
case("fused_conv_tanh", "FusedConv", [x, w, b], activation="Tanh")
case("fused_matmul_plain", "FusedMatMul", [f32(2, 3, 4), f32(4, 5)])
case("fused_matmul_trans_a_alpha", "FusedMatMul", [f32(2, 4, 3), f32(4, 5)], transA=1, alpha=0.5)
case("fused_matmul_trans_b", "FusedMatMul", [f32(3, 4), f32(2, 5, 4)], transB=1)
case("fused_matmul_trans_batch_a", "FusedMatMul", [f32(3, 2, 4), f32(2, 4, 5)], transBatchA=1)
case("fused_matmul_trans_batch_b", "FusedMatMul", [f32(2, 3, 4), f32(4, 2, 5)], transBatchB=1)
case("fused_gemm_leaky", "FusedGemm", [f32(3, 4), f32(5, 4), f32(5)], transB=1, alpha=0.7, beta=0.5, activation="LeakyRelu", activation_alpha=0.2)
case("fused_gemm_relu", "FusedGemm", [f32(3, 4), f32(4, 5), f32(3, 5)], activation="Relu")
case("gelu", "Gelu", [f32(2, 3, 4, lo=-4, hi=4)])
case("fast_gelu_bias", "FastGelu", [f32(2, 3, 4, lo=-4, hi=4), f32(4)])
case("fast_gelu", "FastGelu", [f32(2, 3, 4, lo=-4, hi=4)])
case("bias_gelu", "BiasGelu", [f32(2, 3, 4, lo=-4, hi=4), f32(4)])
case("quick_gelu", "QuickGelu", [f32(2, 3, 4, lo=-4, hi=4)], alpha=1.5)
case("quick_gelu_default", "QuickGelu", [f32(2, 3, 4, lo=-4, hi=4)])
# BiasAdd has no CPU kernel in onnxruntime: its documented formula (input + bias + skip) in numpy.
ba = [f32(2, 3, 4), f32(4), f32(2, 3, 4)]
cases.append({"name": "bias_add", "op": "BiasAdd", "domain": "com.microsoft", "attrs": [], "inputs": [tensor_json(a) for a in ba],
              "outputs": [tensor_json(ba[0] + ba[1] + ba[2])]})
case("skip_layer_norm", "SkipLayerNormalization", [f32(2, 3, 8), f32(2, 3, 8), f32(8), f32(8), f32(8)], n_out=4, epsilon=1e-5)
case("skip_layer_norm_plain", "SkipLayerNormalization", [f32(2, 3, 8), f32(2, 3, 8), f32(8)])
case("skip_simplified_layer_norm", "SkipSimplifiedLayerNormalization", [f32(2, 3, 8), f32(2, 3, 8), f32(8), f32(8)], n_out=4, epsilon=1e-5)
# onnxruntime registers SimplifiedLayerNormalization in the default domain (opset 1 there).
case("simplified_layer_norm", "SimplifiedLayerNormalization", [f32(2, 3, 8), f32(8)], n_out=2, domain="", axis=-1, epsilon=1e-5)
case("simplified_layer_norm_axis1", "SimplifiedLayerNormalization", [f32(2, 3, 4), f32(3, 4)], n_out=2, domain="", axis=1, epsilon=1e-5)
case("qlinear_add", "QLinearAdd", [u8(2, 3, 4), sc(0.05), zp8(128), u8(4), sc(0.02), zp8(100), sc(0.07), zp8(120)])
case("qlinear_add_int8", "QLinearAdd", [i8(2, 3), sc(0.05), zpi8(3), i8(2, 3), sc(0.02), zpi8(-4), sc(0.03), zpi8(-1)])
case("qlinear_mul", "QLinearMul", [u8(2, 3, 4), sc(0.05), zp8(128), u8(3, 1), sc(0.02), zp8(100), sc(0.07), zp8(120)])
case("qlinear_sigmoid", "QLinearSigmoid", [u8(2, 10), sc(0.05), zp8(128), sc(1 / 256), zp8(0)])
case("qlinear_leaky_relu", "QLinearLeakyRelu", [u8(2, 10), sc(0.05), zp8(128), sc(0.04), zp8(100)], alpha=0.1)
case("qlinear_global_average_pool", "QLinearGlobalAveragePool", [u8(1, 3, 4, 4), sc(0.05), zp8(128), sc(0.03), zp8(110)], channels_last=0)
case("qlinear_global_average_pool_nhwc", "QLinearGlobalAveragePool", [u8(1, 4, 4, 3), sc(0.05), zp8(128), sc(0.03), zp8(110)], channels_last=1)
case("qlinear_average_pool", "QLinearAveragePool", [u8(1, 2, 5, 5), sc(0.05), zp8(128), sc(0.03), zp8(110)], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)
case("qlinear_concat", "QLinearConcat", [sc(0.04), zp8(120), u8(1, 2, 3), sc(0.05), zp8(128), u8(1, 3, 3), sc(0.02), zp8(100)], axis=1)
case("qlinear_softmax", "QLinearSoftmax", [u8(2, 6), sc(0.1), zp8(128), sc(1 / 256), zp8(0)], axis=-1, opset=13)
case("qgemm_quantized", "QGemm", [u8(3, 4), sc(0.05), zp8(128), i8(5, 4), sc(0.02), zpi8(0), np.array(rng.integers(-500, 500, 5), dtype=np.int32), sc(0.1), zp8(120)], transB=1)
case("qgemm_float", "QGemm", [u8(3, 4), sc(0.05), zp8(128), i8(4, 5), np.array([0.01, 0.02, 0.03, 0.04, 0.05], dtype=np.float32), zpi8([0, 0, 0, 0, 0])], alpha=0.5)
case("quantize_linear", "QuantizeLinear", [f32(2, 3), sc(0.02), zp8(128)])
case("dequantize_linear_axis", "DequantizeLinear", [u8(2, 3), np.array([0.1, 0.2, 0.3], dtype=np.float32), zp8([1, 2, 3])], axis=1)

json.dump({"note": __doc__, "cases": cases}, sys.stdout, separators=(",", ":"))
