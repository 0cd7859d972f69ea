#!/usr/bin/env bash
# qc sweep over 1,008 designs of tpu_like for ResNet-18 (array dims, the SRAM's size and the
# weight register's size), timed, against ZigZag 3.9.1 timed on three of those designs and
# extrapolated (see sweep_vs_zigzag.py). Installs zigzag-dse==3.9.1 and six into a throw-away
# venv; needs PyPI access and about 5 minutes.
# Usage: bench/sweep_vs_zigzag.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/qc-sweep-vs-zigzag}"
mkdir -p "$out"
inputs="$root/../shared/peers/zigzag-inputs/zigzag/inputs"
cat > "$out/sweep.yaml" <<'YAML'
parameters:
  - {name: operational_array.sizes.D1, values: [8, 16, 32, 64]}
  - {name: operational_array.sizes.D2, values: [8, 16, 32, 64]}
  - {name: memories.sram_2MB.size, range: {from: 4194304, to: 268435456, factor: 2}}
  - {name: memories.rf_128B.size, range: {from: 128, to: 32768, factor: 2}}
YAML
(cd "$root" && cargo build -q --release -p qc < /dev/null)
start=$(date +%s.%N)
# ZigZag (below) honours tpu_like.yaml's spatial_mapping, which pins D1 and D2: qc keeps it too
# (--keep-mapping-spatial; without it qc would search the swept dims' unrolling, spec/sweep.md).
"$root/target/release/qc" sweep "$inputs/workload/resnet18.onnx" --accelerator "$inputs/hardware/tpu_like.yaml" \
    --mapping "$inputs/mapping/tpu_like.yaml" --keep-mapping-spatial --sweep "$out/sweep.yaml" -o "$out/designs.jsonl" \
    --html "$out/front.html" --quiet 2>/dev/null | tee "$out/summary.txt" | head -3
end=$(date +%s.%N)
echo "qc sweep wall time: $(echo "$end - $start" | bc) s for $(wc -l < "$out/designs.jsonl") designs"
venv="$(mktemp -d /tmp/qc-zigzag-venv.XXXXXX)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "zigzag-dse==3.9.1" six
"$venv/bin/python" "$root/bench/sweep_vs_zigzag.py" "$out" "$inputs" 2>&1 | grep -v ' - INFO - \| - WARNING - \|not defined in mapping'
