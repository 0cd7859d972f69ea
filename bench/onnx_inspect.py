"""The peer for `qc inspect`: load a model with the `onnx` Python package and summarise it
(IR version, opsets, node count, op histogram, parameter count and bytes), as a user would.

    python3 bench/onnx_inspect.py MODEL.onnx
"""
import collections
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main(path):
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    hist = collections.Counter((n.domain or "ai.onnx", n.op_type) for n in g.node)
    params = 0
    nbytes = 0
    for t in g.initializer:
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        params += n
        nbytes += len(t.raw_data) if t.HasField("raw_data") else n * 4
    print(f"ir {m.ir_version} opsets {[(o.domain, o.version) for o in m.opset_import]}")
    print(f"{len(g.node)} nodes, {len(g.initializer)} initializers, {params} parameters ({nbytes} bytes)")
    for (d, op), c in sorted(hist.items()):
        print(f"  {d} {op} {c}")


if __name__ == "__main__":
    main(sys.argv[1])
