"""`qc optimize` against onnxsim and onnxslim, the Python half of bench/optimize_vs_simplifiers.sh.

    python bench/optimize_vs_simplifiers.py --out OUT_DIR --qc QC [--shared DIR] [--corpus DIR]
        [--variants float,ort] [--repeat N] [--timeout S] [--only TEXT] [--keep-outputs] [--no-build]

Runs in the venv the shell script makes (onnx, onnxruntime, onnxsim, onnxslim and torch, pinned
there). Three steps:

1. Builds the transformer models (below) into OUT_DIR/models, with OUT_DIR/models/models.json
   saying, per file, how it was made and the inputs to feed it (skipped with `--no-build`, which
   reads the models.json of an earlier run).
2. Lists the models to measure: every `*.onnx` under SHARED/models (sorted; a file whose sha256
   is in the corpus takes its inputs from corpus.json, since the PaddleOCR models have dynamic
   H and W), then the models of the real-model corpus (bench/real_corpus.sh) whose variant is in
   `--variants` (default `float,ort`: the original and onnxruntime's ORT_ENABLE_EXTENDED form)
   and that were not already listed (same sha256), then the built models. `--only TEXT` keeps
   the models whose name contains TEXT.
3. For each model, runs each tool on it as a separate process (the command a user types), in
   this order:
   - qc: `QC optimize MODEL -o OUT` (the default pipeline);
   - onnxsim: the `onnxsim MODEL OUT` command line of the venv (no `check_n`: onnxsim's own
     check with random inputs is off, as by default; z3 is not installed, so its certify step
     does not run either);
   - onnxslim: the `onnxslim MODEL OUT` command line of the venv.
   When a model has an input dim that is not a number (a name or unknown), every tool gets the
   dims fed below (`--overwrite-input-shape NAME:D0,D1,...` for qc and onnxsim,
   `--input-shapes NAME:D0,D1,...` for onnxslim), so that all three may fold shapes alike.

   Time is the wall-clock time of the whole process (start-up, reading, optimizing, writing),
   the best of `--repeat` runs (default 1); the CPU time (user + system, of the process and its
   children) of that run is in the JSON. onnxsim and onnxslim are Python programs: their time
   includes starting Python and importing the package, measured once at the start (the
   `import` line of the report) so that a reader can subtract it; qc's start-up is measured the
   same way (`qc --version`). A tool that exits non-zero or runs out of `--timeout` seconds
   (default 600) gets its error line in the cell and the JSON.

   Node count: every node of the model, Constant nodes included, and nodes inside subgraphs
   (If/Loop bodies) included.

   onnxruntime agreement: the original and each tool's output run in onnxruntime (CPU, graph
   optimizations off, one thread) on the same seeded inputs; each output of the original is
   compared with the output of the same name. For a float output, max abs is max |a - b| and
   rel is max |a - b| / max(1, max |b|) (b the original's; the floor of 1 as in
   bench/optimize_check.py, so an output of tiny magnitude is not judged by rounding alone); it
   agrees when rel <= 1e-4. Positions where both are NaN, or both the same infinity, count as
   equal. An integer or bool output agrees only when equal. `n/a` where onnxruntime cannot run
   the original (QONNX custom ops, ...).

   onnx.checker: `onnx.checker.check_model(PATH, full_check=True)` on the original and on each
   output (by path, so external data is found).

Inputs: numpy `default_rng(0)`, one draw per input in the order of the graph's inputs; dims not
given by a number are 1. For a model of SHARED/models: floats uniform in [-1, 1), integers in
0..2, bools 0..1 (the recipe of bench/optimize_check.py); corpus and built models: the recipe
their record names (`uniform01`: uniform [0, 1); `uniform11`: uniform [-1, 1); `int:LO..HI`;
`const:V`).

The built transformer models (torch.manual_seed(0) weights, batch 1, sequence 16, width 64,
4 heads, static shapes), each written at two opsets:
- opset 17 with torch's TorchScript exporter (`dynamo=False`): LayerNormalization exists, Gelu
  and Attention do not, so `nn.GELU` is written out with Erf;
- opset 23 with torch's dynamo exporter (`dynamo=True`, its default onnxscript optimizer on):
  LayerNormalization, Gelu (opset 20) and Attention (opset 23) exist, and the exporter uses them
  where it recognises the pattern.
The models:
- `vit_tiny`: a ViT: 32x32 image, 8x8 patch embedding (Conv), class token and position
  embedding, 2 pre-norm encoder blocks (nn.LayerNorm, one QKV Linear, F.scaled_dot_product_attention,
  MLP with nn.GELU), final LayerNorm, classifier on the class token;
- `bert_tiny`: a BERT-style encoder: `input_ids` and `attention_mask` (int64) inputs, word and
  position embedding Gathers, the additive padding mask `(1 - mask) * -10000`, 2 post-norm
  blocks with Q, K, V Linears, LayerNorm written out as the original BERT port wrote it
  (mean, variance, sqrt, divide, scale, shift) and GELU written out with erf; outputs the last
  hidden state and the pooled (Linear + Tanh) class token;
- `llama_block`: a decoder block: RMS normalization written out (x * rsqrt(mean(x^2) + eps) * w),
  attention with an additive causal mask, SwiGLU MLP (SiLU(gate) * up, then down);
- `gpt2_block`: a GPT-2 decoder block: nn.LayerNorm, one QKV Linear split in three, the causal
  mask applied with masked_fill (Where), GELU written out in its tanh form;
- `attention_block_32`: built with onnx.helper (not torch), the 32-node attention block of the
  issue that asked for this measurement: LayerNorm written out (ReduceMean, Sub, Pow,
  ReduceMean, Add epsilon, Sqrt, Div, Mul, Add: 9 nodes), Q/K/V projections as MatMul + Add
  (6), heads split by Reshape + Transpose (6) and K transposed again for K^T (1), the core
  (MatMul, Div by sqrt(d), Add of a causal mask, Softmax, MatMul: 5), heads merged by Transpose
  + Reshape (2), output projection MatMul + Add (2) and the residual Add (1). At opset 23 the
  same graph (ReduceMean's axes become an input there, so one more initializer, no more nodes).

Writes OUT_DIR/optimize_vs_simplifiers.md (versions, the table, the summary line, the failures)
and OUT_DIR/optimize_vs_simplifiers.json (every cell, with full error lines), and prints the
Markdown. Exit code: 1 when qc fails on a model, or qc's output disagrees with onnxruntime where
the original runs, or fails onnx.checker where the original passes it; else 0.
"""
import argparse
import hashlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

