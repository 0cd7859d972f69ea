"""In-memory compute: qc against ZigZag 3.9.1 on ZigZag's AIMC and DIMC accelerators (issue 24).

Usage:
  python imc_vs_zigzag.py summaries OUT_DIR [ACC:WORKLOAD:OPT ...]
  python imc_vs_zigzag.py compare QC_BINARY OUT_DIR [--zigzag-from DIR]

`summaries` runs ZigZag (`get_hardware_performance_zigzag` with `in_memory_compute=True`, as
`get_hardware_performance_zigzag_imc` does; LOMA, lpf_limit 6, 3 spatial
mappings, the uneven temporal mapping type, `mapping/default_imc.yaml`) for each run given as
`aimc:resnet18.onnx:latency` (default: aimc and dimc, resnet18.onnx and mobilenetv2.onnx,
opt=latency and opt=energy, and resnet18.yaml with opt=latency; ACC may also be an accelerator
file given relative to the repository, such as `bench/imc/dimc_cells16.yaml`), and writes one
`<acc>_<workload stem>_<ext>_<opt>.summary.json` per run into OUT_DIR, in the format of `peers/zigzag-inputs/results/*.summary.json` (paths
relative to `peers/zigzag-inputs`), with the IMC clock period, area and per-layer operational
energy breakdown added. The tests read these to check `--fixed-mapping` layer by layer.

`compare` runs ZigZag and `qc evaluate` with the same settings on resnet18.onnx (aimc and dimc,
opt=energy and opt=latency) and prints per run a table per layer and the wall time of both; qc
must be at least as good on every layer (within 0.01% counts as equal). It writes
OUT_DIR/imc.md, and the summaries of its ZigZag runs as `summaries` does, and exits 1 if qc is
worse on some layer. With `--zigzag-from DIR`, ZigZag is not run again: its per-layer results and
wall time are read from the summaries a `summaries` run wrote into DIR (runs missing there are
left out), and the table says so.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from zigzag import api
from zigzag.cost_model.cost_model import CostModelEvaluation
from zigzag.hardware.architecture.memory_port import DataDirection
from zigzag.mapping.data_movement import DataMoveAttr, DataMovePattern

# ZigZag 3.9.1 costs the bit-line precharge of cell groups deeper than one weight
# (`ImcUnit.get_precharge_energy`) by reading
# `unit_mem_data_movement[W][0].data_elem_move_count.rd_out_to_low`, which that version's classes
# do not have (`DataMovePattern` keeps the count under `get_attribute(DATA_ELEM_MOVE_COUNT)`, a
# `FourWayDataMoving` read with `.get(RD_OUT_TO_LOW)`): every such accelerator stops with an
# AttributeError. This property supplies the count the line means, so that those runs complete
# (`spec/imc.md`). Nothing else of ZigZag is changed; runs on one-weight cells never reach it.
class _Counts:
    def __init__(self, four_way):
        self.rd_out_to_low = four_way.get(DataDirection.RD_OUT_TO_LOW)


if not hasattr(DataMovePattern, "data_elem_move_count"):
    DataMovePattern.data_elem_move_count = property(
        lambda self: _Counts(self.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT))
    )

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared/peers/zigzag-inputs"
INPUTS = PEERS / "zigzag/inputs"
MAPPING = INPUTS / "mapping/default_imc.yaml"
ACCELERATORS = ("aimc", "dimc")


def cmes(result):
    """The per-layer CostModelEvaluations nested in the API's last result element."""
    found = []

    def walk(x):
        if isinstance(x, CostModelEvaluation):
            found.append(x)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)

    walk(result[-1])
    return found


def accel_file(acc):
    """ZigZag's example accelerator `acc`, or a file given relative to the repository."""
    return ROOT / acc if acc.endswith(".yaml") else INPUTS / f"hardware/{acc}.yaml"


def accel_name(acc):
    return Path(acc).stem


