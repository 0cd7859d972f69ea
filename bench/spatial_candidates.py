"""ZigZag 3.9.1's generated spatial mappings, per layer, in ZigZag's order.

Run with the Python that has ZigZag 3.9.1 installed, from anywhere:

    /tmp/zzvenv/bin/python bench/spatial_candidates.py [ZIGZAG_INPUTS] > tests/tests/spatial_generator.txt

ZIGZAG_INPUTS is ZigZag's `inputs` folder (default:
`../shared/peers/zigzag-inputs/zigzag/inputs` next to this repository). For every case (workload,
hardware, mapping, mixed) it parses the ONNX workload and the accelerator with ZigZag's own
parsers, builds ZigZag's `SpatialMappingGeneratorStage` for each layer exactly as `zigzag.api`
would (3 mappings generated, `enable_mix_spatial_mapping_generation` as given), and calls
`generate_spatial_mappings()`. It prints, one block per case:

    case <workload> <hardware> <mapping> mixed=<0|1>
    <layer name>\t<mapping 1>\t<mapping 2>\t...

where `<mapping>` is a file of ZigZag's `mapping` folder, or `<file>-nosm`: that file with every
`spatial_mapping` removed, so that ZigZag generates the spatial mappings (guided by the file's
`spatial_mapping_hint`s) instead of fitting the given ones; each mapping is ZigZag's own `str(SpatialMapping)`, e.g. `{D1: {K: 32}, D2: {C: 3}}`.
The cases: resnet18 on the five accelerators with their mapping files, with and without their
spatial mappings; resnet18 with the five `*_mixed` mapping files (mixed unrolling on), with and
without; mobilenetv2 on the five with their mapping files, with and without. Its output is
`tests/tests/spatial_generator.txt`, which `tests/tests/spatial_generator.rs` checks qc against.
"""

import logging
import os
import sys
import tempfile

import yaml

from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
from zigzag.parser.onnx.onnx_model_parser import ONNXModelParser
from zigzag.workload.layer_node import LayerNode

class _Leaf:
    """A stand-in for the stages after the generator (never run): `Stage` wants a leaf."""

    @staticmethod
    def is_leaf() -> bool:
        return True


ACCELERATORS = [
    ("tpu_like", "tpu_like"),
    ("edge_tpu_like", "edge_tpu_like"),
    ("ascend_like", "ascend_like"),
    ("meta_prototype", "meta_prototype_like"),
    ("tesla_npu_like", "tesla_npu_like"),
]


def cases():
    for hw, mp in ACCELERATORS:
        yield "resnet18", hw, mp, False
        yield "resnet18", hw, mp + "-nosm", False
    for hw, mp in ACCELERATORS:
        yield "resnet18", hw, mp + "_mixed", True
        yield "resnet18", hw, mp + "_mixed-nosm", True
    for hw, mp in ACCELERATORS:
        yield "mobilenetv2", hw, mp, False
        yield "mobilenetv2", hw, mp + "-nosm", False


def mapping_path(root: str, tmp: str, name: str) -> str:
    """The mapping file `name`; `<file>-nosm` is `<file>` with every `spatial_mapping` removed (so that
    ZigZag generates them, guided by the file's `spatial_mapping_hint`s), written under `tmp`."""
    if not name.endswith("-nosm"):
        return os.path.join(root, "mapping", name + ".yaml")
    with open(os.path.join(root, "mapping", name[: -len("-nosm")] + ".yaml"), encoding="utf-8") as f:
        entries = yaml.safe_load(f)
    for entry in entries:
        entry.pop("spatial_mapping", None)
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(entries, f)
    return path


def main() -> None:
    logging.disable(logging.CRITICAL)
    args = sys.argv[1:]
    here = os.path.dirname(os.path.abspath(__file__))
    root = args[0] if args else os.path.join(here, "..", "..", "shared", "peers", "zigzag-inputs", "zigzag", "inputs")
    tmp = tempfile.mkdtemp(prefix="spatial_candidates")
    for workload, hw, mp, mixed in cases():
        accelerator = AcceleratorParserStage.parse_accelerator(os.path.join(root, "hardware", hw + ".yaml"))
        parser = ONNXModelParser(
            os.path.join(root, "workload", workload + ".onnx"), mapping_path(root, tmp, mp)
        )
        graph = parser.run()
        print(f"case {workload} {hw} {mp} mixed={int(mixed)}")
        for layer in graph.topological_sort():
            if not isinstance(layer, LayerNode):
                continue
            stage = SpatialMappingGeneratorStage(
                [_Leaf],
                accelerator=accelerator,
                layer=layer,
                enable_mix_spatial_mapping_generation=mixed,
                nb_mappings_generated=3,
            )
            # As the stage's `run` does: all mappings first, then use them. (Limiting one candidate to the
            # memories' capacity can change the unrollings it shares with the candidates before it.)
            generated = list(stage.generate_spatial_mappings())
            mappings = [str(m) for m in generated]
            print("\t".join([layer.name, *mappings]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
