#!/usr/bin/env bash
# Compares `qc inspect` with the peer users reach for today: the `onnx` Python package
# (onnx.load plus a summary, bench/onnx_inspect.py). Needs hyperfine and python3 with onnx and
# numpy (`apt-get install hyperfine`, `pip install onnx numpy`).
#   bench/compare_inspect.sh            # 1 GiB generated model + shared models, if present
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p qc --bin qc --example gen_models
big="${TMPDIR:-/tmp}/qc-bench-big.onnx"
[ -f "$big" ] || ./target/release/examples/gen_models big "$big" 1024
models=("$big" examples/tiny_qonnx.onnx)
for m in onnx-wheel-light/light_densenet121.onnx onnx-wheel-light/light_resnet50.onnx \
         brevitas-radioml-challenge-21/pretrained_VGG10_w8a8_20_export.onnx; do
  [ -f "../shared/models/$m" ] && models+=("../shared/models/$m")
done
for m in "${models[@]}"; do
  echo "== $m ($(du -h "$m" | cut -f1))"
  md="$(mktemp)"
  hyperfine -N --warmup 2 --runs 10 --export-markdown "$md" \
    "./target/release/qc inspect $m" "python3 bench/onnx_inspect.py $m" > /dev/null 2>&1
  cat "$md"; rm -f "$md"
  /usr/bin/time -f "qc peak RSS: %M KiB" ./target/release/qc inspect "$m" > /dev/null
  /usr/bin/time -f "python onnx peak RSS: %M KiB" python3 bench/onnx_inspect.py "$m" > /dev/null
done
