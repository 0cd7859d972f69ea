"""Checks qc on every model of the real-model corpus, the Python half of bench/real_models_check.sh.

    QC=target/release/qc python3 bench/real_models_check.py CORPUS_DIR OUT.md

CORPUS_DIR is what bench/real_corpus.sh built (its corpus.json says, per file, the inputs to use
and the expected MACs). For each model, every step runs whatever the steps before it gave, and a
failure is written into its cell (with qc's error line), never stopping the run:

- `qc inspect --format json`: exit code and node count;
- `qc optimize MODEL -o OPT --overwrite-input-shape NAME:d0,d1,...` (one per non-scalar input),
  then `onnx.checker.check_model(OPT, full_check=True)`, and onnxruntime on MODEL and on OPT;
- `qc run MODEL --input NAME=FILE.npy ... --output-dir D` against onnxruntime on MODEL;
- `qc cost MODEL --format json --cost-breakdown --extended --no-discount-sparsity` (zero weights
  count, as in corpus.json's formulas), with `--overwrite-input-shape` if qc accepts it on cost
  (when it does not, the cell says so and the run goes on without it: qc then counts a symbolic
  dim as 1), and the same on OPT, whose input dims optimize made concrete; `not costed` lists
  the MAC op types qc reports unsupported. The MACs compared are the sum of qc's
  per-op-type costs over the op types corpus.json counts (`mac_ops`: Conv, Gemm, MatMul, their
  integer and QLinear forms, com.microsoft FusedConv/FusedMatMul/QGemm, LSTM/GRU/RNN/
  DynamicQuantizeLSTM): `--extended` also costs element-wise ops and pooling, left out here.

Inputs: the ones corpus.json names, from numpy `default_rng(0)` in the order listed (float32
uniform [0, 1); `const:V` and `int:LO..HI` as the record says). onnxruntime runs with graph
optimizations off (ORT_DISABLE_ALL), one thread.

Agreement, per output, then the worst over the outputs:

- relative difference: max |a - b| / max(1, max |b|), b the reference (onnxruntime on the
  original; the floor of 1 as in bench/optimize_check.py, so that an output of tiny magnitude,
  such as the detector's sigmoid map near 0 on noise input, is not judged by rounding alone);
  float models (`float`, `ort`) agree when it is at most 1e-4;
- int8 models with a static scale (`qdq`, `ort-qdq`): the quantization step of an output is the
  scale of the DequantizeLinear that produces it (the largest scale when per channel), or 1 when
  a QuantizeLinear produces it (an integer output: one step of its scale in real units is one
  integer unit); when neither produces it directly, the nearest one found going
  back from the output through first inputs, at most 8 nodes (the cell says `step via OP` then,
  since the ops in between change the step's meaning). The cell gives the share of output
  elements within one step of onnxruntime's and the largest difference in steps;
- `dynamic` models have no static output scale (DynamicQuantizeLinear computes it at run time):
  the share of elements within 1e-4 relative (as for floats) and the largest relative difference.

For scale, the table also gives how far onnxruntime's own run with all graph optimizations
(ORT_ENABLE_ALL) is from its run without (relative difference): where an output is near zero
everywhere (the PaddleOCR detector's probability map on noise), 1e-4 relative is very strict, and
this column shows whether onnxruntime itself stays within it.

Writes OUT.md (a Markdown table and a tally) and OUT.json (every cell, with the full error
lines) and prints the table.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnx.numpy_helper

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

QC = os.environ.get("QC", "target/release/qc")
TIMEOUT = float(os.environ.get("QC_TIMEOUT", "300"))
FLOAT_TOL = 1e-4


def make_inputs(spec):
    """The seeded inputs of a corpus record (the same recipe as bench/real_corpus.py)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for name, s in spec.items():
        dtype = np.dtype(s["dtype"])
        fill = s["fill"]
        if fill == "uniform01":
            feeds[name] = rng.uniform(0.0, 1.0, s["dims"]).astype(dtype)
        elif fill.startswith("const:"):
            v = fill[6:]
            feeds[name] = np.full(s["dims"], int(v) if dtype.kind in "iu" else float(v), dtype)
        elif fill.startswith("int:"):
            lo, hi = (int(v) for v in fill[4:].split(".."))
            feeds[name] = rng.integers(lo, hi + 1, s["dims"]).astype(dtype)
        else:
            raise ValueError(f"input {name}: fill {fill}")
    return feeds


