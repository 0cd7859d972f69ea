"""ZigZag 3.9.1 on three designs of qc's sweep (bench/sweep_vs_zigzag.sh), to extrapolate its time.

Usage: python sweep_vs_zigzag.py OUT_DIR ZIGZAG_INPUTS

Takes the first, middle and last design of OUT_DIR/designs.jsonl, writes each as a ZigZag
accelerator YAML (the base tpu_like.yaml with the design's parameters set), runs ZigZag's API
with the settings qc used (LOMA lpf 6, 3 spatial mappings, opt=latency), and prints ZigZag's
network energy, latency and wall time next to qc's for each, and the extrapolated time of the
whole sweep.
"""

import json
import sys
import time
from pathlib import Path

import yaml
from zigzag import api

out, inputs = Path(sys.argv[1]), Path(sys.argv[2])
lines = sorted((json.loads(l) for l in (out / "designs.jsonl").read_text().splitlines()), key=lambda l: int(l["design"]))
base = yaml.safe_load((inputs / "hardware/tpu_like.yaml").read_text())
picks = [lines[0], lines[len(lines) // 2], lines[-1]]
seconds = []
for d in picks:
    acc = json.loads(json.dumps(base))
    for name, value in d["parameters"].items():
        parts = name.split(".")
        if parts[:2] == ["operational_array", "sizes"]:
            dims = acc["operational_array"]["dimensions"]
            acc["operational_array"]["sizes"][dims.index(parts[2])] = int(value)
        elif parts[0] == "memories":
            acc["memories"][parts[1]][parts[2]] = value
    path = out / f"design{d['design']}.yaml"
    path.write_text(yaml.safe_dump(acc, sort_keys=False))
    start = time.time()
    energy, latency, _ = api.get_hardware_performance_zigzag(
        str(inputs / "workload/resnet18.onnx"), str(path), str(inputs / "mapping/tpu_like.yaml"),
        opt="latency", lpf_limit=6, nb_spatial_mappings_generated=3,
        dump_folder=str(out / f"zigzag-{d['design']}"), loma_show_progress_bar=False,
    )
    s = time.time() - start
    seconds.append(s)
    print(f"design {d['design']} {d['parameters']}: ZigZag {energy:.6e} pJ, {latency:.0f} cc, {s:.1f} s; "
          f"qc {d['energy']:.6e} pJ, {d['latency']:.0f} cc, {d['seconds']:.3f} s", flush=True)
mean = sum(seconds) / len(seconds)
print(f"ZigZag: {mean:.1f} s per design on average; the {len(lines)} designs would take "
      f"{mean * len(lines) / 3600:.1f} h on one core ({mean * len(lines) / 7200:.1f} h on 2 cores)")
