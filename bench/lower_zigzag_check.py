"""ZigZag (3.9.1) reads and runs the workload YAML `qc lower --format zigzag-yaml` writes.

Usage: python lower_zigzag_check.py MODEL.onnx QC.yaml ACCELERATOR.yaml MAPPING.yaml OPT

1. Parsing: ZigZag's ONNX parser reads MODEL.onnx, ZigZag's workload validator and factory read
   qc's YAML, and the layers are compared by name: loop sizes, relations, partially relevant
   sizes, padding, operand precisions.
2. Running: `zigzag.api.get_hardware_performance_zigzag` runs on both (LOMA, lpf_limit 6, 3
   spatial mappings, the given opt) and the per-layer energy and latency are compared by name.
   qc's YAML also has the pooling and element-wise layers ZigZag's ONNX parser skips; they are
   listed with ZigZag's cost of them.

Exits 1 if a layer differs or is missing.
"""

import sys
import time

import yaml
from zigzag import api
from zigzag_results import layer_results
from zigzag.parser.mapping_validator import MappingValidator
from zigzag.parser.onnx.onnx_model_parser import ONNXModelParser
from zigzag.parser.workload_factory import WorkloadFactory
from zigzag.parser.workload_validator import WorkloadValidator

model, qc_yaml, accelerator, mapping_yaml, opt = sys.argv[1:6]


def layer_key(n):
    sizes = {str(d): s for d, s in n.layer_dim_sizes.items()}
    rels = sorted(str(r) for r in n.dimension_relations)
    pr = {str(d): s for d, s in (n.pr_layer_dim_sizes.items() if n.pr_layer_dim_sizes else [])}
    pad = {str(d): tuple(p) for d, p in n.padding.data.items()}
    prec = {str(o): p for o, p in n.operand_precision.data.items()}
    return sizes, rels, pr, pad, prec


def compare_parsed():
    mapping = MappingValidator(yaml.safe_load(open(mapping_yaml))).normalized_data
    zz = ONNXModelParser(model, mapping_yaml).run()
    validator = WorkloadValidator(yaml.safe_load(open(qc_yaml)))
    assert validator.validate(), "ZigZag's validator rejects qc's YAML"
    qc = WorkloadFactory(validator.normalized_data, mapping).create()
    qc_by_name = {n.name: n for n in qc.topological_sort()}
    same = bad = 0
    for n in zz.topological_sort():
        if type(n).__name__ == "DummyNode":
            continue
        m = qc_by_name.get(n.name)
        a, b = layer_key(n), (layer_key(m) if m is not None else None)
        if a == b:
            same += 1
        else:
            bad += 1
            print(f"{n.name}:\n  zigzag {a}\n  qc     {b}")
    print(f"parsed: {same} layers equal, {bad} differ or are missing; qc's YAML has {len(qc_by_name)} layers")
    return bad


def run(workload, label):
    start = time.time()
    result = api.get_hardware_performance_zigzag(
        workload,
        accelerator,
        mapping_yaml,
        opt=opt,
        lpf_limit=6,
        nb_spatial_mappings_generated=3,
        dump_folder=f"/tmp/qc-zigzag-dump-{label}",
        loma_show_progress_bar=False,
    )
    seconds = time.time() - start
    layers = layer_results(result)
    print(f"{label}: {len(layers)} layers, energy {result[0]:.6e} pJ, latency {result[1]:.6e} cycles, {seconds:.1f} s")
    return layers


bad = compare_parsed()
from_onnx = run(model, "onnx")
from_qc = run(yaml.safe_load(open(qc_yaml)), "qc-yaml")
equal = 0
for name, (energy, latency) in from_onnx.items():
    got = from_qc.get(name)
    if got is None:
        bad += 1
        print(f"{name}: missing from the run on qc's YAML")
    elif abs(got[0] - energy) <= 1e-9 * abs(energy) and got[1] == latency:
        equal += 1
    else:
        bad += 1
        print(f"{name}: onnx energy {energy} latency {latency}, qc-yaml energy {got[0]} latency {got[1]}")
print(f"run: {equal}/{len(from_onnx)} layers with equal energy and latency (opt={opt})")
extra = sorted(set(from_qc) - set(from_onnx))
for name in extra:
    e, lat = from_qc[name]
    print(f"  only in qc's YAML (ZigZag's ONNX parser skips it): {name}: {e:.4e} pJ, {lat:.0f} cycles")
sys.exit(1 if bad else 0)
