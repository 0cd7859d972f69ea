"""`qc convert --to access` and `qc run --fixed-point access-dla` over the QONNX and QDQ models of
../shared/models; see access_fixed_point.sh. Prints one Markdown row per model.

Each model is converted twice, `--access-attributes inline` (the guide's form) and `metadata`.
Columns: the model; what `qc convert --to access --allow-cpu-ops --calibrate --assume-dims 1` did
(the number of layers with ACCESS attributes and of requantizations inserted, or the diagnostic
code that refused it); the largest and the median |relative change| of the feature-map scales
(one per quantizer of the source) and the largest of the weight scales (rounding alone, and the
channels widened so that their 16-bit bias fits); the SNR of the ACCESS model (simulated) against
the source model (qc's evaluator) at the first graph output, on qc's seeded inputs (each input
uniform over the range of its input quantizer); onnx.checker (full_check=True) on the metadata
form as written, and on the inline form: as written it fails on the guide's attributes, so a copy
with exactly those attribute names taken off every node is checked, and "only the guide's
attributes" means that copy passes (any other failure is printed); the SNR of `qc run
--fixed-point access-dla` against the float evaluation of the ACCESS model at the first graph
output (numpy seeded inputs: uniform in [-1, 1), seed 0, symbolic dims 1), and whether both forms
simulate to identical outputs.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx

FOLDERS = [
    "qonnx-model-zoo",
    "brevitas-radioml-challenge-21",
    "qonnx-testdata",
    "hls4ml-example-models",
    "generated-qdq",
    "generated-qcdq",
]
# The attributes the guide names (section III.B), the deprecated ones included.
ACCESS_ATTRS = {"input_scale", "input_bitdepth", "weight_scale", "weight_bitdepth", "weight_ch_scales",
                "output_scale", "output_bitdepth", "bias_scale", "bias_bitdepth", "A_scale", "A_bitdepth",
                "B_scale", "B_bitdepth"}
QUANT_OPS = {"Quant", "IntQuant", "BipolarQuant", "Trunc", "FloatQuant", "QuantizeLinear",
             "DequantizeLinear", "QLinearConv", "QLinearMatMul"}


def quantized(path):
    m = onnx.load(path, load_external_data=False)
    return any(n.op_type in QUANT_OPS for n in m.graph.node)


def seeded_inputs(path, work, name):
    """One .npy per float graph input: uniform in [-1, 1), seed 0, symbolic dims 1."""
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(0)
    args = []
    for i, inp in enumerate(m.graph.input):
        if inp.name in inits:
            continue
        t = inp.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in t.shape.dim]
        a = rng.uniform(-1.0, 1.0, size=dims).astype(np.float32)
        f = os.path.join(work, f"{name}.in{i}.npy")
        np.save(f, a)
        args += ["--input", f"{inp.name}={f}"]
    return args


def fnum(s):
    try:
        return float(s)
    except ValueError:
        return None


def snr_text(line):
    m = re.search(r"SNR (exact|-?[0-9.]+ dB|-)", line)
    return m.group(1) if m else "-"


def first_line(e):
    return str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__


def checker_metadata(path):
    """onnx.checker (full_check) on the metadata form as written."""
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return "ok"
    except Exception as e:  # noqa: BLE001 - the table reports any failure
        return f"FAIL: {first_line(e)}"


def checker_inline(path):
    """onnx.checker (full_check) on the inline form: as written it names an attribute of the guide;
    a copy without the guide's attribute names must pass."""
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
        return "ok as written"
    except Exception as e:  # noqa: BLE001
        first = first_line(e)
        if "Unrecognized attribute" not in first or not any(a in first for a in ACCESS_ATTRS):
            return f"FAIL: {first}"
    for n in model.graph.node:
        keep = [x for x in n.attribute if x.name not in ACCESS_ATTRS]
        del n.attribute[:]
        n.attribute.extend(keep)
    try:
        onnx.checker.check_model(model, full_check=True)
        return "only the guide's attributes"
    except Exception as e:  # noqa: BLE001
        return f"FAIL without the guide's attributes: {first_line(e)}"


