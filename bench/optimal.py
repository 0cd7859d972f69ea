"""`qc evaluate --optimal` on resnet18.onnx over ZigZag's five example accelerators (issue 26).

Usage: python3 optimal.py QC_BINARY OUT_DIR [--budget N|none] [--gap G] [--jobs N]
       [--opt energy|latency] [--acc NAME]

For tpu_like, edge_tpu_like, ascend_like, meta_prototype and tesla_npu_like with their mapping
files (`../shared/peers/zigzag-inputs`), opt=energy and opt=latency, runs `qc evaluate --optimal
--format json` (default budget unless --budget; `--optimal-gap G` with --gap, e.g. 1%; --jobs
as given, else qc's default) and times
it (only the objective given by --opt, only the accelerator given by --acc). Per run it prints a table per layer: the LOMA-6 choice and the optimum under the objective,
how far LOMA-6 is above it, whether the certificate is complete (else the proven gap), and the
space's size and how much of it was evaluated; then one summary line per run, with the layers
proven within 1% of their optimum and the network's proven gap (its best over the sum of the
layers' lower bounds). Writes
OUT_DIR/optimal.md (the tables) and OUT_DIR/<acc>_<opt>.json (qc's reports).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

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


def arg(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if not MODEL.exists():
        sys.exit(f"{MODEL} is missing: this benchmark needs ../shared/peers/zigzag-inputs")
    binary, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    extra = []
    if arg("--budget"):
        extra += ["--optimal-budget", arg("--budget")]
    if arg("--gap"):
        extra += ["--optimal-gap", arg("--gap")]
    if arg("--jobs"):
        extra += ["--jobs", arg("--jobs")]
    lines = ["# qc evaluate --optimal, resnet18.onnx\n"]
    summary = ["| accelerator | opt | wall (s) | layers complete | layers within 1% | LOMA-6 network | optimum network | LOMA-6 above | largest per layer | largest gap | network gap |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
    for acc, mapping in RUNS:
        if arg("--acc") and arg("--acc") != acc:
            continue
        for opt in ("energy", "latency"):
            if arg("--opt") and arg("--opt") != opt:
                continue
            args = [binary, "evaluate", str(MODEL),
                    "--accelerator", str(INPUTS / f"hardware/{acc}.yaml"),
                    "--mapping", str(INPUTS / f"mapping/{mapping}.yaml"),
                    "--opt", opt, "--optimal", "--format", "json", "--quiet", *extra]
            start = time.perf_counter()
            text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
            wall = time.perf_counter() - start
            (out / f"{acc}_{opt}.json").write_text(text)
            report = json.loads(text)
            lines.append(f"\n## {acc}, opt={opt}: {wall:.2f} s\n")
            lines.append("| layer | LOMA-6 | optimum | LOMA-6 above | certificate | orderings evaluated / space | dominated | prefix states | spatial candidates |")
            lines.append("|---|---|---|---|---|---|---|---|---|")
            loma_total = best_total = bound_total = 0.0
            complete = searched = within = 0
            worst_excess = worst_gap = 0.0
            for layer in report["layers"]:
                c = (layer.get("search") or {}).get("certificate")
                if c is None:
                    continue
                searched += 1
                complete += c["complete"]
                loma, best = c["seed_value"], c["best"]
                loma_total += loma
                best_total += best
                # The network's proven gap: its best over the sum of the layers' lower bounds.
                bound_total += c["lower_bound"] if c["lower_bound"] is not None else float("nan")
                within += c["gap"] is not None and c["gap"] <= 0.01
                excess = c["seed_excess"] or 0.0
                worst_excess = max(worst_excess, excess)
                if c["complete"] and c["gap"] == 0:
                    cert = "optimal"
                elif c["complete"]:
                    cert = f"complete, gap <= {100 * c['gap']:.2f}% (tolerance)"
                    worst_gap = max(worst_gap, c["gap"])
                elif c["gap"] is None:
                    cert = "cut, gap unknown"
                else:
                    cert = f"cut, gap <= {100 * c['gap']:.2f}%"
                    worst_gap = max(worst_gap, c["gap"])
                dominated = sum(p["orderings"] for p in c["pruned"] if p["reason"] == "dominated")
                lines.append(f"| {layer['name']} | {loma:.6e} | {best:.6e} | {100 * excess:.2f}% | {cert} | "
                             f"{c['orderings_evaluated_in_space']:,} / {c['orderings']:,} | {dominated:,} | "
                             f"{c.get('states', 0):,} | {c['spatial_candidates']:,} |")
            above = loma_total / best_total - 1 if best_total > 0 else 0.0
            net_gap = best_total / bound_total - 1 if bound_total > 0 else float("nan")
            summary.append(f"| {acc} | {opt} | {wall:.2f} | {complete} / {searched} | {within} / {searched} | {loma_total:.6e} | "
                           f"{best_total:.6e} | {100 * above:.2f}% | {100 * worst_excess:.2f}% | {100 * worst_gap:.2f}% | "
                           f"{100 * net_gap:.2f}% |")
            print(summary[-1], flush=True)
    text = "\n".join(summary) + "\n\n" + "\n".join(lines) + "\n"
    (out / "optimal.md").write_text(text)
    print(f"tables in {out / 'optimal.md'}")


if __name__ == "__main__":
    main()
