"""Error classes, warnings, thread safety, Ctrl-C, and the qc command."""

import os
import signal
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import qc
from qc import _qc
from conftest import PPOCR, TINY, cli_json, run_cli


def test_error_hierarchy():
    for cls in (qc.ModelError, qc.OptionError, qc.TargetError, qc.AcceleratorError, qc.MappingError,
                qc.CostModelError, qc.QcIOError):
        assert issubclass(cls, qc.QcError)
    assert issubclass(qc.QcError, Exception)
    assert issubclass(qc.QcWarning, UserWarning)


def test_error_attributes():
    with pytest.raises(qc.QcError) as e:
        qc.load(b"\x00\x01\x02")
    err = e.value
    assert err.code.startswith("qc::onnx::")
    assert isinstance(err.message, str) and err.message
    assert isinstance(err.labels, list)
    assert isinstance(err.related, list)
    assert err.message in str(err) and err.code in str(err)


def test_warnings_go_through_the_warnings_module():
    with pytest.warns(qc.QcWarning, match=r"^\[qc::onnx::unnamed_dim\]"):
        qc.load(PPOCR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # input_shapes answers the warning: none is issued.
        qc.load(PPOCR, input_shapes={"x": [1, 3, 48, 192]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", qc.QcWarning)
        with pytest.raises(qc.QcWarning):
            qc.load(PPOCR)


def test_concurrent_calls_give_identical_results():
    shapes = {"x": [1, 3, 48, 192]}
    model = qc.load(PPOCR, input_shapes=shapes)
    x = np.random.default_rng(3).standard_normal((1, 3, 48, 192)).astype(np.float32)

    def work(i):
        m = model if i % 2 else PPOCR
        return (
            qc.cost(m, cost_breakdown=True, input_shapes=None if i % 2 else shapes),
            qc.check(m, input_shapes=None if i % 2 else shapes).to_json(),
            qc.lower(m, input_shapes=None if i % 2 else shapes).to_json().replace(str(PPOCR), "M"),
            qc.run(model, {"x": x}),
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qc.QcWarning)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(work, range(8)))
    first = results[0]
    for r in results[1:]:
        assert r[0] == first[0]
        assert r[1] == first[1]
        assert r[2] == first[2]
        for k in first[3]:
            np.testing.assert_array_equal(r[3][k], first[3][k])


def test_long_calls_release_the_gil():
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        assert _qc._sleep_for_test(0.5) is True
    finally:
        stop.set()
        t.join()
    assert len(ticks) >= 10


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT by os.kill is POSIX")
def test_ctrl_c_raises_keyboard_interrupt_promptly():
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _qc._sleep_for_test(30.0)
    assert time.monotonic() - start < 2.0


def test_the_qc_command():
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("qc ")
    assert cli_json("cost", TINY)["total_cost"]["total_macs"] == qc.cost(TINY)["total_cost"]["total_macs"]
    code, _, err = run_cli("check", TINY, "--target", "access-dla", check_code=1)
    code, _, err = run_cli("cost", "/no/such/model.onnx", check_code=2)
    assert "qc::io::read" in err
    code, _, err = run_cli("no-such-command", check_code=2)
    assert "no-such-command" in err


def test_module_entry_point_is_the_cli():
    import subprocess
    p = subprocess.run([sys.executable, "-m", "qc", "cost", str(TINY), "--format", "json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert '"total_macs"' in p.stdout
