#!/usr/bin/env bash
# Peer check for `qc convert --to qcdq`: every QONNX model under ../shared/models is converted
# with qc, then the converted QCDQ model goes through `onnx.checker.check_model` and onnxruntime,
# and onnxruntime's outputs are compared with qc's evaluator (`qc run`) on the same seeded random
# inputs, for the converted model and for the original QONNX model. Prints a table
# (bench/convert_check.py). Needs python3 with venv and network access to PyPI: the packages go
# into a throw-away venv under /tmp, removed at the end.
#   bench/convert_check.sh          # QC_SHARED overrides ../shared
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${QC_SHARED:-../shared}"
source bench/ort_venv.sh convert-check

cargo build --release -q -p qc
pairs=()
while IFS= read -r model; do
  out="$work/$(basename "$model" .onnx).qcdq.onnx"
  summary="$(cargo run --release -q -p qc -- convert "$model" --to qcdq -o "$out" 2>/dev/null)" || {
    echo "qc convert failed on $model" >&2; exit 1; }
  echo "$summary" | head -n1 | sed -e 's/ (.*//' -e "s|^.*: converted|$(basename "$model" .onnx): converted|"
  pairs+=("$model=$out")
done < <("$venv/bin/python" bench/convert_check.py list "$shared")
echo
"$venv/bin/python" bench/convert_check.py check --qc ./target/release/qc --work "$work" "${pairs[@]}"
