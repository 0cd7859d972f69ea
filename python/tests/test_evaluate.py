"""qc.evaluate and qc.sweep against the qc command on the same inputs."""

import json
import os
import signal
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

import qc
from conftest import EXAMPLES, PPOCR, cli_json, run_cli

RESNET = EXAMPLES / "zigzag" / "resnet18.onnx"
GEMM = EXAMPLES / "zigzag" / "gemm_layer.yaml"
SWEEP = EXAMPLES / "sweep_tpu_like.yaml"
SHAPES = {"x": [1, 3, 48, 192]}

# examples/zigzag/resnet18.onnx is shape-only: its weights' external file is left out on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:.*external_data_missing")

# The search's own timing differs between any two runs.
TIMING = {"seconds", "orderings_per_second"}


def without_timing(report):
    """The JSON report without its wall-clock fields (the search's and the lower bounds')."""
    if isinstance(report, dict):
        return {k: without_timing(v) for k, v in report.items() if k not in TIMING}
    if isinstance(report, list):
        return [without_timing(v) for v in report]
    return report


def test_evaluate_reports_what_the_cli_reports():
    e = qc.evaluate(PPOCR, "tpu_like", input_shapes=SHAPES)
    cli = cli_json("evaluate", PPOCR, "--overwrite-input-shape", "x:1,3,48,192", "--accelerator", "tpu_like",
                   "--opt", "energy")
    assert without_timing(e.raw) == without_timing(cli)
    assert e.total == cli["total"] and e.total.energy > 0
    assert e.accelerator == "tpu_like"
    assert len(e.layers) == len(cli["layers"]) == 54
    layer = e.layers[0]
    assert layer.name == cli["layers"][0]["name"] and layer["class"] == cli["layers"][0]["class"]
    assert e.search.objective == "energy" and e.all_fit and e.unfit == []
    assert sum(l.energy for l in e.layers) == pytest.approx(e.total.energy, rel=1e-9)
    with pytest.raises(AttributeError, match="no field"):
        layer.no_such_field


def test_the_options_are_the_cli_flags():
    e = qc.evaluate(RESNET, "eyeriss_v1", opt="latency", lpf_limit=4, spatial_mappings=1, mapping_type="even",
                    latency_model="zigzag-3d12a96", exploit_data_locality=True, jobs=1)
    cli = cli_json("evaluate", RESNET, "--accelerator", "eyeriss_v1", "--opt", "latency", "--lpf-limit", "4",
                   "--spatial-mappings", "1", "--mapping-type", "even", "--latency-model", "zigzag-3d12a96",
                   "--exploit-data-locality", "--jobs", "1")
    assert without_timing(e.raw) == without_timing(cli)
    assert e.raw["latency_model"] == "zigzag-3d12a96" and e.raw["data_locality"] is not None


def test_a_model_a_workload_and_a_yaml_cost_the_same():
    by_path = qc.evaluate(RESNET)
    by_model = qc.evaluate(qc.load(RESNET))
    by_workload = qc.evaluate(qc.lower(RESNET))
    assert by_path.total == by_model.total == by_workload.total
    assert by_path.accelerator == "tpu_like"  # the default built-in
    yaml = qc.evaluate(GEMM, "gemm_l1")
    cli = cli_json("evaluate", GEMM, "--accelerator", "gemm_l1", "--opt", "energy")
    assert without_timing(yaml.raw) == without_timing(cli)


def test_compare_gives_one_record_per_design():
    e = qc.evaluate(RESNET, "tpu_like", compare=["edge_tpu_like", "eyeriss_v1"], spatial_mappings=1)
    cli = cli_json("evaluate", RESNET, "--accelerator", "tpu_like", "--compare", "edge_tpu_like",
                   "--compare", "eyeriss_v1", "--spatial-mappings", "1", "--opt", "energy")
    assert [d.accelerator for d in e.designs] == ["tpu_like", "edge_tpu_like", "eyeriss_v1"]
    assert without_timing(e.raw) == without_timing(cli)
    assert e.total == e.designs[0].total


