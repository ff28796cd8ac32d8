"""ONNX classifiers compiled to pure JAX functions (the `onnx` package parses; onnxruntime
is imported only by `runtime`, the opt-in executor of `--onnx_runtime`).

    model = rexjax.models.load("model.onnx")       # -> OnnxModel, like a zoo Model

Inputs: images [B, C, H, W], signals [B, C, N], volumes [B, C, D, H, W] (channels-first when
axis 1 is 1, 3 or 4, the ReX tool's rule, else channels-last) and tabular features [B, F];
the model takes x[B, *S, C] channels-last (`OnnxModel.input_shape`, features as [F, 1]).

Modules: `reader` (untrusted files -> a checked `onnx.ModelProto` and the SHA-256 of the
bytes read), `ops` (the op table: one function per ONNX op, numpy on concrete inputs,
jax.numpy on traced ones), `compile` (graph checks, input ranks and layouts;
`Graph.apply(params, x)`), `model` (`OnnxModel`, `load_onnx`), `runtime` (the same checked
file's forward passes by onnxruntime, a black box: `under_onnxruntime`).

ConvAD (`mask_mode="ad"`, `rexjax.ad`) walks the jaxpr of `OnnxModel.apply_fn`; the ops emit
the primitives the zoo emits (Conv: `conv_general_dilated` NHWC/HWIO, or the named
`depthwise_conv`; pools: `reduce_window_*`; global pools and Reduce*: `reduce_*`), and
attention written as `MatMul -> Softmax(axis=-1) -> MatMul` on [B, heads, N, d] is fused at
load into the zoo's named `attention` (`compile.fuse_attention`), so every op of the table
has a rule. Refused by ConvAD (`UnsupportedPrimitiveError`; painted mask modes work on every
graph): a MatMul/Gemm/Einsum of two masked activations outside that pattern, and reshapes
that fold the heads into the batch axis (dynamo's decomposition of
`scaled_dot_product_attention`). Checked on the ResNet, VGG, ConvNeXt, RegNetY,
EfficientNet-V2, Inception and ViT patterns, the real Lite0, and 1-D / 3-D CNNs
(`tests/models/onnx`).
"""

from rexjax.models.onnx.compile import UnsupportedOnnxOp, supported_ops
from rexjax.models.onnx.model import OnnxModel, load_onnx

__all__ = ["OnnxModel", "UnsupportedOnnxOp", "load_onnx", "supported_ops"]
