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

import flax.linen as nn
import jax

from rexjax.models.torch_port import TorchPort, check_rgb_batch, feature, pooled_logits, stage_feature_names
from rexjax.models.layers import DepthwiseConv, SqueezeExcitation

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

    @property
    def feature_names(self) -> tuple[str, ...]:
        return stage_feature_names("stem", "stage", len(self.stages), "head", "pooled")


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


class MBBlock(nn.Module):
    """One (Fused-)MBConv block of `stage` (its fused/expand/kernel/cout; `stride` is the
    stage's on its first block, else 1), torch submodules `block.<k>`:
    x[B,H,W,cin] -> [B,H/stride,W/stride,cout]."""

    stage: StageConfig
    stride: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        st, stride = self.stage, self.stride
        cin = x.shape[-1]
        mid = make_divisible(cin * st.expand)
        h = x
        if st.fused:
            if mid != cin:
                h = _conv_bn(h, mid, st.kernel, stride, "block_0", act=True)
                h = _conv_bn(h, st.cout, 1, 1, "block_1", act=False)
            else:
                h = _conv_bn(h, st.cout, st.kernel, stride, "block_0", act=True)
        else:
            k = 0
            if mid != cin:
                h = _conv_bn(h, mid, 1, 1, "block_0", act=True)
                k = 1
            h = _conv_bn(h, mid, st.kernel, stride, f"block_{k}", act=True, depthwise=True)
            h = SqueezeExcitation(max(1, cin // 4), jax.nn.silu, name=f"block_{k + 1}")(h)
            h = _conv_bn(h, st.cout, 1, 1, f"block_{k + 2}", act=False)
        if stride == 1 and cin == st.cout:
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
        check_rgb_batch(self, x)
        cfg = self.config
        stem = cfg.stem_width or cfg.stages[0].cin
        x = _conv_bn(x, stem, 3, 2, "features_0", act=True)
        x = feature(self, "stem", x)
        for i, st in enumerate(cfg.stages):
            for j in range(st.layers):
                x = MBBlock(st, st.stride if j == 0 else 1, name=f"features_{i + 1}_{j}")(x)
            x = feature(self, f"stage{i + 1}", x)
        x = _conv_bn(x, cfg.last_channel, 1, 1, f"features_{len(cfg.stages) + 1}", act=True)
        x = feature(self, "head", x)
        return pooled_logits(self, x, cfg.num_classes, "classifier_1")


# 384: the IMAGENET1K_V1 eval size (resize 384, bilinear)
PORT = TorchPort(
    EfficientNetV2, CONFIGS, 384, "bilinear",
    "torchvision {name} (SiLU, SE, Fused-MBConv; weights: torchvision state_dict .pth)",
)
spec, convert = PORT.spec, PORT.convert
