#!/usr/bin/env bash
# `qc convert --to access` and `qc run --fixed-point access-dla` on every QONNX and QDQ model
# under ../shared/models (bench/access_fixed_point.py): per model, whether it converts (or the
# diagnostic that refuses it), the relative change of its feature-map and weight scales when
# rounded to the ACCESS formats, the error that rounding causes at the outputs against the source
# model, onnx.checker on both written forms (the guide's inline attributes and node metadata), and
# the SNR of the integer simulation against the float evaluation of the ACCESS model (both forms
# must simulate identically). Prints a Markdown table.
# Needs python3 with venv and network access to PyPI (onnx 1.22.0 and numpy go into a throw-away
# venv under /tmp, removed at the end), and the Rust toolchain.
#   bench/access_fixed_point.sh [--scale-rounding nearest|down|up]
#   QC_SHARED=DIR   overrides ../shared
#   QC=PATH         use this qc binary instead of building target/release/qc
#   QC_BENCH_VENV=DIR  use this venv (with onnx and numpy) instead of a throw-away one
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${QC_SHARED:-../shared}"
if [ ! -d "$shared/models" ]; then
    echo "error: $shared/models is missing: this benchmark needs the shared reference material" >&2
    exit 2
fi
if [ -n "${QC_BENCH_VENV:-}" ]; then
    venv="$QC_BENCH_VENV"
    work="$(mktemp -d /tmp/qc-access.XXXXXX)"
    trap 'rm -rf "$work"' EXIT
else
    source bench/ort_venv.sh access
fi
if [ -z "${QC:-}" ]; then
    cargo build --release -q -p qc
    QC=./target/release/qc
fi
"$venv/bin/python" bench/access_fixed_point.py --qc "$QC" --shared "$shared" --work "$work" "$@"
