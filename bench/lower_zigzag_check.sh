#!/usr/bin/env bash
# Peer check of `qc lower --format zigzag-yaml` against ZigZag itself (zigzag-dse 3.9.1, in a
# throw-away venv under /tmp): ZigZag parses and runs qc's YAML and the ONNX model with the same
# accelerator and mapping, and the layers are compared by name (see lower_zigzag_check.py).
# Usage: bench/lower_zigzag_check.sh [MODEL.onnx [ACCELERATOR MAPPING [OPT]]]
# Defaults: ZigZag's resnet18.onnx on tpu_like with its mapping, opt=latency.
# Needs PyPI access; about two ZigZag runs (~45 s each here).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
inputs="$root/../shared/peers/zigzag-inputs/zigzag/inputs"
model="${1:-$inputs/workload/resnet18.onnx}"
accelerator="${2:-$inputs/hardware/tpu_like.yaml}"
mapping="${3:-$inputs/mapping/tpu_like.yaml}"
opt="${4:-latency}"
venv="$(mktemp -d /tmp/qc-zigzag-venv.XXXXXX)"
work="$(mktemp -d /tmp/qc-zigzag.XXXXXX)"
trap 'rm -rf "$venv" "$work" /tmp/qc-zigzag-dump-*' EXIT
python3 -m venv "$venv"
# The 3.9.1 wheel imports `six` without declaring it (research/zigzag.md section 7).
"$venv/bin/pip" install -q --disable-pip-version-check "zigzag-dse==3.9.1" six
(cd "$root" && cargo run -q --release -p qc -- lower "$model" --format zigzag-yaml -o "$work/qc.yaml" < /dev/null)
"$venv/bin/python" "$root/bench/lower_zigzag_check.py" "$model" "$work/qc.yaml" "$accelerator" "$mapping" "$opt" 2>&1 |
    grep -v ' - INFO - \| - WARNING - '
