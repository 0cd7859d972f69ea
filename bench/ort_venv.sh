#!/usr/bin/env bash
# Sourced by the peer-check scripts: makes a throw-away venv with onnx 1.22.0 (IR version 13,
# which the current onnxruntime reads; research/qonnx.md section 0), onnxruntime and numpy, and
# a work folder, both removed on exit. Sets $venv and $work; $1 names them.
venv="$(mktemp -d "/tmp/qc-$1-venv.XXXXXX")"
work="$(mktemp -d "/tmp/qc-$1.XXXXXX")"
trap 'rm -rf "$venv" "$work"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "onnx==1.22.0" onnxruntime numpy
"$venv/bin/python" -c 'import onnx, onnxruntime, numpy; print(f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}")'
