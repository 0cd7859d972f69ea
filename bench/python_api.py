"""qc's Python API against the Python libraries it replaces, in one run on one machine (issue 22).

Usage: python python_api.py OUT_DIR [--peers-only] [--models REGEX] [--parts cost,evaluate,overhead]
           [--min-time S] [--min-calls N] [--max-time S] [--qonnx-timeout S] [--calls N]
           [--no-breakdown]

Three measurements, each printed as a Markdown table and written to OUT_DIR/python_api.md (every
figure also to OUT_DIR/python_api.json):

1. cost: `qc.cost(path, cost_breakdown=True)` against qonnx's reference procedure called from
   Python, `inference_cost(cleanup_model(ModelWrapper(path)), cost_breakdown=True)` (what
   `qonnx-cleanup` followed by `qonnx-inference-cost --cost-breakdown` does, without the file in
   between), on every `*.onnx` under ../shared/models but real/ (whose open input dims qc.cost
   refuses to guess; bench/real_models_check.sh covers them). Both
   start from the file on disk. Each side is called repeatedly and the median call is reported:
   calls go on until they add up to --min-time (1 s) and number --min-calls (5), except that no
   call is started once --max-time (10 s) has passed; so a call of 0.2 s is made 5 times, one of
   3 s 4 times, one of 60 s once. qonnx runs in a child process per model with a time limit
   (--qonnx-timeout, 300 s as in compare_cost.sh). The two dicts must be equal: the same keys at
   every level, every number within 1e-9 relative (the tolerance of qc's own test against the
   stored oracles), `unsupported` compared as a set (qonnx writes it as the `str` of a Python set,
   whose order changes from process to process). Where there is a stored oracle
   (`<model>.qonnx-cost.json`, written by qonnx 1.0.0 after qonnx-cleanup), qonnx's dict must
   equal it too, which checks that the pinned peers are the oracle's. Any difference, or qc
   failing on a model qonnx costs, is printed and makes the script exit 1.

2. evaluate: `qc.evaluate` against `zigzag.api.get_hardware_performance_zigzag` on ZigZag's
   resnet18.onnx for tpu_like, edge_tpu_like, ascend_like, meta_prototype and tesla_npu_like with
   their shipped mapping files, opt=energy, LOMA lpf_limit 6, 3 spatial mappings (the settings of
   search_vs_zigzag.py). ZigZag runs once per accelerator (about 45 s); qc.evaluate is timed as
   above. Energy and latency are summed over the layers ZigZag costs (its ONNX parser skips
   pooling and Add; qc reports those too). qc's network energy must not exceed ZigZag's by more
   than 0.1% (search_vs_zigzag.py shows it equal layer by layer), else exit 1.

3. overhead: a one-layer ZigZag workload YAML (a 1x1 convolution, 32 to 32 channels, 4x4
   outputs: 6 loop orderings to search), written to a temporary directory, evaluated --calls (10,000) times in a loop with
   `qc.evaluate` on the tpu_like accelerator file and mapping; reported in microseconds per call,
   next to the time the engine itself reports for the search (`search.seconds` of
   `Evaluation.to_json()`, and of `qc evaluate --format json`, run 5 times as a process). ZigZag
   evaluates the same layer once for comparison.

With --peers-only, only the qonnx and ZigZag halves run (the qc package is not imported) and the
qc cells read `pending`.
"""

import argparse
import ast
import json
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
INPUTS = SHARED / "peers/zigzag-inputs/zigzag/inputs"
RESNET = INPUTS / "workload/resnet18.onnx"
RUNS = [
    ("tpu_like", "tpu_like"),
    ("edge_tpu_like", "edge_tpu_like"),
    ("ascend_like", "ascend_like"),
    ("meta_prototype", "meta_prototype_like"),
    ("tesla_npu_like", "tesla_npu_like"),
]
PENDING = "pending"