def test_a_fixed_mapping(tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "- name: default\n"
        "  spatial_mapping: {D1: [\"D0, 8\"], D2: [\"D2, 8\"], D3: [\"D1, 8\"]}\n"
        "  temporal_ordering: [[D1, \"*\"], [D2, \"*\"], [D0, \"*\"]]\n"
    )
    e = qc.evaluate(GEMM, "gemm_l1", mapping, fixed_mapping=True)
    cli = cli_json("evaluate", GEMM, "--accelerator", "gemm_l1", "--mapping", mapping, "--fixed-mapping")
    assert without_timing(e.raw) == without_timing(cli) and e.search is None


def test_reports_in_every_format(tmp_path):
    e = qc.evaluate(RESNET, spatial_mappings=1)
    page = tmp_path / "report.html"
    html = e.to_html(page)
    assert page.read_text() == html and html.lstrip().lower().startswith("<!doctype html")
    assert "| " in e.to_markdown()
    assert "tpu_like" in e.to_text(100)
    assert json.loads(e.to_json()) == e.raw
    with pytest.raises(qc.QcIOError):
        e.to_html(tmp_path / "no" / "such" / "dir" / "r.html")


def test_concurrent_evaluations_give_identical_results():
    def work(i):
        model = RESNET if i % 2 else qc.lower(RESNET)
        return without_timing(qc.evaluate(model, ["tpu_like", "edge_tpu_like"][i % 2 // 1], spatial_mappings=1,
                                          jobs=1).raw)

    sequential = [work(i) for i in range(2)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(8)))
    for i, r in enumerate(results):
        assert r == sequential[i % 2]


def test_errors_are_diagnostics():
    with pytest.raises(qc.AcceleratorError) as e:
        qc.evaluate(RESNET, "no_such_accelerator")
    assert e.value.code == "qc::accelerator::unknown" and "tpu_like" in e.value.help
    for bad in [dict(opt="speed"), dict(lpf_limit=0), dict(spatial_mappings="some"), dict(search_budget="soon"),
                dict(jobs=0), dict(mapping_type="odd"), dict(latency_model="zigzag-1"),
                dict(data_from_top_memory=True)]:
        with pytest.raises(qc.OptionError) as e:
            qc.evaluate(RESNET, **bad)
        assert e.value.code == "qc::evaluate::option", bad
    with pytest.raises(qc.OptionError, match="mapping") as e:
        qc.evaluate(RESNET, fixed_mapping=True)
    assert e.value.code == "qc::evaluate::mapping"
    with pytest.raises(qc.OptionError) as e:
        qc.evaluate(GEMM, optimize=True)
    with pytest.raises(qc.ModelError) as e:
        qc.evaluate(PPOCR)
    assert e.value.code == "qc::input_shape::unknown_dims"
    with pytest.raises(qc.OptionError):
        qc.evaluate(RESNET, compare="edge_tpu_like")


def test_assume_dims_is_said():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = qc.evaluate(PPOCR, assume_dims=48, spatial_mappings=1)
    assert e.total.energy > 0
    assert any("qc::input_shape::assumed" in str(w.message) for w in caught)


def test_the_exact_search_with_a_gap():
    # ZigZag's GEMM layer: small enough to search whole.
    e = qc.evaluate(GEMM, "gemm_l1", opt="latency", optimal=True, optimal_gap="5%")
    cli = cli_json("evaluate", GEMM, "--accelerator", "gemm_l1", "--opt", "latency", "--optimal", "--optimal-gap", "5%")
    assert without_timing(e.raw) == without_timing(cli)
    assert e.search.optimal.tolerance == 0.05 and e.search.optimal.budget_orderings_per_layer == 2_000_000
    c = e.layers[0].search.certificate
    assert c.complete and c.tolerance == 0.05 and 0 <= c.gap <= 0.05
    exact = qc.evaluate(GEMM, "gemm_l1", opt="latency", optimal=True, optimal_budget=None)
    x = exact.layers[0].search.certificate
    assert x.complete and x.gap == 0 and exact.search.optimal.budget_orderings_per_layer is None
    assert x.best <= c.best <= x.best * 1.05 and c.lower_bound <= x.best
    assert qc.evaluate(GEMM, "gemm_l1", opt="latency", optimal=True, optimal_gap=0.05).raw["layers"] == e.raw["layers"]
    for bad in [dict(optimal=True, optimal_gap=-0.1), dict(optimal=True, optimal_gap="x%"),
                dict(optimal=True, optimal_budget=0), dict(optimal_gap="1%"), dict(optimal_budget=10),
                dict(optimal=True, fixed_mapping=True)]:
        with pytest.raises(qc.OptionError) as err:
            qc.evaluate(GEMM, "gemm_l1", **bad)
        assert err.value.code == "qc::evaluate::option", bad


