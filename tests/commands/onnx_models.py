"""Tiny ONNX classifiers built with `onnx.helper` for the command-line tests, and the outside
answers to check them against (onnxruntime on the ReX tool's own preprocessing, re-derived
here with PIL and numpy).

    cnn(path, channels, size, classes)   Conv 3x3 -> Relu -> GlobalAveragePool -> Flatten -> Gemm,
                                         NCHW input [N, C, H, W] (N symbolic), logits [N, K]
    binary(path, channels, size)         the same with one output and a Sigmoid: p(class 1) [N, 1]
    cnn(..., extra_op="Hardmax")         an op the compiler refuses, after the Gemm
    tool_input(image, size, ...)         f32[1, C, H, W]: the tool's generic pipeline
    ort_probs(path, x)                   onnxruntime's output for x, softmaxed for K > 1

Weights are seeded random numbers: each test's numbers come from onnxruntime, not from them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
FEATURES = 6  # conv output channels


def _model(path, channels: int, size: tuple[int, int], outputs: int, seed: int, tail: list, out_name: str) -> str:
    rng = np.random.default_rng(seed)
    h, w = size
    inits = [
        numpy_helper.from_array(rng.standard_normal((FEATURES, channels, 3, 3)).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(rng.standard_normal(FEATURES).astype(np.float32) * 0.1, "conv.bias"),
        numpy_helper.from_array(rng.standard_normal((outputs, FEATURES)).astype(np.float32) * 0.3, "fc.weight"),
        numpy_helper.from_array(rng.standard_normal(outputs).astype(np.float32) * 0.1, "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["conv"], name="conv", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["gemm" if tail else out_name], name="fc", transB=1),
        *tail,
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, h, w])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", outputs])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def cnn(path, channels: int = 3, size: tuple[int, int] = (12, 12), classes: int = 3, seed: int = 0,
        extra_op: str | None = None) -> str:
    """A K-class CNN (logits); `extra_op` adds one node of that type after the Gemm."""
    tail = [helper.make_node(extra_op, ["gemm"], ["logits"], name=f"{extra_op.lower()}_1")] if extra_op else []
    return _model(path, channels, size, classes, seed, tail, "logits")


def binary(path, channels: int = 3, size: tuple[int, int] = (12, 12), seed: int = 0) -> str:
    """A one-output CNN ending in Sigmoid: its output is p(class 1)."""
    return _model(path, channels, size, 1, seed, [helper.make_node("Sigmoid", ["gemm"], ["prob"], name="sigmoid")],
                  "prob")


def tool_input(image, size: tuple[int, int], channels: int = 3, norm: float = 255.0, means=None,
               stds=None) -> np.ndarray:
    """The ReX tool's generic pipeline (`generic_image_preprocess`), re-derived: the image in
    the model's PIL mode, resized whole to (H, W) with PIL bicubic, float32, / norm, then per
    channel - mean, / std when given; NCHW with a batch axis: f32[1, C, H, W]."""
    h, w = size
    with Image.open(image) as im:
        pil = im.convert(MODES[channels]).resize((w, h), Image.Resampling.BICUBIC)
    x = np.asarray(pil, np.float32).reshape(h, w, channels) / np.float32(norm)
    if means is not None:
        x = x - np.asarray(means, np.float32)
    if stds is not None:
        x = x / np.asarray(stds, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def ort_probs(path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's first output for x f32[B, C, H, W]: softmax over K for K > 1, as is for
    one output (the sigmoid's p)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x})[0].astype(np.float64)
    if out.shape[-1] == 1:
        return out
    e = np.exp(out - out.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