# One small convolution in ZigZag's workload format: 1x1 kernel, 32 to 32 channels, 4x4 outputs; on
# tpu_like's 32x32 array K and C are unrolled, so the search has 6 loop orderings to try and the
# time of a call is mostly what the binding does around it.
ONE_LAYER = """\
- id: 0
  name: conv1x1
  operator_type: Conv
  equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
  dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
  loop_dims: [B, K, C, OY, OX, FY, FX]
  loop_sizes: [1, 32, 32, 4, 4, 1, 1]
  operand_precision:
    W: 8
    I: 8
    O: 16
    O_final: 8
  operand_source:
    I: 0
    W: 0
"""


def timed_calls(fn, min_time, min_calls, max_time):
    """Calls fn until the calls add up to min_time and number min_calls, starting none after
    max_time; returns (median seconds, calls, last result)."""
    times = []
    start = time.perf_counter()
    result = None
    while True:
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and (len(times) >= min_calls or elapsed >= max_time):
            break
    return statistics.median(times), len(times), result


# ---------------------------------------------------------------------------------------------
# Comparing cost dicts


def as_set(v):
    """qonnx's `unsupported` is the str of a Python set ("set()", "{'Softmax', 'LRN'}")."""
    if isinstance(v, str):
        v = v.strip()
        return set() if v in ("set()", "") else set(ast.literal_eval(v))
    return set(v)


def cost_diffs(got, want, at="", out=None):
    """The differences between two inference-cost dicts, as readable lines."""
    out = [] if out is None else out
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) - set(got)):
            out.append(f"{at}{k}: missing (want {want[k]!r})")
        for k in sorted(set(got) - set(want)):
            out.append(f"{at}{k}: not expected (got {got[k]!r})")
        for k in sorted(set(want) & set(got)):
            if k == "unsupported":
                try:
                    g, w = as_set(got[k]), as_set(want[k])
                except (ValueError, SyntaxError) as e:
                    out.append(f"{at}{k}: does not read as a set ({e}): {got[k]!r} vs {want[k]!r}")
                    continue
                if g != w:
                    out.append(f"{at}{k}: got {sorted(g)}, want {sorted(w)}")
            else:
                cost_diffs(got[k], want[k], f"{at}{k}.", out)
    elif isinstance(want, bool) or isinstance(got, bool):
        if got is not want:
            out.append(f"{at[:-1]}: got {got!r}, want {want!r}")
    elif isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if not (abs(got - want) <= 1e-9 * max(abs(want), 1.0)):
            out.append(f"{at[:-1]}: got {got!r}, want {want!r}")
    elif got != want:
        out.append(f"{at[:-1]}: got {got!r}, want {want!r}")
    return out


# ---------------------------------------------------------------------------------------------
# qonnx, in a child process per model


def qonnx_worker(model, out, a):
    """The child process: times qonnx's cleanup and inference cost on one model."""
    logging.disable(logging.WARNING)
    import warnings

    warnings.simplefilter("ignore")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model
    from qonnx.util.inference_cost import inference_cost

    def call():
        model_w = cleanup_model(ModelWrapper(model))
        return inference_cost(model_w, cost_breakdown=not a.no_breakdown, discount_sparsity=True)

    median, calls, result = timed_calls(call, a.min_time, a.min_calls, a.max_time)
    Path(out).write_text(json.dumps({"median": median, "calls": calls, "result": result}))


def qonnx_measure(model, work, a):
    out = work / "qonnx.json"
    log = work / "qonnx.log"
    out.unlink(missing_ok=True)
    args = [sys.executable, __file__, "--qonnx-worker", str(model), str(out),
            "--min-time", str(a.min_time), "--min-calls", str(a.min_calls), "--max-time", str(a.max_time)]
    if a.no_breakdown:
        args.append("--no-breakdown")
    start = time.perf_counter()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, timeout=a.qonnx_timeout).returncode
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "seconds": time.perf_counter() - start}
    if rc != 0 or not out.exists():
        lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()]
        errors = [l for l in lines if re.search(r"Error|error", l)]
        return {"status": "fails", "error": ((errors or lines or [f"exit {rc}"])[-1]).strip()[:100]}
    v = json.loads(out.read_text())
    return {"status": "ok", **v}


