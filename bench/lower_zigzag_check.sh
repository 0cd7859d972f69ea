#!/usr/bin/env bash
# Peer check of `qc lower --format zigzag-yaml` against ZigZag itself (zigzag-dse 3.9.1, in a
# throw-away venv under /tmp): ZigZag's ONNX parser reads resnet18.onnx, ZigZag's YAML workload
# parser reads qc's YAML for the same model, and the layers are compared by name (loop sizes,
# relations, pr sizes, padding, precisions). Usage: bench/lower_zigzag_check.sh [MODEL.onnx]
# Needs network access for pip; spec/zigzag.md says what should and should not agree.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
inputs="$root/../shared/peers/zigzag-inputs/zigzag/inputs"
model="${1:-$inputs/workload/resnet18.onnx}"
venv="$(mktemp -d /tmp/qc-zigzag-venv.XXXXXX)"
work="$(mktemp -d /tmp/qc-zigzag.XXXXXX)"
trap 'rm -rf "$venv" "$work"' EXIT
python3 -m venv "$venv"
# The 3.9.1 wheel imports `six` without declaring it (research/zigzag.md section 7).
"$venv/bin/pip" install -q --disable-pip-version-check "zigzag-dse==3.9.1" six
(cd "$root" && cargo run -q --release -p qc -- lower "$model" --format zigzag-yaml < /dev/null) > "$work/qc.yaml"
"$venv/bin/python" - "$model" "$work/qc.yaml" "$inputs/mapping/tpu_like.yaml" <<'PY'
import sys, yaml
from zigzag.parser.onnx.onnx_model_parser import ONNXModelParser
from zigzag.parser.workload_validator import WorkloadValidator
from zigzag.parser.workload_factory import WorkloadFactory
from zigzag.parser.mapping_validator import MappingValidator
model, qc_yaml, mapping_yaml = sys.argv[1:4]

mapping = MappingValidator(yaml.safe_load(open(mapping_yaml))).normalized_data
zz = ONNXModelParser(model, mapping_yaml).run()
data = yaml.safe_load(open(qc_yaml))
v = WorkloadValidator(data)
assert v.validate(), "ZigZag's validator rejects qc's YAML"
qc = WorkloadFactory(v.normalized_data, mapping).create()

def key(n):
    sizes = {str(d): s for d, s in n.layer_dim_sizes.items()}
    rels = sorted(str(r) for r in n.dimension_relations)
    pr = {str(d): s for d, s in (n.pr_layer_dim_sizes.items() if n.pr_layer_dim_sizes else [])}
    pad = {str(d): tuple(p) for d, p in n.padding.items()}
    prec = {str(o): p for o, p in n.operand_precision.data.items()}
    return sizes, rels, pr, pad, prec

qc_by_name = {n.name: n for n in qc.topological_sort()}
same = differ = missing = 0
for n in zz.topological_sort():
    if type(n).__name__ == "DummyNode":
        continue
    m = qc_by_name.get(n.name)
    if m is None:
        missing += 1
        print(f"missing in qc: {n.name}")
        continue
    a, b = key(n), key(m)
    if a == b:
        same += 1
    else:
        differ += 1
        print(f"{n.name}:\n  zigzag {a}\n  qc     {b}")
print(f"{same} layers equal, {differ} differ, {missing} missing in qc's YAML")
sys.exit(1 if differ or missing else 0)
PY
