"""ResNet-50/101 in Flax linen (NHWC), weight-compatible with torchvision `resnet50/101`.

Architecture (He et al. 2016, torchvision "V1.5": the stride sits on the 3x3 conv of the
bottleneck): stem conv7x7/2 (pad 3) -> BN -> ReLU -> max-pool 3x3/2 (pad 1) -> 4 stages of
bottlenecks `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1 x))))))) + shortcut(x))` with
shortcut `bn(conv1x1/s(x))` when the shape changes, else `x` -> global average pool -> Linear.
BN in eval mode, eps 1e-5. All padding is torch's symmetric explicit padding (never 'SAME',
which pads (2,3)/(0,1) for stride 2 on even sizes; ecosystem notes C.2).

Widths, depths, the bottleneck expansion and `width_per_group` are configurable so that tiny
variants with the same key layout can be built for parity fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax

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

    def __post_init__(self):
        if len(self.depths) != len(self.planes) or not self.depths or min(self.depths) < 1:
            raise ValueError(f"depths {self.depths} and planes {self.planes} must be non-empty, equal length, >= 1")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return stage_feature_names("stem", "layer", len(self.depths), "pooled")


CONFIGS = {
    "resnet50": ResNetConfig(depths=(3, 4, 6, 3)),
    "resnet101": ResNetConfig(depths=(3, 4, 23, 3)),
}


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

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out_ch = self.planes * self.expansion
        h = jax.nn.relu(_bn("bn1")(_conv(self.width, 1, 1, "conv1")(x)))
        h = jax.nn.relu(_bn("bn2")(_conv(self.width, 3, self.stride, "conv2")(h)))
        h = _bn("bn3")(_conv(out_ch, 1, 1, "conv3")(h))
        if self.stride != 1 or x.shape[-1] != out_ch:
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
        x = jax.nn.relu(_bn("bn1")(_conv(cfg.stem_width, 7, 2, "conv1")(x)))
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        x = feature(self, "stem", x)
        width_scale = cfg.width_per_group / 64.0
        for s, (depth, planes) in enumerate(zip(cfg.depths, cfg.planes)):
            for b in range(depth):
                stride = 2 if (s > 0 and b == 0) else 1
                x = Bottleneck(planes, stride, int(planes * width_scale), cfg.expansion, name=f"layer{s + 1}_{b}")(x)
            x = feature(self, f"layer{s + 1}", x)
        return pooled_logits(self, x, cfg.num_classes, "fc")


PORT = TorchPort(ResNet, CONFIGS, 224, "bilinear", "torchvision {name} (weights: torchvision state_dict .pth)")
spec, convert = PORT.spec, PORT.convert
