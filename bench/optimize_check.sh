#!/usr/bin/env bash
# Peer check for `qc optimize`: every model under ../shared/models and every ONNX backend
# `simple`/`pytorch-*` model is optimized with the release qc (default pipeline, plus any flags
# given), then the original and the optimized model go through `onnx.checker.check_model` and
# onnxruntime on the same seeded random inputs, and the outputs are compared. Prints a Markdown
# table (bench/optimize_check.py). Needs python3 with venv and network access to PyPI: the
# packages go into a throw-away venv under /tmp, removed at the end.
#   bench/optimize_check.sh                                   # the default pipeline
#   bench/optimize_check.sh --replace-avgpool-with-conv --duplicate-shared-weights
# QC_SHARED overrides ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${QC_SHARED:-../shared}"
source bench/ort_venv.sh optimize-check

cargo build --release -q -p qc
pairs=()
while IFS= read -r model; do
  rel="${model#"$shared/models/"}"
  rel="${rel#"$shared/conformance/onnx-backend/"}"
  out="$work/${rel//\//__}"
  if ./target/release/qc optimize "$model" -o "$out" "$@" >/dev/null 2>"$out.err"; then
    pairs+=("$rel=$model=$out")
  else
    pairs+=("$rel=$model=")
  fi
done < <(find "$shared/models" -name '*.onnx' | sort
         for suite in simple pytorch-converted pytorch-operator; do
           find "$shared/conformance/onnx-backend/$suite" -name model.onnx | sort
         done)
"$venv/bin/python" bench/optimize_check.py "${pairs[@]}"
