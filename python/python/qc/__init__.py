"""qc from Python: load, optimize, run, cost, check and lower ONNX and QONNX models.

Every function that takes a model takes a :class:`Model` (from :func:`load`), the path of an
``.onnx`` file, its bytes, or an ``onnx.ModelProto``, and ``input_shapes={"x": [1, 3, 224, 224]}``
(the CLI's ``--overwrite-input-shape``). Errors are :class:`QcError` subclasses carrying the
diagnostic's ``code``, ``message``, ``help`` and ``labels``; warnings are issued with
``warnings.warn`` in the category :class:`QcWarning`. See ``spec/python.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from qc import _qc
from qc._qc import (
    AcceleratorError,
    CostModelError,
    MappingError,
    Model,
    ModelError,
    OptionError,
    QcError,
    QcIOError,
    QcWarning,
    TargetError,
    Workload,
)

__version__: str = _qc.__version__

__all__ = [
    "AcceleratorError",
    "CheckReport",
    "CostModelError",
    "Finding",
    "MappingError",
    "Model",
    "ModelError",
    "OptionError",
    "Placement",
    "QcError",
    "QcIOError",
    "QcWarning",
    "TargetError",
    "Workload",
    "__version__",
    "check",
    "cost",
    "load",
    "lower",
    "optimize",
    "run",
]

ModelArg = Union["Model", str, "os.PathLike[str]", bytes, bytearray, memoryview, Any]
InputShapes = Optional[Mapping[str, Sequence[Union[int, str]]]]


def load(source: ModelArg, input_shapes: InputShapes = None) -> Model:
    """Reads a model from a path, bytes or an ``onnx.ModelProto`` (decoded, imported, verified)."""
    return _qc.load(source, input_shapes)


def optimize(
    model: ModelArg,
    passes: Optional[str] = None,
    input_shapes: InputShapes = None,
    **options: Any,
) -> Model:
    """Runs a pass pipeline (``qc optimize --passes``; default: qc's default pipeline).

    ``options`` are the flags of ``qc optimize`` by their Kneron names: ``fold_quant_weights``,
    ``clear_descriptions``, ``replace_avgpool_with_conv``, ``duplicate_shared_weights``,
    ``verify_each``, ``stop_after`` (a pass name) and ``allow_shape_errors``; any other keyword is
    an :class:`OptionError` listing them.
    """
    return _qc.optimize(model, passes, input_shapes, **options)


def run(model: ModelArg, inputs: Mapping[str, Any], input_shapes: InputShapes = None) -> Dict[str, Any]:
    """Runs the model with qc's reference evaluator: graph input names to numpy arrays, in; graph
    output names to numpy arrays, out (in graph order)."""
    if isinstance(inputs, Mapping) and not isinstance(inputs, dict):
        inputs = dict(inputs)
    return dict(_qc.run(model, inputs, input_shapes))


def _qonnx_unsupported(ops: Sequence[str]) -> str:
    # qonnx stores `str(set_of_op_types)`; qc writes the same text with the names sorted.
    return "{" + ", ".join(repr(o) for o in sorted(ops)) + "}" if ops else "set()"


def cost(
    model: ModelArg,
    cost_breakdown: bool = False,
    discount_sparsity: bool = True,
    *,
    extended: bool = False,
    input_shapes: InputShapes = None,
    allow_shape_errors: bool = False,
) -> Dict[str, Any]:
    """Inference cost as ``qonnx.util.inference_cost.inference_cost`` returns it.

    The keys and values are qonnx's: ``total_cost`` (with ``unsupported`` as qonnx's text of a set,
    names sorted, and ``discount_sparsity``) and, with ``cost_breakdown``, ``optype_cost`` and
    ``node_cost`` keyed by the node names qonnx gives (``Conv_0``, ...). The numbers are those of
    ``qc cost --format json``.
    """
    doc = json.loads(
        _qc.cost_json(model, cost_breakdown, discount_sparsity, extended, input_shapes, allow_shape_errors)
    )
    total = dict(doc["total_cost"])
    total["unsupported"] = _qonnx_unsupported(total.get("unsupported", []))
    result: Dict[str, Any] = {"total_cost": total}
    if cost_breakdown:
        result["optype_cost"] = doc["optype_cost"]
        names = doc["qonnx_node_names"]
        result["node_cost"] = {names.get(k, k): v for k, v in doc["node_cost"].items()}
    return result


@dataclass(frozen=True)
class Finding:
    """One finding of :func:`check`: a broken rule at a node."""

    code: str
    rule: str
    severity: str
    node: Optional[str]
    op: Optional[str]
    tensor: Optional[str]
    message: str
    observed: Optional[str]
    allowed: Optional[str]
    observed_value: Any
    allowed_value: Any
    hint: Optional[str]


@dataclass(frozen=True)
class Placement:
    """Where :func:`check` places one op: ``unit`` is ``"dla"`` or ``"cpu"``."""

    node: str
    op: str
    unit: str
    operator: Optional[str]


@dataclass(frozen=True)
class CheckReport:
    """The result of :func:`check`, as ``qc check --format json`` reports it."""

    ok: bool
    target: str
    findings: List[Finding]
    placement: List[Placement]
    absorbed: List[Dict[str, Any]]
    summary: Dict[str, int]
    raw: Dict[str, Any] = field(repr=False)

    def to_json(self) -> str:
        """The report as ``qc check --format json`` writes it."""
        return json.dumps(self.raw, indent=2) + "\n"


def check(
    model: ModelArg,
    target: str = "access-dla",
    *,
    input_shapes: InputShapes = None,
    allow_shape_errors: bool = False,
) -> CheckReport:
    """Checks the model against a DLA target (a built-in name or a target YAML path) and places
    each op on the DLA or the CPU."""
    doc = json.loads(_qc.check_json(model, str(target), input_shapes, allow_shape_errors))
    findings = [
        Finding(
            code=d["code"],
            rule=d["rule"],
            severity=d["severity"],
            node=d["node"],
            op=d["op_type"],
            tensor=d["tensor"],
            message=d["message"],
            observed=d["observed"],
            allowed=d["allowed"],
            observed_value=d["observed_value"],
            allowed_value=d["allowed_value"],
            hint=d["hint"],
        )
        for d in doc["diagnostics"]
    ]
    placement = [Placement(p["node"], p["op_type"], p["unit"], p["operator"]) for p in doc["placement"]]
    return CheckReport(
        ok=doc["ok"],
        target=doc["target"],
        findings=findings,
        placement=placement,
        absorbed=doc["absorbed"],
        summary=doc["summary"],
        raw=doc,
    )


def lower(
    model: ModelArg,
    default_precision: Optional[str] = None,
    psum_bits: Optional[Union[str, int]] = None,
    *,
    input_shapes: InputShapes = None,
    allow_shape_errors: bool = False,
) -> Workload:
    """Lowers every compute layer to a loop nest (``qc lower``): ``default_precision`` is
    ``"W,I,O,PSUM"`` bits, ``psum_bits`` ``"zigzag"``, ``"exact"`` or a bit count."""
    psum = None if psum_bits is None else str(psum_bits)
    return _qc.lower(model, default_precision, psum, input_shapes, allow_shape_errors)
