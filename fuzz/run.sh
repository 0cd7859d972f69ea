#!/usr/bin/env bash
# Builds and runs one of qc's fuzz targets on the stable toolchain (no nightly, no cargo-fuzz
# needed): the coverage instrumentation libFuzzer needs is a set of stable -C flags.
#   fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]     default: 60 seconds
# TARGET: load (ONNX bytes), text (textual IR + the optimize/lower/cost pipelines), zigzag
# (ZigZag accelerator/mapping/workload YAML + a small mapping search), dims (one op with large
# and symbolic dims through cost, lowering and a search), run (qc run's .npy inputs + the
# evaluator) or mapping (a ZigZag mapping file, evaluated as written and searched); what each
# checks is in tests/src/fuzz.rs. Findings land in fuzz/artifacts/TARGET/; keep each, once fixed, in
# fuzz/regressions/TARGET/ (the test `fuzz_regressions` replays them on every `cargo test`).
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh load|text|zigzag|dims|run|mapping [SECONDS] [libFuzzer flags...]}"; shift
secs="${1:-60}"; shift || true
case "$target" in load|text|zigzag|dims|run|mapping) ;; *) echo "unknown target: $target" >&2; exit 2 ;; esac
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit --target, RUSTFLAGS reach only the fuzzed code, not build scripts or macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --bin "$target" --target "$host"
corpus="corpus/$target"
mkdir -p "$corpus" "artifacts/$target" "regressions/$target"
seed() { cp -n "$1" "$corpus/$(echo "$1$2" | md5sum | cut -c1-16)$2"; }
cp -n regressions/"$target"/* "$corpus"/ 2>/dev/null || true
shared=../../shared
inputs=$shared/peers/zigzag-inputs/zigzag/inputs
case "$target" in
load)
  cp -n ../examples/*.onnx "$corpus"/ 2>/dev/null || true
  # The small models of the shared conformance suite, when it is beside the project.
  if [ -d $shared/conformance ]; then
    find $shared/conformance $shared/models -name '*.onnx' -size -64k | while read -r f; do seed "$f" .onnx; done
  fi ;;
text)
  # The pass test cases (one model each) and the loop-nest snapshots' inputs.
  find ../tests/passes -name '*.qcir' | while read -r f; do seed "$f" .qcir; done ;;
zigzag)
  # Documents separated by "\n#%%\n": accelerator, mapping, workload (tests/src/fuzz.rs).
  if [ -d "$inputs" ]; then
    tmp="$(mktemp)"; trap 'rm -f "$tmp"' EXIT
    for f in "$inputs"/hardware/*.yaml; do seed "$f" .yaml; done
    for f in "$inputs"/mapping/*.yaml; do { printf '\n#%%%%\n'; cat "$f"; } >"$tmp"; seed "$tmp" "$(basename "$f")"; done
    for f in "$inputs"/workload/*.yaml; do { printf '\n#%%%%\n\n#%%%%\n'; cat "$f"; } >"$tmp"; seed "$tmp" "$(basename "$f")"; done
    for a in tpu_like gemm_l1; do
      { cat "$inputs/hardware/$a.yaml"; printf '\n#%%%%\n'; cat "$inputs/mapping/$a.yaml"; printf '\n#%%%%\n'; cat "$inputs/workload/gemm_layer.yaml"; } >"$tmp"
      seed "$tmp" "$a.yaml"
    done
  fi ;;
dims)
  # Bytes are choices (tests/src/fuzz.rs): a few fixed seeds start each op.
  for i in 0 1 2 3 4 5 6 7 8 9; do printf "\\x$i$i\\x01\\x02\\x03\\x04\\x05\\x06\\x07" >"$corpus/seed$i"; done ;;
run)
  # A first byte choosing the model, then choices; and .npy files as they are (first byte odd).
  printf '\x00' >"$corpus/seed0"; printf '\x02' >"$corpus/seed1"
  header="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }"
  len="\\x$(printf %02x $((${#header} + 1)))"
  { printf '\x01\x93NUMPY\x01\x00'; printf "$len"'\x00%s\n' "$header"; head -c 32 /dev/zero; } >"$corpus/seed2" ;;
mapping)
  # ZigZag's own mapping files.
  if [ -d "$inputs" ]; then
    for f in "$inputs"/mapping/*.yaml; do seed "$f" .yaml; done
  fi ;;
esac
exec ./target/"$host"/release/"$target" "$corpus" -artifact_prefix="artifacts/$target/" -max_total_time="$secs" \
  -max_len=65536 -rss_limit_mb=2048 -timeout=10 "$@"
