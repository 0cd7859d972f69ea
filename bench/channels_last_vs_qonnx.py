"""qonnx 1.0.0's `qonnx-to-channels-last` against `qc convert --to channels-last`, the Python half
of bench/channels_last_vs_qonnx.sh.

    python3 bench/channels_last_vs_qonnx.py --qc QC_BINARY --work DIR [--timeout S]
        [--exclude FOLDER,...] SHARED_DIR

For every model under SHARED_DIR/models with a default-domain Conv, MaxPool or
BatchNormalization (the ops both tools wrap), but those in the `--exclude`d folders, in one run:
- qonnx: `qonnx-cleanup` (its conversion expects a cleaned model with every shape known), then
  `qonnx-to-channels-last`, each a subprocess with a time limit; the time is both steps;
- qc: `qc convert MODEL --to channels-last -o OUT --no-verify` (the agreement is measured below,
  the same way for both tools); the time is the whole command, loading and writing included;
- agreement: onnxruntime cannot run the channels-last custom ops, so every model is run with qc's
  evaluator (`qc run`, which runs qonnx's wrappers as qonnx does: transpose to channels-first,
  the standard op, transpose back) on the same seeded input (numpy seed 0, uniform in [-1, 1],
  symbolic dims 1): the original, qonnx's output and qc's output. The table gives the largest
  absolute difference of each output from the original's, and the differing elements. For the
  models whose input has at most `--qonnx-exec-limit` elements, qc's output is also run with
  qonnx's own executor (`qonnx.core.onnx_exec.execute_onnx`: its wrappers through onnxruntime),
  against qc's evaluation of the original, so qonnx can load and run what qc writes;
- the wrappers each output has, and the Transposes left.

A failure is printed with its first line. Times are wall-clock seconds of one run each.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_check import Diff, make_inputs, qc_run, short  # noqa: E402

WRAPPED = {"Conv", "MaxPool", "BatchNormalization"}
CHANNELS_LAST = "qonnx.custom_op.channels_last"


def applies(path):
    m = onnx.load(path, load_external_data=False)
    return any(n.op_type in WRAPPED and n.domain in ("", "ai.onnx") for n in m.graph.node)


def counts(path):
    m = onnx.load(path, load_external_data=False)
    wrappers = sum(1 for n in m.graph.node if n.domain == CHANNELS_LAST)
    transposes = sum(1 for n in m.graph.node if n.op_type == "Transpose" and n.domain in ("", "ai.onnx"))
    return wrappers, transposes


def timed(args, timeout):
    t = time.monotonic()
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout} s", time.monotonic() - t
    dt = time.monotonic() - t
    if r.returncode != 0:
        lines = [l for l in (r.stderr or r.stdout).strip().splitlines() if l.strip()]
        return False, lines[-1] if lines else f"exit {r.returncode}", dt
    return True, "", dt


def qonnx_convert(src, work, stem, timeout):
    bin_dir = os.path.dirname(sys.executable)
    clean = os.path.join(work, stem + ".clean.onnx")
    out = os.path.join(work, stem + ".qonnx_cl.onnx")
    ok, why, t1 = timed([os.path.join(bin_dir, "qonnx-cleanup"), src, f"--out-file={clean}"], timeout)
    if not ok:
        return None, f"cleanup: {why}", t1
    ok, why, t2 = timed([os.path.join(bin_dir, "qonnx-to-channels-last"), clean, f"--out-file={out}"], timeout)
    if not ok:
        return None, why, t1 + t2
    return out, "", t1 + t2


def qonnx_exec(path, inputs, timeout):
    """Runs `path` with qonnx's executor in a subprocess; the outputs by name."""
    d = os.path.dirname(path)
    stem = os.path.basename(path)
    files = {}
    for i, (name, a) in enumerate(inputs.items()):
        f = os.path.join(d, f"{stem}.in{i}.npy")
        np.save(f, a)
        files[name] = f
    out = os.path.join(d, stem + ".qonnx_exec.npz")
    code = (
        "import sys, numpy as np\n"
        "from qonnx.core.modelwrapper import ModelWrapper\n"
        "from qonnx.core.onnx_exec import execute_onnx\n"
        "m = ModelWrapper(sys.argv[1])\n"
        "ins = {a.split('=', 1)[0]: np.load(a.split('=', 1)[1]) for a in sys.argv[3:]}\n"
        "res = execute_onnx(m, ins)\n"
        "np.savez(sys.argv[2], **{k.replace('/', '_'): v for k, v in res.items()})\n"
    )
    args = [sys.executable, "-c", code, path, out] + [f"{k}={v}" for k, v in files.items()]
    ok, why, _ = timed(args, timeout)
    if not ok:
        raise RuntimeError(why)
    z = np.load(out)
    m = onnx.load(path, load_external_data=False)
    return {o.name: z[o.name.replace("/", "_")] for o in m.graph.output}


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--qc", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--qonnx-exec-limit", type=int, default=300_000)
    ap.add_argument("--exclude", default="", help="folders under models/ to leave out, comma-separated")
    ap.add_argument("shared")
    a = ap.parse_args(argv)
    models = []
    excluded = {x for x in a.exclude.split(",") if x}
    for root, _, files in os.walk(os.path.join(a.shared, "models")):
        if os.path.relpath(root, os.path.join(a.shared, "models")).split(os.sep)[0] in excluded:
            continue
        for f in files:
            p = os.path.join(root, f)
            if f.endswith(".onnx") and applies(p):
                models.append(p)
    models.sort()
    rows, notes = [], []
    for src in models:
        name = os.path.relpath(src, os.path.join(a.shared, "models"))
        stem = name.replace("/", "__")[: -len(".onnx")]
        q_out, q_why, q_t = qonnx_convert(src, a.work, stem, a.timeout)
        c_out = os.path.join(a.work, stem + ".qc_cl.onnx")
        c_ok, c_why, c_t = timed([a.qc, "convert", src, "--to", "channels-last", "-o", c_out, "--no-verify"], a.timeout)
        if c_ok and not os.path.exists(c_out):
            # qc found nothing to wrap (a BatchNormalization on 2-D data only): nothing written.
            c_ok, c_why = False, "nothing to wrap, nothing written"
        if not c_ok:
            c_out = None
            notes.append(f"{name}: qc: {c_why}")
        if q_out is None:
            notes.append(f"{name}: qonnx: {q_why}")
        m = onnx.load(src, load_external_data=False)
        inputs = make_inputs(m, 1.0, np.random.default_rng(0))
        agree = {}
        try:
            ref = qc_run(a.qc, src, inputs, a.work, stem + ".orig")
        except Exception as e:  # noqa: BLE001
            ref = None
            notes.append(f"{name}: qc run (original): {short(e)}")
        for tag, out in (("qonnx", q_out), ("qc", c_out)):
            if out is None or ref is None:
                agree[tag] = "-"
                continue
            try:
                # qonnx-cleanup renames the graph's inputs and outputs: match them by position.
                om = onnx.load(out, load_external_data=False)
                inits = {t.name for t in om.graph.initializer}
                names = [i.name for i in om.graph.input if i.name not in inits]
                got = qc_run(a.qc, out, dict(zip(names, inputs.values())), a.work, f"{stem}.{tag}")
                d = Diff()
                d.add(ref, dict(zip(ref.keys(), got.values())))
                agree[tag] = str(d)
            except Exception as e:  # noqa: BLE001
                agree[tag] = "error"
                notes.append(f"{name}: qc run ({tag} output): {short(e)}")
        exec_col = "-"
        size = sum(int(np.prod(x.shape)) for x in inputs.values())
        if c_out is not None and ref is not None and size <= a.qonnx_exec_limit:
            try:
                got = qonnx_exec(c_out, inputs, a.timeout)
                d = Diff()
                d.add(ref, got)
                exec_col = str(d)
            except Exception as e:  # noqa: BLE001
                exec_col = "error"
                notes.append(f"{name}: qonnx execute_onnx (qc output): {short(e)}")
        wq = counts(q_out) if q_out else None
        wc = counts(c_out) if c_out else None
        before = counts(src)[1]
        fmt = lambda w: "-" if w is None else f"{w[0]} / {w[1]}"  # noqa: E731
        rows.append(
            (
                name,
                "ok" if q_out else ("timeout" if q_why.endswith(" s") else "fails"),
                f"{q_t:.1f}",
                "ok" if c_out else ("nothing to wrap" if c_why.startswith("nothing") else "fails"),
                f"{c_t:.2f}",
                str(before),
                fmt(wq),
                fmt(wc),
                agree["qonnx"],
                agree["qc"],
                exec_col,
            )
        )
        print(f"done: {name}", file=sys.stderr, flush=True)
    head = (
        "model",
        "qonnx",
        "qonnx s",
        "qc",
        "qc s",
        "Transposes before",
        "qonnx wrappers / Transposes",
        "qc wrappers / Transposes",
        "qonnx out vs original (qc eval)",
        "qc out vs original (qc eval)",
        "qc out in qonnx exec vs original",
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if notes:
        print()
        for n in notes:
            print(f"- {n}")


if __name__ == "__main__":
    main(sys.argv[1:])
