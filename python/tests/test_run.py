"""qc.run: numpy in, numpy out, every dtype, the CLI's diagnostics and numbers."""

import numpy as np
import pytest

import qc
from conftest import PPOCR, TINY, onnx_or_skip, run_cli


def test_tiny_equals_the_cli(tmp_path):
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run_cli("run", TINY, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "out")
    got = qc.run(TINY, {"x": x})
    assert list(got) == ["y"]
    want = np.load(tmp_path / "out" / "y.npy")
    assert got["y"].dtype == want.dtype
    assert got["y"].shape == want.shape
    np.testing.assert_array_equal(got["y"], want)


def test_non_contiguous_input_is_read_as_its_values():
    x = np.random.default_rng(1).standard_normal((1, 16, 16, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    assert not x.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(qc.run(TINY, {"x": x})["y"], qc.run(TINY, {"x": np.ascontiguousarray(x)})["y"])


def test_outputs_are_owned_by_qc_and_writable():
    y = qc.run(TINY, {"x": np.zeros((1, 3, 16, 16), np.float32)})["y"]
    # The evaluator's vector is handed to numpy: the array does not own a copy of its own.
    assert not y.flags["OWNDATA"]
    y[...] = 1.0
    assert (y == 1.0).all()


def test_input_diagnostics_are_the_clis(tmp_path):
    cases = [
        ({"x": np.zeros((1, 3, 16, 16), np.float64)}, "qc::run::input_type"),
        ({"x": np.zeros((1, 3, 16), np.float32)}, "qc::run::input_rank"),
        ({"x": np.zeros((1, 3, 16, 17), np.float32)}, "qc::run::input_dim"),
        ({}, "qc::run::missing_input"),
    ]
    for inputs, code in cases:
        with pytest.raises(qc.ModelError) as e:
            qc.run(TINY, inputs)
        assert e.value.code == code, (inputs, e.value)
        assert "`x`" in e.value.message
        assert e.value.help
        for name, a in inputs.items():
            np.save(tmp_path / f"{name}.npy", a)
        args = [f"--input={n}={tmp_path / (n + '.npy')}" for n in inputs]
        _, _, err = run_cli("run", TINY, *args, check_code=2)
        assert code in err
    with pytest.raises(qc.ModelError) as e:
        qc.run(TINY, {"x": np.zeros((1, 3, 16, 16), np.float32), "z": np.zeros(1, np.float32)})
    assert e.value.code == "qc::run::unknown_input"
    with pytest.raises(qc.ModelError) as e:
        qc.run(TINY, {"z": np.zeros(1, np.float32)})
    assert e.value.code == "qc::run::inputs"
    assert len(e.value.related) == 2
    with pytest.raises(qc.ModelError) as e:
        qc.run(TINY, {"x": np.zeros((1, 3, 16, 16), np.complex64)})
    assert e.value.code == "qc::run::input_type"
    with pytest.raises(qc.OptionError):
        qc.run(TINY, [np.zeros((1, 3, 16, 16), np.float32)])


DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_dtype_round_trips(dtype):
    onnx = onnx_or_skip()
    from onnx import helper
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["b"], name="id")],
        "g",
        [helper.make_tensor_value_info("a", elem, [2, 3])],
        [helper.make_tensor_value_info("b", elem, [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    a = (np.arange(6).reshape(2, 3) % 2 == 1) if dtype is np.bool_ else np.arange(6).reshape(2, 3).astype(dtype)
    b = qc.run(model.SerializeToString(), {"a": a})["b"]
    assert b.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(b, a)


def test_widened_outputs_int4_and_bfloat16():
    onnx = onnx_or_skip()
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Cast", ["a"], ["i4"], to=TensorProto.INT4, name="c1"),
         helper.make_node("Cast", ["a"], ["bf"], to=TensorProto.BFLOAT16, name="c2")],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("i4", TensorProto.INT4, [4]),
         helper.make_tensor_value_info("bf", TensorProto.BFLOAT16, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    out = qc.run(model, {"a": np.array([-3.0, 0.0, 2.0, 7.0], np.float32)})
    assert out["i4"].dtype == np.int8
    np.testing.assert_array_equal(out["i4"], [-3, 0, 2, 7])
    assert out["bf"].dtype == np.float32
    np.testing.assert_array_equal(out["bf"], [-3.0, 0.0, 2.0, 7.0])


def test_ppocr_runs_with_input_shapes():
    m = qc.load(PPOCR)
    name = m.inputs[0]
    decl = m.inspect()["inputs"][0]
    out = qc.run(m, {name: np.zeros((1, 3, 48, 192), np.float32)}, input_shapes={name: [1, 3, 48, 192]})
    assert set(out) == set(m.outputs), decl
