"""qc.check and qc.lower: records, the CLI's reports, option errors."""

import json

import pytest

import qc
from conftest import PPOCR, REPO, TINY, cli_json, run_cli


def test_check_equals_the_cli():
    r = qc.check(TINY)
    want = cli_json("check", TINY, "--target", "access-dla", check_code=1)
    assert r.ok is want["ok"] is False
    assert r.target == want["target"]
    assert r.summary == want["summary"]
    assert len(r.findings) == len(want["diagnostics"]) > 0
    for f, d in zip(r.findings, want["diagnostics"]):
        assert (f.code, f.severity, f.node, f.op, f.observed, f.allowed, f.hint) == (
            d["code"], d["severity"], d["node"], d["op_type"], d["observed"], d["allowed"], d["hint"])
        assert f.code.startswith("qc::check::")
    assert [(p.node, p.op, p.unit, p.operator) for p in r.placement] == [
        (p["node"], p["op_type"], p["unit"], p["operator"]) for p in want["placement"]]
    assert {p.unit for p in r.placement} <= {"dla", "cpu"}
    assert json.loads(r.to_json()) == want


def test_check_with_a_target_file():
    path = REPO / "spec" / "targets" / "access-dla.yaml"
    assert qc.check(TINY, target=str(path)).findings == qc.check(TINY).findings


def test_check_unknown_target():
    with pytest.raises(qc.TargetError) as e:
        qc.check(TINY, target="no-such-dla")
    assert e.value.code == "qc::target::unknown"
    assert "access-dla" in e.value.help


def test_lower_equals_the_cli():
    w = qc.lower(TINY)
    want = cli_json("lower", TINY)
    assert json.loads(w.to_json()) == want
    assert w.layers == want["layers"]
    assert len(w) == len(want["layers"]) > 0
    layer = w.layers[0]
    for key in ("name", "dims", "relations", "inputs", "output"):
        assert key in layer
    _, yaml, _ = run_cli("lower", TINY, "--format", "zigzag-yaml")
    assert w.to_zigzag_yaml() == yaml


def test_lower_options_equal_the_cli():
    w = qc.lower(PPOCR, default_precision="4,4,8,16", psum_bits="exact", input_shapes={"x": [1, 3, 48, 192]})
    want = cli_json("lower", PPOCR, "--default-precision", "4,4,8,16", "--psum-bits", "exact",
                    "--overwrite-input-shape", "x:1,3,48,192")
    assert json.loads(w.to_json()) == want
    assert qc.lower(TINY, psum_bits=24).layers == cli_json("lower", TINY, "--psum-bits", "24")["layers"]


def test_lower_option_errors():
    with pytest.raises(qc.OptionError) as e:
        qc.lower(TINY, default_precision="8,8")
    assert e.value.code == "qc::lower::default_precision"
    assert "8,8,8,16" in e.value.help
    with pytest.raises(qc.OptionError) as e:
        qc.lower(TINY, psum_bits="lots")
    assert e.value.code == "qc::lower::psum_bits"
    with pytest.raises(qc.ModelError) as e:
        qc.lower(PPOCR)
    assert e.value.code == "qc::input_shape::unknown_dims"