def zigzag(acc, workload, opt, out):
    start = time.time()
    # `get_hardware_performance_zigzag_imc` takes positional arguments only; it is this call.
    result = api.get_hardware_performance_zigzag(
        str(INPUTS / f"workload/{workload}"),
        str(accel_file(acc)),
        str(MAPPING),
        opt=opt,
        temporal_mapping_type="uneven",
        lpf_limit=6,
        nb_spatial_mappings_generated=3,
        dump_folder=str(out / f"zigzag-{accel_name(acc)}-{Path(workload).name}-{opt}"),
        loma_show_progress_bar=False,
        in_memory_compute=True,
    )
    return result, time.time() - start


def layer_record(c):
    return {
        "layer": c.layer.name,
        "energy": c.energy_total,
        "mac_energy": c.mac_energy,
        "mem_energy": c.mem_energy,
        "latency": c.latency_total2,
        "ideal_cycle": c.ideal_cycle,
        "ideal_temporal_cycle": c.ideal_temporal_cycle,
        "stall_slack_comb": c.stall_slack_comb,
        "onload": c.data_onloading_cycle,
        "offload": c.data_offloading_cycle,
        "mac_util_spatial": c.mac_spatial_utilization,
        "mac_utilization1": c.mac_utilization1,
        "tclk": c.tclk,
        "area": c.area_total,
        "mac_energy_breakdown": dict(c.mac_energy_breakdown),
        "spatial_mapping": str(c.layer.spatial_mapping),
        "temporal": str(c.temporal_mapping.mapping_dic_origin),
        "loop_sizes": {str(k): v for k, v in c.layer.layer_dim_sizes.items()},
    }


DEFAULT_RUNS = [
    f"{acc}:{w}:{opt}"
    for w, opts in (("resnet18.onnx", ("latency", "energy")), ("resnet18.yaml", ("latency",)),
                    ("mobilenetv2.onnx", ("latency", "energy")))
    for opt in opts
    for acc in ACCELERATORS
] + [
    # Cell groups of two and four weights (the bit-line precharge, `spec/imc.md`).
    "bench/imc/dimc_cells16.yaml:resnet18.yaml:latency",
    "bench/imc/aimc_cells32.yaml:resnet18.yaml:latency",
]


def write_summary(out, acc, workload, opt, result, seconds):
    """Writes ZigZag's result as `<acc>_<workload stem>_<ext>_<opt>.summary.json` into `out`."""
    energy, latency, tclk, area, _ = result
    layers = [layer_record(c) for c in cmes(result)]
    summary = {
        "version": "3.9.1",
        "workload": f"zigzag/inputs/workload/{workload}",
        # Relative to `peers/zigzag-inputs`, or to the repository for a file under `bench/`.
        "accel": acc if acc.endswith(".yaml") else f"zigzag/inputs/hardware/{acc}.yaml",
        "mapping": "zigzag/inputs/mapping/default_imc.yaml",
        "extra": {"in_memory_compute": True, "opt": opt},
        "energy": energy,
        "latency": latency,
        "tclk": tclk,
        "area": area,
        "seconds": seconds,
        "n_layers": len(layers),
        "layers": layers,
    }
    stem, ext = workload.rsplit(".", 1)
    name = f"{accel_name(acc)}_{stem}_{ext}_{opt}.summary.json"
    (out / name).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{name}: {energy!r} pJ, {latency!r} cycles, tclk {tclk!r} ns, area {area!r} mm^2, "
          f"{seconds:.1f} s", flush=True)


def summaries(out, runs):
    out.mkdir(parents=True, exist_ok=True)
    for run in runs:
        acc, workload, opt = run.split(":")
        result, seconds = zigzag(acc, workload, opt, out / "dumps")
        write_summary(out, acc, workload, opt, result, seconds)


def qc(binary, acc, workload, opt):
    args = [
        binary, "evaluate", str(INPUTS / f"workload/{workload}"),
        "--accelerator", str(INPUTS / f"hardware/{acc}.yaml"),
        "--mapping", str(MAPPING), "--opt", opt, "--lpf-limit", "6", "--spatial-mappings", "3",
        "--format", "json", "--quiet",
    ]
    start = time.time()
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    seconds = time.time() - start
    v = json.loads(text)
    return {l["name"]: (l["energy"], l["latency"]) for l in v["layers"]}, seconds, v


