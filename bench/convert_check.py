"""Peer check for `qc convert --to qcdq`, the Python half of bench/convert_check.sh.

    python3 bench/convert_check.py list SHARED_DIR
        prints the QONNX models (files with a Quant, IntQuant, BipolarQuant, Trunc, FloatQuant or
        MultiThreshold node) under the four QONNX folders of SHARED_DIR/models, one per line.

    python3 bench/convert_check.py check --qc QC_BINARY --work DIR ORIGINAL=CONVERTED ...
        for each pair: runs onnx.checker.check_model on the converted QCDQ model, runs it in
        onnxruntime (graph optimisations off, and all on), runs `qc run` on the converted and on
        the original model with the same seeded random inputs (.npy files), and prints a table of
        the largest absolute differences between onnxruntime and qc's evaluator. Then each
        converted QuantizeLinear -> [Clip] -> DequantizeLinear chain runs alone in onnxruntime,
        against the Quant it replaced run alone in qc (whose Quant is QONNX's arithmetic), on
        4096+ values spanning the integer range, past both ends, with exact ties; this covers
        the models whose other custom ops onnxruntime cannot run.

Inputs: two batches per model, numpy seed 0, uniform in [-1, 1] and [-8, 8] for float inputs,
symbolic dims set to 1. A difference is printed as `max |diff| (differing elements/compared)`.
"""
import os
import subprocess
import sys

import numpy as np
import onnx

QONNX_OPS = {"Quant", "IntQuant", "BipolarQuant", "Trunc", "FloatQuant", "MultiThreshold"}
QONNX_DOMAINS = {"", "qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general", "finn"}
FOLDERS = ["qonnx-model-zoo", "brevitas-radioml-challenge-21", "qonnx-testdata", "hls4ml-example-models"]


def is_qonnx(path):
    m = onnx.load(path, load_external_data=False)
    return any(n.op_type in QONNX_OPS and n.domain in QONNX_DOMAINS for n in m.graph.node)


def list_models(shared):
    for folder in FOLDERS:
        d = os.path.join(shared, "models", folder)
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if name.endswith(".onnx") and is_qonnx(p):
                print(p)


def file_name(name):
    """The file `qc run` writes an output to (compiler/src/run.rs: file_name)."""
    s = "".join(c if c.isalnum() and c.isascii() or c in "-_." else "_" for c in name)
    return "_" + s if (not s or s.startswith(".")) else s


NP_TYPES = {1: np.float32, 10: np.float16, 11: np.float64, 2: np.uint8, 3: np.int8, 5: np.int16,
            6: np.int32, 7: np.int64, 9: np.bool_}


def make_inputs(model, amplitude, rng):
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        dtype = NP_TYPES[tt.elem_type]
        if np.issubdtype(dtype, np.floating):
            out[vi.name] = (rng.uniform(-amplitude, amplitude, size=dims)).astype(dtype)
        else:
            out[vi.name] = rng.integers(0, 4, size=dims).astype(dtype)
    return out


def ort_run(path, inputs, optimize):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, inputs)))


def qc_run(qc, path, inputs, work, tag):
    d = os.path.join(work, tag)
    os.makedirs(d, exist_ok=True)
    args = [qc, "run", path, "--output-dir", d]
    for name, a in inputs.items():
        f = os.path.join(d, "in_" + file_name(name) + ".npy")
        np.save(f, a)
        args += ["--input", f"{name}={f}"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[0] if r.stderr.strip() else f"exit {r.returncode}")
    m = onnx.load(path, load_external_data=False)
    return {o.name: np.load(os.path.join(d, file_name(o.name) + ".npy")) for o in m.graph.output}


class Diff:
    """The largest absolute difference over compared outputs, and how many elements differ."""

    def __init__(self):
        self.worst, self.differ, self.total = 0.0, 0, 0

    def add(self, a, b):
        for k in a:
            x, y = np.asarray(a[k], dtype=np.float64), np.asarray(b[k], dtype=np.float64)
            if x.shape != y.shape:
                self.worst, self.differ, self.total = float("inf"), self.differ + x.size, self.total + x.size
                continue
            d = np.abs(x - y)
            self.worst = max(self.worst, float(d.max()) if d.size else 0.0)
            self.differ += int((d > 0).sum())
            self.total += d.size

    def __str__(self):
        if self.differ == 0:
            return "0"
        return f"{self.worst:.2e} ({self.differ}/{self.total})"


