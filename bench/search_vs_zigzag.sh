#!/usr/bin/env bash
# qc's mapping search against ZigZag 3.9.1 on resnet18.onnx over five accelerators, opt=energy and
# opt=latency (see search_vs_zigzag.py). Installs zigzag-dse==3.9.1 and six into a throw-away
# venv; needs PyPI access and about 10 minutes (ZigZag takes ~45 s per run here).
# Usage: bench/search_vs_zigzag.sh [OUT_DIR] [--larger SECONDS] [--hints] [--even]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/qc-search-vs-zigzag}"
shift || true
venv="$(mktemp -d /tmp/qc-zigzag-venv.XXXXXX)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
# The 3.9.1 wheel imports `six` without declaring it (research/zigzag.md section 7).
"$venv/bin/pip" install -q --disable-pip-version-check "zigzag-dse==3.9.1" six
(cd "$root" && cargo build -q --release -p qc < /dev/null)
"$venv/bin/python" "$root/bench/search_vs_zigzag.py" "$root/target/release/qc" "$out" "$@" 2>&1 |
    grep -v ' - INFO - \| - WARNING - \|not defined in mapping'