TOL = 1e-4
TOOLS = ("qc", "onnxsim", "onnxslim")
ELEM = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
    9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64,
}

# ----------------------------------------------------------------------------- building models

SEQ, WIDTH, HEADS = 16, 64, 4


def build_models(out_dir):
    """Writes the transformer models into out_dir; returns their records (also models.json)."""
    import torch  # only needed here

    os.makedirs(out_dir, exist_ok=True)
    records = []
    for name, make, inputs, spec, outputs, what in torch_models(torch):
        for opset, dynamo in ((17, False), (23, True)):
            torch.manual_seed(0)
            model = make().eval()
            path = os.path.join(out_dir, f"{name}.op{opset}.onnx")
            export(torch, model, inputs, path, opset, dynamo, list(spec), outputs)
            records.append(record(path, name, opset, spec, what,
                                  f"torch {torch.__version__} torch.onnx.export(dynamo={dynamo}, "
                                  f"opset_version={opset})"))
    for opset in (17, 23):
        path = os.path.join(out_dir, f"attention_block_32.op{opset}.onnx")
        m = attention_block_32(opset)
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, path)
        n = len(m.graph.node)
        if n != 32:
            raise SystemExit(f"attention_block_32 has {n} nodes, not 32")
        records.append(record(path, "attention_block_32", opset,
                              {"x": {"dims": [1, SEQ, WIDTH], "dtype": "float32", "fill": "uniform11"}},
                              "the 32-node attention block (see the docstring)",
                              f"onnx {onnx.__version__} onnx.helper"))
    with open(os.path.join(out_dir, "models.json"), "w") as f:
        json.dump(records, f, indent=1)
        f.write("\n")
    return records


def record(path, name, opset, spec, what, how):
    m = onnx.load(path)
    return {"file": os.path.basename(path), "model": name, "opset": opset, "inputs": spec,
            "what": what, "how": how, "nodes": count_nodes(m.graph),
            "ops": dict(sorted(op_histogram(m.graph).items()))}


def export(torch, model, inputs, path, opset, dynamo, input_names, output_names):
    import warnings

    kw = dict(opset_version=opset, dynamo=dynamo, input_names=input_names,
              output_names=output_names)
    if dynamo:
        kw.update(external_data=False, verbose=False)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, path, **kw)
    # The dynamo exporter may still leave a .data file next to small models in some versions:
    # make every file self-contained.
    m = onnx.load(path)
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    onnx.save(m, path)


