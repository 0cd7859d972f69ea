"""The gap between qc's LOMA-6 search result and the lower bounds, per network and per layer
(see bound_gap.sh). Prints a Markdown table for bench/README.md."""

import json
import statistics
import subprocess
import sys

DESIGNS = [
    ("tpu_like", "tpu_like"),
    ("edge_tpu_like", "edge_tpu_like"),
    ("ascend_like", "ascend_like"),
    ("meta_prototype", "meta_prototype_like"),
    ("tesla_npu_like", "tesla_npu_like"),
]


def spread(values):
    return f"{min(values):.2f}x / {statistics.median(values):.2f}x / {max(values):.2f}x"


def main():
    qc, inputs = sys.argv[1], sys.argv[2]
    workload = f"{inputs}/workload/resnet18.onnx"
    print("| accelerator | opt | energy found (pJ) | energy bound (pJ) | gap | per layer min / median / max "
          "| latency found (cc) | latency bound (cc) | gap | per layer min / median / max "
          "| bounds (ms, 21 layers) |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|")
    for acc, mapping in DESIGNS:
        for opt in ["energy", "latency"]:
            args = [qc, "evaluate", workload, "--accelerator", f"{inputs}/hardware/{acc}.yaml",
                    "--mapping", f"{inputs}/mapping/{mapping}.yaml", "--opt", opt,
                    "--format", "json", "--quiet"]
            out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            layers = r["layers"]
            e_gaps = [l["bound"]["energy_gap"] for l in layers]
            l_gaps = [l["bound"]["latency_gap"] for l in layers]
            t, b = r["total"], r["bound"]
            print(f"| {acc} | {opt} | {t['energy']:,.0f} | {b['energy']:,.0f} | {b['energy_gap']:.2f}x "
                  f"| {spread(e_gaps)} | {t['latency']:,.0f} | {b['latency']:,.0f} | {b['latency_gap']:.2f}x "
                  f"| {spread(l_gaps)} | {1000 * b['seconds']:.2f} |")


if __name__ == "__main__":
    main()