def qc(*args):
    """Runs qc; returns (exit code or 'timeout', stdout, the error line)."""
    try:
        p = subprocess.run([QC, *args], capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout", "", f"timed out after {TIMEOUT:.0f} s"
    err = error_line(p.stderr)
    for a in args:
        if os.sep in str(a):
            err = err.replace(str(a), os.path.basename(str(a)))
    return p.returncode, p.stdout, err


def error_line(stderr):
    """The line of qc's diagnostic that says what went wrong: the first `×` line (miette) that is
    not the summary `... is not a valid model: N problem(s)`, with `(+N more)` when there are
    other problems; else an `error:`/`Error:` line, else the last non-empty line."""
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    problems = [l.lstrip("× ").strip() for l in lines if l.startswith("×")]
    specific = [l for l in problems if "is not a valid model" not in l] or problems
    if specific:
        more = len(specific) - 1
        return specific[0] + (f" (+{more} more)" if more else "")
    for l in lines:
        if l.lower().startswith("error"):
            return l
    return lines[-1] if lines else ""


def ort_error(e):
    """onnxruntime's message without the `[ONNXRuntimeError] : N : CODE : Load model from PATH
    failed:` prefix."""
    s = str(e).strip()
    for marker in ("failed:", "Failed to load model with error: "):
        if marker in s:
            s = s.split(marker, 1)[1].strip()
    return s


def short(s, n=70):
    s = str(s).strip().splitlines()[0] if str(s).strip() else ""
    s = s.replace("|", "/")
    return s if len(s) <= n else s[: n - 1] + "…"


def session(path, level=None):
    so = ort.SessionOptions()
    so.graph_optimization_level = level or ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_run(path, feeds, level=None):
    s = session(path, level)
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, feeds)))


def rel_diff(a, b):
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"shape {list(a64.shape)} vs onnxruntime {list(b64.shape)}")
    if not b64.size:
        return 0.0, 1.0
    d = np.abs(a64 - b64)
    # As bench/optimize_check.py: relative to max(1, max |b|), so that an output of tiny
    # magnitude (a sigmoid map near 0 on noise input) is not judged by float rounding alone.
    scale = max(float(np.max(np.abs(b64))), 1.0)
    return float(np.max(d)) / scale, float(np.mean(d <= FLOAT_TOL * scale))


# ----------------------------------------------------------------------------- quantization step

def output_steps(model):
    """output name -> (step, how) for the int8 comparison; see the module docstring."""
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name: t for t in model.graph.initializer}
    consts = {n.output[0]: a.t for n in model.graph.node if n.op_type == "Constant"
              for a in n.attribute if a.name == "value"}

    def scale_of(name):
        t = inits.get(name) or consts.get(name)
        if t is None:
            return None
        return float(np.max(np.abs(onnx.numpy_helper.to_array(t))))

    steps = {}
    for out in model.graph.output:
        name, hops, found = out.name, 0, None
        while name in producers and hops <= 8:
            n = producers[name]
            if n.op_type in ("DequantizeLinear", "QuantizeLinear") and len(n.input) > 1:
                s = scale_of(n.input[1])
                if s is not None and hops == 0 and n.op_type == "QuantizeLinear":
                    # an integer output: one step is 1 in its own units (the scale in real units)
                    found = (1.0, "QuantizeLinear: integer output, step 1")
                elif s is not None:
                    found = (s, f"{n.op_type}" if hops == 0 else f"step via {n.op_type}, {hops} node(s) back")
                break
            if not n.input:
                break
            name, hops = n.input[0], hops + 1
        steps[out.name] = found
    return steps


# ----------------------------------------------------------------------------- the steps

def checker(path):
    """`onnx.checker.check_model(path, full_check=True)`: "ok" or "FAIL: message"."""
    try:
        onnx.checker.check_model(path, full_check=True)
        return "ok"
    except Exception as e:  # noqa: BLE001
        return "FAIL: " + short(e, 200)


