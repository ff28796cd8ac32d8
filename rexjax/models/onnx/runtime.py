"""`OnnxRuntimeModel`: an ONNX file executed by onnxruntime on the host, as a black box with
the `OnnxModel`'s interface (`preprocess`, `input_size`, `channels`, labels, `sha256`).

    compiled = rexjax.models.load("model.onnx")            # read, checked and compiled to JAX
    model = under_onnxruntime(compiled)                     # the same file, run by onnxruntime
    rexjax.explain(model, model.preprocess("photo.jpg"), key=key)

The session is built from the bytes the hostile-file reader checked (`reader.read_model`:
external data read into the graph), never from the path, and only when they hash to the
compiled model's `sha256`: onnxruntime runs exactly the graph that was checked and compiled,
with the same input layout, size and outputs. Only the forward pass moves to an
`onnxruntime.InferenceSession` on the CPU, reached through `jax.pure_callback`
(`rexjax.black_box.BlackBox`: whole batches, under jit and vmap). x f32[B, *S, C]
channels-last goes to the session in the graph's own layout (channels-first transposed
back) and the logits [B, K] come back.

Why: on a CPU onnxruntime's kernels push 2.5x the images per second that XLA:CPU gets from
the compiled graph (EfficientNet-Lite0: 141 against 56.8 images/s on 2 cores,
`benchmarks/results/bench_compare/2026-12-07-validation-onnx`), and a host round trip costs
1.05x per ReX explanation (`benchmarks/results/callback_cost`). What it costs: no gradients
and no layers, so the gradient baselines and `mask_mode="ad"` refuse it
(`Classifier.require_gradients`), as for any black box; the file is read a second time when
the session is built. onnxruntime is optional (`pip install 'rexjax[onnxruntime]'`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from rexjax.black_box import BlackBox
from rexjax.io import display_name
from rexjax.models.onnx.model import OnnxModel
from rexjax.models.onnx.reader import read_model_and_sha256


class OnnxRuntimeModel(BlackBox):
    """`compiled`'s file under onnxruntime (module doc); `compiled` is kept for its metadata.

    threads: onnxruntime's intra-op threads (None: its default, one per physical core).
    """

    executor = "onnxruntime"

    def __init__(self, compiled: OnnxModel, *, threads: Optional[int] = None, batch_size: Optional[int] = None):
        try:
            import onnxruntime
        except ImportError:
            raise ValueError("onnxruntime is not installed: pip install 'rexjax[onnxruntime]' "
                             "(or run the compiled graph, the default)") from None
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        self.compiled = compiled
        self.session = onnxruntime.InferenceSession(_checked_bytes(compiled), options,
                                                    providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name
        layout = compiled.input_layout
        # channels-last x[n, *S, C] -> the graph's layout: [n, F] rows, or channels moved to axis 1
        rank = len(compiled.input_shape)
        self._to_graph = ((0, rank, *range(1, rank)) if layout in ("NCW", "NCHW", "NCDHW") else None)
        self._flat = layout == "NF"
        super().__init__(self._run, compiled.input_shape, outputs="logits", batch_size=batch_size,
                         num_classes=compiled.num_classes, name=compiled.name)
        self.input_size = compiled.input_size
        self.channels = compiled.channels
        self.labels = compiled.labels
        self.sha256 = compiled.sha256
        self.path = compiled.path
        self.input_layout = layout

    def _run(self, x: np.ndarray) -> np.ndarray:
        """x f32[n, *S, C] channels-last -> f32[n, K] (one session call; one per example for a
        graph whose batch is baked to 1)."""
        if self._flat:
            x = x[..., 0]
        elif self._to_graph is not None:
            x = x.transpose(self._to_graph)
        x = np.ascontiguousarray(x, np.float32)
        if self.compiled.batched:
            return self.session.run(None, {self._input: x})[0]
        return np.concatenate([self.session.run(None, {self._input: x[i : i + 1]})[0] for i in range(len(x))])

    def preprocess(self, image):
        """As `OnnxModel.preprocess`: path / PIL image / uint8 array -> f32[H, W, C]."""
        return self.compiled.preprocess(image)

    @property
    def rank(self) -> int:
        return self.compiled.rank


def _checked_bytes(compiled: OnnxModel) -> bytes:
    """The serialized model `read_model` checked at `compiled.path` (every tensor inline),
    refused in one ValueError when the file no longer hashes to `compiled.sha256` (changed
    since it was loaded) or is too large to hand over in memory (protobuf's 2 GiB)."""
    model, sha256 = read_model_and_sha256(compiled.path)
    if sha256 != compiled.sha256:
        raise ValueError(f"{compiled.name}: {display_name(compiled.path)} changed since it was loaded "
                         f"(SHA-256 {sha256[:12]}, loaded {compiled.sha256[:12]}); load it again")
    if model.ByteSize() >= 2**31:
        raise ValueError(f"{compiled.name}: {model.ByteSize()} bytes with its weights inline, more than onnxruntime "
                         "takes in memory (2 GiB); run the compiled graph")
    return model.SerializeToString()


def under_onnxruntime(compiled: OnnxModel, *, threads: Optional[int] = None,
                      batch_size: Optional[int] = None) -> OnnxRuntimeModel:
    """`compiled`'s ONNX file run by onnxruntime (module doc), with `compiled`'s preprocessing
    and input size. ValueError (one line) when onnxruntime is not installed."""
    if not isinstance(compiled, OnnxModel):
        raise ValueError(f"compiled must be an OnnxModel (rexjax.models.load('x.onnx')), got {type(compiled).__name__}")
    return OnnxRuntimeModel(compiled, threads=threads, batch_size=batch_size)
