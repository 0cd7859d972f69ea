#!/usr/bin/env bash
# `qc optimize` against onnxsim and onnxslim on every model under ../shared/models, the
# real-model corpus (bench/real_corpus.sh; its float and onnxruntime-optimized variants by
# default) and transformer models built here with torch.onnx.export and onnx.helper: node count
# after each tool, the wall time of each tool's process, onnxruntime agreement of each output with
# the original on seeded inputs, and onnx.checker (full check) on each output. Prints a Markdown
# table and a summary line and writes OUT_DIR/optimize_vs_simplifiers.{md,json}
# (bench/optimize_vs_simplifiers.py says how each figure is measured). Exits 1 when qc fails on a
# model, when onnxruntime's outputs of qc's model differ from the original's, or when onnx.checker
# refuses qc's model and accepts the original.
#
# It does not build qc: --qc names the release binary (default target/release/qc; build it with
# `cargo build --release -p qc`). The pinned packages go into a venv, OUT_DIR/venv or
# $QC_BENCH_VENV, made on the first run and reused while the pins are the same (about 6 GB:
# PyPI's Linux wheel of torch depends on the CUDA libraries, though only the CPU is used here).
# Needs python3 (3.11 or newer, for onnxsim's wheel) with venv, and PyPI.
#   bench/optimize_vs_simplifiers.sh OUT_DIR [--qc PATH] [--corpus DIR] [--repeat N]
#       [--timeout S] [--variants float,ort,qdq,dynamic,ort-qdq] [--only TEXT] [--keep-outputs]
#       [--no-build]
# QC_SHARED overrides ../shared.
set -euo pipefail
[ $# -ge 1 ] && [ "${1#-}" = "$1" ] || {
  echo "usage: $0 OUT_DIR [--qc PATH] [--corpus DIR] [options of bench/optimize_vs_simplifiers.py]" >&2; exit 2; }
start=$SECONDS
mkdir -p "$1"
out="$(cd "$1" && pwd)"
shift
# --qc and --corpus given here are taken relative to the caller's directory; their defaults are
# in the repository.
qc=""
corpus=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --qc) qc="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$qc" in ""|/*) ;; *) qc="$PWD/$qc" ;; esac
case "$corpus" in ""|/*) ;; *) corpus="$PWD/$corpus" ;; esac
cd "$(dirname "$0")/.."
shared="${QC_SHARED:-../shared}"
qc="${qc:-$PWD/target/release/qc}"
corpus="${corpus:-target/real-corpus}"
[ -x "$qc" ] || { echo "no qc binary at $qc (cargo build --release -p qc, or give --qc PATH)" >&2; exit 2; }

# The pins: the current releases when this was written. onnx stays at 1.22.0 as in the other
# peer checks (research/qonnx.md section 0).
pins=("onnx==1.22.0" "onnxruntime==1.32.0" "numpy==2.4.6" "sympy==1.14.0" "onnxsim==0.8.1"
      "onnxslim==0.1.98" "torch==2.15.0" "onnxscript==0.7.2" "onnx-ir==1.1.0")
venv="${QC_BENCH_VENV:-$out/venv}"
if [ "$(cat "$venv/.qc-bench-pins" 2>/dev/null)" != "${pins[*]}" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" > "$venv/.qc-bench-pins"
fi
"$venv/bin/python" -c 'import onnx, onnxruntime, onnxsim, onnxslim, torch; print(f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, onnxsim {onnxsim.__version__}, onnxslim {onnxslim.__version__}, torch {torch.__version__}")' >&2

rc=0
"$venv/bin/python" bench/optimize_vs_simplifiers.py --out "$out" --qc "$qc" --shared "$shared" \
  --corpus "$corpus" ${args[@]+"${args[@]}"} || rc=$?
echo "$((SECONDS - start)) s" >&2
exit $rc
