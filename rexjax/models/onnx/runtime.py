"""`OnnxRuntimeModel`: an ONNX file executed by onnxruntime on the host, as a black box with
the `OnnxModel`'s interface (`preprocess`, `input_size`, `channels`, labels, `sha256`).

    compiled = rexjax.models.load("model.onnx")            # read, checked and compiled to JAX
    model = under_onnxruntime(compiled)                     # the same file, run by onnxruntime
    rexjax.explain(model.preprocess("photo.jpg"), model=model, key=key)

The file is read, checked against hostile input (`reader.read_model`) and compiled first, so
it is the same graph with the same input layout, size and outputs; only the forward pass
moves to an `onnxruntime.InferenceSession` on the CPU, reached through `jax.pure_callback`
(`rexjax.black_box.BlackBox`: whole batches, under jit and vmap). x f32[B, *S, C]
channels-last goes to the session in the graph's own layout (channels-first transposed
back) and the logits [B, K] come back.

Why: on a CPU onnxruntime's kernels push 2.5x the images per second that XLA:CPU gets from
the compiled graph (EfficientNet-Lite0: 141 against 56.8 images/s on 2 cores,
`benchmarks/results/bench_compare/2026-12-07-validation-onnx`), and a host round trip costs
1.05x per ReX explanation (`benchmarks/results/callback_cost`). What it costs: no gradients and no layers, so the
gradient baselines and `mask_mode="ad"` refuse it (`Classifier.require_gradients`), as for
any black box. onnxruntime is optional (`pip install 'rexjax[onnxruntime]'`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from rexjax.black_box import BlackBox
from rexjax.models.onnx.model import OnnxModel


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
        self.session = onnxruntime.InferenceSession(compiled.path, options, providers=["CPUExecutionProvider"])
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
        self.preprocessing = compiled.preprocessing
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


def under_onnxruntime(compiled: OnnxModel, *, threads: Optional[int] = None,
                      batch_size: Optional[int] = None) -> OnnxRuntimeModel:
    """`compiled`'s ONNX file run by onnxruntime (module doc), with `compiled`'s preprocessing
    and input size. ValueError (one line) when onnxruntime is not installed."""
    if not isinstance(compiled, OnnxModel):
        raise ValueError(f"compiled must be an OnnxModel (rexjax.models.load('x.onnx')), got {type(compiled).__name__}")
    return OnnxRuntimeModel(compiled, threads=threads, batch_size=batch_size)