def simulate(qc, path, ins, outdir):
    """`qc run --fixed-point access-dla`: the SNR text at the first output and the output files."""
    os.makedirs(outdir, exist_ok=True)
    s = subprocess.run([qc, "run", path, "--fixed-point", "access-dla", "--output-dir", outdir] + ins,
                       capture_output=True, text=True)
    if s.returncode != 0:
        code = re.search(r"qc::[a-z_:-]+", s.stderr)
        return f"failed: `{code.group(0) if code else s.returncode}`", None
    outs = [l for l in s.stdout.splitlines() if "(fixed point; against float" in l]
    files = {f: open(os.path.join(outdir, f), "rb").read() for f in sorted(os.listdir(outdir))}
    return (snr_text(outs[0]) if outs else "-"), files


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--qc", required=True)
    p.add_argument("--shared", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--scale-rounding", default="nearest")
    a = p.parse_args()
    print(f"scale rounding: {a.scale_rounding}; onnx {onnx.__version__}", file=sys.stderr)
    print("| model | conversion | fm scales: max / median rel. change | weight scales: max rel. change "
          "| output SNR vs source | onnx.checker, metadata form | onnx.checker, inline form "
          "| simulation SNR vs float | time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for folder in FOLDERS:
        d = os.path.join(a.shared, "models", folder)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.endswith(".onnx"):
                continue
            path = os.path.join(d, f)
            if not quantized(path):
                continue
            name = f"{folder}/{f}"
            base = f[:-5]
            out = os.path.join(a.work, base + ".access.onnx")
            out_meta = os.path.join(a.work, base + ".access-metadata.onnx")
            t0 = time.time()
            args = ["--to", "access", "--allow-cpu-ops", "--calibrate", "--assume-dims", "1",
                    "--scale-rounding", a.scale_rounding]
            r = subprocess.run([a.qc, "convert", path, "-o", out] + args, capture_output=True, text=True)
            dt = time.time() - t0
            if r.returncode != 0:
                code = re.search(r"qc::[a-z_:-]+", r.stderr)
                print(f"| {name} | refused: `{code.group(0) if code else r.returncode}` | | | | | | | {dt:.1f} s |")
                continue
            rm = subprocess.run([a.qc, "convert", path, "-o", out_meta, "--access-attributes", "metadata"] + args,
                                capture_output=True, text=True)
            head = r.stdout.splitlines()[0]
            layers = re.search(r"(\d+) layer\(s\)", head)
            req = re.search(r"(\d+) requantization", head)
            what = f"{layers.group(1) if layers else '?'} layers, {req.group(1) if req else 0} requant."
            fm, wmax, out_snr, widened, wwide = [], None, "-", 0, 0.0
            section = None
            for line in r.stdout.splitlines():
                if line.startswith("Feature maps"):
                    section = "fm"
                    continue
                if line.startswith("Weights"):
                    section = "w"
                    continue
                if line.startswith("Output `") and out_snr == "-":
                    out_snr = snr_text(line)
                    continue
                cols = line.split()
                if section == "fm" and len(cols) >= 6 and cols[3].endswith("%"):
                    v = fnum(cols[3].rstrip("%"))
                    if v is not None:
                        fm.append(abs(v))
                elif section == "w":
                    m = re.search(r"([+-][0-9.]+)%", line)
                    if m:
                        wmax = max(wmax or 0.0, abs(float(m.group(1))))
                    m = re.search(r"\((\d+) channel\(s\) widened so that the 16-bit bias fits, by up to (?:([+-][0-9.]+)%|x([0-9.e+-]+))", line)
                    if m:
                        widened += int(m.group(1))
                        pct = float(m.group(2)) if m.group(2) else 100.0 * (float(m.group(3)) - 1.0)
                        wwide = max(wwide, abs(pct))
            fm_text = f"{max(fm):.1f}% / {statistics.median(fm):.1f}% ({len(fm)})" if fm else "-"
            w_text = f"{wmax:.3f}%" if wmax is not None else "-"
            if widened:
                up = f"{wwide:.0f}%" if wwide < 9900 else f"x{1 + wwide / 100:.1e}"
                w_text += f"; {widened} ch. widened for the bias (up to {up})"
            # The guide's attributes sit on standard ops, whose ONNX schemas do not list them; the
            # metadata form carries the same keys in node metadata, which ONNX allows.
            chk_inline = checker_inline(out)
            chk_meta = checker_metadata(out_meta) if rm.returncode == 0 else f"convert failed: {rm.returncode}"
            ins = seeded_inputs(out, a.work, base)
            sim, files = simulate(a.qc, out, ins, os.path.join(a.work, base + ".out-inline"))
            if rm.returncode == 0 and files is not None:
                _, files_meta = simulate(a.qc, out_meta, ins, os.path.join(a.work, base + ".out-metadata"))
                sim += "; both forms identical" if files == files_meta else "; the two forms DIFFER"
            dt = time.time() - t0
            print(f"| {name} | {what} | {fm_text} | {w_text} | {out_snr} | {chk_meta} | {chk_inline} | {sim} "
                  f"| {dt:.1f} s |")


if __name__ == "__main__":
    main()
