"""One layer through AccelForge's mapper (its TCM single-layer search, default settings):
prints one JSON line with the wall time, energy (pJ), latency (cycles) and the mapping.
usage: python run_af.py LAYER METRIC   (LAYER: conv1_7x7s2 | layer1_3x3; METRIC: ENERGY | EDP)"""
import json
import os
import sys
import time

import accelforge as af

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = {
    "conv1_7x7s2": dict(N=1, C=3, K=64, P=112, Q=112, R=7, S=7, STRIDE=2),
    "layer1_3x3": dict(N=1, C=64, K=64, P=56, Q=56, R=3, S=3, STRIDE=1),
}
layer, metric = sys.argv[1], sys.argv[2]
af.set_n_parallel_jobs(os.cpu_count(), print_message=False)
t0 = time.perf_counter()
spec = af.Spec.from_yaml(os.path.join(HERE, "design_af.yaml"), os.path.join(HERE, "conv_af.yaml"),
                         jinja_parse_data=LAYERS[layer])
spec.mapper.metrics = getattr(af.mapper.Metrics, metric)
mappings = spec.map_workload_to_arch(print_number_of_pmappings=False)
t1 = time.perf_counter()
nodes = [n.compact_str() if hasattr(n, "compact_str") else repr(n) for n in mappings.mapping().nodes]
print(json.dumps({
    "layer": layer, "metric": metric, "seconds": t1 - t0,
    "energy": float(mappings.energy()), "latency": float(mappings.latency()),
    "energy_by_component": {str(k): float(v) for k, v in mappings.energy(per_component=True).items()},
    "mapping": nodes,
}))
