"""`qc convert --to access` and `qc run --fixed-point access-dla` over the QONNX and QDQ models of
../shared/models; see access_fixed_point.sh. Prints one Markdown row per model.

Columns: the model; what `qc convert --to access --allow-cpu-ops` did (the number of layers with
ACCESS attributes and of requantizations inserted, or the diagnostic code that refused it); the
largest and the median |relative change| of the feature-map scales (one per quantizer of the
source) and the largest of the weight scales; the SNR of the ACCESS model (simulated) against the
source model (qc's evaluator) at the first graph output, on seeded inputs; onnx.checker on the
written model; the SNR of `qc run --fixed-point access-dla` against the float evaluation of the
ACCESS model at the first graph output, on the same seeded inputs (uniform in [-1, 1), seed 0).
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
ACCESS_ATTRS = {"input_scale", "input_bitdepth", "weight_bitdepth", "weight_ch_scales", "output_scale",
                "output_bitdepth", "bias_bitdepth", "A_scale", "A_bitdepth", "B_scale", "B_bitdepth"}
QUANT_OPS = {"Quant", "IntQuant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear",
             "QLinearConv", "QLinearMatMul"}


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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--qc", required=True)
    p.add_argument("--shared", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--scale-rounding", default="nearest")
    a = p.parse_args()
    print(f"scale rounding: {a.scale_rounding}; onnx {onnx.__version__}", file=sys.stderr)
    print("| model | conversion | fm scales: max / median rel. change | weight scales: max rel. change "
          "| output SNR vs source | onnx.checker | simulation SNR vs float | time |")
    print("|---|---|---|---|---|---|---|---|")
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
            t0 = time.time()
            r = subprocess.run([a.qc, "convert", path, "--to", "access", "-o", out, "--allow-cpu-ops",
                                "--calibrate", "--scale-rounding", a.scale_rounding], capture_output=True, text=True)
            dt = time.time() - t0
            if r.returncode != 0:
                code = re.search(r"qc::[a-z_:-]+", r.stderr)
                print(f"| {name} | refused: `{code.group(0) if code else r.returncode}` | | | | | | {dt:.1f} s |")
                continue
            head = r.stdout.splitlines()[0]
            layers = re.search(r"(\d+) layer\(s\)", head)
            req = re.search(r"(\d+) requantization", head)
            what = f"{layers.group(1) if layers else '?'} layers, {req.group(1) if req else 0} requant."
            fm, wmax, out_snr = [], None, "-"
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
            fm_text = f"{max(fm):.1f}% / {statistics.median(fm):.1f}% ({len(fm)})" if fm else "-"
            w_text = f"{wmax:.3f}%" if wmax is not None else "-"
            # The guide's attributes sit on standard ops, whose ONNX schemas do not list them:
            # onnx.checker rejects them ("Unrecognized attribute"). The model is checked as it
            # is, and with those attributes taken off (everything else must pass).
            model = onnx.load(out)
            try:
                onnx.checker.check_model(model)
                checker = "ok"
            except Exception as e:  # noqa: BLE001 - the table reports any failure
                first = str(e).splitlines()[0]
                if "Unrecognized attribute" in first:
                    for n in model.graph.node:
                        keep = [x for x in n.attribute if x.name not in ACCESS_ATTRS]
                        del n.attribute[:]
                        n.attribute.extend(keep)
                    try:
                        onnx.checker.check_model(model)
                        checker = "ok without the ACCESS attributes"
                    except Exception as e2:  # noqa: BLE001
                        checker = f"FAIL: {str(e2).splitlines()[0][:60]}"
                else:
                    checker = f"FAIL: {first[:60]}"
            ins = seeded_inputs(out, a.work, base)
            s = subprocess.run([a.qc, "run", out, "--fixed-point", "access-dla"] + ins,
                               capture_output=True, text=True)
            dt = time.time() - t0
            if s.returncode != 0:
                code = re.search(r"qc::[a-z_:-]+", s.stderr)
                sim = f"failed: `{code.group(0) if code else s.returncode}`"
            else:
                outs = [l for l in s.stdout.splitlines() if "(fixed point; against float" in l]
                sim = snr_text(outs[0]) if outs else "-"
            print(f"| {name} | {what} | {fm_text} | {w_text} | {out_snr} | {checker} | {sim} | {dt:.1f} s |")


if __name__ == "__main__":
    main()
