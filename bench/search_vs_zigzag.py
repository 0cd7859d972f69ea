"""qc's mapping search against ZigZag 3.9.1's, layer by layer (issue 9's benchmark).

Usage: python search_vs_zigzag.py QC_BINARY OUT_DIR [--larger SECONDS]

For resnet18.onnx (ZigZag's copy) on tpu_like, edge_tpu_like, ascend_like, meta_prototype and
tesla_npu_like with their mapping files, runs ZigZag (`get_hardware_performance_zigzag`, LOMA,
lpf_limit 6, 3 spatial mappings) and `qc evaluate` with the same settings, once with
opt=energy and once with opt=latency, and prints per run a table per layer: ZigZag's and qc's
energy and latency, and the wall time of both. qc must be at least as good on every layer (energy
under opt=energy, latency under opt=latency; within 0.1% counts as equal). With --larger S, qc
also runs with no loop-prime-factor merging under a budget of S seconds per run, and the table
shows how much better that gets. Writes OUT_DIR/summary.md (the tables) and exits 1 if qc is
worse than ZigZag on some layer.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from zigzag import api
from zigzag.cost_model.cost_model import CostModelEvaluation

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT.parent / "shared/peers/zigzag-inputs/zigzag/inputs"
MODEL = INPUTS / "workload/resnet18.onnx"
RUNS = [
    ("tpu_like", "tpu_like"),
    ("edge_tpu_like", "edge_tpu_like"),
    ("ascend_like", "ascend_like"),
    ("meta_prototype", "meta_prototype_like"),
    ("tesla_npu_like", "tesla_npu_like"),
]


def zigzag(acc, mapping, opt, out):
    start = time.time()
    result = api.get_hardware_performance_zigzag(
        str(MODEL),
        str(INPUTS / f"hardware/{acc}.yaml"),
        str(INPUTS / f"mapping/{mapping}.yaml"),
        opt=opt,
        lpf_limit=6,
        nb_spatial_mappings_generated=3,
        dump_folder=str(out / f"zigzag-{acc}-{opt}"),
        loma_show_progress_bar=False,
    )
    seconds = time.time() - start
    found = []

    def walk(x):
        if isinstance(x, CostModelEvaluation):
            found.append(x)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)

    walk(result[-1])
    return {c.layer.name: (c.energy_total, c.latency_total2) for c in found}, seconds


def qc(binary, acc, mapping, opt, extra):
    args = [
        binary, "evaluate", str(MODEL),
        "--accelerator", str(INPUTS / f"hardware/{acc}.yaml"),
        "--mapping", str(INPUTS / f"mapping/{mapping}.yaml"),
        "--opt", opt, "--format", "json", "--quiet", *extra,
    ]
    start = time.time()
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    seconds = time.time() - start
    v = json.loads(out)
    return {l["name"]: (l["energy"], l["latency"]) for l in v["layers"]}, seconds, v


def main():
    binary, out = sys.argv[1], Path(sys.argv[2])
    larger = float(sys.argv[sys.argv.index("--larger") + 1]) if "--larger" in sys.argv else None
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    worse_total = 0
    for acc, mapping in RUNS:
        for opt in ("energy", "latency"):
            k = 0 if opt == "energy" else 1
            zz, zz_s = zigzag(acc, mapping, opt, out)
            q, q_s, _ = qc(binary, acc, mapping, opt, ["--lpf-limit", "6", "--spatial-mappings", "3"])
            big = None
            if larger:
                big, big_s, _ = qc(binary, acc, mapping, opt, ["--lpf-limit", "none", "--search-budget", f"{larger}s"])
            lines.append(f"\n### {acc}, opt={opt}: ZigZag {zz_s:.1f} s, qc {q_s:.3f} s ({zz_s / q_s:.0f}x)"
                         + (f", qc larger search {big_s:.1f} s" if big else "") + "\n")
            head = "| layer | ZigZag energy (pJ) | qc energy (pJ) | ZigZag latency (cc) | qc latency (cc) | qc vs ZigZag |"
            if big:
                head += " larger search |"
            lines.append(head)
            lines.append("|---" * (head.count("|") - 1) + "|")
            better = equal = worse = 0
            for name, (ze, zl) in zz.items():
                if name not in q:
                    worse += 1
                    lines.append(f"| {name} | {ze:.6e} | missing | {zl:.0f} | missing | worse |")
                    continue
                qe, ql = q[name]
                z_obj, q_obj = (ze, zl)[k], (qe, ql)[k]
                if q_obj <= z_obj * 1.001:
                    verdict = "better" if q_obj < z_obj * (1 - 1e-9) else "equal"
                else:
                    verdict = "worse"
                better += verdict == "better"
                equal += verdict == "equal"
                worse += verdict == "worse"
                row = f"| {name} | {ze:.6e} | {qe:.6e} | {zl:.0f} | {ql:.0f} | {verdict} |"
                if big:
                    be, bl = big[name]
                    gain = 1 - (be, bl)[k] / q_obj if q_obj else 0.0
                    row += f" {(be, bl)[k]:.6e} ({gain * 100:.2f}% better) |"
                lines.append(row)
            worse_total += worse
            tz = sum(v[k] for v in zz.values())
            tq = sum(v[k] for n, v in q.items() if n in zz)
            lines.append(f"\n{better} better, {equal} equal, {worse} worse; network {opt}: ZigZag {tz:.6e}, qc {tq:.6e}")
            print("\n".join(lines[-(len(zz) + 4):]), flush=True)
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    sys.exit(1 if worse_total else 0)


main()
