#!/usr/bin/env bash
# AccelForge's TCM mapper and `qc evaluate --optimal` on the same two ResNet-18 layers and the
# same design, in one run (bench/accelforge_vs_qc.py). AccelForge needs Python 3.12 or newer and
# graphviz's `dot` (it renders every mapping it returns): the script makes a throw-away venv with
# `accelforge==1.0.467` under /tmp unless AF_VENV names one, and stops if `dot` is missing.
# Usage: bench/accelforge_vs_qc.sh [OUT_DIR] [--budget N]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/qc-accelforge}"
shift || true
command -v dot > /dev/null || { echo "error: graphviz's dot is missing (apt-get install graphviz)" >&2; exit 2; }
if [ -n "${AF_VENV:-}" ]; then
    venv="$AF_VENV"
else
    # The first that runs (a pyenv shim is on PATH even where its version is not selected).
    py=""
    for cand in python3.12 python3.13 python3.14; do
        if "$cand" --version > /dev/null 2>&1; then py="$cand"; break; fi
    done
    [ -n "$py" ] || { echo "error: AccelForge needs Python 3.12 or newer (python3.12, python3.13 or python3.14 on PATH)" >&2; exit 2; }
    venv="$(mktemp -d /tmp/qc-af-venv.XXXXXX)"
    trap 'rm -rf "$venv"' EXIT
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q accelforge==1.0.467
fi
(cd "$root" && cargo build -q --release -p qc < /dev/null)
python3 "$root/bench/accelforge_vs_qc.py" "$root/target/release/qc" "$venv/bin/python" "$out" "$@"
