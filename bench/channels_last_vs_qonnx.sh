#!/usr/bin/env bash
# Peer comparison for `qc convert --to channels-last`: qonnx 1.0.0's `qonnx-to-channels-last`
# (after `qonnx-cleanup`, which it expects) and qc on every model under ../shared/models with a
# Conv, MaxPool or BatchNormalization, in one run: whether each succeeds, the time, the wrappers
# and Transposes each writes, and how far each output's results are from the original model's
# (qc's evaluator on all three; qonnx's own executor on qc's output for the smaller models).
# Prints a Markdown table (bench/channels_last_vs_qonnx.py). Needs python3 with venv and network
# access to PyPI: the pinned packages go into a throw-away venv under /tmp, removed at the end.
#   bench/channels_last_vs_qonnx.sh [--timeout S] [--exclude FOLDER,...]   # QC_SHARED overrides ../shared
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${QC_SHARED:-../shared}"
venv="$(mktemp -d /tmp/qc-chlast-venv.XXXXXX)"
work="$(mktemp -d /tmp/qc-chlast.XXXXXX)"
trap 'rm -rf "$venv" "$work"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  "qonnx==1.0.0" "onnx==1.22.0" "onnxruntime==1.31.1" "numpy==2.4.6" "clize==5.0.2"
"$venv/bin/python" -c 'import qonnx, onnx, onnxruntime, numpy; print(f"qonnx 1.0.0, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}")'

cargo build --release -q -p qc
"$venv/bin/python" bench/channels_last_vs_qonnx.py --qc ./target/release/qc --work "$work" "$@" "$shared"
