"""RegNetY in Flax linen (NHWC), weight-compatible with timm `regnety_*` (timm key naming).

Architecture (Radosavovic et al. 2020, RegNetY = RegNetX + squeeze-excitation; timm
`RegNet(RegNetCfg)`): stem conv3x3/2 (pad 1) -> BN -> ReLU -> 4 stages of Y-blocks
    y = relu( bn3(conv3( se( relu(bn2(conv2_g( relu(bn1(conv1 x)) ))) )) ) + shortcut(x) )
with conv2 a grouped 3x3 (`groups = bottleneck_width // group_size`, stride on the first
block of a stage), SE `h * sigmoid(fc2(relu(fc1(mean_hw h))))` with `round(in * se_ratio)`
reduced channels (timm counts them from the block *input* width), shortcut
`bn(conv1x1/s(x))` when the shape changes -> global average pool -> Linear. BN eps 1e-5.

Per-stage widths/depths come from the quantised linear rule of the paper (Eq. 2-4),
`regnet_stages(...)`, computed in float32 exactly as timm does.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import numpy as np

from rexjax.models.torch_port import TorchPort, check_rgb_batch, feature, pooled_logits, stage_feature_names
from rexjax.models.layers import DepthwiseConv, SqueezeExcitation

BN_EPS = 1e-5


@dataclass(frozen=True)
class RegNetConfig:
    """Per-stage hyperparameters of a timm RegNet (already width/group adjusted)."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    group_sizes: tuple[int, ...]
    bottle_ratio: float = 1.0
    se_ratio: float = 0.25
    stem_width: int = 32
    num_classes: int = 1000

    def __post_init__(self):
        n = len(self.widths)
        if n == 0 or len(self.depths) != n or len(self.group_sizes) != n or min(self.depths) < 1:
            raise ValueError(
                f"widths {self.widths}, depths {self.depths}, group_sizes {self.group_sizes} must be "
                "non-empty, of equal length, depths >= 1"
            )
        for w, g in zip(self.widths, self.group_sizes):
            b = int(round(w * self.bottle_ratio))
            if g < 1 or b % g:
                raise ValueError(f"bottleneck width {b} is not divisible by group size {g}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return stage_feature_names("stem_out", "stage", len(self.widths), "pooled")


def regnet_stages(
    depth: int,
    w0: int,
    wa: float,
    wm: float,
    group_size: int,
    bottle_ratio: float = 1.0,
    quant: int = 8,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Paper Eq. 2-4 as timm `generate_regnet` + `adjust_widths_groups_comp` (min_ratio 0):
    u_j = w0 + wa*j, s_j = round(log(u_j/w0)/log(wm)), w_j = round(w0*wm^s_j / q)*q, in float32.
    Returns (stage widths, stage depths, stage group sizes)."""
    if not (wa >= 0 and w0 > 0 and wm > 1 and w0 % quant == 0):
        raise ValueError(f"need wa >= 0, w0 > 0, wm > 1, w0 % {quant} == 0; got wa={wa}, w0={w0}, wm={wm}")
    f32 = np.float32
    cont = np.arange(depth, dtype=f32) * f32(wa) + f32(w0)
    exps = np.round((np.log(cont / f32(w0)) / f32(np.log(wm))).astype(f32))
    widths = np.round((f32(w0) * np.power(f32(wm), exps.astype(f32))).astype(f32) / f32(quant)) * f32(quant)
    stage_widths, stage_depths = np.unique(widths.astype(np.int64), return_counts=True)
    out_w, out_g = [], []
    for w in stage_widths.tolist():
        wb = int(w * bottle_ratio)
        g = min(group_size, wb)
        wb = int(round(wb / g) * g)
        out_w.append(int(wb / bottle_ratio))
        out_g.append(g)
    return tuple(out_w), tuple(int(d) for d in stage_depths), tuple(out_g)


def _timm(depth, w0, wa, wm, group_size, **kw) -> RegNetConfig:
    w, d, g = regnet_stages(depth, w0, wa, wm, group_size)
    return RegNetConfig(w, d, g, **kw)


CONFIGS = {
    # timm: regnety_120=RegNetCfg(w0=168, wa=73.36, wm=2.37, group_size=112, depth=19, se_ratio=0.25)
    "regnety_120": _timm(19, 168, 73.36, 2.37, 112, se_ratio=0.25),
}


class ConvNormAct(nn.Module):
    """timm ConvNormAct: conv kxk/s (pad (k-1)//2, no bias, `groups`) -> BN -> optional ReLU."""

    features: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    act: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        p = (self.kernel - 1) // 2
        pad = ((p, p), (p, p))
        if self.groups > 1 and self.groups == x.shape[-1] == self.features:
            x = DepthwiseConv(self.kernel, self.stride, pad, name="conv")(x)
        else:
            x = nn.Conv(
                self.features,
                (self.kernel, self.kernel),
                (self.stride, self.stride),
                padding=pad,
                feature_group_count=self.groups,
                use_bias=False,
                name="conv",
            )(x)
        x = nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=BN_EPS, name="bn")(x)
        return jax.nn.relu(x) if self.act else x


class YBlock(nn.Module):
    """timm regnet Bottleneck: x[B,H,W,Cin] -> [B,H/s,W/s,out]."""

    out: int
    stride: int
    group_size: int
    bottle_ratio: float
    se_ratio: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cin = x.shape[-1]
        mid = int(round(self.out * self.bottle_ratio))
        h = ConvNormAct(mid, 1, name="conv1")(x)
        h = ConvNormAct(mid, 3, self.stride, groups=mid // self.group_size, name="conv2")(h)
        if self.se_ratio:
            h = SqueezeExcitation(int(round(cin * self.se_ratio)), jax.nn.relu, name="se")(h)
        h = ConvNormAct(self.out, 1, act=False, name="conv3")(h)
        if cin != self.out or self.stride != 1:
            x = ConvNormAct(self.out, 1, self.stride, act=False, name="downsample")(x)
        return jax.nn.relu(h + x)


class RegStage(nn.Module):
    """timm RegStage: `depth` Y-blocks `b1..`, the first with stride 2: [B,H,W,Cin] -> [B,H/2,W/2,out]."""

    depth: int
    out: int
    group_size: int
    bottle_ratio: float
    se_ratio: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.depth):
            x = YBlock(self.out, 2 if i == 0 else 1, self.group_size, self.bottle_ratio, self.se_ratio, name=f"b{i + 1}")(x)
        return x


class RegNet(nn.Module):
    """RegNetY: x f32[B,H,W,3] (ImageNet-normalised RGB) -> logits f32[B,num_classes].

    Intermediates sown into `intermediates`: `stem_out`, `stage1`..`stage4` (outputs of timm
    `s1`..`s4`; `stage4` is the Grad-CAM layer), `pooled`. (Feature names may not reuse the
    module names `stem`/`s1`.. because `perturb` scopes share their namespace.)
    """

    config: RegNetConfig = CONFIGS["regnety_120"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_rgb_batch(self, x)
        cfg = self.config
        x = ConvNormAct(cfg.stem_width, 3, 2, name="stem")(x)
        x = feature(self, "stem_out", x)
        for i, (w, d, g) in enumerate(zip(cfg.widths, cfg.depths, cfg.group_sizes)):
            x = RegStage(d, w, g, cfg.bottle_ratio, cfg.se_ratio, name=f"s{i + 1}")(x)
            x = feature(self, f"stage{i + 1}", x)
        return pooled_logits(self, x, cfg.num_classes, "head_fc")


PORT = TorchPort(RegNet, CONFIGS, 224, "bicubic", "timm {name} (weights: timm state_dict .pth)")
spec, convert = PORT.spec, PORT.convert