def torch_models(torch):
    """(name, constructor, example inputs, input spec, output names, description) per model."""
    nn = torch.nn
    F = torch.nn.functional

    class Mlp(nn.Module):
        def __init__(self, d, hidden, act):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(d, hidden), act, nn.Linear(hidden, d)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class VitBlock(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.h = h
            self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = Mlp(d, 2 * d, nn.GELU())

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v)
            x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
            return x + self.mlp(self.ln2(x))

    class Vit(nn.Module):
        def __init__(self, d=WIDTH, patch=8, image=32, depth=2, classes=10):
            super().__init__()
            self.embed = nn.Conv2d(3, d, patch, patch)
            self.cls = nn.Parameter(0.02 * torch.randn(1, 1, d))
            self.pos = nn.Parameter(0.02 * torch.randn(1, (image // patch) ** 2 + 1, d))
            self.blocks = nn.ModuleList(VitBlock(d, HEADS) for _ in range(depth))
            self.norm, self.head = nn.LayerNorm(d, eps=1e-6), nn.Linear(d, classes)

        def forward(self, image):
            x = self.embed(image).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.norm(x)[:, 0])

    class BertLayerNorm(nn.Module):
        # written out, as the original PyTorch port of BERT did
        def __init__(self, d, eps=1e-12):
            super().__init__()
            self.weight, self.bias, self.eps = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d)), eps

        def forward(self, x):
            u = x.mean(-1, keepdim=True)
            s = (x - u).pow(2).mean(-1, keepdim=True)
            return self.weight * ((x - u) / torch.sqrt(s + self.eps)) + self.bias

    def gelu_erf(x):
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))

    class ErfGelu(nn.Module):
        def forward(self, x):
            return gelu_erf(x)

    class BertLayer(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.h = h
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln1, self.ln2 = BertLayerNorm(d), BertLayerNorm(d)
            self.mlp = Mlp(d, 2 * d, ErfGelu())

        def heads(self, x):
            b, n, d = x.shape
            return x.view(b, n, self.h, d // self.h).permute(0, 2, 1, 3)

        def forward(self, x, mask):
            b, n, d = x.shape
            q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.h) + mask
            c = torch.matmul(s.softmax(-1), v).permute(0, 2, 1, 3).contiguous().view(b, n, d)
            x = self.ln1(x + self.o(c))
            return self.ln2(x + self.mlp(x))

    class Bert(nn.Module):
        def __init__(self, d=WIDTH, vocab=100, depth=2):
            super().__init__()
            self.words, self.positions = nn.Embedding(vocab, d), nn.Embedding(SEQ, d)
            self.ln = BertLayerNorm(d)
            self.layers = nn.ModuleList(BertLayer(d, HEADS) for _ in range(depth))
            self.pool = nn.Linear(d, d)
            self.register_buffer("position_ids", torch.arange(SEQ).unsqueeze(0))

        def forward(self, input_ids, attention_mask):
            x = self.ln(self.words(input_ids) + self.positions(self.position_ids))
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
            for layer in self.layers:
                x = layer(x, mask)
            return x, torch.tanh(self.pool(x[:, 0]))

    class RmsNorm(nn.Module):
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.weight, self.eps = nn.Parameter(1.0 + 0.1 * torch.randn(d)), eps

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    class LlamaBlock(nn.Module):
        def __init__(self, d=WIDTH, h=HEADS):
            super().__init__()
            self.h = h
            self.n1, self.n2 = RmsNorm(d), RmsNorm(d)
            self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
            self.gate, self.up = nn.Linear(d, 2 * d, bias=False), nn.Linear(d, 2 * d, bias=False)
            self.down = nn.Linear(2 * d, d, bias=False)
            self.register_buffer("causal", torch.full((SEQ, SEQ), float("-inf")).triu(1))

        def forward(self, x):
            b, n, d = x.shape
            y = self.n1(x)

            def heads(t):
                return t.view(b, n, self.h, d // self.h).transpose(1, 2)

            q, k, v = heads(self.q(y)), heads(self.k(y)), heads(self.v(y))
            s = q @ k.transpose(2, 3) / math.sqrt(d // self.h) + self.causal
            a = (F.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
            x = x + self.o(a)
            y = self.n2(x)
            return x + self.down(F.silu(self.gate(y)) * self.up(y))

    class NewGelu(nn.Module):
        # GELU in its tanh form, written out as GPT-2's code does
        def forward(self, x):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    class Gpt2Block(nn.Module):
        def __init__(self, d=WIDTH, h=HEADS):
            super().__init__()
            self.h = h
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = Mlp(d, 4 * d, NewGelu())
            self.register_buffer("bias", torch.tril(torch.ones(SEQ, SEQ, dtype=torch.bool)).view(1, 1, SEQ, SEQ))

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = self.c_attn(self.ln1(x)).split(d, dim=2)
            q, k, v = (t.view(b, n, self.h, d // self.h).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.h))
            att = att.masked_fill(~self.bias[:, :, :n, :n], float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(b, n, d)
            x = x + self.c_proj(y)
            return x + self.mlp(self.ln2(x))

    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    ids = torch.randint(0, 100, (1, SEQ))
    mask = torch.ones(1, SEQ, dtype=torch.int64)
    hidden = torch.rand(1, SEQ, WIDTH) * 2 - 1
    f11 = {"dtype": "float32", "fill": "uniform11"}
    return [
        ("vit_tiny", Vit, (image,), {"image": {"dims": [1, 3, 32, 32], **f11}}, ["logits"],
         "ViT, 8x8 patches of a 32x32 image, 2 pre-norm encoder blocks, nn.LayerNorm, SDPA, nn.GELU"),
        ("bert_tiny", Bert, (ids, mask),
         {"input_ids": {"dims": [1, SEQ], "dtype": "int64", "fill": "int:0..99"},
          "attention_mask": {"dims": [1, SEQ], "dtype": "int64", "fill": "int:0..1"}},
         ["last_hidden_state", "pooled"],
         "BERT-style encoder, embedding Gathers, 2 post-norm blocks, LayerNorm and erf GELU written out"),
        ("llama_block", LlamaBlock, (hidden,), {"hidden": {"dims": [1, SEQ, WIDTH], **f11}}, ["out"],
         "decoder block, RMS norm written out, additive causal mask, SwiGLU (SiLU)"),
        ("gpt2_block", Gpt2Block, (hidden,), {"hidden": {"dims": [1, SEQ, WIDTH], **f11}}, ["out"],
         "GPT-2 decoder block, nn.LayerNorm, QKV Linear + split, masked_fill causal mask, tanh GELU written out"),
    ]


def attention_block_32(opset):
    """The 32-node attention block (see the module docstring), at the given opset."""
    rng = np.random.default_rng(0)
    d, h, n = WIDTH, HEADS, SEQ
    dh = d // h
    inits = []

    def const(name, value, dtype=np.float32):
        if all(t.name != name for t in inits):
            inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def weight(name, shape):
        return const(name, rng.normal(0.0, 0.1, shape))

    nodes = []

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def reduce_mean(x, out):
        if opset >= 18:  # axes became an input in opset 18
            return node("ReduceMean", [x, const("axes_last", [-1], np.int64)], out, keepdims=1)
        return node("ReduceMean", [x], out, axes=[-1], keepdims=1)

    # LayerNorm written out: 9 nodes
    mean = reduce_mean("x", "ln_mean")
    xc = node("Sub", ["x", mean], "ln_centered")
    sq = node("Pow", [xc, const("two", 2.0)], "ln_squared")
    var = reduce_mean(sq, "ln_var")
    ve = node("Add", [var, const("eps", 1e-5)], "ln_var_eps")
    std = node("Sqrt", [ve], "ln_std")
    xn = node("Div", [xc, std], "ln_normed")
    xg = node("Mul", [xn, weight("ln_gamma", [d])], "ln_scaled")
    hid = node("Add", [xg, weight("ln_beta", [d])], "ln_out")
    # Q, K, V: MatMul + Add each (6), heads: Reshape + Transpose each (6), K^T (1)
    split = const("heads_shape", [1, n, h, dh], np.int64)
    proj = {}
    for t in "qkv":
        mm = node("MatMul", [hid, weight(f"w{t}", [d, d])], f"{t}_matmul")
        proj[t] = node("Add", [mm, weight(f"b{t}", [d])], f"{t}_proj")
    heads = {}
    for t in "qkv":
        r = node("Reshape", [proj[t], split], f"{t}_split")
        heads[t] = node("Transpose", [r], f"{t}_heads", perm=[0, 2, 1, 3])
    kt = node("Transpose", [heads["k"]], "k_transposed", perm=[0, 1, 3, 2])
    # the core: 5 nodes
    s = node("MatMul", [heads["q"], kt], "scores")
    ss = node("Div", [s, const("sqrt_dh", math.sqrt(dh))], "scores_scaled")
    mask = np.triu(np.full((n, n), -10000.0, np.float32), 1)
    sm = node("Add", [ss, const("causal_mask", mask)], "scores_masked")
    p = node("Softmax", [sm], "probs", axis=-1)
    ctx = node("MatMul", [p, heads["v"]], "context")
    # merge heads (2), output projection (2), residual (1)
    ct = node("Transpose", [ctx], "context_merged", perm=[0, 2, 1, 3])
    c2 = node("Reshape", [ct, const("merged_shape", [1, n, d], np.int64)], "context_flat")
    o = node("MatMul", [c2, weight("wo", [d, d])], "out_matmul")
    ob = node("Add", [o, weight("bo", [d])], "out_proj")
    node("Add", ["x", ob], "y")
    graph = helper.make_graph(
        nodes, "attention_block_32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n, d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n, d])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="qc bench")
    m.ir_version = 8 if opset <= 17 else 10
    return m


# ----------------------------------------------------------------------------- the model list

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_spec(model):
    """Inputs of a shared model: the recipe of bench/optimize_check.py."""
    inits = {i.name for i in model.graph.initializer}
    spec = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in t.shape.dim]
        dt = ELEM.get(t.elem_type)
        if dt is None:
            spec[vi.name] = {"dims": dims, "dtype": f"elem_type {t.elem_type}", "fill": "unsupported"}
        elif np.issubdtype(dt, np.floating):
            spec[vi.name] = {"dims": dims, "dtype": np.dtype(dt).name, "fill": "uniform11"}
        elif dt is np.bool_:
            spec[vi.name] = {"dims": dims, "dtype": "bool", "fill": "int:0..1"}
        else:
            spec[vi.name] = {"dims": dims, "dtype": np.dtype(dt).name, "fill": "int:0..2"}
    return spec


def model_list(shared, corpus_dir, variants, built_dir, built):
    corpus = {}
    corpus_recs = []
    cj = os.path.join(corpus_dir, "corpus.json") if corpus_dir else None
    if cj and os.path.exists(cj):
        for rec in json.load(open(cj))["models"]:
            corpus[rec["sha256"]] = rec
            corpus_recs.append(rec)
    else:
        print(f"note: no corpus at {corpus_dir} (bench/real_corpus.sh builds it): "
              "its models are left out", file=sys.stderr)
    seen = set()
    entries = []
    models_dir = os.path.join(shared, "models")
    paths = []
    for root, _, files in os.walk(models_dir):
        paths += [os.path.join(root, f) for f in files if f.endswith(".onnx")]
    for path in sorted(paths):
        digest = sha256(path)
        seen.add(digest)
        rel = os.path.relpath(path, models_dir)
        if digest in corpus:
            spec, src = corpus[digest]["inputs"], "shared (inputs from corpus.json)"
        else:
            spec, src = None, "shared"
        entries.append({"name": rel, "group": "shared", "path": path, "spec": spec, "source": src})
    for rec in corpus_recs:
        if rec["variant"] not in variants or rec["sha256"] in seen:
            continue
        seen.add(rec["sha256"])
        entries.append({"name": rec["file"], "group": f"corpus:{rec['variant']}",
                        "path": os.path.join(corpus_dir, rec["file"]), "spec": rec["inputs"],
                        "source": rec["source"] if "source" in rec else rec.get("recipe", "")})
    for rec in built:
        entries.append({"name": rec["file"], "group": f"built:op{rec['opset']}",
                        "path": os.path.join(built_dir, rec["file"]), "spec": rec["inputs"],
                        "source": rec["how"]})
    return entries


# ----------------------------------------------------------------------------- measuring

def count_nodes(graph):
    n = 0
    for node in graph.node:
        n += 1
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                n += count_nodes(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                n += sum(count_nodes(g) for g in a.graphs)
    return n


def op_histogram(graph, hist=None):
    hist = {} if hist is None else hist
    for node in graph.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        hist[key] = hist.get(key, 0) + 1
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                op_histogram(a.g, hist)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    op_histogram(g, hist)
    return hist


def make_inputs(spec):
    rng = np.random.default_rng(0)
    feeds = {}
    for name, s in spec.items():
        if s["fill"] == "unsupported":
            raise ValueError(f"input {name}: {s['dtype']} is not fed by this script")
        dtype = np.dtype(s["dtype"])
        fill = s["fill"]
        if fill == "uniform01":
            feeds[name] = rng.uniform(0.0, 1.0, s["dims"]).astype(dtype)
        elif fill == "uniform11":
            feeds[name] = rng.uniform(-1.0, 1.0, s["dims"]).astype(dtype)
        elif fill.startswith("const:"):
            v = fill[6:]
            feeds[name] = np.full(s["dims"], int(v) if dtype.kind in "iub" else float(v), dtype)
        elif fill.startswith("int:"):
            lo, hi = (int(v) for v in fill[4:].split(".."))
            feeds[name] = rng.integers(lo, hi + 1, s["dims"]).astype(dtype)
        else:
            raise ValueError(f"input {name}: fill {fill}")
    return feeds


def needs_shapes(model, spec):
    """The NAME:D0,D1,... of each input whose declared dims are not all numbers (or differ from
    the dims fed); empty when every tool can take the model as it is."""
    declared = {vi.name: vi.type.tensor_type.shape for vi in model.graph.input}
    out = []
    for name, s in spec.items():
        shape = declared.get(name)
        if shape is None or not s["dims"]:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
        if dims != list(s["dims"]):
            out.append(f"{name}:{','.join(map(str, s['dims']))}")
    return out


def with_dims(model, spec, shapes, path):
    """A copy of `model` at `path` whose inputs named in `shapes` have the dims fed: what every
    tool is asked to optimize for, before any tool touches it."""
    named = {s.split(":", 1)[0] for s in shapes}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        if vi.name in named:
            vi.type.tensor_type.shape.ClearField("dim")
            for d in spec[vi.name]["dims"]:
                vi.type.tensor_type.shape.dim.add().dim_value = d
    onnx.save(m, path)


def short(s, n=80):
    s = str(s).strip()
    s = s.splitlines()[0] if s else ""
    s = s.replace("|", "/")
    return s if len(s) <= n else s[: n - 1] + "…"


def error_line(stderr):
    """The line of a tool's stderr that says what went wrong: qc's first miette `×` line, else
    the last line that looks like an error (a Python exception's last line), else the last line."""
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for l in lines:
        if l.startswith("×") and "is not a valid model" not in l:
            return l.lstrip("× ").strip()
    for l in reversed(lines):
        if "Error" in l or l.lower().startswith("error") or "error:" in l.lower():
            return l
    return lines[-1] if lines else ""


def timed(cmd, timeout):
    """Runs cmd; returns (exit code or 'timeout', wall seconds, cpu seconds, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = "timeout", f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, wall, cpu, err


def tool_command(tool, exe, model, out, shapes):
    if tool == "qc":
        cmd = [exe, "optimize", model, "-o", out]
        for s in shapes:
            cmd += ["--overwrite-input-shape", s]
    elif tool == "onnxsim":
        cmd = [exe, model, out] + (["--overwrite-input-shape", *shapes] if shapes else [])
    else:
        cmd = [exe, model, out] + (["--input-shapes", *shapes] if shapes else [])
    return cmd


def remove_output(path):
    for p in (path, path + ".data"):
        if os.path.exists(p):
            os.remove(p)
    d = os.path.dirname(path)
    # onnxsim and onnxslim may write external data under other names next to the output
    base = os.path.basename(path)
    for f in os.listdir(d):
        if f.startswith(base) and f != base:
            os.remove(os.path.join(d, f))


def session(path):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.log_severity_level = 4  # failures are caught and reported; keep stderr for progress
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_run(path, feeds):
    s = session(path)
    names = [o.name for o in s.get_outputs()]
    wanted = {i.name for i in s.get_inputs()}
    return dict(zip(names, s.run(None, {k: v for k, v in feeds.items() if k in wanted})))


def ort_error(e):
    s = str(e).strip()
    for marker in ("failed:", "Failed to load model with error: "):
        if marker in s:
            s = s.split(marker, 1)[1].strip()
    return s


def compare(got, ref):
    """(ok, max abs, rel, why) of got against ref over every output of ref."""
    worst_abs, worst_rel, ok, why = 0.0, 0.0, True, ""
    for name, b in ref.items():
        if name not in got:
            return False, None, None, f"output {name} missing"
        a = got[name]
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False, None, None, f"output {name}: shape {list(a.shape)} vs {list(b.shape)}"
        if not b.size:
            continue
        if b.dtype.kind in "fc" or a.dtype.kind in "fc":
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
            d = np.where(same, 0.0, np.abs(a64 - b64))
            d = np.where(np.isnan(d), np.inf, d)
            finite = np.abs(b64[np.isfinite(b64)])
            scale = max(1.0, float(finite.max()) if finite.size else 1.0)
            m = float(d.max())
            worst_abs, worst_rel = max(worst_abs, m), max(worst_rel, m / scale)
            if m / scale > TOL:
                ok, why = False, f"output {name}: rel {m / scale:.1e}"
        else:
            m = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            worst_abs = max(worst_abs, m)
            worst_rel = max(worst_rel, m / max(1.0, float(np.max(np.abs(b.astype(np.float64))))))
            if m != 0:
                ok, why = False, f"output {name}: integers differ by up to {m:g}"
    return ok, worst_abs, worst_rel, why


def checker(path):
    try:
        onnx.checker.check_model(path, full_check=True)
        return "ok"
    except Exception as e:  # noqa: BLE001
        return "FAIL: " + short(e, 300)


def measure(entry, exes, work, repeat, timeout, keep):
    path = entry["path"]
    model = onnx.load(path, load_external_data=False)
    spec = entry["spec"] if entry["spec"] is not None else default_spec(model)
    row = {"name": entry["name"], "group": entry["group"], "source": entry["source"],
           "path": path, "nodes": count_nodes(model.graph), "inputs": spec,
           "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import}}
    shapes = needs_shapes(model, spec)
    row["shapes_given"] = shapes
    row["checker"] = checker(path)
    ref = None
    stem = entry["name"].replace(os.sep, "__")
    if stem.endswith(".onnx"):
        stem = stem[:-5]
    try:
        feeds = make_inputs(spec)
        ref = ort_run(path, feeds)
    except Exception as e:  # noqa: BLE001
        row["ort_error"] = short(ort_error(e), 300)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    if ref is not None and shapes and not external:
        # The tools optimize for the dims given; where onnxruntime refuses the original itself
        # once those dims are written into its inputs (a branch dead at those dims whose static
        # shapes then contradict), no tool's output can load and there is nothing to compare.
        fixed = os.path.join(work, stem + ".dims-given.onnx")
        try:
            with_dims(model, spec, shapes, fixed)
            session(fixed)
        except Exception as e:  # noqa: BLE001
            row["ort_error"] = ("onnxruntime refuses the original with the input dims given: "
                                + short(ort_error(e), 240))
            ref = None
        finally:
            if os.path.exists(fixed):
                os.remove(fixed)
    for tool in TOOLS:
        tdir = os.path.join(work, tool)
        os.makedirs(tdir, exist_ok=True)
        out = os.path.join(tdir, stem + ".onnx")
        cell = {"command": " ".join(tool_command(tool, os.path.basename(exes[tool]), os.path.basename(path),
                                                 os.path.basename(out), shapes))}
        best = None
        for _ in range(repeat):
            if os.path.exists(out):
                remove_output(out)
            rc, wall, cpu, err = timed(tool_command(tool, exes[tool], path, out, shapes), timeout)
            if rc != 0:
                best = (rc, wall, cpu, err)
                break
            if best is None or wall < best[1]:
                best = (rc, wall, cpu, err)
        rc, wall, cpu, err = best
        cell.update(rc=rc, seconds=round(wall, 4), cpu_seconds=round(cpu, 4))
        if rc != 0 or not os.path.exists(out):
            cell["error"] = error_line(err) or f"exit {rc}, no output written"
            if rc == 0:
                cell["rc"] = "no output"
            row[tool] = cell
            continue
        try:
            m = onnx.load(out, load_external_data=False)
            cell["nodes"] = count_nodes(m.graph)
            cell["ops"] = dict(sorted(op_histogram(m.graph).items()))
        except Exception as e:  # noqa: BLE001
            cell["nodes"] = None
            cell["error"] = "unreadable output: " + short(e, 200)
        cell["checker"] = checker(out)
        if ref is None:
            cell["ort"] = "n/a"
        else:
            try:
                ok, ab, rel, why = compare(ort_run(out, feeds), ref)
                cell.update(ort_ok=ok, max_abs=ab, max_rel=rel)
                if why:
                    cell["ort"] = why
            except Exception as e:  # noqa: BLE001
                cell.update(ort_ok=False, ort="onnxruntime fails: " + short(ort_error(e), 300))
        row[tool] = cell
        if not keep:
            remove_output(out)
    return row


# ----------------------------------------------------------------------------- reporting

def fmt_time(s):
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def node_cell(row, tool):
    c = row[tool]
    if c.get("nodes") is not None:
        return str(c["nodes"])
    return "timeout" if c["rc"] == "timeout" else "error"


def time_cell(row, tool):
    c = row[tool]
    return fmt_time(c["seconds"]) + ("" if c["rc"] == 0 else " (failed)")


def ort_cell(row, tool):
    c = row[tool]
    if "nodes" not in c:
        return "-"
    if c.get("ort") == "n/a":
        return "n/a"
    if c.get("ort_ok"):
        return f"ok {c['max_rel']:.0e}" if c["max_rel"] else "ok 0"
    if c.get("max_rel") is not None:
        return f"**FAIL** {c['max_rel']:.0e}"
    return "**FAIL**"


def checker_cell(c):
    return "ok" if c == "ok" else "FAIL"


def qc_failures(row):
    """What is wrong with qc's result on this row (empty when nothing)."""
    c = row["qc"]
    bad = []
    if c.get("nodes") is None:
        bad.append(f"qc optimize failed: {c.get('error', '')}")
        return bad
    if "ort_ok" in c and not c["ort_ok"]:
        why = c.get("ort", "")
        bad.append(f"on qc's output, {why}" if why.startswith("onnxruntime fails")
                   else f"onnxruntime's outputs differ from the original's: {why}")
    if c["checker"] != "ok" and row["checker"] == "ok":
        bad.append(f"onnx.checker fails where the original passes: {c['checker']}")
    return bad


def valid(cell):
    """A tool's output counts for the node comparison when it was written and onnxruntime does
    not show it wrong (it agrees, or onnxruntime cannot run the original): a smaller wrong model
    is no win."""
    return cell.get("nodes") is not None and cell.get("ort_ok", True)


def summary(rows):
    peers = ("onnxsim", "onnxslim")
    cmp = [r for r in rows if any(valid(r[t]) for t in peers)]
    best = {id(r): min(r[t]["nodes"] for t in peers if valid(r[t])) for r in cmp}
    le = [r for r in cmp if valid(r["qc"]) and r["qc"]["nodes"] <= best[id(r)]]
    lt = [r for r in le if r["qc"]["nodes"] < best[id(r)]]
    all3 = [r for r in rows if all(r[t].get("nodes") is not None for t in TOOLS)]
    faster = sum(r["qc"]["seconds"] < min(r["onnxsim"]["seconds"], r["onnxslim"]["seconds"]) for r in all3)
    tally = {"models": len(rows),
             "qc nodes <= the best correct output of onnxsim and onnxslim":
                 f"{len(le)} of {len(cmp)} ({len(lt)} fewer, {len(le) - len(lt)} equal)",
             "qc more nodes on": ", ".join(f"{r['name']} ({r['qc'].get('nodes')} vs {best[id(r)]})"
                                           for r in cmp if r not in le) or "none",
             "qc faster than both (models all three wrote)": f"{faster} of {len(all3)}"}
    if all3:
        ratios = sorted(min(r["onnxsim"]["seconds"], r["onnxslim"]["seconds"]) / max(r["qc"]["seconds"], 1e-9)
                        for r in all3)
        tally["time of the faster of the two / qc's (median, min)"] = (
            f"{ratios[len(ratios) // 2]:.0f}x, {ratios[0]:.0f}x")
    for t in TOOLS:
        ran = [r for r in rows if "ort_ok" in r[t]]
        wrote = [r for r in rows if r[t].get("nodes") is not None]
        ok0 = [r for r in wrote if r["checker"] == "ok"]
        tally[t] = (f"wrote {len(wrote)} of {len(rows)}, onnxruntime agrees on "
                    f"{sum(r[t]['ort_ok'] for r in ran)} of {len(ran)}, onnx.checker accepts "
                    f"{sum(r[t].get('checker') == 'ok' for r in ok0)} of the {len(ok0)} whose original it accepts")
    return tally


def report(rows, versions, startup, seconds):
    head = ["model", "group", "nodes orig.", "qc", "onnxsim", "onnxslim", "time qc", "onnxsim",
            "onnxslim", "ORT qc", "onnxsim", "onnxslim", "checker orig.", "qc", "onnxsim", "onnxslim"]
    lines = ["# `qc optimize` against onnxsim and onnxslim", "",
             f"`bench/optimize_vs_simplifiers.sh`: {versions}; {len(rows)} models, {seconds:.0f} s.",
             "Start-up and import alone (best of 3): "
             + ", ".join(f"{k} {fmt_time(v)}" for k, v in startup.items()) + ".",
             "Nodes: every node, Constant and subgraph nodes included. Time: the whole process, wall "
             "clock. ORT: largest |a - b| / max(1, max |original|) over the outputs, ok when <= 1e-4 "
             "(integers: equal). How each is measured: `bench/optimize_vs_simplifiers.py`.", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * 7 + "---|" * 7]
    for r in rows:
        cells = [f"`{r['name']}`", r["group"], str(r["nodes"])]
        cells += [node_cell(r, t) for t in TOOLS]
        cells += [time_cell(r, t) for t in TOOLS]
        cells += [ort_cell(r, t) for t in TOOLS] if "ort_error" not in r else ["n/a"] * 3
        cells += [checker_cell(r["checker"])]
        cells += [checker_cell(r[t]["checker"]) if "checker" in r[t] else "-" for t in TOOLS]
        lines.append("| " + " | ".join(cells) + " |")
    tally = summary(rows)
    lines += ["", "Summary: " + "; ".join(f"{k}: {v}" for k, v in tally.items()) + "."]
    notes = []
    for r in rows:
        if "ort_error" in r:
            notes.append(f"- `{r['name']}`: onnxruntime cannot run the original: {short(r['ort_error'], 160)}")
        if r["checker"] != "ok":
            notes.append(f"- `{r['name']}`: onnx.checker refuses the original: {short(r['checker'][6:], 160)}")
        if r["shapes_given"]:
            notes.append(f"- `{r['name']}`: input dims given to every tool: {' '.join(r['shapes_given'])}")
        for t in TOOLS:
            c = r[t]
            if c.get("nodes") is None:
                notes.append(f"- `{r['name']}`, {t}: {c['rc']}: {short(c.get('error', ''), 200)}")
            elif c.get("ort") and c.get("ort") != "n/a":
                notes.append(f"- `{r['name']}`, {t}: {short(c['ort'], 200)}")
            if c.get("checker", "ok") != "ok" and r["checker"] == "ok":
                notes.append(f"- `{r['name']}`, {t}: onnx.checker: {short(c['checker'][6:], 200)}")
    if notes:
        lines += ["", "Notes and failures:", ""] + notes
    bad = [(r["name"], b) for r in rows for b in qc_failures(r)]
    if bad:
        lines += ["", "qc failures (these make the script exit 1):", ""]
        lines += [f"- `{n}`: {short(b, 200)}" for n, b in bad]
    return "\n".join(lines) + "\n", tally, bad


def startup_times(exes):
    out = {}
    py = sys.executable
    for name, cmd in (("qc (`qc --version`)", [exes["qc"], "--version"]),
                      ("python + `import onnxsim`", [py, "-c", "import onnxsim"]),
                      ("python + `import onnxslim`", [py, "-c", "import onnxslim"])):
        out[name] = min(timed(cmd, 120)[1] for _ in range(3))
    return out


def repo_head():
    """The commit the working directory is at, `+ changes` when files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" + changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--qc", required=True)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--corpus", default="target/real-corpus")
    ap.add_argument("--variants", default="float,ort")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--only", default="")
    ap.add_argument("--keep-outputs", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.time()
    out = os.path.abspath(a.out)
    built_dir = os.path.join(out, "models")
    if a.no_build:
        built = json.load(open(os.path.join(built_dir, "models.json")))
    else:
        built = build_models(built_dir)
        print(f"built {len(built)} transformer models into {built_dir}", file=sys.stderr)
    bindir = os.path.dirname(sys.executable)
    exes = {"qc": os.path.abspath(a.qc), "onnxsim": os.path.join(bindir, "onnxsim"),
            "onnxslim": os.path.join(bindir, "onnxslim")}
    for t, e in exes.items():
        if not os.access(e, os.X_OK):
            raise SystemExit(f"no {t} at {e}")
    entries = model_list(a.shared, a.corpus, set(a.variants.split(",")), built_dir, built)
    if a.only:
        entries = [e for e in entries if a.only in e["name"]]
    work = os.path.join(out, "outputs")
    os.makedirs(work, exist_ok=True)
    startup = startup_times(exes)
    rows = []
    for e in entries:
        t1 = time.time()
        row = measure(e, exes, work, a.repeat, a.timeout, a.keep_outputs)
        rows.append(row)
        print(f"{e['name']}: {row['nodes']} -> " + " / ".join(node_cell(row, t) for t in TOOLS)
              + f" ({time.time() - t1:.1f} s)", file=sys.stderr, flush=True)
    qc_version = subprocess.run([exes["qc"], "--version"], capture_output=True, text=True).stdout.strip()
    import onnxsim
    import onnxslim
    versions = (f"{time.strftime('%Y-%m-%d', time.gmtime())}, repository at {repo_head()}; "
                f"{qc_version} (`{os.path.relpath(exes['qc'])}`), onnxsim {onnxsim.__version__.lstrip('v')}, "
                f"onnxslim {onnxslim.__version__}, onnx {onnx.__version__}, "
                f"onnxruntime {ort.__version__}, Python {platform.python_version()}")
    text, tally, bad = report(rows, versions, startup, time.time() - t0)
    md = os.path.join(out, "optimize_vs_simplifiers.md")
    with open(md, "w") as f:
        f.write(text)
    with open(os.path.splitext(md)[0] + ".json", "w") as f:
        json.dump({"versions": versions, "startup_seconds": startup, "tolerance": TOL,
                   "summary": tally, "qc_failures": bad, "models": rows}, f, indent=1)
        f.write("\n")
    print(text)
    print(f"table: {md}, every cell: {os.path.splitext(md)[0]}.json", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
