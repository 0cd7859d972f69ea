#!/usr/bin/env bash
# Builds and runs qc's fuzz target on the stable toolchain (no nightly, no cargo-fuzz needed):
# the coverage instrumentation libFuzzer needs is a set of stable -C flags.
#   fuzz/run.sh [SECONDS] [extra libFuzzer flags...]     default: 60 seconds
# Findings land in fuzz/artifacts/; keep each as a regression in fuzz/regressions/ (the test
# `fuzz_regressions` in tests/ replays them on every `cargo test`).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"; shift || true
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit --target, RUSTFLAGS reach only the fuzzed code, not build scripts or macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bin load --target "$host"
mkdir -p corpus/load artifacts/load
# Seed the corpus with the example model and the regressions.
cp -n ../examples/*.onnx regressions/* corpus/load/ 2>/dev/null || true
# And with the small models of the shared conformance suite, when it is beside the project.
if [ -d ../../shared/conformance ]; then
  find ../../shared/conformance ../../shared/models -name '*.onnx' -size -64k | while read -r f; do
    cp -n "$f" "corpus/load/$(echo "$f" | md5sum | cut -c1-16).onnx"
  done
fi
exec ./target/"$host"/release/load corpus/load -artifact_prefix=artifacts/load/ -max_total_time="$secs" \
  -max_len=65536 -rss_limit_mb=2048 "$@"
