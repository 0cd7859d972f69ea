"""qc from Python: load, optimize, run, cost, check, lower and evaluate ONNX and QONNX models.

Every function that takes a model takes a :class:`Model` (from :func:`load`), the path of an
``.onnx`` file, its bytes, or an ``onnx.ModelProto``, and ``input_shapes={"x": [1, 3, 224, 224]}``
(the CLI's ``--overwrite-input-shape``). Errors are :class:`QcError` subclasses carrying the
diagnostic's ``code``, ``message``, ``help`` and ``labels``; warnings are issued with
``warnings.warn`` in the category :class:`QcWarning`. See ``spec/python.md``.
"""

from __future__ import annotations

import json
import os
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
    "Evaluation",
    "Finding",
    "MappingError",
    "Model",
    "ModelError",
    "OptionError",
    "Placement",
    "QcError",
    "QcIOError",
    "QcWarning",
    "Record",
    "SweepResult",
    "TargetError",
    "Workload",
    "__version__",
    "accelerators",
    "check",
    "cost",
    "evaluate",
    "load",
    "lower",
    "optimize",
    "run",
    "sweep",
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
    ``skip_fuse_qkv``, ``verify_each``, ``stop_after`` (a pass name) and ``allow_shape_errors``; Kneron's
    ``skip`` (a list of pass names: ``skipped_optimizers``), ``clear_shapes``, ``convert_f16``,
    ``replace_dilated_conv``, ``defuse_gaps`` (True, or ``"average-pool"``) and ``opt_matmul``
    (True, or a target name); any other keyword is an :class:`OptionError` listing them.
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


class Record(dict):
    """A record of a JSON report: a dict whose keys are also attributes (``layer.energy`` is
    ``layer["energy"]``; keys that are not identifiers, such as ``"class"``, by index only)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the record has no field {name!r}; its fields: {', '.join(self)}") from None


def _records(value: Any) -> Any:
    if isinstance(value, dict):
        return Record((k, _records(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_records(v) for v in value]
    return value


PathArg = Union[str, "os.PathLike[str]"]


def _write(path: Optional[PathArg], text: str) -> str:
    if path is not None:
        _qc.write_text_atomically(os.fspath(path), text)
    return text


class Evaluation:
    """The result of :func:`evaluate`, as ``qc evaluate --format json`` reports it.

    ``designs`` holds one record per design (the accelerator, then each of ``compare``); the
    other members are those of the first design.
    """

    def __init__(self, report: Any) -> None:
        self._report = report
        self.raw: Dict[str, Any] = json.loads(report.to_json())
        designs = self.raw["designs"] if "designs" in self.raw else [self.raw]
        self.designs: List[Record] = [_records(d) for d in designs]

    @property
    def total(self) -> Record:
        """``energy`` (pJ), ``latency`` (cycles), ``mac_energy`` and ``memory_energy`` of the
        layers costed."""
        return self.designs[0]["total"]

    @property
    def layers(self) -> List[Record]:
        """One record per costed layer with the JSON report's fields: ``name``, ``op_type``,
        ``energy``, ``latency``, ``macs``, ``utilization``, ``spatial_mapping``,
        ``temporal_mapping``, the breakdowns, ``bound`` (the lower bounds and how far above them
        the layer is), ..."""
        return self.designs[0]["layers"]

    @property
    def accelerator(self) -> str:
        return self.designs[0]["accelerator"]

    @property
    def unfit(self) -> List[Record]:
        """The layers no mapping fits (their energy is not in ``total``)."""
        return self.designs[0]["unfit"]

    @property
    def not_costed(self) -> List[Record]:
        """The nodes not costed, each with the reason."""
        return self.designs[0]["not_costed"]

    @property
    def search(self) -> Optional[Record]:
        """The search's counters (``None`` for a fixed mapping)."""
        return self.designs[0].get("search")

    @property
    def all_fit(self) -> bool:
        """Whether every layer found a mapping on every design (``qc evaluate`` exits 1 if not)."""
        return bool(self._report.all_fit)

    def to_json(self) -> str:
        """The JSON text of ``qc evaluate --format json``."""
        return self._report.to_json()

    def to_html(self, path: Optional[PathArg] = None) -> str:
        """The page of ``qc evaluate --format html``; with ``path``, also written there (whole
        or not at all)."""
        return _write(path, self._report.to_html())

    def to_markdown(self, path: Optional[PathArg] = None) -> str:
        """The report of ``qc evaluate --format md``; with ``path``, also written there."""
        return _write(path, self._report.to_markdown())

    def to_text(self, width: int = 120) -> str:
        """The table ``qc evaluate`` prints, ``width`` columns wide."""
        return self._report.to_text(width)

    def __repr__(self) -> str:
        t = self.total
        return f"<qc.Evaluation {self.designs[0].get('workload', '')!r} on {self.accelerator}: {t['energy']:.6g} pJ, {t['latency']:.6g} cycles>"