def shape_args(spec):
    args = []
    for name, s in spec.items():
        if s["dims"]:
            args += ["--overwrite-input-shape", f"{name}:{','.join(map(str, s['dims']))}"]
    return args


def mac_sum(cost_json, mac_ops):
    d = json.loads(cost_json)
    per_op = d.get("optype_cost", {})
    total = 0.0
    for op, c in per_op.items():
        if op.replace(":", ".").split(".")[-1] in mac_ops:
            total += c.get("total_macs", 0.0)
    unsupported = [op for op in d["total_cost"].get("unsupported", [])
                   if op.replace(":", ".").split(".")[-1] in mac_ops]
    return total, unsupported


def cost(path, spec, mac_ops):
    """qc cost with --overwrite-input-shape if accepted; returns a cell dict."""
    base = ["cost", path, "--format", "json", "--cost-breakdown", "--extended", "--no-discount-sparsity"]
    cell = {}
    rc, out, err = qc(*base, *shape_args(spec)) if shape_args(spec) else qc(*base)
    if rc != 0 and shape_args(spec) and ("unexpected argument" in err or "--overwrite-input-shape" in err):
        cell["overwrite_input_shape"] = f"not accepted: {err}"
        rc, out, err = qc(*base)
    elif shape_args(spec):
        cell["overwrite_input_shape"] = "accepted" if rc == 0 else "?"
    cell["rc"] = rc
    if rc != 0:
        cell["error"] = err
        return cell
    cell["macs"], cell["unsupported"] = mac_sum(out, mac_ops)
    return cell


