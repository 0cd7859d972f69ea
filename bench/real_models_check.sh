#!/usr/bin/env bash
# Runs qc on every model of the real-model corpus (made by bench/real_corpus.sh) and compares it
# with onnx and onnxruntime: `qc inspect`; `qc optimize --overwrite-input-shape` then
# onnx.checker (full_check) and onnxruntime on the original and the optimized model; `qc run`
# against onnxruntime on the same seeded inputs; `qc cost` MACs against the MACs corpus.json
# computed from onnx's shape inference. Every failure is recorded in its cell and the run goes
# on. Writes a Markdown table to OUT.md (default bench/results/real_models.md) and every cell to
# OUT.json beside it, and prints the table (bench/real_models_check.py). Does not build qc: QC
# names the binary (default target/release/qc). Needs python3 with venv and PyPI: the pinned
# packages go into a throw-away venv under /tmp, removed at the end.
#   bench/real_corpus.sh /tmp/corpus && bench/real_models_check.sh /tmp/corpus
#   QC=/path/to/qc QC_TIMEOUT=120 bench/real_models_check.sh /tmp/corpus /tmp/real_models.md
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 CORPUS_DIR [OUT.md]" >&2; exit 2; }
start=$SECONDS
corpus="$(cd "$1" && pwd)"
out_md="${2:-bench/results/real_models.md}"
case "$out_md" in /*) ;; *) out_md="$PWD/$out_md" ;; esac
cd "$(dirname "$0")/.."
[ -n "${2:-}" ] || out_md="$PWD/bench/results/real_models.md"
QC="${QC:-target/release/qc}"
case "$QC" in /*) ;; *) QC="$PWD/$QC" ;; esac
[ -x "$QC" ] || { echo "no qc binary at $QC (build it, or set QC)" >&2; exit 2; }
export QC

venv="$(mktemp -d /tmp/qc-real-check-venv.XXXXXX)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  "onnx==1.22.0" "onnxruntime==1.32.0" "numpy==2.4.6" "sympy==1.14.0"

"$venv/bin/python" bench/real_models_check.py "$corpus" "$out_md"
echo "$((SECONDS - start)) s" >&2
