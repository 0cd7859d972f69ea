"""Shared fixtures: the repository's example models, ../shared when present, the `qc` command."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TINY = EXAMPLES / "tiny_qonnx.onnx"
PPOCR = EXAMPLES / "ppocr_cls_int8.onnx"
SHARED = Path(os.environ.get("QC_SHARED", REPO.parent / "shared"))


def shared_models() -> Path:
    """../shared/models, or a skip that says it is missing."""
    models = SHARED / "models"
    if not models.is_dir():
        pytest.skip(f"{models} is missing: the reference models are not on this machine")
    return models


def qc_command() -> list:
    """The `qc` console script of this environment (as installed with the package)."""
    exe = shutil.which("qc", path=str(Path(sys.executable).parent))
    assert exe is not None, "the qc console script is not installed next to this Python"
    return [exe]


def run_cli(*args, cwd=REPO, check_code=0):
    """Runs the `qc` command; returns (exit code, stdout, stderr)."""
    p = subprocess.run(qc_command() + [str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    if check_code is not None:
        assert p.returncode == check_code, f"qc {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
    return p.returncode, p.stdout, p.stderr


def cli_json(*args, check_code=0):
    """Runs the `qc` command with `--format json` and decodes its output."""
    _, out, _ = run_cli(*args, "--format", "json", check_code=check_code)
    return json.loads(out)


def onnx_or_skip():
    """The onnx package, or a skip that says it is not installed."""
    return pytest.importorskip("onnx", reason="the onnx package is not installed: models built in tests need it")
