"""ONNX classifiers compiled to pure JAX functions (the `onnx` package parses; onnxruntime
is never imported here).

    model = rexjax.models.load("model.onnx")       # -> OnnxModel, like a zoo Model

Modules: `reader` (untrusted files -> a checked `onnx.ModelProto`), `ops` (the op table:
one function per ONNX op, numpy on concrete inputs, jax.numpy on traced ones), `compile`
(graph checks, topological order, layouts; `Graph.apply(params, x)`), `model`
(`OnnxModel`, `load_onnx`).
"""

from rexjax.models.onnx.compile import UnsupportedOnnxOp, supported_ops
from rexjax.models.onnx.model import OnnxModel, load_onnx

__all__ = ["OnnxModel", "UnsupportedOnnxOp", "load_onnx", "supported_ops"]
