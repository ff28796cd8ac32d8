"""ONNX classifiers compiled to pure JAX functions (the `onnx` package parses; onnxruntime
is never imported here).

    model = rexjax.models.load("model.onnx")       # -> OnnxModel, like a zoo Model

Modules: `reader` (untrusted files -> a checked `onnx.ModelProto`), `ops` (the op table:
one function per ONNX op, numpy on concrete inputs, jax.numpy on traced ones), `compile`
(graph checks, topological order, layouts; `Graph.apply(params, x)`), `model`
(`OnnxModel`, `load_onnx`).

ConvAD (`mask_mode="ad"`, `rexjax.ad`) walks the jaxpr of `OnnxModel.apply_fn`; the ops emit
the primitives the zoo emits (Conv: `conv_general_dilated` NHWC/HWIO, or the named
`depthwise_conv`; pools: `reduce_window_*`; global pools and Reduce*: `reduce_*`), and
attention written as `MatMul -> Softmax(axis=-1) -> MatMul` on [B, heads, N, d] is fused at
load into the zoo's named `attention` (`compile.fuse_attention`), so every op of the table
has a rule. Refused by ConvAD (`UnsupportedPrimitiveError`; painted mask modes work on every
graph): a MatMul/Gemm/Einsum of two masked activations outside that pattern, and reshapes
that fold the heads into the batch axis (dynamo's decomposition of
`scaled_dot_product_attention`). Checked on the ResNet, VGG, ConvNeXt, RegNetY,
EfficientNet-V2, Inception and ViT patterns and the real Lite0 (`tests/models/onnx`).
"""

from rexjax.models.onnx.compile import UnsupportedOnnxOp, supported_ops
from rexjax.models.onnx.model import OnnxModel, load_onnx

__all__ = ["OnnxModel", "UnsupportedOnnxOp", "load_onnx", "supported_ops"]