def check_model(rec, corpus_dir, work, mac_ops):
    path = os.path.join(corpus_dir, rec["file"])
    spec = rec["inputs"]
    row = {"file": rec["file"], "family": rec["family"], "variant": rec["variant"],
           "nodes": rec["nodes"], "expected_macs": rec["macs"]["total"],
           "expected_complete": rec["macs"]["complete"],
           "expected_subgraphs": {k: v["total"] for k, v in rec["macs"].get("subgraphs", {}).items()}}
    t0 = time.time()
    feeds = make_inputs(spec)
    model = onnx.load(path)

    # inspect
    rc, out, err = qc("inspect", "--format", "json", path)
    row["inspect"] = {"rc": rc}
    if rc == 0:
        try:
            row["inspect"]["nodes"] = json.loads(out)["nodes"]
        except Exception as e:  # noqa: BLE001
            row["inspect"]["error"] = f"unreadable JSON: {e}"
    else:
        row["inspect"]["error"] = err

    # onnxruntime on the original: the reference for everything below
    try:
        ref = ort_run(path, feeds)
    except Exception as e:  # noqa: BLE001
        ref = None
        row["ort_error"] = short(ort_error(e), 200)
    # onnxruntime's own graph optimizations against none: how much two correct runs differ here
    if ref is not None:
        try:
            own = ort_run(path, feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
            row["ort_own_rel"] = max(rel_diff(own[n], b)[0] for n, b in ref.items())
        except Exception as e:  # noqa: BLE001
            row["ort_own"] = "FAIL: " + short(ort_error(e), 200)

    # optimize, checker, onnxruntime on the optimized model
    opt = os.path.join(work, rec["file"][:-5] + ".opt.onnx")
    rc, _, err = qc("optimize", path, "-o", opt, *shape_args(spec))
    row["optimize"] = {"rc": rc}
    if rc != 0:
        row["optimize"]["error"] = err
        opt = None
    else:
        try:
            row["optimize"]["nodes"] = len(onnx.load(opt).graph.node)
        except Exception as e:  # noqa: BLE001
            row["optimize"]["nodes"] = f"unreadable: {short(e)}"
        row["optimize"]["checker"] = checker(opt)
        row["optimize"]["checker_original"] = checker(path)
        if ref is None:
            row["optimize"]["ort"] = "n/a: onnxruntime fails on the original"
        else:
            try:
                got = ort_run(opt, feeds)
                worst = 0.0
                for name, b in ref.items():
                    if name not in got:
                        raise ValueError(f"output {name} missing")
                    worst = max(worst, rel_diff(got[name], b)[0])
                row["optimize"]["ort_rel"] = worst
            except Exception as e:  # noqa: BLE001
                row["optimize"]["ort"] = "FAIL: " + short(ort_error(e), 200)

    # qc run against onnxruntime
    ind = os.path.join(work, rec["file"][:-5] + ".in")
    outd = os.path.join(work, rec["file"][:-5] + ".out")
    os.makedirs(ind, exist_ok=True)
    args = []
    for name, v in feeds.items():
        f = os.path.join(ind, f"{len(args)}.npy")
        np.save(f, v)
        args += ["--input", f"{name}={f}"]
    rc, _, err = qc("run", path, *args, "--output-dir", outd)
    row["run"] = {"rc": rc}
    if rc != 0:
        row["run"]["error"] = err
    elif ref is None:
        row["run"]["compare"] = "n/a: onnxruntime fails"
    else:
        steps = output_steps(model) if rec["variant"] in ("qdq", "ort-qdq") else {}
        worst_rel, worst_steps, share, how = 0.0, 0.0, 1.0, set()
        try:
            for name, b in ref.items():
                f = os.path.join(outd, file_name(name) + ".npy")
                if not os.path.exists(f):
                    raise ValueError(f"qc wrote no {file_name(name)}.npy")
                a = np.load(f)
                r, within = rel_diff(a, b)
                worst_rel = max(worst_rel, r)
                step = steps.get(name)
                if rec["variant"] in ("qdq", "ort-qdq") and step:
                    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
                    within = float(np.mean(d <= step[0] * (1 + 1e-6))) if d.size else 1.0
                    worst_steps = max(worst_steps, float(np.max(d)) / step[0] if d.size else 0.0)
                    how.add(step[1])
                elif rec["variant"] in ("qdq", "ort-qdq"):
                    how.add("no Q/DQ found: 1e-4 relative")
                share = min(share, within)
            row["run"].update(rel=worst_rel, share=share, steps=worst_steps, how=sorted(how))
        except Exception as e:  # noqa: BLE001
            row["run"]["compare"] = "FAIL: " + short(e, 200)

    # cost on the original and on the optimized model
    row["cost"] = cost(path, spec, mac_ops)
    if opt:
        row["cost_opt"] = cost(opt, {}, mac_ops)
    row["seconds"] = round(time.time() - t0, 1)
    return row


def file_name(name):
    """The file name `qc run --output-dir` gives an output (compiler/src/run.rs, file_name)."""
    s = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    return "_" + s if not s or s.startswith(".") else s


# ----------------------------------------------------------------------------- the table

def fmt_macs(x):
    return f"{x:,.0f}"


def cells(row):
    variant = row["variant"]
    ins = row["inspect"]
    inspect = "ok" if ins["rc"] == 0 else f"exit {ins['rc']}: {short(ins.get('error', ''), 50)}"
    o = row["optimize"]
    before = ins.get("nodes", row["nodes"])
    if o["rc"] != 0:
        nodes = f"{before} → exit {o['rc']}: {short(o.get('error', ''), 60)}"
        checker = ort_opt = "-"
    else:
        nodes = f"{before} → {o['nodes']}"
        checker = o["checker"] if o["checker"] == "ok" else short(o["checker"], 60)
        if o["checker"] != "ok" and o["checker_original"] != "ok":
            checker += " (original fails too)"
        if "ort_rel" in o:
            ort_opt = f"{o['ort_rel']:.1e}" + ("" if o["ort_rel"] <= FLOAT_TOL else " FAIL")
        else:
            ort_opt = short(o.get("ort", ""), 60)
    r = row["run"]
    if r["rc"] != 0:
        run = f"exit {r['rc']}: {short(r.get('error', ''), 90)}"
    elif "compare" in r:
        run = short(r["compare"], 70)
    elif variant in ("float", "ort"):
        run = f"{r['rel']:.1e}" + ("" if r["rel"] <= FLOAT_TOL else " FAIL")
    elif variant == "dynamic":
        run = f"{100 * r['share']:.2f}% within 1e-4 rel., max rel. {r['rel']:.1e}"
    else:
        run = f"{100 * r['share']:.2f}% within 1 step, max {r['steps']:.1f} steps"
        if any(h.startswith("step via") or h.startswith("no Q") for h in r["how"]):
            run += " (" + "; ".join(r["how"]) + ")"

    def cost_cell(c):
        if c["rc"] != 0:
            return f"exit {c['rc']}: {short(c.get('error', ''), 50)}"
        s = fmt_macs(c["macs"])
        if c.get("unsupported"):
            s += f" (not costed: {', '.join(sorted(set(c['unsupported'])))})"
        return s

    cq = cost_cell(row["cost"])
    if row["cost"].get("overwrite_input_shape", "").startswith("not accepted"):
        cq += " (no --overwrite-input-shape)"
    cqo = cost_cell(row["cost_opt"]) if "cost_opt" in row else "-"
    exp = fmt_macs(row["expected_macs"])
    if not row["expected_complete"]:
        exp += " (incomplete)"
    nonzero = [v for v in row["expected_subgraphs"].values() if v]
    if nonzero:
        exp += f" + subgraphs {' / '.join(fmt_macs(v) for v in nonzero)}"
    same = "-"
    if row["expected_complete"] and "macs" in row.get("cost_opt", {}):
        same = "yes" if abs(row["cost_opt"]["macs"] - row["expected_macs"]) <= 0.5 else "no"
    if "ort_own_rel" in row:
        own = f"{row['ort_own_rel']:.1e}"
    else:
        own = short(row.get("ort_own", row.get("ort_error", "-")), 50)
    return [f"`{row['file']}`", variant, inspect, nodes, checker, ort_opt, run, own, cq, cqo, exp, same]


def agrees(row):
    """qc run's outputs agree with onnxruntime's: within 1e-4 relative (float, ort, dynamic), or
    every element within one quantization step (qdq, ort-qdq)."""
    r = row["run"]
    if r["rc"] != 0 or "rel" not in r:
        return False
    if row["variant"] in ("qdq", "ort-qdq"):
        return r["share"] >= 1.0
    return r["rel"] <= FLOAT_TOL


def main(corpus_dir, out_md):
    corpus = json.load(open(os.path.join(corpus_dir, "corpus.json")))
    mac_ops = set(corpus["mac_ops"])
    rows = []
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="qc-real-check.") as work:
        for rec in corpus["models"]:
            row = check_model(rec, corpus_dir, work, mac_ops)
            print(f"{rec['file']}: {row['seconds']} s", file=sys.stderr, flush=True)
            rows.append(row)
    header = ["model", "variant", "qc inspect", "nodes → qc optimize", "onnx.checker (optimized)",
              "ORT: optimized vs original (rel.)", "qc run vs ORT",
              "ORT ENABLE_ALL vs DISABLE_ALL (rel.)", "qc cost MACs (original)",
              "qc cost MACs (optimized)", "MACs (onnx shape inference)", "same (optimized)"]
    lines = [f"# qc on the real-model corpus", "",
             f"`bench/real_models_check.sh` with "
             f"{subprocess.run([QC, '--version'], capture_output=True, text=True).stdout.strip()}, "
             f"onnx {onnx.__version__}, onnxruntime {ort.__version__}; "
             f"{len(rows)} models, {time.time() - t0:.0f} s. Columns: see `bench/real_models_check.py`.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(cells(row)) + " |")
    tally = {
        "models": len(rows),
        "inspect ok": sum(r["inspect"]["rc"] == 0 for r in rows),
        "optimize ok": sum(r["optimize"]["rc"] == 0 for r in rows),
        "checker ok": sum(r["optimize"].get("checker") == "ok" for r in rows),
        "optimized = original in ORT": sum(r["optimize"].get("ort_rel", 1) <= FLOAT_TOL for r in rows),
        "run ok": sum(r["run"]["rc"] == 0 for r in rows),
        "run agrees": sum(agrees(r) for r in rows),
        "cost ok": sum(r["cost"]["rc"] == 0 for r in rows),
    }
    lines += ["", ", ".join(f"{k}: {v}" for k, v in tally.items())]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    with open(out_md, "w") as f:
        f.write(text)
    with open(os.path.splitext(out_md)[0] + ".json", "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    print(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
