"""ResNet-50/101/152 in Flax linen (NHWC), weight-compatible with torchvision
`resnet50/101/152`, and ResNet-152-D, weight-compatible with timm `resnet152d`.

Architecture (He et al. 2016, torchvision "V1.5": the stride sits on the 3x3 conv of the
bottleneck): stem conv7x7/2 (pad 3) -> BN -> ReLU -> max-pool 3x3/2 (pad 1) -> 4 stages of
bottlenecks `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1 x))))))) + shortcut(x))` with
shortcut `bn(conv1x1/s(x))` when the shape changes, else `x` -> global average pool -> Linear.
BN in eval mode, eps 1e-5. All padding is torch's symmetric explicit padding (never 'SAME',
which pads (2,3)/(0,1) for stride 2 on even sizes; ecosystem notes C.2).

ResNet-D (He et al. 2019, "Bag of tricks"; timm `stem_type='deep', avg_down=True`): the stem
is three conv3x3 (stride 2, 1, 1; widths w, w, 2w) with BN+ReLU between (`conv1.{0,1,3,4,6}`),
then `bn1` -> ReLU -> max-pool; the projection shortcut is `AvgPool2d(2, s, ceil_mode=True,
count_include_pad=False)` (identity at stride 1) -> conv1x1 -> BN (`downsample.{1,2}`).

Widths, depths, the bottleneck expansion and `width_per_group` are configurable so that tiny
variants with the same key layout can be built for parity fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax

from rexjax.models.pooling import avg_pool2d
from rexjax.models.torch_port import TorchPort, check_rgb_batch, feature, pooled_logits, stage_feature_names

BN_EPS = 1e-5


@dataclass(frozen=True)
class ResNetConfig:
    """torchvision `ResNet(Bottleneck, layers, width_per_group=...)` hyperparameters.

    planes: per-stage `planes` (bottleneck width at width_per_group=64); a stage outputs
    `planes * expansion` channels. torchvision: stem 64, planes (64,128,256,512), expansion 4.
    """

    depths: tuple[int, ...] = (3, 4, 6, 3)
    planes: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    expansion: int = 4
    width_per_group: int = 64
    num_classes: int = 1000
    deep_stem_width: int = 0  # ResNet-D: > 0 = deep stem of that inner width (timm stem_width 32)
    avg_down: bool = False  # ResNet-D: average-pool shortcut

    def __post_init__(self):
        if len(self.depths) != len(self.planes) or not self.depths or min(self.depths) < 1:
            raise ValueError(f"depths {self.depths} and planes {self.planes} must be non-empty, equal length, >= 1")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return stage_feature_names("stem", "layer", len(self.depths), "pooled")


CONFIGS = {
    "resnet50": ResNetConfig(depths=(3, 4, 6, 3)),
    "resnet101": ResNetConfig(depths=(3, 4, 23, 3)),
    "resnet152": ResNetConfig(depths=(3, 8, 36, 3)),
}
TIMM_CONFIGS = {"resnet152d": ResNetConfig(depths=(3, 8, 36, 3), deep_stem_width=32, avg_down=True)}


def _bn(name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=BN_EPS, name=name)


def _conv(features: int, k: int, stride: int, name: str) -> nn.Conv:
    p = (k - 1) // 2
    return nn.Conv(features, (k, k), (stride, stride), padding=((p, p), (p, p)), use_bias=False, name=name)


class Bottleneck(nn.Module):
    """torchvision Bottleneck: x[B,H,W,Cin] -> [B,H/s,W/s,planes*expansion]."""

    planes: int
    stride: int
    width: int
    expansion: int
    avg_down: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out_ch = self.planes * self.expansion
        h = jax.nn.relu(_bn("bn1")(_conv(self.width, 1, 1, "conv1")(x)))
        h = jax.nn.relu(_bn("bn2")(_conv(self.width, 3, self.stride, "conv2")(h)))
        h = _bn("bn3")(_conv(out_ch, 1, 1, "conv3")(h))
        if self.stride != 1 or x.shape[-1] != out_ch:
            if self.avg_down:  # ResNet-D: AvgPool2d(2, s, ceil_mode=True, count_include_pad=False), identity at s=1
                if self.stride > 1:
                    x = avg_pool2d(x, 2, self.stride, ceil_mode=True, count_include_pad=False)
                x = _bn("downsample_2")(_conv(out_ch, 1, 1, "downsample_1")(x))
            else:
                x = _bn("downsample_1")(_conv(out_ch, 1, self.stride, "downsample_0")(x))
        return jax.nn.relu(h + x)


class ResNet(nn.Module):
    """ResNet: x f32[B,H,W,3] (torchvision-normalised RGB) -> logits f32[B,num_classes].

    Intermediates sown into `intermediates` (see `ResNetConfig.feature_names`): `stem` (after max-pool),
    `layer1`..`layer4` (stage outputs; `layer4` is the Grad-CAM layer), `pooled`.
    """

    config: ResNetConfig = CONFIGS["resnet50"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_rgb_batch(self, x)
        cfg = self.config
        if cfg.deep_stem_width:
            w = cfg.deep_stem_width
            x = jax.nn.relu(_bn("conv1_1")(_conv(w, 3, 2, "conv1_0")(x)))
            x = jax.nn.relu(_bn("conv1_4")(_conv(w, 3, 1, "conv1_3")(x)))
            x = jax.nn.relu(_bn("bn1")(_conv(cfg.stem_width, 3, 1, "conv1_6")(x)))
        else:
            x = jax.nn.relu(_bn("bn1")(_conv(cfg.stem_width, 7, 2, "conv1")(x)))
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        x = feature(self, "stem", x)
        width_scale = cfg.width_per_group / 64.0
        for s, (depth, planes) in enumerate(zip(cfg.depths, cfg.planes)):
            for b in range(depth):
                stride = 2 if (s > 0 and b == 0) else 1
                width = int(planes * width_scale)
                x = Bottleneck(planes, stride, width, cfg.expansion, cfg.avg_down, name=f"layer{s + 1}_{b}")(x)
            x = feature(self, f"layer{s + 1}", x)
        return pooled_logits(self, x, cfg.num_classes, "fc")


PORT = TorchPort(ResNet, CONFIGS, 224, "bilinear", "torchvision {name} (weights: torchvision state_dict .pth)")
# timm resnet152d.ra2_in1k: input 256 (test 320), crop_pct 1.0, bicubic, ImageNet mean/std
TIMM_PORT = TorchPort(ResNet, TIMM_CONFIGS, 256, "bicubic", "timm {name} (weights: timm state_dict .pth)")


def spec(name: str):
    return (TIMM_PORT if name in TIMM_CONFIGS else PORT).spec(name)


def convert(state_dict, config: ResNetConfig = CONFIGS["resnet50"]) -> dict:
    """Checked torch state_dict -> Flax variables of `ResNet(config)` (torchvision or timm keys)."""
    return PORT.convert(state_dict, config)
