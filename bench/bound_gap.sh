#!/usr/bin/env bash
# How far qc's LOMA-6 search is from the lower bounds (spec/bounds.md): ResNet-18 on ZigZag's five
# example accelerators with their mapping files, opt=energy and opt=latency; per network the found
# cost, the bound and the gap, the per-layer gaps (min/median/max), and the time taken to compute
# the bounds. Needs only the Rust toolchain and python3 (standard library); reads ZigZag's example
# inputs from ../shared/peers/zigzag-inputs (or the folder given).
# Usage: bench/bound_gap.sh [ZIGZAG_INPUTS_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
inputs="${1:-$root/../shared/peers/zigzag-inputs/zigzag/inputs}"
(cd "$root" && cargo build -q --release -p qc < /dev/null)
python3 "$root/bench/bound_gap.py" "$root/target/release/qc" "$inputs"
