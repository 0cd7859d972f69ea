"""qc from Python: a quantized model to its inference cost, its DLA check, its loop nests and its
energy and latency on accelerators.

    pip install ./python
    python examples/python_quickstart.py [MODEL.onnx]
"""

import sys
from pathlib import Path

import numpy as np

import qc

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("tiny_qonnx.onnx")
model = qc.load(path)
print(model)

# Inference cost, as qonnx.util.inference_cost returns it.
cost = qc.cost(model, cost_breakdown=True)
total = cost["total_cost"]
print(f"{total['total_macs']:.0f} MACs, {total['total_bops']:.0f} bit operations, "
      f"{total['total_mem_w_bits']:.0f} weight bits; unsupported: {total['unsupported']}")
for node, counts in cost["node_cost"].items():
    print(f"  {node:<12} {counts['total_macs']:>10.0f} MACs")

# The DLA target's operator limits and fixed-point rules, and where each op runs.
report = qc.check(model, target="access-dla")
print(f"access-dla: {'ok' if report.ok else 'violations'}, "
      f"{sum(p.unit == 'dla' for p in report.placement)} ops on the DLA, "
      f"{sum(p.unit == 'cpu' for p in report.placement)} on the CPU")
for f in report.findings[:3]:
    print(f"  {f.severity} {f.code} at {f.node}: {f.message}")

# Every compute layer as a loop nest, and ZigZag's workload YAML.
workload = qc.lower(model)
for layer in workload.layers:
    print(f"  layer {layer['name']}: {layer['op_type']} dims {layer['dims']}")
print(f"ZigZag workload: {len(workload.to_zigzag_yaml().splitlines())} lines of YAML")

# The reference evaluator on a numpy input.
shape = [d if isinstance(d, int) else 1 for d in model.inspect()["inputs"][0]["shape"]]
outputs = qc.run(model, {model.inputs[0]: np.ones(shape, np.float32)})
for name, value in outputs.items():
    print(f"output {name}: {value.dtype}{list(value.shape)}")

# Energy and latency on a built-in accelerator, compared with a second one; the mappings are
# searched for the least energy.
e = qc.evaluate(workload, "tpu_like", compare=["edge_tpu_like"])
for d in e.designs:
    print(f"{d.accelerator}: {d.total.energy:.4g} pJ, {d.total.latency:.4g} cycles")
for layer in e.layers[:3]:
    print(f"  {layer.name}: {layer.energy:.4g} pJ, spatial utilization {layer.utilization.spatial:.2f}")
e.to_html("evaluation.html")
print("wrote evaluation.html")
