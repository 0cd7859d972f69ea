"""qc.optimize: pipelines, the Kneron option names, errors; the CLI's result."""

import pytest

import qc
from conftest import PPOCR, TINY, run_cli


def test_default_pipeline_equals_the_cli(tmp_path):
    out = tmp_path / "opt.onnx"
    run_cli("optimize", PPOCR, "-o", out)
    got = qc.optimize(str(PPOCR))
    assert got.to_bytes() == qc.load(out).to_bytes()
    assert got.inspect()["op_histogram"] == qc.load(out).inspect()["op_histogram"]


def test_passes_and_options_equal_the_cli(tmp_path):
    out = tmp_path / "opt.onnx"
    run_cli("optimize", PPOCR, "-o", out, "--passes", "eliminate-dead,fold-constants", "--fold-quant-weights")
    got = qc.optimize(PPOCR, passes="eliminate-dead,fold-constants", fold_quant_weights=True)
    assert got.to_bytes() == qc.load(out).to_bytes()
    out2 = tmp_path / "opt2.onnx"
    run_cli("optimize", PPOCR, "-o", out2, "--clear-descriptions", "--replace-avgpool-with-conv",
            "--duplicate-shared-weights")
    got2 = qc.optimize(qc.load(PPOCR), clear_descriptions=True, replace_avgpool_with_conv=True,
                       duplicate_shared_weights=True)
    assert got2.to_bytes() == qc.load(out2).to_bytes()


def test_optimize_returns_a_new_model():
    m = qc.load(PPOCR)
    before = m.to_bytes()
    o = qc.optimize(m, passes="clear-descriptions")
    assert m.to_bytes() == before
    assert isinstance(o, qc.Model)


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(qc.OptionError) as e:
        qc.optimize(TINY, fold_quant=True)
    assert e.value.code == "qc::python::option"
    assert "fold_quant" in e.value.message
    for name in ("fold_quant_weights", "clear_descriptions", "replace_avgpool_with_conv", "duplicate_shared_weights",
                 "skip_fuse_qkv"):
        assert name in e.value.help
    with pytest.raises(qc.OptionError):
        qc.optimize(TINY, fold_quant_weights="yes")


def test_bad_pipeline_is_the_cli_diagnostic():
    with pytest.raises(qc.OptionError) as e:
        qc.optimize(TINY, passes="no-such-pass")
    _, _, err = run_cli("optimize", TINY, "-o", "/nonexistent/x.onnx", "--passes", "no-such-pass", check_code=2)
    assert e.value.code in err
    assert "no-such-pass" in str(e.value)


def test_stop_after_and_verify_each_equal_the_cli(tmp_path):
    out = tmp_path / "stopped.onnx"
    run_cli("optimize", PPOCR, "-o", out, "--stop-after", "infer-shapes", "--verify-each")
    got = qc.optimize(PPOCR, stop_after="infer-shapes", verify_each=True)
    assert got.to_bytes() == qc.load(out).to_bytes()
    with pytest.raises(qc.OptionError) as e:
        qc.optimize(PPOCR, stop_after="no-such-pass")
    assert e.value.code.startswith("qc::")
    assert "no-such-pass" in str(e.value)
    with pytest.raises(qc.OptionError):
        qc.optimize(PPOCR, stop_after=3)


def test_skip_fuse_qkv_equals_the_cli(tmp_path):
    out = tmp_path / "skipped.onnx"
    run_cli("optimize", PPOCR, "-o", out, "--skip-fuse-qkv")
    got = qc.optimize(PPOCR, skip_fuse_qkv=True)
    assert got.to_bytes() == qc.load(out).to_bytes()
    with pytest.raises(qc.OptionError):
        qc.optimize(PPOCR, skip_fuse_qkv="yes")


def test_kneron_options_equal_the_cli(tmp_path):
    out = tmp_path / "kneron.onnx"
    run_cli("optimize", PPOCR, "-o", out, "--skip", "fuse-pad-into-conv", "--clear-shapes", "--convert-f16",
            "--defuse-gaps=average-pool", "--replace-dilated-conv", "--opt-matmul")
    got = qc.optimize(PPOCR, skip=["fuse-pad-into-conv"], clear_shapes=True, convert_f16=True,
                      defuse_gaps="average-pool", replace_dilated_conv=True, opt_matmul=True)
    assert got.to_bytes() == qc.load(out).to_bytes()


def test_skip_takes_a_list_and_warns_about_a_pass_not_run():
    with pytest.raises(qc.OptionError) as e:
        qc.optimize(TINY, skip="fuse-pad-into-conv")
    assert "list" in e.value.message
    with pytest.warns(qc.QcWarning, match="qc::pipeline::skip_not_in_pipeline"):
        qc.optimize(TINY, passes="eliminate-dead", skip=["fold-constants"])
    with pytest.raises(qc.OptionError) as e:
        qc.optimize(TINY, skip=["fuse-pad-into-con"])
    assert e.value.code == "qc::pipeline::unknown_pass"
    assert "fuse-pad-into-conv" in e.value.help
