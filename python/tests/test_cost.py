"""qc.cost: qonnx's inference_cost keys and values, the CLI's numbers, the reference files."""

import ast
import json
import math

import pytest

import qc
from conftest import PPOCR, TINY, cli_json, shared_models


def as_set(unsupported: str) -> set:
    return set() if unsupported == "set()" else set(ast.literal_eval(unsupported))


def test_total_equals_the_cli():
    got = qc.cost(TINY)
    want = cli_json("cost", TINY)
    assert set(got) == {"total_cost"}
    total = dict(got["total_cost"])
    assert as_set(total.pop("unsupported")) == set(want["total_cost"].pop("unsupported"))
    assert total == want["total_cost"]


def test_breakdown_is_keyed_as_qonnx_keys_it():
    got = qc.cost(TINY, cost_breakdown=True)
    want = cli_json("cost", TINY, "--cost-breakdown")
    assert set(got) == {"total_cost", "optype_cost", "node_cost"}
    assert got["optype_cost"] == want["optype_cost"]
    names = want["qonnx_node_names"]
    assert got["node_cost"] == {names[k]: v for k, v in want["node_cost"].items()}
    assert all("_" in k for k in got["node_cost"])


def test_discount_sparsity_and_extended_are_the_cli_flags():
    got = qc.cost(TINY, discount_sparsity=False)
    want = cli_json("cost", TINY, "--no-discount-sparsity")
    assert got["total_cost"]["discount_sparsity"] is False
    assert got["total_cost"]["total_macs"] == want["total_cost"]["total_macs"]
    ext = qc.cost(TINY, extended=True)
    want_ext = cli_json("cost", TINY, "--extended")
    assert ext["total_cost"]["total_macs"] == want_ext["total_cost"]["total_macs"]
    assert as_set(ext["total_cost"]["unsupported"]) == set(want_ext["total_cost"]["unsupported"])


def test_unknown_input_dims_are_refused_and_input_shapes_answer():
    with pytest.raises(qc.ModelError) as e:
        qc.cost(PPOCR)
    assert e.value.code == "qc::input_shape::unknown_dims"
    assert "x" in e.value.message
    got = qc.cost(PPOCR, input_shapes={"x": [1, 3, 48, 192]})
    want = cli_json("cost", PPOCR, "--overwrite-input-shape", "x:1,3,48,192")
    assert got["total_cost"]["total_macs"] == want["total_cost"]["total_macs"] > 0


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# Small reference models with their qonnx oracle (qonnx-inference-cost --cost-breakdown after
# qonnx-cleanup; ../shared/models/PROVENANCE.md).
ORACLES = [
    "hls4ml-example-models/two_layer_pytorch",
    "hls4ml-example-models/three_layer_keras",
    "hls4ml-example-models/conv2d_small_mp_keras",
    "hls4ml-example-models/conv1d_small_keras",
    "hls4ml-example-models/bnn_model_fc_1layer",
]


@pytest.mark.parametrize("stem", ORACLES)
def test_equals_qonnx_reference(stem):
    models = shared_models()
    want = json.loads((models / f"{stem}.qonnx-cost.json").read_text())
    got = qc.cost(models / f"{stem}.onnx", cost_breakdown=True)
    for section in ("total_cost", "optype_cost", "node_cost"):
        assert section in got
    g, w = dict(got["total_cost"]), dict(want["total_cost"])
    assert as_set(g.pop("unsupported")) == as_set(w.pop("unsupported"))
    assert set(g) == set(w)
    for k in w:
        assert g[k] == w[k] if isinstance(w[k], bool) else close(g[k], w[k]), k
    assert set(got["optype_cost"]) == set(want["optype_cost"])
    for op, counts in want["optype_cost"].items():
        assert set(got["optype_cost"][op]) == set(counts)
        assert all(close(got["optype_cost"][op][k], v) for k, v in counts.items()), op
    assert set(got["node_cost"]) == set(want["node_cost"])
    for node, counts in want["node_cost"].items():
        assert all(close(got["node_cost"][node][k], v) for k, v in counts.items()), node
