"""qc's mapping search against ZigZag 3.9.1's, layer by layer (issue 9's benchmark).

Usage: python search_vs_zigzag.py QC_BINARY OUT_DIR [--larger SECONDS] [--hints] [--even]

For resnet18.onnx (ZigZag's copy) on tpu_like, edge_tpu_like, ascend_like, meta_prototype and
tesla_npu_like with their mapping files, runs ZigZag (`get_hardware_performance_zigzag`, LOMA,
lpf_limit 6, 3 spatial mappings) and `qc evaluate` with the same settings, once with
opt=energy and once with opt=latency, and prints per run a table per layer: ZigZag's and qc's
energy and latency, and the wall time of both. qc must be at least as good on every layer (energy
under opt=energy, latency under opt=latency; within 0.1% counts as equal). With --larger S, qc
also runs with no loop-prime-factor merging under a budget of S seconds per run, and the table
shows how much better that gets. Writes OUT_DIR/summary.md (the tables) and exits 1 if qc is
worse than ZigZag on some layer.

With --hints, the mapping files are rewritten to leave the spatial mapping to the search: each
layer entry's fixed `spatial_mapping` is replaced by a `spatial_mapping_hint` allowing K, C, OX,
OY, FX and FY on every array dim (Add and Pooling entries keep theirs). ZigZag then evaluates
the 3 candidates with the best utilisation its generator proposes, as does qc with
`--spatial-mappings 3`; qc with `--spatial-mappings all` evaluates every candidate (up to 512
per layer). The table shows ZigZag, qc-3 and qc-all per layer; written to OUT_DIR/hints.md.

With --even, both tools use the even temporal mapping type (ZigZag's
`temporal_mapping_type="even"`, qc's `--mapping-type even`: a loop sits at the same level for all
operands sharing a memory) instead of the default uneven one; the tables go to
OUT_DIR/summary_even.md.
"""

import json
import subprocess
import yaml
import sys
import time
from pathlib import Path

from zigzag import api
from zigzag_results import layer_results

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
MAPPING_TYPE = "even" if "--even" in sys.argv else "uneven"


def hints_only(mapping, out):
    """A copy of the mapping file whose layer entries give hints instead of a spatial mapping."""
    entries = yaml.safe_load((INPUTS / f"mapping/{mapping}.yaml").read_text())
    for e in entries:
        fixed = e.pop("spatial_mapping", None) or {}
        e.pop("spatial_mapping_hint", None)
        if e["name"] in ("Add", "Pooling"):
            e["spatial_mapping"] = fixed
            continue
        e["spatial_mapping_hint"] = {d: ["K", "C", "OX", "OY", "FX", "FY"] for d in fixed}
    path = out / f"{mapping}_hints.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


def mapping_path(mapping):
    return mapping if isinstance(mapping, Path) else INPUTS / f"mapping/{mapping}.yaml"


def zigzag(acc, mapping, opt, out):
    start = time.time()
    result = api.get_hardware_performance_zigzag(
        str(MODEL),
        str(INPUTS / f"hardware/{acc}.yaml"),
        str(mapping_path(mapping)),
        opt=opt,
        temporal_mapping_type=MAPPING_TYPE,
        lpf_limit=6,
        nb_spatial_mappings_generated=3,
        dump_folder=str(out / f"zigzag-{acc}-{opt}-{MAPPING_TYPE}-{mapping_path(mapping).stem}"),
        loma_show_progress_bar=False,
    )
    seconds = time.time() - start
    return layer_results(result), seconds


def qc(binary, acc, mapping, opt, extra):
    args = [
        binary, "evaluate", str(MODEL),
        "--accelerator", str(INPUTS / f"hardware/{acc}.yaml"),
        "--mapping", str(mapping_path(mapping)),
        "--opt", opt, "--mapping-type", MAPPING_TYPE, "--format", "json", "--quiet", *extra,
    ]
    start = time.time()
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    seconds = time.time() - start
    v = json.loads(out)
    return {l["name"]: (l["energy"], l["latency"]) for l in v["layers"]}, seconds, v


def hints(binary, out):
    """The --hints comparison: ZigZag's top 3 spatial candidates against qc's 3 and all."""
    lines = []
    worse_total = 0
    for acc, mapping in RUNS:
        path = hints_only(mapping, out)
        for opt in ("energy", "latency"):
            k = 0 if opt == "energy" else 1
            zz, zz_s = zigzag(acc, path, opt, out)
            q3, q3_s, _ = qc(binary, acc, path, opt, ["--lpf-limit", "6", "--spatial-mappings", "3"])
            qa, qa_s, va = qc(binary, acc, path, opt, ["--lpf-limit", "6", "--spatial-mappings", "all"])
            s = va["search"]
            lines.append(f"\n### {acc} (hints only), opt={opt}: ZigZag {zz_s:.1f} s, qc-3 {q3_s:.2f} s, "
                         f"qc-all {qa_s:.2f} s ({s['orderings_evaluated']} orderings evaluated, "
                         f"{s['orderings_pruned']} pruned)\n")
            head = f"| layer | ZigZag {opt} | qc-3 {opt} | qc-all {opt} | qc-3 vs ZigZag | qc-all vs ZigZag |"
            lines.append(head)
            lines.append("|---" * (head.count("|") - 1) + "|")
            tally = {"3": [0, 0, 0], "all": [0, 0, 0]}
            for name, z in zz.items():
                row = f"| {name} | {z[k]:.6e} |"
                verdicts = []
                for label, q in (("3", q3), ("all", qa)):
                    v = q.get(name)
                    if v is None:
                        verdict = "worse"
                    elif v[k] <= z[k] * 1.001:
                        verdict = "better" if v[k] < z[k] * (1 - 1e-9) else "equal"
                    else:
                        verdict = "worse"
                    tally[label][("better", "equal", "worse").index(verdict)] += 1
                    row += f" {v[k]:.6e} |" if v else " missing |"
                    verdicts.append(verdict)
                lines.append(row + "".join(f" {v} |" for v in verdicts))
            worse_total += tally["3"][2] + tally["all"][2]
            tz = sum(v[k] for v in zz.values())
            t3 = sum(v[k] for n, v in q3.items() if n in zz)
            ta = sum(v[k] for n, v in qa.items() if n in zz)
            lines.append(f"\nqc-3: {tally['3'][0]} better, {tally['3'][1]} equal, {tally['3'][2]} worse; "
                         f"qc-all: {tally['all'][0]} better, {tally['all'][1]} equal, {tally['all'][2]} worse; "
                         f"network {opt}: ZigZag {tz:.6e}, qc-3 {t3:.6e}, qc-all {ta:.6e} "
                         f"({(1 - ta / tz) * 100:.1f}% lower)")
            print("\n".join(lines[-(len(zz) + 4):]), flush=True)
    (out / "hints.md").write_text("\n".join(lines) + "\n")
    sys.exit(1 if worse_total else 0)


def main():
    binary, out = sys.argv[1], Path(sys.argv[2])
    larger = float(sys.argv[sys.argv.index("--larger") + 1]) if "--larger" in sys.argv else None
    out.mkdir(parents=True, exist_ok=True)
    if "--hints" in sys.argv:
        hints(binary, out)
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
            lines.append(f"\n### {acc}, opt={opt}, {MAPPING_TYPE}: ZigZag {zz_s:.1f} s, qc {q_s:.3f} s ({zz_s / q_s:.0f}x)"
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
    (out / ("summary_even.md" if MAPPING_TYPE == "even" else "summary.md")).write_text("\n".join(lines) + "\n")
    sys.exit(1 if worse_total else 0)


main()
