#!/usr/bin/env bash
# In-memory compute: qc against ZigZag 3.9.1 on ZigZag's aimc.yaml and dimc.yaml with resnet18.onnx,
# opt=energy and opt=latency, same settings (see imc_vs_zigzag.py). Installs zigzag-dse==3.9.1 and
# six into a throw-away venv; needs PyPI access and time: one ZigZag run of ResNet-18 on an IMC array
# took 4 to 15 minutes on the 2-core machine of bench/README.md while it was shared, 4 runs per
# comparison.
# Usage: bench/imc_vs_zigzag.sh [OUT_DIR [--zigzag-from SUMMARY_DIR]]
#        bench/imc_vs_zigzag.sh --summaries OUT_DIR [ACC:WORKLOAD:OPT ...]   (ZigZag only: the
#        per-layer summaries the tests read, kept in bench/results/imc/)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(mktemp -d /tmp/qc-zigzag-venv.XXXXXX)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
# The 3.9.1 wheel imports `six` without declaring it (research/zigzag.md section 7).
"$venv/bin/pip" install -q --disable-pip-version-check "zigzag-dse==3.9.1" six
filter() { grep -v ' - INFO - \| - WARNING - \|not defined in mapping' || true; }
if [ "${1:-}" = "--summaries" ]; then
    shift
    "$venv/bin/python" "$root/bench/imc_vs_zigzag.py" summaries "$@" 2>&1 | filter
    exit "${PIPESTATUS[0]}"
fi
out="${1:-/tmp/qc-imc-vs-zigzag}"
shift || true
(cd "$root" && cargo build -q --release -p qc < /dev/null)
"$venv/bin/python" "$root/bench/imc_vs_zigzag.py" compare "$root/target/release/qc" "$out" "$@" 2>&1 | filter
exit "${PIPESTATUS[0]}"
