"""AccelForge (Timeloop's successor, with the TCM single-layer mapper) and `qc evaluate
--optimal` side by side on the same two ResNet-18 layers and the same design (issue 26).

Usage: python3 accelforge_vs_qc.py QC_BINARY AF_PYTHON OUT_DIR [--budget N]

The design is bench/accelforge/design_af.yaml (AccelForge) and design_qc.yaml (ZigZag's format,
for qc): DRAM -> 128 KiB buffer -> 16 x 16 MACs; the layers are conv_af.yaml with the parameters
of layers.yaml. Each tool runs with the energy objective and its own cost model; the table gives
each one's wall time, its energy and latency under its own model, and what it proves. The
models differ (bench/README.md, "AccelForge"), so the energies are not comparable one to one.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent / "accelforge"
LAYERS = ["conv1_7x7s2", "layer1_3x3"]


def main():
    qc, af_python, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    budget = sys.argv[sys.argv.index("--budget") + 1] if "--budget" in sys.argv else None
    out.mkdir(parents=True, exist_ok=True)
    af = {}
    for layer in LAYERS:
        r = subprocess.run([af_python, str(HERE / "run_af.py"), layer, "ENERGY"], cwd=out,
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"AccelForge failed on {layer}:\n{r.stderr[-2000:]}")
        af[layer] = json.loads(r.stdout.strip().splitlines()[-1])
        (out / f"af_{layer}.json").write_text(json.dumps(af[layer], indent=1))
    args = [qc, "evaluate", str(HERE / "layers.yaml"), "--accelerator", str(HERE / "design_qc.yaml"),
            "--opt", "energy", "--optimal", "--format", "json", "--quiet"]
    if budget:
        args += ["--optimal-budget", budget]
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    qc_seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"qc failed:\n{r.stderr[-2000:]}")
    (out / "qc.json").write_text(r.stdout)
    doc = json.loads(r.stdout)
    print(f"qc: both layers in one run, {qc_seconds:.1f} s wall")
    print("| layer | AccelForge s | AccelForge pJ | AccelForge cycles | qc pJ | qc cycles | qc bound pJ | qc certificate |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for layer, q in zip(LAYERS, doc["layers"]):
        a = af[layer]
        c = q["search"].get("certificate") or {}
        if c.get("complete"):
            cert = "proven optimal"
        else:
            cert = f"cut by the budget, within {100 * c.get('gap', float('nan')):.0f}% of the optimum"
        print(f"| {layer} | {a['seconds']:.1f} | {a['energy']:,.0f} | {a['latency']:,.0f} | "
              f"{q['energy']:,.0f} | {q['latency']:,.0f} | {q['bound']['energy']:,.0f} | {cert} |")


if __name__ == "__main__":
    main()
