"""What the bench scripts read from ZigZag's results (imported by the scripts beside it)."""

from zigzag.cost_model.cost_model import CostModelEvaluation


def layer_results(result):
    """The per-layer (energy, latency) of `get_hardware_performance_zigzag`'s result, by layer name:
    the CostModelEvaluations nested in its last element (lists of them, per layer and spatial
    mapping)."""
    found = []

    def walk(x):
        if isinstance(x, CostModelEvaluation):
            found.append(x)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)

    walk(result[-1])
    return {c.layer.name: (c.energy_total, c.latency_total2) for c in found}
