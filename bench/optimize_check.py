"""Peer check for `qc optimize`, the Python half of bench/optimize_check.sh.

    python3 bench/optimize_check.py NAME=ORIGINAL=OPTIMIZED ...

For each model: node counts of the original and the optimized model, `onnx.checker.check_model`
(full_check) on the original and on the optimized model, and both models run in onnxruntime (graph optimisations off)
on the same inputs (numpy seed 0, uniform in [-1, 1] for floats, 0..2 for integers, symbolic dims
set to 1). The ORT column is the largest |original - optimized| over all outputs, relative to
max(1, max |original|); `n/a: ...` says why onnxruntime could not run the original (custom QONNX
ops, ...). An empty OPTIMIZED means qc optimize failed.
"""
import sys

import numpy as np
import onnx

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

ELEM = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
    9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64,
}


def inputs_for(model):
    rng = np.random.default_rng(0)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in t.shape.dim]
        dt = ELEM.get(t.elem_type)
        if dt is None:
            raise ValueError(f"input {vi.name}: element type {t.elem_type}")
        if np.issubdtype(dt, np.floating):
            feeds[vi.name] = rng.uniform(-1, 1, dims).astype(dt)
        elif dt is np.bool_:
            feeds[vi.name] = rng.integers(0, 2, dims).astype(dt)
        else:
            feeds[vi.name] = rng.integers(0, 3, dims).astype(dt)
    return feeds


def run(path, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def short(e):
    return str(e).strip().splitlines()[0][:90].replace("|", "/")


def main(args):
    print("| model | nodes before → after | onnx.checker (original) | onnx.checker (optimized) | ORT rel. max diff |")
    print("|---|---|---|---|---|")
    tally = {"models": 0, "checker ok": 0, "checker ok before": 0, "ort equal": 0, "ort n/a": 0, "fail": 0}
    for arg in args:
        name, original, optimized = arg.split("=", 2)
        tally["models"] += 1
        m0 = onnx.load(original)
        checker0 = check(original)
        tally["checker ok before"] += checker0 == "ok"
        if not optimized:
            tally["fail"] += 1
            print(f"| {name} | {len(m0.graph.node)} → qc optimize failed | {checker0} | - | - |")
            continue
        m1 = onnx.load(optimized)
        checker = check(optimized)
        tally["checker ok"] += checker == "ok"
        try:
            feeds = inputs_for(m0)
            x = run(original, feeds)
        except Exception as e:  # noqa: BLE001
            diff = "n/a: " + short(e)
        else:
            try:
                y = run(optimized, feeds)
                worst = 0.0
                for a, b in zip(x, y):
                    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
                    if a64.shape != b64.shape:
                        raise ValueError(f"shape {a64.shape} vs {b64.shape}")
                    scale = max(1.0, float(np.nanmax(np.abs(a64))) if a64.size else 1.0)
                    if a64.size:
                        worst = max(worst, float(np.nanmax(np.abs(a64 - b64))) / scale)
                diff = f"{worst:.1e}" + ("" if worst <= 1e-4 else " FAIL")
            except Exception as e:  # noqa: BLE001
                diff = "FAIL: optimized: " + short(e)
        tally["ort equal"] += not diff.startswith("n/a") and "FAIL" not in diff
        tally["ort n/a"] += diff.startswith("n/a")
        tally["fail"] += (not diff.startswith("n/a") and "FAIL" in diff) or (checker != "ok" and checker0 == "ok")
        print(f"| {name} | {len(m0.graph.node)} → {len(m1.graph.node)} | {checker0} | {checker} | {diff} |")
    print()
    print(", ".join(f"{k}: {v}" for k, v in tally.items()))


def check(path):
    """`onnx.checker` on the file (by path, so external data is found beside it)."""
    try:
        onnx.checker.check_model(path, full_check=True)
        return "ok"
    except Exception as e:  # noqa: BLE001
        return "FAIL: " + short(e)


if __name__ == "__main__":
    main(sys.argv[1:])