def short(e):
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    s = s.split(" failed:", 1)[-1]  # onnxruntime: "Load model from PATH failed:REASON"
    return (s[:110] + "...") if len(s) > 113 else s


def node_check(qc, work, name, original, converted):
    """Runs each converted QuantizeLinear -> [Clip] -> DequantizeLinear chain alone in
    onnxruntime and the Quant it replaced alone in `qc run` (qc's Quant follows QONNX's numpy
    code bit for bit), on the same inputs; returns (chains, identical, values, worst)."""
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    mo = onnx.load(original, load_external_data=False)
    mc = onnx.load(converted, load_external_data=False)
    producer = {o: n for n in mc.graph.node for o in n.output}
    quant_of = {n.output[0]: n for n in mo.graph.node if n.op_type in ("Quant", "IntQuant")}
    inits_c = {t.name: t for t in mc.graph.initializer}
    inits_o = {t.name: t for t in mo.graph.initializer}
    types = {vi.name: vi for vi in list(mc.graph.value_info) + list(mc.graph.input) + list(mc.graph.output)}
    opset_c = [o for o in mc.opset_import]
    rng = np.random.default_rng(1)
    chains = identical = values = 0
    worst = 0.0
    for dq in [n for n in mc.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in quant_of]:
        chain = [dq]
        while chain[0].input[0] in producer and producer[chain[0].input[0]].op_type in ("Clip", "QuantizeLinear"):
            chain.insert(0, producer[chain[0].input[0]])
            if chain[0].op_type == "QuantizeLinear":
                break
        if chain[0].op_type != "QuantizeLinear":
            continue
        quant = quant_of[dq.output[0]]
        x = chain[0].input[0]
        scale = numpy_helper.to_array(inits_o[quant.input[1]]).astype(np.float64)
        bits = float(numpy_helper.to_array(inits_o[quant.input[3]]))
        top = 2.0 ** bits
        feeds = {}
        if x in inits_c:
            x_info = None
        else:
            dims = [d.dim_value if d.HasField("dim_value") else 1 for d in types[x].type.tensor_type.shape.dim]
            axis = next((a.i for a in chain[0].attribute if a.name == "axis"), None)
            if dims and (scale.size == 1 or (axis is not None and axis % len(dims) != 0)):
                rest = int(np.prod(dims[1:]))
                dims[0] = max(dims[0], -(-4096 // max(rest, 1)))
            n = int(np.prod(dims))
            pick = rng.integers(0, 10, size=n)
            wide = rng.uniform(-1, 1, size=n) * scale.max() * top * 1.5
            narrow = rng.uniform(-1, 1, size=n) * scale.min() * top
            ties = (rng.integers(-int(top), int(top) + 1, size=n) + 0.5) * np.where(
                rng.integers(0, 2, size=n) == 0, scale.min(), scale.max())
            v = np.where(pick < 4, wide, np.where(pick < 8, narrow, ties)).astype(np.float32).reshape(dims)
            feeds[x] = v
            x_info = helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, ["N"] + dims[1:] if dims else [])
        y = dq.output[0]
        y_info = helper.make_tensor_value_info(y, onnx.TensorProto.FLOAT, None)
        used = {i for node in chain for i in node.input if i}
        g = helper.make_graph(chain, "chain", [x_info] if x_info else [], [y_info],
                              [inits_c[i] for i in sorted(used) if i in inits_c])
        mini = helper.make_model(g, opset_imports=opset_c, ir_version=mc.ir_version)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        got = ort.InferenceSession(mini.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
            [y], feeds)[0]
        qg = helper.make_graph([quant], "quant", [x_info] if x_info else [], [y_info],
                               [inits_o[i] for i in quant.input if i in inits_o])
        qmini = helper.make_model(qg, opset_imports=list(mo.opset_import), ir_version=mo.ir_version)
        path = os.path.join(work, f"{name}.node{chains}.quant.onnx")
        onnx.save(qmini, path)
        want = qc_run(qc, path, feeds, work, f"{name}.node{chains}")[y]
        d = np.abs(got.astype(np.float64) - want.astype(np.float64))
        chains += 1
        values += d.size
        identical += int(not (d > 0).any())
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return chains, identical, values, worst


def check(qc, work, pairs):
    rows = []
    notes = []
    for pair in pairs:
        original, converted = pair.split("=", 1)
        name = os.path.basename(original)[: -len(".onnx")]
        m = onnx.load(converted, load_external_data=False)
        ops = [n.op_type for n in m.graph.node]
        left = sorted({f"{n.domain}:{n.op_type}" for n in m.graph.node if n.domain not in ("", "ai.onnx")}
                      | {n.op_type for n in m.graph.node if n.domain in ("", "ai.onnx") and n.op_type in QONNX_OPS})
        try:
            onnx.checker.check_model(m, full_check=True)
            checker = "ok"
        except Exception as e:  # noqa: BLE001 - reported in the table
            checker = "FAIL"
            notes.append(f"{name}: checker: {short(e)}")
        rng = np.random.default_rng(0)
        batches = [make_inputs(m, a, rng) for a in (1.0, 8.0)]
        keys = ("ort0-qc", "ortall-qc", "ort0-orig", "qc-orig")
        diffs = {k: Diff() for k in keys}
        status = "ok"
        for i, inputs in enumerate(batches):
            try:
                r0 = ort_run(converted, inputs, False)
                rall = ort_run(converted, inputs, True)
            except Exception as e:  # noqa: BLE001 - reported in the table
                status = "n/a"
                notes.append(f"{name}: onnxruntime: {short(e)}")
                diffs = {k: "n/a" for k in keys}
                break
            qconv = qorig = None
            try:
                qconv = qc_run(qc, converted, inputs, work, f"{name}.b{i}.qcdq")
                diffs["ort0-qc"].add(r0, qconv)
                diffs["ortall-qc"].add(rall, qconv)
            except Exception as e:  # noqa: BLE001
                diffs["ort0-qc"] = diffs["ortall-qc"] = "n/a"
                notes.append(f"{name}: qc run (QCDQ): {short(e)}")
                break
            try:
                qorig = qc_run(qc, original, inputs, work, f"{name}.b{i}.orig")
                diffs["ort0-orig"].add(r0, qorig)
                diffs["qc-orig"].add(qconv, qorig)
            except Exception as e:  # noqa: BLE001
                diffs["ort0-orig"] = diffs["qc-orig"] = "n/a"
                notes.append(f"{name}: qc run (original QONNX): {short(e)}")
                break
        try:
            chains, same, nvals, worst = node_check(qc, work, name, original, converted)
            per_node = f"{same}/{chains} identical ({nvals} values)" if chains else "-"
            if same != chains:
                per_node += f", max {worst:.2e}"
        except Exception as e:  # noqa: BLE001
            per_node = "n/a"
            notes.append(f"{name}: per-chain check: {short(e)}")
        rows.append([name, str(ops.count("QuantizeLinear")), str(ops.count("Clip")), ", ".join(left) or "-",
                     checker, status] + [str(diffs[k]) for k in keys] + [per_node])
    head = ["model", "QuantizeLinear", "Clip", "non-ONNX ops left", "onnx.checker", "onnxruntime",
            "ORT(no opt) vs qc", "ORT(all opt) vs qc", "ORT(no opt) vs qc on QONNX original",
            "qc QCDQ vs qc QONNX", "each chain in ORT vs its Quant in qc"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if notes:
        print()
        for n in notes:
            print(f"- {n}")


def main(argv):
    if len(argv) >= 2 and argv[0] == "list":
        list_models(argv[1])
    elif argv and argv[0] == "check":
        qc = argv[argv.index("--qc") + 1]
        work = argv[argv.index("--work") + 1]
        pairs = [a for a in argv[1:] if "=" in a]
        check(qc, work, pairs)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
