"""qc.load, Model.save, Model.to_bytes, Model.inspect, input_shapes."""

import os
import warnings

import pytest

import qc
from conftest import PPOCR, TINY, cli_json, onnx_or_skip


def test_load_from_path_str_pathlike_bytes_bytearray():
    by_str = qc.load(str(TINY))
    by_path = qc.load(TINY)
    data = TINY.read_bytes()
    by_bytes = qc.load(data)
    by_bytearray = qc.load(bytearray(data))
    by_view = qc.load(memoryview(data))
    for m in (by_str, by_path, by_bytes, by_bytearray, by_view):
        assert m.inputs == ["x"]
        assert m.outputs == ["y"]
    assert by_bytes.file == "<bytes>"
    assert by_path.file == str(TINY)
    assert by_bytes.to_bytes() == by_path.to_bytes()


def test_inspect_equals_the_cli(tmp_path):
    got = qc.load(str(TINY)).inspect()
    want = cli_json("inspect", TINY)
    assert got == want
    assert got["op_histogram"]
    assert qc.load(str(TINY)).inspect(quant=True) == cli_json("inspect", TINY, "--quant")


def test_save_and_to_bytes_round_trip(tmp_path):
    m = qc.load(PPOCR)
    out = tmp_path / "copy.onnx"
    m.save(out)
    again = qc.load(out)
    assert again.to_bytes() == m.to_bytes()
    assert qc.load(m.to_bytes()).inspect()["op_histogram"] == m.inspect()["op_histogram"]
    # `save` accepts os.PathLike and str alike.
    m.save(str(tmp_path / "copy2.onnx"))
    assert (tmp_path / "copy2.onnx").read_bytes() == out.read_bytes()


def test_save_to_a_missing_folder_is_an_io_error(tmp_path):
    with pytest.raises(qc.QcIOError) as e:
        qc.load(TINY).save(tmp_path / "no" / "such" / "folder" / "m.onnx")
    assert e.value.code == "qc::io::write"
    assert "writable" in e.value.help
    assert not (tmp_path / "no").exists()


def test_input_shapes_overwrite_the_declared_dims():
    m = qc.load(TINY, input_shapes={"x": [2, 3, 16, 16]})
    dims = m.inspect()["inputs"][0]
    assert "2" in str(dims) and m.inspect() != qc.load(TINY).inspect()
    # Named dims are allowed, as in --overwrite-input-shape x:N,3,16,16.
    named = qc.load(TINY, input_shapes={"x": ["N", 3, 16, 16]})
    assert "N" in str(named.inspect()["inputs"][0])


def test_input_shapes_errors():
    with pytest.raises(qc.ModelError) as e:
        qc.load(TINY, input_shapes={"nope": [1, 3, 16, 16]})
    assert e.value.code == "qc::input_shape::unknown_input"
    assert "x" in e.value.help
    with pytest.raises(qc.ModelError) as e:
        qc.load(TINY, input_shapes={"x": [1, 3]})
    assert e.value.code == "qc::input_shape::rank"
    with pytest.raises(qc.OptionError) as e:
        qc.load(TINY, input_shapes=[1, 3, 16, 16])
    assert e.value.code == "qc::python::input_shapes"
    with pytest.raises(qc.OptionError):
        qc.load(TINY, input_shapes={"x": [1.5, 3, 16, 16]})


def test_load_errors_carry_code_message_and_help(tmp_path):
    with pytest.raises(qc.QcIOError) as e:
        qc.load(tmp_path / "missing.onnx")
    assert e.value.code == "qc::io::read"
    assert "missing.onnx" in e.value.message
    assert e.value.help
    assert isinstance(e.value, qc.QcError)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a model at all \xff\xff\xff")
    with pytest.raises(qc.ModelError) as e:
        qc.load(garbage)
    assert e.value.code.startswith("qc::onnx::")
    assert e.value.code in str(e.value)
    with pytest.raises(qc.ModelError) as e:
        qc.load(b"")
    assert e.value.code == "qc::onnx::empty_file"
    with pytest.raises(qc.OptionError) as e:
        qc.load(42)
    assert e.value.code == "qc::python::model"
    assert "int" in e.value.message


def test_model_proto_round_trip(tmp_path):
    onnx = onnx_or_skip()
    proto = onnx.load(str(TINY))
    m = qc.load(proto)
    assert m.inputs == ["x"]
    back = onnx.load_from_string(m.to_bytes())
    assert [n.op_type for n in back.graph.node] == [n.op_type for n in proto.graph.node]
    assert qc.cost(proto) == qc.cost(TINY)
    onnx.checker.check_model(back)
