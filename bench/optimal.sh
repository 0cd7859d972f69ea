#!/usr/bin/env bash
# `qc evaluate --optimal` on resnet18.onnx (ZigZag's copy) over ZigZag's five example
# accelerators with their mapping files, opt=energy and opt=latency (see optimal.py): wall time
# per network, the optimum against the LOMA-6 choice per layer, and the certificates (complete or
# cut by the budget, with the proven gap). Needs only python3 (standard library) and cargo.
# Usage: bench/optimal.sh [OUT_DIR] [--budget N|none] [--gap G] [--jobs N] [--opt OPT] [--acc NAME]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/qc-optimal}"
shift || true
(cd "$root" && cargo build -q --release -p qc < /dev/null)
python3 "$root/bench/optimal.py" "$root/target/release/qc" "$out" "$@"
