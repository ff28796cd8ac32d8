"""VGG-16/19 in Flax linen (NHWC), weight-compatible with torchvision `vgg16`/`vgg19` (no BN).

Architecture (Simonyan & Zisserman 2015, configuration D; E for VGG-19 with 16 convs): 13 conv3x3 (pad 1) + ReLU with
a 2x2/2 max-pool after each of the 5 blocks -> adaptive average pool to 7x7 (identity at
224x224) -> flatten -> Linear(4096) -> ReLU -> Dropout -> Linear(4096) -> ReLU -> Dropout ->
Linear(K). Dropout is identity at inference.

Flatten order: torch flattens NCHW as (C, 7, 7); the Flax port flattens NHWC as (7, 7, C),
so the converter permutes the columns of `classifier.0.weight` once (`permute_classifier`)
instead of transposing activations on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.torch_port import TorchPort, check_rgb_batch, feature


Cfg = tuple[Union[int, str], ...]

VGG16_FEATURES: Cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG19_FEATURES: Cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


@dataclass(frozen=True)
class VGGConfig:
    """torchvision `VGG(make_layers(cfg), num_classes)`: `features` lists conv widths and
    'M' (max-pool); `hidden` is the classifier width (4096); `pool` the adaptive pool size."""

    features: Cfg = VGG16_FEATURES
    hidden: int = 4096
    pool: int = 7
    num_classes: int = 1000

    def __post_init__(self):
        if not any(isinstance(v, int) for v in self.features) or any(
            not (v == "M" or (isinstance(v, int) and v > 0)) for v in self.features
        ):
            raise ValueError(f"features must be positive ints (at least one) and 'M', got {self.features}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        last = _last_conv_index(self)
        n = sum(v == "M" for v in self.features[:last])
        return tuple(f"block{i + 1}" for i in range(n)) + ("last_conv", "pooled")


CONFIGS = {"vgg16": VGGConfig(), "vgg19": VGGConfig(features=VGG19_FEATURES)}


def adaptive_avg_pool(x: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """torch `AdaptiveAvgPool2d`: x[B,H,W,C] -> [B,oh,ow,C]; bin i spans
    [floor(i*H/oh), ceil((i+1)*H/oh)). Separable (rows then columns), exact for any H, W."""
    h, w = x.shape[1:3]
    oh, ow = out_hw
    if (h, w) == (oh, ow):
        return x
    if h % oh == 0 and w % ow == 0:
        return nn.avg_pool(x, (h // oh, w // ow), strides=(h // oh, w // ow))

    def pool_axis(x, n, out, axis):
        parts = []
        for i in range(out):
            lo, hi = (i * n) // out, -((-(i + 1) * n) // out)
            parts.append(jnp.mean(jax.lax.slice_in_dim(x, lo, hi, axis=axis), axis=axis, keepdims=True))
        return jnp.concatenate(parts, axis=axis)

    return pool_axis(pool_axis(x, h, oh, 1), w, ow, 2)


class VGG(nn.Module):
    """VGG: x f32[B,H,W,3] (torchvision-normalised RGB) -> logits f32[B,num_classes].

    Intermediates sown into `intermediates`, in execution order: `block1`.. (output of
    each max-pool before the last conv), `last_conv` (ReLU output of the last conv,
    torchvision `features.29` for VGG-16, 14x14 at 224: the Grad-CAM paper's layer and the
    last spatial feature), `pooled` (the flattened adaptive-pool output fed to the classifier).
    """

    config: VGGConfig = CONFIGS["vgg16"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_rgb_batch(self, x)
        cfg = self.config
        last = _last_conv_index(cfg)
        idx, block = 0, 1
        for i, v in enumerate(cfg.features):
            if v == "M":
                x = nn.max_pool(x, (2, 2), (2, 2))
                if i < last:
                    x = feature(self, f"block{block}", x)
                    block += 1
                idx += 1
            else:
                x = nn.Conv(v, (3, 3), padding=((1, 1), (1, 1)), name=f"features_{idx}")(x)
                x = jax.nn.relu(x)
                if i == last:
                    x = feature(self, "last_conv", x)
                idx += 2  # Conv2d, ReLU
        x = adaptive_avg_pool(x, (cfg.pool, cfg.pool))
        x = x.reshape(x.shape[0], -1)  # (7, 7, C) order; see permute_classifier
        x = feature(self, "pooled", x)
        x = jax.nn.relu(nn.Dense(cfg.hidden, name="classifier_0")(x))
        x = jax.nn.relu(nn.Dense(cfg.hidden, name="classifier_3")(x))
        return nn.Dense(cfg.num_classes, name="classifier_6")(x)


def _last_conv_index(config: VGGConfig) -> int:
    return max(i for i, v in enumerate(config.features) if v != "M")


def permute_classifier(state_dict: Mapping[str, np.ndarray], config: VGGConfig) -> dict[str, np.ndarray]:
    """Returns a copy of `state_dict` whose `classifier.0.weight` columns are reordered from
    torch's (C, p, p) flatten order to the port's (p, p, C). Wrong shapes are left untouched
    (the key/shape check reports them)."""
    sd = dict(state_dict)
    w = sd.get("classifier.0.weight")
    convs = [v for v in config.features if v != "M"]
    c, p = convs[-1], config.pool
    if w is not None and np.ndim(w) == 2 and np.shape(w)[1] == c * p * p:
        w = np.asarray(w)
        sd["classifier.0.weight"] = np.ascontiguousarray(
            w.reshape(w.shape[0], c, p, p).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        )
    return sd


PORT = TorchPort(
    VGG, CONFIGS, 224, "bilinear", "torchvision {name} (weights: torchvision state_dict .pth)",
    prepare=permute_classifier,
)
spec, convert = PORT.spec, PORT.convert
