"""Inception-v3 (torchvision), Inception-v4 and Inception-ResNet-v2 (timm) in Flax linen (NHWC).

Every convolution is a `BasicConv` (conv without bias -> BatchNorm eps 1e-3 -> ReLU; torch
`BasicConv2d` / timm `ConvNormAct`, keys `<name>.conv.weight`, `<name>.bn.*`); blocks run
parallel branches and concatenate them on channels. Pooling is exactly the source's:

* torchvision Inception-v3: `F.avg_pool2d(x, 3, 1, 1)` in the A/C/E blocks, i.e.
  count_include_pad=True (border windows divide by 9); max-pools 3x3/2 without padding.
* timm Inception-v4 / Inception-ResNet-v2: `nn.AvgPool2d(3, 1, 1, count_include_pad=False)`
  (border windows divide by the real inputs); Inception-ResNet-v2's stem average pool
  `AvgPool2d(3, 1, 1, count_include_pad=False)` as well.

Inception-v3's `transform_input` (torchvision sets it when loading its ImageNet weights)
maps ImageNet-normalised input to the (x - 0.5) / 0.5 normalisation the Google weights
expect: `x_c * (std_c / 0.5) + (mean_c - 0.5) / 0.5`. The auxiliary classifier (training
only) is not built; its `AuxLogits.*` keys are dropped by the converter.

`width_div` divides every width by an integer (all widths of these nets are multiples of
16), giving small variants with the full key layout for parity fixtures and ConvAD tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.pooling import avg_pool2d
from rexjax.models.preprocess import Preprocess
from rexjax.models.torch_port import LEAF_NAMES, TorchPort, check_rgb_batch, feature, imagenet_preprocess

BN_EPS = 1e-3
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InceptionConfig:
    """arch: 'v3' (torchvision Inception3), 'v4' (timm InceptionV4) or 'resnet_v2' (timm
    InceptionResnetV2); width_div: every width divided by it; transform_input: v3 only."""

    arch: str = "v3"
    width_div: int = 1
    transform_input: bool = False
    num_classes: int = 1000

    def __post_init__(self):
        if self.arch not in ("v3", "v4", "resnet_v2"):
            raise ValueError(f"arch must be 'v3', 'v4' or 'resnet_v2', got {self.arch!r}")
        if self.width_div not in (1, 2, 4, 8, 16):
            raise ValueError(f"width_div must divide 16 (1, 2, 4, 8 or 16), got {self.width_div}")
        if self.transform_input and self.arch != "v3":
            raise ValueError("transform_input is torchvision Inception-v3's only")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ("stem", "mixed5", "mixed6", "mixed7", "pooled")


CONFIGS = {
    "inception_v3": InceptionConfig("v3", transform_input=True),
    "inception_v4": InceptionConfig("v4"),
    "inception_resnet_v2": InceptionConfig("resnet_v2"),
}


class BasicConv(nn.Module):
    """conv (no bias) -> BN (eps 1e-3) -> ReLU: x[B,H,W,Cin] -> [B,H',W',features]."""

    features: int
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        (ph, pw), s = self.padding, self.stride
        x = nn.Conv(self.features, self.kernel, (s, s), padding=((ph, ph), (pw, pw)), use_bias=False, name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=BN_EPS, name="bn")(x)
        return jax.nn.relu(x)


def _k(k) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else tuple(k)


def conv(div: int, c: int, name: str, k=1, s: int = 1, p=0) -> BasicConv:
    """BasicConv with `c // div` outputs, kernel/padding int or (h, w)."""
    return BasicConv(c // div, _k(k), s, _k(p), name=name)


def chain(x: jax.Array, layers: Sequence[BasicConv]) -> jax.Array:
    for layer in layers:
        x = layer(x)
    return x


def max_pool(x: jax.Array) -> jax.Array:
    """torch MaxPool2d(3, stride=2) (no padding, floor)."""
    return nn.max_pool(x, (3, 3), (2, 2))


def cat(*xs: jax.Array) -> jax.Array:
    return jnp.concatenate(xs, axis=-1)


# ---------------------------------------------------------------- Inception-v3 (torchvision)


def _pool_v3(x):
    return avg_pool2d(x, 3, 1, 1, count_include_pad=True)  # torchvision F.avg_pool2d defaults


class V3A(nn.Module):
    pool_features: int
    div: int

    @nn.compact
    def __call__(self, x):
        d = self.div
        b1 = conv(d, 64, "branch1x1")(x)
        b5 = chain(x, [conv(d, 48, "branch5x5_1"), conv(d, 64, "branch5x5_2", 5, p=2)])
        b3 = chain(x, [conv(d, 64, "branch3x3dbl_1"), conv(d, 96, "branch3x3dbl_2", 3, p=1), conv(d, 96, "branch3x3dbl_3", 3, p=1)])
        bp = conv(d, self.pool_features, "branch_pool")(_pool_v3(x))
        return cat(b1, b5, b3, bp)


# torchvision InceptionB and InceptionD, the grid reductions: branches of BasicConvs applied in
# sequence, each conv given as `conv`'s arguments after the width divisor (width, name, kernel,
# stride, padding); the 3x3/2 max-pool is the last branch
V3_REDUCTIONS = {
    "B": (
        ((384, "branch3x3", 3, 2),),
        ((64, "branch3x3dbl_1"), (96, "branch3x3dbl_2", 3, 1, 1), (96, "branch3x3dbl_3", 3, 2)),
    ),
    "D": (
        ((192, "branch3x3_1"), (320, "branch3x3_2", 3, 2)),
        (
            (192, "branch7x7x3_1"),
            (192, "branch7x7x3_2", (1, 7), 1, (0, 3)),
            (192, "branch7x7x3_3", (7, 1), 1, (3, 0)),
            (192, "branch7x7x3_4", 3, 2),
        ),
    ),
}


class V3Reduction(nn.Module):
    """torchvision InceptionB (kind "B") or InceptionD ("D"), `V3_REDUCTIONS[kind]`:
    x[B,H,W,C] -> the branches and the max-pool concatenated on channels, [B,H',W',C']."""

    kind: str
    div: int

    @nn.compact
    def __call__(self, x):
        branches = (chain(x, [conv(self.div, *args) for args in convs]) for convs in V3_REDUCTIONS[self.kind])
        return cat(*branches, max_pool(x))


class V3C(nn.Module):
    c7: int
    div: int

    @nn.compact
    def __call__(self, x):
        d, c7 = self.div, self.c7
        b1 = conv(d, 192, "branch1x1")(x)
        b7 = chain(x, [conv(d, c7, "branch7x7_1"), conv(d, c7, "branch7x7_2", (1, 7), p=(0, 3)), conv(d, 192, "branch7x7_3", (7, 1), p=(3, 0))])
        bd = chain(x, [
            conv(d, c7, "branch7x7dbl_1"),
            conv(d, c7, "branch7x7dbl_2", (7, 1), p=(3, 0)),
            conv(d, c7, "branch7x7dbl_3", (1, 7), p=(0, 3)),
            conv(d, c7, "branch7x7dbl_4", (7, 1), p=(3, 0)),
            conv(d, 192, "branch7x7dbl_5", (1, 7), p=(0, 3)),
        ])
        bp = conv(d, 192, "branch_pool")(_pool_v3(x))
        return cat(b1, b7, bd, bp)


# ------------------------------------------------- Inception-v4 / Inception-ResNet-v2 (timm)

Spec = tuple  # ("conv", width, kernel, stride, padding) | ("avg",) | ("max",)


def _avg_timm(x):
    return avg_pool2d(x, 3, 1, 1, count_include_pad=False)  # timm nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class Seq(nn.Module):
    """torch `nn.Sequential` of BasicConvs and pools: layer i is child `str(i)` (pools have
    no parameters but take their index, as in torch)."""

    specs: tuple[Spec, ...]
    div: int

    @nn.compact
    def __call__(self, x):
        for i, spec in enumerate(self.specs):
            if spec[0] == "avg":
                x = _avg_timm(x)
            elif spec[0] == "max":
                x = max_pool(x)
            else:
                x = conv(self.div, *spec[1:2], str(i), *spec[2:])(x)
        return x


def C(c: int, k=1, s: int = 1, p=0) -> Spec:
    return ("conv", c, k, s, p)


AVG, MAX = ("avg",), ("max",)
# timm inception_v4 / inception_resnet_v2 blocks: name -> branches (each one BasicConv or a Sequential)
V4_BLOCKS = {
    "Mixed3a": {"maxpool": MAX, "conv": C(96, 3, 2)},
    "Mixed4a": {"branch0": (C(64), C(96, 3)), "branch1": (C(64), C(64, (1, 7), 1, (0, 3)), C(64, (7, 1), 1, (3, 0)), C(96, 3))},
    "Mixed5a": {"conv": C(192, 3, 2), "maxpool": MAX},
    "InceptionA": {
        "branch0": C(96), "branch1": (C(64), C(96, 3, 1, 1)), "branch2": (C(64), C(96, 3, 1, 1), C(96, 3, 1, 1)),
        "branch3": (AVG, C(96)),
    },
    "ReductionA": {"branch0": C(384, 3, 2), "branch1": (C(192), C(224, 3, 1, 1), C(256, 3, 2)), "branch2": MAX},
    "InceptionB": {
        "branch0": C(384),
        "branch1": (C(192), C(224, (1, 7), 1, (0, 3)), C(256, (7, 1), 1, (3, 0))),
        "branch2": (C(192), C(192, (7, 1), 1, (3, 0)), C(224, (1, 7), 1, (0, 3)), C(224, (7, 1), 1, (3, 0)), C(256, (1, 7), 1, (0, 3))),
        "branch3": (AVG, C(128)),
    },
    "ReductionB": {
        "branch0": (C(192), C(192, 3, 2)),
        "branch1": (C(256), C(256, (1, 7), 1, (0, 3)), C(320, (7, 1), 1, (3, 0)), C(320, 3, 2)),
        "branch2": MAX,
    },
}
IRV2_BLOCKS = {
    "Mixed_5b": {
        "branch0": C(96), "branch1": (C(48), C(64, 5, 1, 2)), "branch2": (C(64), C(96, 3, 1, 1), C(96, 3, 1, 1)),
        "branch3": (AVG, C(64)),
    },
    "Block35": {"branch0": C(32), "branch1": (C(32), C(32, 3, 1, 1)), "branch2": (C(32), C(48, 3, 1, 1), C(64, 3, 1, 1))},
    "Mixed_6a": {"branch0": C(384, 3, 2), "branch1": (C(256), C(256, 3, 1, 1), C(384, 3, 2)), "branch2": MAX},
    "Block17": {"branch0": C(192), "branch1": (C(128), C(160, (1, 7), 1, (0, 3)), C(192, (7, 1), 1, (3, 0)))},
    "Mixed_7a": {
        "branch0": (C(256), C(384, 3, 2)), "branch1": (C(256), C(288, 3, 2)),
        "branch2": (C(256), C(288, 3, 1, 1), C(320, 3, 2)), "branch3": MAX,
    },
    "Block8": {"branch0": C(192), "branch1": (C(192), C(224, (1, 3), 1, (0, 1)), C(256, (3, 1), 1, (1, 0)))},
}
RESIDUAL_WIDTH = {"Block35": 320, "Block17": 1088, "Block8": 2080}


def _branch(name: str, spec, div: int, x: jax.Array) -> jax.Array:
    if spec == MAX:
        return max_pool(x)
    if spec[0] == "conv":
        return conv(div, spec[1], name, *spec[2:])(x)
    return Seq(spec, div, name=name)(x)


class Mixed(nn.Module):
    """A timm branch-concatenation block (`V4_BLOCKS` / `IRV2_BLOCKS` entry): concatenates
    its branches, in order, on channels."""

    kind: str
    div: int

    @nn.compact
    def __call__(self, x):
        branches = {**V4_BLOCKS, **IRV2_BLOCKS}[self.kind]
        return cat(*(_branch(n, spec, self.div, x) for n, spec in branches.items()))


# The expanded filter bank of each source (torchvision Inception-v3 InceptionE, timm
# inception_v4 InceptionC, whose 1x3 / 3x1 splits are named flat, `branch1_1a`): a 1x1 conv,
# then branches of convs in sequence, each split into a 1x3 and a 3x1 conv (concatenated).
# Convs as `conv`'s arguments after the width divisor (width, name, kernel, stride, padding);
# a split as (width, 1x3 conv name, 3x1 conv name).
FILTER_BANKS = {
    "torchvision": {
        "single": (320, "branch1x1"),
        "splits": (
            (((384, "branch3x3_1"),), (384, "branch3x3_2a", "branch3x3_2b")),
            (((448, "branch3x3dbl_1"), (384, "branch3x3dbl_2", 3, 1, 1)), (384, "branch3x3dbl_3a", "branch3x3dbl_3b")),
        ),
    },
    "timm": {
        "single": (256, "branch0"),
        "splits": (
            (((384, "branch1_0"),), (256, "branch1_1a", "branch1_1b")),
            (
                ((384, "branch2_0"), (448, "branch2_1", (3, 1), 1, (1, 0)), (512, "branch2_2", (1, 3), 1, (0, 1))),
                (256, "branch2_3a", "branch2_3b"),
            ),
        ),
    },
}


class FilterBank(nn.Module):
    """The expanded filter bank, `FILTER_BANKS[source]`: x[B,H,W,C] -> [1x1 conv | split
    branches | pooled 1x1 conv] concatenated on channels. The pooled branch is the source's:
    torchvision `avg_pool2d(x, 3, 1, 1)` -> `branch_pool` (192); timm Sequential `branch3`
    of AvgPool2d(count_include_pad=False) -> conv (256)."""

    source: str
    div: int

    @nn.compact
    def __call__(self, x):
        d, bank = self.div, FILTER_BANKS[self.source]
        branches = [conv(d, *bank["single"])(x)]
        for convs, (width, name_1x3, name_3x1) in bank["splits"]:
            h = chain(x, [conv(d, *args) for args in convs])
            branches.append(cat(conv(d, width, name_1x3, (1, 3), p=(0, 1))(h), conv(d, width, name_3x1, (3, 1), p=(1, 0))(h)))
        if self.source == "torchvision":
            pooled = conv(d, 192, "branch_pool")(_pool_v3(x))
        else:
            pooled = Seq((AVG, C(256)), d, name="branch3")(x)
        return cat(*branches, pooled)


class Residual(nn.Module):
    """Inception-ResNet block: `act(conv2d(concat(branches)) * scale + x)` (conv2d 1x1 with
    bias; Block8 of the head has no ReLU)."""

    kind: str
    scale: float
    div: int
    relu: bool = True

    @nn.compact
    def __call__(self, x):
        h = cat(*(_branch(n, spec, self.div, x) for n, spec in IRV2_BLOCKS[self.kind].items()))
        h = nn.Conv(RESIDUAL_WIDTH[self.kind] // self.div, (1, 1), name="conv2d")(h)
        out = h * self.scale + x
        return jax.nn.relu(out) if self.relu else out


def _v4(module: nn.Module, cfg: InceptionConfig, x: jax.Array) -> jax.Array:
    d = cfg.width_div
    x = chain(x, [conv(d, 32, "features_0", 3, 2), conv(d, 32, "features_1", 3), conv(d, 64, "features_2", 3, p=1)])
    x = chain(x, [Mixed(k, d, name=f"features_{i}") for i, k in ((3, "Mixed3a"), (4, "Mixed4a"), (5, "Mixed5a"))])
    x = feature(module, "stem", x)
    x = feature(module, "mixed5", chain(x, [Mixed("InceptionA", d, name=f"features_{i}") for i in range(6, 10)]))
    x = Mixed("ReductionA", d, name="features_10")(x)
    x = feature(module, "mixed6", chain(x, [Mixed("InceptionB", d, name=f"features_{i}") for i in range(11, 18)]))
    x = Mixed("ReductionB", d, name="features_18")(x)
    return feature(module, "mixed7", chain(x, [FilterBank("timm", d, name=f"features_{i}") for i in range(19, 22)]))


def _irv2(module: nn.Module, cfg: InceptionConfig, x: jax.Array) -> jax.Array:
    d = cfg.width_div
    x = chain(x, [conv(d, 32, "conv2d_1a", 3, 2), conv(d, 32, "conv2d_2a", 3), conv(d, 64, "conv2d_2b", 3, p=1)])
    x = max_pool(chain(max_pool(x), [conv(d, 80, "conv2d_3b"), conv(d, 192, "conv2d_4a", 3)]))
    x = feature(module, "stem", x)
    x = Mixed("Mixed_5b", d, name="mixed_5b")(x)
    x = feature(module, "mixed5", chain(x, [Residual("Block35", 0.17, d, name=f"repeat_{i}") for i in range(10)]))
    x = Mixed("Mixed_6a", d, name="mixed_6a")(x)
    x = feature(module, "mixed6", chain(x, [Residual("Block17", 0.10, d, name=f"repeat_1_{i}") for i in range(20)]))
    x = Mixed("Mixed_7a", d, name="mixed_7a")(x)
    x = chain(x, [Residual("Block8", 0.20, d, name=f"repeat_2_{i}") for i in range(9)])
    x = Residual("Block8", 1.0, d, relu=False, name="block8")(x)
    return feature(module, "mixed7", conv(d, 1536, "conv2d_7b")(x))


def _v3(module: nn.Module, cfg: InceptionConfig, x: jax.Array) -> jax.Array:
    d = cfg.width_div
    if cfg.transform_input:
        scale = jnp.asarray([s / 0.5 for s in TORCHVISION_STD], x.dtype)
        shift = jnp.asarray([(m - 0.5) / 0.5 for m in TORCHVISION_MEAN], x.dtype)
        x = x * scale + shift
    x = chain(x, [conv(d, 32, "Conv2d_1a_3x3", 3, 2), conv(d, 32, "Conv2d_2a_3x3", 3), conv(d, 64, "Conv2d_2b_3x3", 3, p=1)])
    x = max_pool(x)
    x = max_pool(chain(x, [conv(d, 80, "Conv2d_3b_1x1"), conv(d, 192, "Conv2d_4a_3x3", 3)]))
    x = feature(module, "stem", x)
    x = chain(x, [V3A(32, d, name="Mixed_5b"), V3A(64, d, name="Mixed_5c"), V3A(64, d, name="Mixed_5d")])
    x = feature(module, "mixed5", x)
    x = V3Reduction("B", d, name="Mixed_6a")(x)
    x = chain(x, [V3C(c7, d, name=n) for c7, n in ((128, "Mixed_6b"), (160, "Mixed_6c"), (160, "Mixed_6d"), (192, "Mixed_6e"))])
    x = feature(module, "mixed6", x)
    x = chain(x, [V3Reduction("D", d, name="Mixed_7a"), FilterBank("torchvision", d, name="Mixed_7b"), FilterBank("torchvision", d, name="Mixed_7c")])
    return feature(module, "mixed7", x)


class Inception(nn.Module):
    """Inception: x f32[B,H,W,3] (the source's normalisation) -> logits f32[B,num_classes].

    Intermediates: `stem` (before the first Inception block), `mixed5`, `mixed6`, `mixed7`
    (after the last block of the 35x35 / 17x17 / 8x8 grids at 299 px; `mixed7` is the
    Grad-CAM layer), `pooled`.
    """

    config: InceptionConfig = CONFIGS["inception_v3"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_rgb_batch(self, x)
        cfg = self.config
        x = {"v3": _v3, "v4": _v4, "resnet_v2": _irv2}[cfg.arch](self, cfg, x)
        x = feature(self, "pooled", jnp.mean(x, axis=(1, 2)))
        return nn.Dense(cfg.num_classes, name=HEAD[cfg.arch])(x)


HEAD = {"v3": "fc", "v4": "last_linear", "resnet_v2": "classif"}
TOP_SEQUENTIAL = re.compile(r"^(features|repeat|repeat_1|repeat_2)_(\d+)$")


def inception_key(path: tuple[str, ...]) -> str:
    """Flax module names are the torch names (`Mixed_5b`, `branch7x7dbl_3`, Sequential
    children `0`, `1`, ...) joined with '.', except the top-level Sequentials, flattened
    as `<container>_<index>` (`features_4` -> `features.4`, `repeat_1_3` -> `repeat_1.3`)."""
    if len(path) < 3 or path[-1] not in LEAF_NAMES:
        raise ValueError(f"not a zoo variable path: {path!r}")
    top = TOP_SEQUENTIAL.sub(r"\1.\2", path[1])
    return ".".join([top, *path[2:-1], LEAF_NAMES[path[-1]]])


def drop_aux_logits(state_dict: Mapping[str, np.ndarray], config: InceptionConfig) -> dict[str, np.ndarray]:
    """The state_dict without the training-only auxiliary classifier (`AuxLogits.*`)."""
    return {k: v for k, v in state_dict.items() if not k.startswith("AuxLogits.")}


# torchvision Inception_V3_Weights: resize 342 -> crop 299, bilinear, ImageNet mean/std (transform_input on)
# timm inception_v4.tf_in1k / inception_resnet_v2.tf_in1k: 299, crop 0.875 / 0.8975, bicubic, mean = std = 0.5
INCEPTION_MEAN_STD = (127.5, 127.5, 127.5)
PORTS = {
    "v3": TorchPort(
        Inception, {"inception_v3": CONFIGS["inception_v3"]}, 299, "bilinear",
        "torchvision {name} (weights: torchvision state_dict .pth; bilinear, ImageNet mean/std, transform_input)",
        prepare=drop_aux_logits, key_fn=inception_key, preprocess=imagenet_preprocess(299, "bilinear"),
    ),
    **{
        arch: TorchPort(
            Inception, {name: CONFIGS[name]}, 299, "bicubic",
            "timm {name} (weights: timm state_dict .pth; bicubic, mean = std = 0.5)",
            key_fn=inception_key, preprocess=Preprocess((299, 299), INCEPTION_MEAN_STD, INCEPTION_MEAN_STD, "bicubic"),
        )
        for arch, name in (("v4", "inception_v4"), ("resnet_v2", "inception_resnet_v2"))
    },
}


def spec(name: str):
    return PORTS[CONFIGS[name].arch].spec(name)


def convert(state_dict, config: InceptionConfig = CONFIGS["inception_v3"]) -> dict:
    """Checked torch state_dict -> Flax variables of `Inception(config)` (v3: `AuxLogits.*` dropped)."""
    return PORTS[config.arch].convert(state_dict, config)
