"""EfficientNet-V2-S in Flax linen (NHWC), weight-compatible with torchvision `efficientnet_v2_s`.

Architecture (Tan & Le 2021, torchvision `EfficientNet(inverted_residual_setting, ...)`):
stem conv3x3/2 -> BN -> SiLU, then stages of
  * Fused-MBConv: expand ratio e != 1: `bn(conv1x1(silu(bn(conv kxk/s x))))`, e == 1: one
    `silu(bn(conv kxk/s x))`;
  * MBConv: `bn(conv1x1( se( silu(bn(dwconv kxk/s( silu(bn(conv1x1 x)) ))) ) ))` with SE
    `h * sigmoid(fc2(silu(fc1(mean_hw h))))`, `max(1, Cin // 4)` reduced channels;
  identity skip when stride 1 and Cin == Cout (stochastic depth is identity at eval);
then conv1x1 (1280) -> BN -> SiLU -> global average pool -> (Dropout) -> Linear.
BN eps is **1e-3** (torchvision passes `partial(nn.BatchNorm2d, eps=1e-3)` for V2); all
padding symmetric `(k-1)//2`. Depthwise convs use `rexjax.models.layers.depthwise_conv`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.model import ModelSpec
from rexjax.models.torch_port import convert_torch, dotted_key, feature, imagenet_preprocess
from rexjax.models.layers import DepthwiseConv

BN_EPS = 1e-3


@dataclass(frozen=True)
class StageConfig:
    """torchvision `FusedMBConvConfig` / `MBConvConfig(expand, kernel, stride, in, out, layers)`."""

    fused: bool
    expand: int
    kernel: int
    stride: int
    cin: int
    cout: int
    layers: int


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision `_make_divisible`: round to a multiple of `divisor`, never < 90 % of v."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


@dataclass(frozen=True)
class EfficientNetV2Config:
    stages: tuple[StageConfig, ...]
    stem_width: int | None = None  # default: first stage's input width (torchvision)
    last_channel: int = 1280
    num_classes: int = 1000

    def __post_init__(self):
        if not self.stages:
            raise ValueError("stages must be non-empty")
        for s in self.stages:
            if s.layers < 1 or s.expand < 1 or s.kernel < 1 or s.stride not in (1, 2):
                raise ValueError(f"bad stage config {s}")


S = StageConfig
CONFIGS = {
    "efficientnet_v2_s": EfficientNetV2Config(
        stages=(
            S(True, 1, 3, 1, 24, 24, 2),
            S(True, 4, 3, 2, 24, 48, 4),
            S(True, 4, 3, 2, 48, 64, 4),
            S(False, 4, 3, 2, 64, 128, 6),
            S(False, 6, 3, 1, 128, 160, 9),
            S(False, 6, 3, 2, 160, 256, 15),
        ),
        last_channel=1280,
    ),
}


def _conv_bn(x, features: int, kernel: int, stride: int, prefix: str, act: bool, depthwise: bool = False):
    """Conv2dNormActivation as two sibling modules `<prefix>_0` (conv) and `<prefix>_1` (BN);
    must be called inside a compact method (modules bind to the calling module)."""
    p = (kernel - 1) // 2
    pad = ((p, p), (p, p))
    if depthwise:
        x = DepthwiseConv(kernel, stride, pad, name=f"{prefix}_0")(x)
    else:
        x = nn.Conv(features, (kernel, kernel), (stride, stride), padding=pad, use_bias=False, name=f"{prefix}_0")(x)
    x = nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=BN_EPS, name=f"{prefix}_1")(x)
    return jax.nn.silu(x) if act else x


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation with SiLU: x * sigmoid(fc2(silu(fc1(mean_hw x))))."""

    squeeze: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = jax.nn.silu(nn.Conv(self.squeeze, (1, 1), name="fc1")(s))
        s = nn.Conv(x.shape[-1], (1, 1), name="fc2")(s)
        return x * jax.nn.sigmoid(s)