def evaluate(
    model: Union[ModelArg, Workload],
    accelerator: Optional[PathArg] = None,
    mapping: Optional[PathArg] = None,
    *,
    opt: str = "energy",
    fixed_mapping: bool = False,
    optimal: bool = False,
    optimal_budget: Optional[int] = 2_000_000,
    optimal_gap: Union[float, str] = 0.0,
    compare: Optional[Sequence[Union[PathArg, Sequence[PathArg]]]] = None,
    target: Optional[str] = None,
    optimize: bool = False,
    lpf_limit: Optional[int] = 6,
    spatial_mappings: Union[int, str] = 3,
    mixed: bool = False,
    search_budget: Optional[Union[float, str]] = None,
    mapping_type: str = "uneven",
    latency_model: str = "zigzag-3.9.1",
    all_layers: bool = False,
    exploit_data_locality: bool = False,
    data_from_top_memory: bool = False,
    jobs: Optional[int] = None,
    default_precision: Optional[str] = None,
    psum_bits: Optional[Union[str, int]] = None,
    input_shapes: InputShapes = None,
    assume_dims: Optional[int] = None,
    allow_shape_errors: bool = False,
) -> Evaluation:
    """Energy and latency of every layer on an accelerator (``qc evaluate``).

    ``model`` is a model (as everywhere), a :class:`Workload` from :func:`lower`, or the path of
    a ZigZag workload YAML. ``accelerator`` is a built-in name (:func:`accelerators`; default
    ``tpu_like``) or the path of an accelerator YAML; ``mapping`` the path of a ZigZag mapping
    YAML. Without ``fixed_mapping`` each layer's mapping is searched for ``opt`` (``"energy"``,
    ``"latency"`` or ``"edp"``; the CLI's ``--opt`` defaults to latency, as ZigZag does). With
    ``optimal`` each layer's mapping is then the best over the whole space, by branch and bound,
    with a certificate in ``layer.search.certificate`` (``optimal_budget`` orderings per layer,
    ``None`` for no limit; ``optimal_gap`` a fraction or ``"1%"``: proven within it, sooner). The
    other keywords are ``qc evaluate``'s flags; see ``spec/python.md``.
    """
    options = dict(locals())
    for positional in ("model", "accelerator", "mapping"):
        del options[positional]
    report = _qc.evaluate(model, accelerator, mapping, options)
    return Evaluation(report)


class SweepResult:
    """The result of :func:`sweep`: every design's line and the summary of ``qc sweep``."""

    def __init__(self, report: Any) -> None:
        self._report = report
        self._lines: List[str] = report.lines_json()
        self.designs: List[Record] = [_records(json.loads(line)) for line in self._lines]
        self.summary: Dict[str, Any] = json.loads(report.summary_json())

    @property
    def front(self) -> List[Record]:
        """The Pareto front of energy and latency (and area when the accelerator gives areas),
        by energy: the lines of the designs on it."""
        return _records(self.summary["front"])

    @property
    def infeasible(self) -> List[Record]:
        """The designs that cannot run the workload, each with its ``error``."""
        return [d for d in self.designs if "error" in d]

    @property
    def seconds(self) -> float:
        return float(self.summary["seconds"])

    def to_json(self) -> str:
        """The summary as ``qc sweep --format json`` prints it."""
        return self._report.summary_json()

    def to_jsonl(self, path: Optional[PathArg] = None) -> str:
        """The lines as ``qc sweep -o`` writes them; with ``path``, also written there."""
        return _write(path, "".join(line + "\n" for line in self._lines))

    def to_text(self) -> str:
        """The summary as ``qc sweep`` prints it."""
        return self._report.summary_text()

    def to_html(self, path: Optional[PathArg] = None) -> str:
        """The page of ``qc sweep --html``; with ``path``, also written there."""
        return _write(path, self._report.to_html())

    def __repr__(self) -> str:
        return f"<qc.SweepResult {len(self.designs)} designs, {len(self.front)} on the front, {len(self.infeasible)} infeasible>"


def sweep(
    model: Union[ModelArg, Workload],
    accelerator: PathArg,
    sweep: Union[PathArg, Mapping[str, Any]],
    mapping: Optional[PathArg] = None,
    *,
    keep_mapping_spatial: bool = False,
    shard: Optional[Sequence[int]] = None,
    output: Optional[PathArg] = None,
    opt: str = "energy",
    lpf_limit: Optional[int] = 6,
    spatial_mappings: Union[int, str] = 3,
    mixed: bool = False,
    search_budget: Optional[Union[float, str]] = None,
    mapping_type: str = "uneven",
    latency_model: str = "zigzag-3.9.1",
    all_layers: bool = False,
    exploit_data_locality: bool = False,
    data_from_top_memory: bool = False,
    jobs: Optional[int] = None,
    default_precision: Optional[str] = None,
    psum_bits: Optional[Union[str, int]] = None,
    input_shapes: InputShapes = None,
    assume_dims: Optional[int] = None,
    allow_shape_errors: bool = False,
) -> SweepResult:
    """Evaluates the workload on every design of an accelerator parameter sweep (``qc sweep``).

    ``sweep`` is the path of a sweep YAML (``spec/sweep.md``) or the same content as a dict.
    ``shard=(i, n)`` evaluates the i-th of n disjoint slices; ``output`` receives the JSON lines
    as designs finish (``qc sweep -o``; ``qc sweep merge`` joins shards); ``jobs`` is the designs
    evaluated at a time. The search options are :func:`evaluate`'s.
    """
    options = dict(locals())
    for positional in ("model", "accelerator", "sweep", "mapping"):
        del options[positional]
    if options["shard"] is not None:
        options["shard"] = tuple(options["shard"])
    if options["output"] is not None:
        options["output"] = os.fspath(options["output"])
    report = _qc.sweep(model, accelerator, dict(sweep) if isinstance(sweep, Mapping) else sweep, mapping, options)
    return SweepResult(report)


def accelerators() -> List[str]:
    """The names of the built-in accelerators (``qc accelerators list``)."""
    return list(_qc.accelerators())