def test_a_search_budget_is_reported():
    e = qc.evaluate(RESNET, search_budget=30, spatial_mappings=1)
    assert e.search.budget_seconds == 30
    e = qc.evaluate(RESNET, search_budget="2m", spatial_mappings=1)
    assert e.search.budget_seconds == 120


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT by os.kill is POSIX")
def test_ctrl_c_stops_a_search():
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        # Every spatial mapping with unlimited loop prime factors: minutes of search.
        qc.evaluate(RESNET, "eyeriss_v1", spatial_mappings="all", lpf_limit=None, mixed=True)
    assert time.monotonic() - start < 3.0


def test_sweep_writes_what_the_cli_writes(tmp_path):
    lines = tmp_path / "py.jsonl"
    r = qc.sweep(GEMM, "tpu_like", SWEEP, output=lines, spatial_mappings=1)
    cli_lines = tmp_path / "cli.jsonl"
    summary = cli_json("sweep", GEMM, "--accelerator", "tpu_like", "--sweep", SWEEP, "--spatial-mappings", "1",
                       "--opt", "energy", "-o", cli_lines)
    ours = sorted((json.loads(l) for l in lines.read_text().splitlines()), key=lambda d: int(d["design"]))
    theirs = sorted((json.loads(l) for l in cli_lines.read_text().splitlines()), key=lambda d: int(d["design"]))
    assert len(r.designs) == len(ours) == 48
    assert without_timing(ours) == without_timing(theirs)
    assert without_timing(r.designs) == without_timing(theirs)
    assert without_timing(r.front) == without_timing(summary["front"])
    assert len(r.infeasible) == summary["infeasible"]
    assert r.to_html(tmp_path / "sweep.html").lower().lstrip().startswith("<!doctype html")
    assert r.to_jsonl().count("\n") == 48 and "Pareto front" in r.to_text()


def test_a_sweep_as_a_dict_and_in_shards():
    sweep = {"parameters": [{"name": "operational_array.sizes.D1", "values": [8, 16, 32, 64]}]}
    whole = qc.sweep(GEMM, "tpu_like", sweep, spatial_mappings=1)
    halves = [qc.sweep(GEMM, "tpu_like", sweep, shard=(i, 2), spatial_mappings=1) for i in (1, 2)]
    assert len(whole.designs) == 4
    assert sorted(d.design for h in halves for d in h.designs) == sorted(d.design for d in whole.designs)
    with pytest.raises(qc.OptionError) as e:
        qc.sweep(GEMM, "tpu_like", sweep, shard=(3, 2))
    assert e.value.code == "qc::sweep::shard"
    with pytest.raises(qc.QcError) as e:
        qc.sweep(GEMM, "tpu_like", {"parameters": [{"name": "no.such.key", "values": [1]}]})
    assert e.value.code.startswith("qc::sweep::")


def test_the_built_in_accelerators():
    names = qc.accelerators()
    _, out, _ = run_cli("accelerators", "list")
    assert names and all(n in out for n in names) and "tpu_like" in names


def test_the_quickstart_example_runs(tmp_path):
    import subprocess
    p = subprocess.run([sys.executable, str(EXAMPLES / "python_quickstart.py")], cwd=tmp_path,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "tpu_like:" in p.stdout and "pJ" in p.stdout
    assert (tmp_path / "evaluation.html").is_file()


def test_the_readme_example_prints_what_the_readme_says(tmp_path):
    import re
    import subprocess
    from conftest import REPO
    readme = (REPO / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"examples/', f'"{REPO}/examples/')
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for line in p.stdout.splitlines():
        said = line if not line.startswith(("True", "False")) else line.split(" ", 1)[0]
        assert f"`{said}`" in section, f"the README does not show the line {said!r}"
    assert (tmp_path / "tiny.html").is_file()