class MBBlock(nn.Module):
    """One (Fused-)MBConv block, torch submodules `block.<k>`: x[B,H,W,cin] -> [B,H/s,W/s,cout]."""

    fused: bool
    expand: int
    kernel: int
    stride: int
    cout: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        mid = make_divisible(cin * self.expand)
        h = x
        if self.fused:
            if mid != cin:
                h = _conv_bn(h, mid, self.kernel, self.stride, "block_0", act=True)
                h = _conv_bn(h, self.cout, 1, 1, "block_1", act=False)
            else:
                h = _conv_bn(h, self.cout, self.kernel, self.stride, "block_0", act=True)
        else:
            k = 0
            if mid != cin:
                h = _conv_bn(h, mid, 1, 1, "block_0", act=True)
                k = 1
            h = _conv_bn(h, mid, self.kernel, self.stride, f"block_{k}", act=True, depthwise=True)
            h = SqueezeExcitation(max(1, cin // 4), name=f"block_{k + 1}")(h)
            h = _conv_bn(h, self.cout, 1, 1, f"block_{k + 2}", act=False)
        if self.stride == 1 and cin == self.cout:
            h = h + x
        return h


class EfficientNetV2(nn.Module):
    """EfficientNet-V2: x f32[B,H,W,3] (ImageNet-normalised RGB) -> logits f32[B,num_classes].

    Intermediates sown into `intermediates`: `stem`, `stage1`.. (outputs of torchvision
    `features.1`..), `head` (last conv map after SiLU, the Grad-CAM layer), `pooled`.
    """

    config: EfficientNetV2Config = CONFIGS["efficientnet_v2_s"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"EfficientNetV2 expects x[B,H,W,3], got shape {x.shape}")
        cfg = self.config
        stem = cfg.stem_width or cfg.stages[0].cin
        x = _conv_bn(x, stem, 3, 2, "features_0", act=True)
        x = feature(self, "stem", x)
        for i, st in enumerate(cfg.stages):
            for j in range(st.layers):
                x = MBBlock(st.fused, st.expand, st.kernel, st.stride if j == 0 else 1, st.cout, name=f"features_{i + 1}_{j}")(x)
            x = feature(self, f"stage{i + 1}", x)
        x = _conv_bn(x, cfg.last_channel, 1, 1, f"features_{len(cfg.stages) + 1}", act=True)
        x = feature(self, "head", x)
        x = jnp.mean(x, axis=(1, 2))
        x = feature(self, "pooled", x)
        return nn.Dense(cfg.num_classes, name="classifier_1")(x)


def feature_names(config: EfficientNetV2Config) -> tuple[str, ...]:
    return ("stem",) + tuple(f"stage{i + 1}" for i in range(len(config.stages))) + ("head", "pooled")


def torch_key(path: tuple[str, ...]) -> str:
    """('params','features_4_0','block_2','fc1','kernel') -> 'features.4.0.block.2.fc1.weight';
    ('batch_stats','features_0_1','var') -> 'features.0.1.running_var'."""
    return dotted_key(path)


def convert(state_dict: Mapping[str, np.ndarray], config: EfficientNetV2Config = CONFIGS["efficientnet_v2_s"]) -> dict:
    """torchvision EfficientNet(-V2) state_dict (numpy) -> Flax variables, all checked."""
    return convert_torch(EfficientNetV2(config), state_dict, source="EfficientNetV2 state_dict")


def spec(name: str) -> ModelSpec:
    """The ModelSpec of `name` in `CONFIGS`."""
    cfg = CONFIGS[name]
    return ModelSpec(
        name=name,
        make_module=lambda: EfficientNetV2(cfg),
        input_size=(384, 384),  # IMAGENET1K_V1 eval size (resize 384, bilinear)
        num_classes=cfg.num_classes,
        preprocess=imagenet_preprocess(384, "bilinear"),
        key_fn=torch_key,
        feature_names=feature_names(cfg),
        description=f"torchvision {name} (SiLU, SE, Fused-MBConv; weights: torchvision state_dict .pth)",
    )