def recorded(directory, acc, workload, opt):
    """ZigZag's per-layer (energy, latency), totals and wall time from a summary in `directory`."""
    stem, ext = workload.rsplit(".", 1)
    path = Path(directory) / f"{acc}_{stem}_{ext}_{opt}.summary.json"
    if not path.exists():
        return None
    s = json.loads(path.read_text())
    layers = {l["layer"]: (l["energy"], l["latency"]) for l in s["layers"]}
    return layers, (s["energy"], s["latency"]), s["seconds"]


def compare(binary, out, zigzag_from=None):
    out.mkdir(parents=True, exist_ok=True)
    workload = "resnet18.onnx"
    lines = []
    worse_total = 0
    for acc in ACCELERATORS:
        for opt in ("energy", "latency"):
            k = 0 if opt == "energy" else 1
            if zigzag_from:
                rec = recorded(zigzag_from, acc, workload, opt)
                if rec is None:
                    print(f"{acc} {workload} opt={opt}: no recorded ZigZag run in {zigzag_from}", flush=True)
                    continue
                zz, (z_energy, z_latency), zz_s = rec
                how = "recorded"
            else:
                result, zz_s = zigzag(acc, workload, opt, out / "dumps")
                write_summary(out, acc, workload, opt, result, zz_s)
                zz = {c.layer.name: (c.energy_total, c.latency_total2) for c in cmes(result)}
                z_energy, z_latency = result[0], result[1]
                how = "run here"
            q, q_s, v = qc(binary, acc, workload, opt)
            lines.append(f"\n### {acc}, resnet18.onnx, opt={opt}: ZigZag {zz_s:.1f} s ({how}), qc {q_s:.3f} s "
                         f"({zz_s / q_s:.0f}x); ZigZag total {z_energy:.6e} pJ, {z_latency:.0f} cycles; "
                         f"qc total {v['total']['energy']:.6e} pJ, {v['total']['latency']:.0f} cycles\n")
            head = "| layer | ZigZag energy (pJ) | qc energy (pJ) | ZigZag latency (cc) | qc latency (cc) | qc vs ZigZag |"
            lines.append(head)
            lines.append("|---" * (head.count("|") - 1) + "|")
            tally = [0, 0, 0]
            for name, (ze, zl) in zz.items():
                if name not in q:
                    tally[2] += 1
                    lines.append(f"| {name} | {ze:.6e} | missing | {zl:.0f} | missing | worse |")
                    continue
                qe, ql = q[name]
                z_obj, q_obj = (ze, zl)[k], (qe, ql)[k]
                if q_obj <= z_obj * 1.0001:
                    verdict = "better" if q_obj < z_obj * (1 - 1e-4) else "equal"
                else:
                    verdict = "worse"
                tally[("better", "equal", "worse").index(verdict)] += 1
                lines.append(f"| {name} | {ze:.6e} | {qe:.6e} | {zl:.0f} | {ql:.0f} | {verdict} |")
            worse_total += tally[2]
            lines.append(f"\n{tally[0]} better, {tally[1]} equal, {tally[2]} worse")
            print("\n".join(lines[-(len(zz) + 4):]), flush=True)
    (out / "imc.md").write_text("\n".join(lines) + "\n")
    sys.exit(1 if worse_total else 0)


def main():
    mode = sys.argv[1]
    if mode == "summaries":
        summaries(Path(sys.argv[2]), sys.argv[3:] or DEFAULT_RUNS)
    elif mode == "compare":
        frm = sys.argv[sys.argv.index("--zigzag-from") + 1] if "--zigzag-from" in sys.argv else None
        compare(sys.argv[2], Path(sys.argv[3]), frm)
    else:
        sys.exit(__doc__)


main()
