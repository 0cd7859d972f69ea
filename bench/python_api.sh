#!/usr/bin/env bash
# qc's Python API against qonnx and ZigZag called from Python, in one run (see python_api.py):
# qc.cost vs qonnx's cleanup + inference_cost on the models under ../shared/models, qc.evaluate vs
# ZigZag's get_hardware_performance_zigzag on ResNet-18 over five accelerators, and the per-call
# overhead of the binding. Installs into a throw-away venv the peers, pinned: zigzag-dse 3.9.1 (and
# six, which its wheel imports without declaring), qonnx 1.0.0 with onnx 1.22.0 and onnxruntime
# 1.31.1 (the versions that wrote the oracles in ../shared/models; research/qonnx.md section 0),
# and the qc package built from python/ (`pip install python/`, which needs the Rust toolchain).
# Needs PyPI access; the peers' half takes about 25 minutes here (ZigZag ~45 s per accelerator,
# qonnx up to the timeout on the models it cannot finish).
# Usage: bench/python_api.sh [OUT_DIR] [--peers-only] [--wheel FILE.whl] [python_api.py options]
#   --peers-only    run only qonnx and ZigZag (no qc package needed); qc's cells read `pending`
#   --wheel FILE    install this already-built qc wheel instead of building python/
#   QC_BENCH_VENV=DIR  use (and keep) this venv; if `qc` already imports there, nothing is built
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="/tmp/qc-python-api"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then out="$1"; shift; fi
peers_only=0
wheel=""
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --peers-only) peers_only=1; pass+=("$1") ;;
        --wheel) wheel="${2:?--wheel needs a file}"; shift ;;
        *) pass+=("$1") ;;
    esac
    shift
done
if [ ! -d "$root/../shared/models" ]; then
    echo "error: $root/../shared/models is missing: this benchmark needs the shared reference material" >&2
    exit 2
fi
if [ -n "${QC_BENCH_VENV:-}" ]; then
    venv="$QC_BENCH_VENV"
else
    venv="$(mktemp -d /tmp/qc-python-api-venv.XXXXXX)"
    trap 'rm -rf "$venv"' EXIT
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q --disable-pip-version-check)
"${pip[@]}" "zigzag-dse==3.9.1" six "qonnx==1.0.0" "onnx==1.22.0" "onnxruntime==1.31.1"
if [ "$peers_only" = 0 ]; then
    if "$venv/bin/python" -c "import qc" 2> /dev/null; then
        echo "qc already imports in $venv; not building it" >&2
    elif [ -n "$wheel" ]; then
        "${pip[@]}" "$wheel"
    elif [ ! -f "$root/python/pyproject.toml" ]; then
        echo "error: $root/python/ is missing (no pyproject.toml): there is no qc Python package to build in" \
            "this checkout. Pass --wheel FILE.whl, or run with --peers-only for qonnx's and ZigZag's half." >&2
        exit 2
    else
        "${pip[@]}" "$root/python"
    fi
fi
# ZigZag logs every stage at INFO on its own handler; keep the tables readable.
"$venv/bin/python" "$root/bench/python_api.py" "$out" "${pass[@]}" 2>&1 |
    grep --line-buffered -v ' - INFO - \| - WARNING - \|not defined in mapping'
