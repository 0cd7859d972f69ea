#!/usr/bin/env bash
# Compares `qc cost` with the reference, `qonnx-inference-cost`, run as the reference procedure
# (`qonnx-cleanup`, then `qonnx-inference-cost --cost-breakdown`) on every model under
# ../shared/models. qonnx is installed with pip into a throw-away venv outside the repo, with
# onnx pinned to 1.22.0 (research/qonnx.md section 0: newer onnx writes IR versions that
# onnxruntime refuses). Each reference run gets a timeout (default 600 s, QC_REF_TIMEOUT).
#   bench/compare_cost.sh            # prints a Markdown table
#   QC_REF_TIMEOUT=60 bench/compare_cost.sh
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${QC_BENCH_VENV:-${TMPDIR:-/tmp}/qc-bench-qonnx}"
timeout_s="${QC_REF_TIMEOUT:-600}"
if [ ! -x "$venv/bin/qonnx-inference-cost" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q qonnx onnxruntime "onnx==1.22.0"
fi
cargo build --release -q -p qc --bin qc
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
echo "| model | nodes | qc cost | qonnx-cleanup + qonnx-inference-cost | speed-up | same MACs |"
echo "|---|---:|---:|---:|---:|---|"
find ../shared/models -name '*.onnx' | sort | while read -r m; do
  name="$(basename "$m" .onnx)"
  nodes="$(./target/release/qc inspect --format json "$m" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"])' 2>/dev/null || echo '?')"
  # qc: best of 5 runs.
  best=""
  for _ in 1 2 3 4 5; do
    t0="$(now)"; ./target/release/qc cost "$m" --format json --cost-breakdown > "$work/qc.json" 2>/dev/null; rc=$?; t1="$(now)"
    t="$(echo "$t1 - $t0" | bc -l)"
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best="$t"; fi
  done
  qc_ms="$(printf '%.1f ms' "$(echo "$best * 1000" | bc -l)")"
  [ "$rc" = 0 ] || qc_ms="$qc_ms (exit $rc)"
  t0="$(now)"
  timeout "$timeout_s" "$venv/bin/qonnx-cleanup" "$m" --out-file="$work/clean.onnx" > "$work/ref.log" 2>&1 &&
    timeout "$timeout_s" "$venv/bin/qonnx-inference-cost" "$work/clean.onnx" --cost-breakdown \
      --output-json="$work/ref.json" >> "$work/ref.log" 2>&1
  rrc=$?; t1="$(now)"
  rt="$(echo "$t1 - $t0" | bc -l)"
  if [ "$rrc" = 0 ]; then
    ref="$(printf '%.2f s' "$rt")"
    speed="$(printf '%.0fx' "$(echo "$rt / $best" | bc -l)")"
    same="$(python3 - "$work/qc.json" "$work/ref.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["total_cost"]; b = json.load(open(sys.argv[2]))["total_cost"]
x, y = a.get("total_macs", 0.0), b.get("total_macs", 0.0)
print("yes" if abs(x - y) <= 1e-9 * max(abs(y), 1) else f"no ({x} vs {y})")
PY
)"
  elif [ "$rrc" = 124 ]; then
    ref="timed out after ${timeout_s} s"; speed="> $(printf '%.0fx' "$(echo "$rt / $best" | bc -l)")"; same="-"
  else
    ref="fails: $(grep -E 'Error|error' "$work/ref.log" | tail -1 | cut -c1-60)"; speed="-"; same="-"
  fi
  echo "| $name | $nodes | $qc_ms | $ref | $speed | $same |"
done