# ---------------------------------------------------------------------------------------------
# qc


def qc_error_text(e):
    code = getattr(e, "code", None)
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"{code}: {msg}" if code else f"{type(e).__name__}: {msg}"


def record(r, key):
    return r[key] if isinstance(r, dict) else getattr(r, key)


def fmt_time(s):
    if s is None:
        return PENDING
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def fmt_x(a, b):
    return f"{a / b:,.0f}x" if a and b else "-"


# ---------------------------------------------------------------------------------------------
# 1. cost


def part_cost(qc, a, work, report, failures):
    # The wheel models under real/ leave their input dims open: qc.cost refuses to count them until
    # input_shapes gives the dims (a count for dims nobody gave would be made up), so there is no
    # like-for-like call; bench/real_models_check.sh covers them.
    models = sorted(m for m in MODELS.rglob("*.onnx") if "real" not in m.relative_to(MODELS).parts)
    if a.models:
        models = [m for m in models if re.search(a.models, m.stem)]
    lines = [
        "| model | qc.cost | calls | qonnx cleanup + inference_cost | calls | speed-up | qc = qonnx | qonnx = stored oracle |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    for m in models:
        name = m.stem
        row = {"model": name, "path": str(m.relative_to(SHARED))}
        ref = qonnx_measure(m, work, a)
        row["qonnx"] = {k: v for k, v in ref.items() if k != "result"}
        want = ref.get("result")
        # The stored oracle, when there is one and the breakdown was asked for (it has one).
        oracle_path = m.with_suffix(".qonnx-cost.json")
        if want is None:
            oracle = "-"
        elif not oracle_path.exists() or a.no_breakdown:
            oracle = "no oracle"
        else:
            stored = json.loads(oracle_path.read_text())
            stored.pop("_meta", None)
            d = cost_diffs(want, stored)
            oracle = "yes" if not d else f"**no** ({len(d)} differences)"
            if d:
                failures.append((f"{name}: qonnx here vs the stored oracle {oracle_path.name}", d))
        row["oracle"] = oracle
        if qc is None:
            q_cell, q_calls, same = PENDING, "", PENDING
            q_median = None
        else:
            try:
                q_median, calls, got = timed_calls(
                    lambda: qc.cost(str(m), cost_breakdown=not a.no_breakdown, discount_sparsity=True),
                    a.min_time, a.min_calls, a.max_time)
                q_cell, q_calls = fmt_time(q_median), str(calls)
                row["qc"] = {"median": q_median, "calls": calls}
                if want is None:
                    same = "-"
                else:
                    d = cost_diffs(got, want)
                    same = "yes" if not d else f"**no** ({len(d)} differences)"
                    if d:
                        failures.append((f"{name}: qc.cost vs qonnx", d))
            except Exception as e:  # noqa: BLE001 - qc.QcError or anything else: reported
                q_median, q_cell, q_calls = None, f"fails: {qc_error_text(e)}", ""
                row["qc"] = {"error": q_cell}
                same = "**no** (qc fails)" if want is not None else "-"
                if want is not None:
                    failures.append((f"{name}: qc.cost fails where qonnx costs", [q_cell]))
        if ref["status"] == "ok":
            r_cell, r_calls = fmt_time(ref["median"]), str(ref["calls"])
            speed = fmt_x(ref["median"], q_median) if q_median else ("-" if qc else PENDING)
        elif ref["status"] == "timeout":
            r_cell, r_calls = f"timed out after {a.qonnx_timeout:.0f} s", ""
            speed = f"> {fmt_x(a.qonnx_timeout, q_median)}" if q_median else ("-" if qc else PENDING)
        else:
            r_cell, r_calls, speed = f"fails: {ref['error']}", "", "-"
        row["same"] = same
        rows.append(row)
        line = f"| {name} | {q_cell} | {q_calls} | {r_cell} | {r_calls} | {speed} | {same} | {oracle} |"
        lines.append(line)
        print(line, flush=True)
    both = [r for r in rows if r["qonnx"]["status"] == "ok" and "median" in r.get("qc", {})]
    ref_total = sum(r["qonnx"]["median"] for r in rows if r["qonnx"]["status"] == "ok")
    if qc is None:
        total = (f"\nTotal over the {sum(r['qonnx']['status'] == 'ok' for r in rows)} models qonnx costs: "
                 f"qonnx {ref_total:.2f} s, qc.cost {PENDING}.")
    else:
        qt = sum(r["qc"]["median"] for r in both)
        rt = sum(r["qonnx"]["median"] for r in both)
        total = (f"\nTotal over the {len(both)} models both cost: qc.cost {fmt_time(qt)}, "
                 f"qonnx {rt:.2f} s ({fmt_x(rt, qt)}); dicts equal on "
                 f"{sum(r['same'] == 'yes' for r in rows)} of {len(both)}.")
    lines.append(total)
    print(total, flush=True)
    report["cost"] = rows
    return lines


# ---------------------------------------------------------------------------------------------
# 2. evaluate


def zigzag_run(workload, acc_file, mapping_file, dump):
    from zigzag import api
    from zigzag_results import layer_results

    start = time.perf_counter()
    result = api.get_hardware_performance_zigzag(
        str(workload), str(acc_file), str(mapping_file), opt="energy", temporal_mapping_type="uneven",
        lpf_limit=6, nb_spatial_mappings_generated=3, dump_folder=str(dump), loma_show_progress_bar=False,
    )
    seconds = time.perf_counter() - start
    return layer_results(result), seconds


def qc_evaluate(qc, workload, acc_file, mapping_file, a):
    def call():
        return qc.evaluate(str(workload), accelerator=str(acc_file), mapping=str(mapping_file), opt="energy",
                           lpf_limit=6, spatial_mappings=3)

    median, calls, ev = timed_calls(call, a.min_time, a.min_calls, a.max_time)
    layers = {record(l, "name"): (record(l, "energy"), record(l, "latency")) for l in ev.layers}
    return layers, median, calls


def part_evaluate(qc, a, out, report, failures):
    lines = [
        "| accelerator | ZigZag | qc.evaluate | calls | speed-up | ZigZag energy (pJ) | qc energy (pJ) "
        "| ZigZag latency (cycles) | qc latency (cycles) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    for acc, mapping in RUNS:
        acc_file, map_file = INPUTS / f"hardware/{acc}.yaml", INPUTS / f"mapping/{mapping}.yaml"
        zz, zz_s = zigzag_run(RESNET, acc_file, map_file, out / f"zigzag-{acc}-energy")
        ze = sum(v[0] for v in zz.values())
        zl = sum(v[1] for v in zz.values())
        row = {"accelerator": acc, "zigzag": {"seconds": zz_s, "energy": ze, "latency": zl, "layers": len(zz)}}
        if qc is None:
            cells = [PENDING, "", PENDING, PENDING, PENDING]
        else:
            try:
                q, q_s, calls = qc_evaluate(qc, RESNET, acc_file, map_file, a)
                missing = sorted(set(zz) - set(q))
                qe = sum(q[n][0] for n in zz if n in q)
                ql = sum(q[n][1] for n in zz if n in q)
                row["qc"] = {"median": q_s, "calls": calls, "energy": qe, "latency": ql}
                cells = [fmt_time(q_s), str(calls), fmt_x(zz_s, q_s), f"{qe:.6e}", f"{ql:,.0f}"]
                if missing:
                    failures.append((f"qc.evaluate on {acc}: layers ZigZag costs are missing", missing))
                elif qe > ze * 1.001:
                    failures.append((f"qc.evaluate on {acc}: network energy above ZigZag's",
                                     [f"qc {qe:.9e} pJ, ZigZag {ze:.9e} pJ"]))
            except Exception as e:  # noqa: BLE001
                msg = f"fails: {qc_error_text(e)}"
                row["qc"] = {"error": msg}
                cells = [msg, "", "-", "-", "-"]
                failures.append((f"qc.evaluate on {acc} fails", [msg]))
        rows.append(row)
        line = (f"| {acc} | {zz_s:.1f} s | {cells[0]} | {cells[1]} | {cells[2]} | {ze:.6e} | {cells[3]} "
                f"| {zl:,.0f} | {cells[4]} |")
        lines.append(line)
        print(line, flush=True)
    report["evaluate"] = rows
    return lines


# ---------------------------------------------------------------------------------------------
# 3. per-call overhead


def part_overhead(qc, a, work, out, report, failures):
    layer = work / "one_conv.yaml"
    layer.write_text(ONE_LAYER)
    acc_file, map_file = INPUTS / "hardware/tpu_like.yaml", INPUTS / "mapping/tpu_like.yaml"
    zz, zz_s = zigzag_run(layer, acc_file, map_file, out / "zigzag-one-layer")
    (ze, zl), = zz.values()
    row = {"zigzag": {"seconds": zz_s, "energy": ze, "latency": zl}}
    cells = {"py": PENDING, "engine": PENDING, "overhead": PENDING, "cli": PENDING, "energy": PENDING}
    if qc is not None:
        def call():
            return qc.evaluate(str(layer), accelerator=str(acc_file), mapping=str(map_file), opt="energy")

        ev = call()  # warm-up; also the figures to compare
        (name_e_l,) = [(record(l, "energy"), record(l, "latency")) for l in ev.layers]
        start = time.perf_counter()
        for _ in range(a.calls):
            call()
        per_call = (time.perf_counter() - start) / a.calls
        # The engine's own time for the search, from the report of separate calls.
        engine = []
        for _ in range(200):
            rep = json.loads(call().to_json())
            engine.append(rep["search"]["seconds"])
        engine_s = statistics.median(engine)
        # The CLI the package installs, as a process.
        exe = shutil.which("qc", path=str(Path(sys.executable).parent)) or shutil.which("qc")
        cli = []
        cli_engine = []
        if exe:
            for _ in range(5):
                t0 = time.perf_counter()
                p = subprocess.run([exe, "evaluate", str(layer), "--accelerator", str(acc_file), "--mapping",
                                    str(map_file), "--opt", "energy", "--format", "json", "--quiet"],
                                   capture_output=True, text=True)
                cli.append(time.perf_counter() - t0)
                if p.returncode != 0:
                    failures.append(("qc evaluate (CLI) on the one-layer workload fails", [p.stderr.strip()]))
                    break
                cli_engine.append(json.loads(p.stdout)["search"]["seconds"])
        row["qc"] = {"per_call": per_call, "calls": a.calls, "engine": engine_s, "energy": name_e_l[0],
                     "latency": name_e_l[1], "cli_process": statistics.median(cli) if cli else None,
                     "cli_engine": statistics.median(cli_engine) if cli_engine else None}
        cells["py"] = f"{per_call * 1e6:,.1f} µs"
        cells["engine"] = f"{engine_s * 1e6:,.1f} µs"
        cells["overhead"] = f"{(per_call - engine_s) * 1e6:,.1f} µs"
        cells["cli"] = (f"{statistics.median(cli) * 1e3:.1f} ms (engine {statistics.median(cli_engine) * 1e6:,.1f} µs)"
                        if cli_engine else "not found" if not exe else "fails")
        cells["energy"] = f"{name_e_l[0]:.6e} pJ, {name_e_l[1]:,.0f} cycles"
        if name_e_l[0] > ze * 1.001:
            failures.append(("qc.evaluate on the one-layer workload: energy above ZigZag's",
                             [f"qc {name_e_l[0]:.9e} pJ, ZigZag {ze:.9e} pJ"]))
    lines = [
        "| what | per call |",
        "|---|---:|",
        f"| `qc.evaluate` from Python, {a.calls:,} calls in a loop | {cells['py']} |",
        f"| searching and costing the layer in the engine (`search.seconds` of `to_json()`, median of 200) "
        f"| {cells['engine']} |",
        f"| the rest of a call: reading the workload, accelerator and mapping files, the binding, the result "
        f"| {cells['overhead']} |",
        f"| `qc evaluate --format json` as a process (median of 5) | {cells['cli']} |",
        f"| `get_hardware_performance_zigzag`, the same layer, one call | {zz_s:.2f} s |",
        f"\nThe layer: qc {cells['energy']}; ZigZag {ze:.6e} pJ, {zl:,.0f} cycles.",
    ]
    print("\n".join(lines), flush=True)
    report["overhead"] = row
    return lines


# ---------------------------------------------------------------------------------------------


def versions(qc):
    from importlib import metadata

    got = {}
    for p in ("qonnx", "onnx", "onnxruntime", "zigzag-dse", "numpy"):
        try:
            got[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            got[p] = "not installed"
    if qc is not None:
        got["qc"] = getattr(qc, "__version__", None) or metadata.version("qc")
    got["python"] = sys.version.split()[0]
    return got


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?")
    p.add_argument("--peers-only", action="store_true")
    p.add_argument("--models", help="only the models whose file name (without .onnx) matches this regex")
    p.add_argument("--parts", default="cost,evaluate,overhead")
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--min-calls", type=int, default=5)
    p.add_argument("--max-time", type=float, default=10.0)
    p.add_argument("--qonnx-timeout", type=float, default=300.0)
    p.add_argument("--calls", type=int, default=10_000)
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--qonnx-worker", nargs=2, metavar=("MODEL", "OUT_JSON"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.qonnx_worker:
        qonnx_worker(*a.qonnx_worker, a)
        return 0
    if not a.out:
        p.error("OUT_DIR is required")
    parts = set(a.parts.split(","))
    if not parts <= {"cost", "evaluate", "overhead"}:
        p.error(f"--parts takes cost, evaluate and overhead, not {a.parts}")
    for need in (MODELS, INPUTS):
        if not need.is_dir():
            print(f"error: {need} is missing; this benchmark needs the shared reference material", file=sys.stderr)
            return 2
    # ZigZag configures the root logger at INFO on each call unless it already has a handler.
    logging.basicConfig(level=logging.ERROR)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    qc = None
    if not a.peers_only:
        try:
            import qc
        except ImportError as e:
            print(f"error: the qc package does not import ({e}); install it or run with --peers-only",
                  file=sys.stderr)
            return 2
    failures = []
    env = versions(qc)
    report = {"versions": env, "peers_only": a.peers_only, "settings": {
        k: getattr(a, k) for k in ("min_time", "min_calls", "max_time", "qonnx_timeout", "calls", "no_breakdown")}}
    md = [f"Versions: {', '.join(f'{k} {v}' for k, v in env.items())}; {os.cpu_count()} cores.", ""]
    with tempfile.TemporaryDirectory(prefix="qc-python-api-") as tmp:
        work = Path(tmp)
        if "cost" in parts:
            md += ["### qc.cost against qonnx", ""] + part_cost(qc, a, work, report, failures) + [""]
        if "evaluate" in parts:
            md += ["### qc.evaluate against ZigZag on ResNet-18, opt=energy", ""]
            md += part_evaluate(qc, a, out, report, failures) + [""]
        if "overhead" in parts:
            md += ["### Per-call overhead of the binding", ""] + part_overhead(qc, a, work, out, report, failures)
    (out / "python_api.md").write_text("\n".join(md) + "\n")
    report["failures"] = [{"what": w, "details": d} for w, d in failures]
    (out / "python_api.json").write_text(json.dumps(report, indent=1) + "\n")
    if failures:
        print(f"\nMISMATCH: {len(failures)} check(s) failed:", file=sys.stderr)
        for what, details in failures:
            print(f"- {what}", file=sys.stderr)
            for d in details[:20]:
                print(f"    {d}", file=sys.stderr)
            if len(details) > 20:
                print(f"    ... and {len(details) - 20} more", file=sys.stderr)
        return 1
    print(f"\nTables in {out / 'python_api.md'}, every figure in {out / 'python_api.json'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
