"""ONNX classifiers compiled to pure JAX functions (the `onnx` package parses; onnxruntime
is never imported here).

    model = rexjax.models.load("model.onnx")       # -> OnnxModel, like a zoo Model

Modules: `reader` (untrusted files -> a checked `onnx.ModelProto`), `ops` (the op table:
one function per ONNX op, numpy on concrete inputs, jax.numpy on traced ones), `compile`
(graph checks, topological order, layouts; `Graph.apply(params, x)`), `model`
(`OnnxModel`, `load_onnx`).

ConvAD (`mask_mode="ad"`, `rexjax.ad`) walks the jaxpr of `OnnxModel.apply_fn`; the ops emit
the primitives the zoo emits (Conv: `conv_general_dilated` NHWC/HWIO, or the named
`depthwise_conv`; pools: `reduce_window_*`; global pools and Reduce*: `reduce_*`), so every
op of the table has a rule, with one exception: a MatMul, Gemm or Einsum whose two operands
both carry masked activations (the attention scores and mixing of a ViT) is refused by
ConvAD with `UnsupportedPrimitiveError` (the zoo's ViTs use a named attention function for
that); painted mask modes work on every graph. Checked on imported CNNs of the ResNet,
VGG, ConvNeXt, RegNetY, EfficientNet-V2, Inception patterns and the real Lite0.
"""

from rexjax.models.onnx.compile import UnsupportedOnnxOp, supported_ops
from rexjax.models.onnx.model import OnnxModel, load_onnx

__all__ = ["OnnxModel", "UnsupportedOnnxOp", "load_onnx", "supported_ops"]
