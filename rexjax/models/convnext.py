"""ConvNeXt (torchvision) and ConvNeXt-V2 (timm) in Flax linen (NHWC).

Architecture (Liu et al. 2022; V2: Woo et al. 2023): stem conv4x4/4 (bias) -> LayerNorm
over channels (eps 1e-6) -> 4 stages, each (except the first) opened by a downsample
`LayerNorm -> conv2x2/2 (bias)`; a block is

    x + ls * fc2(grn(gelu(fc1(LN(dwconv7x7(x))))))

with a depthwise 7x7 conv (pad 3, bias), Linear layers over channels (4x expansion),
exact (erf) GELU, `ls` the per-channel layer scale (torchvision; V2 has none) and `grn`
the V2 Global Response Normalisation (timm `GlobalResponseNorm`, channels last):

    g = ||x||_2 over (H, W) per channel;  n = g / (mean_c g + 1e-6);  grn(x) = x + (b + w * (x * n))

Head: global average pool -> LayerNorm -> Linear. LayerNorms compute the variance as
mean((x - mean)^2), as torch does (not flax's default E[x^2] - E[x]^2).

Two key layouts of one module: torchvision (`features.{i}...`, `classifier.{0,2}`,
`block.{0,2,3,5}`, `layer_scale` (C,1,1)) and timm (`stem.{0,1}`, `stages.{s}.downsample.{0,1}`,
`stages.{s}.blocks.{b}.{conv_dw,norm,mlp.fc1,mlp.grn,mlp.fc2}`, `head.{norm,fc}`).
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp

from rexjax.models.layers import depthwise_conv
from rexjax.models.torch_port import (
    TorchPort,
    check_rgb_batch,
    dotted_key_fn,
    feature,
    stage_feature_names,
)

LN_EPS = 1e-6
GRN_EPS = 1e-6
LAYER_SCALE_INIT = 1e-6


# Flax module names of one key layout ('_' for torch's '.'). `downsample` and `block` are
# templates: {s} = stage index, {f} = torchvision `features` index, {b} = block index; the
# downsample's LayerNorm is `<downsample>_0`, its conv `<downsample>_1`.
Names = namedtuple("Names", "stem_conv stem_norm downsample block dwconv norm fc1 fc2 head_norm head_fc")
NAMES = {
    "torchvision": Names(
        "features_0_0", "features_0_1", "features_{f}", "features_{f}_{b}",
        "block_0", "block_2", "block_3", "block_5", "classifier_0", "classifier_2",
    ),
    "timm": Names(
        "stem_0", "stem_1", "stages_{s}_downsample", "stages_{s}_blocks_{b}",
        "conv_dw", "norm", "mlp_fc1", "mlp_fc2", "head_norm", "head_fc",
    ),
}


@dataclass(frozen=True)
class ConvNeXtConfig:
    """depths/dims per stage; layer_scale: torchvision's per-block `layer_scale` (C,1,1);
    grn: V2's GRN in the MLP; timm: timm key layout (else torchvision's)."""

    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    layer_scale: bool = True
    grn: bool = False
    timm: bool = False
    num_classes: int = 1000

    def __post_init__(self):
        if len(self.depths) != len(self.dims) or not self.depths or min(self.depths) < 1 or min(self.dims) < 1:
            raise ValueError(f"depths {self.depths} and dims {self.dims} must be non-empty, equal length, >= 1")
        if self.timm and self.layer_scale:
            raise ValueError("layer_scale is torchvision's (timm's `gamma` layout is not ported): timm=True needs layer_scale=False")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return stage_feature_names("stem", "stage", len(self.depths), "pooled")

    @property
    def names(self) -> Names:
        return NAMES["timm" if self.timm else "torchvision"]


def _tv(depths, dims) -> ConvNeXtConfig:
    return ConvNeXtConfig(depths=depths, dims=dims)


def _v2(dims) -> ConvNeXtConfig:
    return ConvNeXtConfig(depths=(3, 3, 27, 3), dims=dims, layer_scale=False, grn=True, timm=True)


TORCHVISION_CONFIGS = {
    "convnext_tiny": _tv((3, 3, 9, 3), (96, 192, 384, 768)),
    "convnext_small": _tv((3, 3, 27, 3), (96, 192, 384, 768)),
    "convnext_base": _tv((3, 3, 27, 3), (128, 256, 512, 1024)),
    "convnext_large": _tv((3, 3, 27, 3), (192, 384, 768, 1536)),
}
TIMM_CONFIGS = {
    "convnextv2_large": _v2((192, 384, 768, 1536)),
    "convnextv2_huge": _v2((352, 704, 1408, 2816)),
}
CONFIGS = {**TORCHVISION_CONFIGS, **TIMM_CONFIGS}


def _ln(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LN_EPS, use_fast_variance=False, name=name)


class DepthwiseConvBias(nn.Module):
    """torch `Conv2d(C, C, k, padding=k//2, groups=C)` with bias: x[B,H,W,C] -> [B,H,W,C],
    through the named `depthwise_conv` (a conv to ConvAD)."""

    kernel_size: int = 7

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c, k = x.shape[-1], self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, c), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        p = k // 2
        return depthwise_conv(x, kernel, 1, ((p, p), (p, p))) + bias


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2 GRN (channels last): x[B,H,W,C] -> x + (bias + scale * (x * n)),
    n = ||x||_(H,W) / (mean_C ||x||_(H,W) + eps). Params `scale`/`bias` = timm weight/bias."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        w = self.param("scale", nn.initializers.zeros, (c,), jnp.float32)
        b = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        g = jnp.sqrt(jnp.sum(x * x, axis=(1, 2), keepdims=True))
        n = g / (jnp.mean(g, axis=-1, keepdims=True) + GRN_EPS)
        return x + (b + w * (x * n))


class Block(nn.Module):
    """ConvNeXt block: x[B,H,W,C] -> x + ls * fc2(grn(gelu(fc1(LN(dwconv(x)))))) (`ls` if
    `config.layer_scale`, `grn` if `config.grn`)."""

    config: ConvNeXtConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c, nm = x.shape[-1], self.config.names
        h = _ln(nm.norm)(DepthwiseConvBias(7, name=nm.dwconv)(x))
        h = jax.nn.gelu(nn.Dense(4 * c, name=nm.fc1)(h), approximate=False)
        if self.config.grn:
            h = GlobalResponseNorm(name="mlp_grn")(h)
        h = nn.Dense(c, name=nm.fc2)(h)
        if self.config.layer_scale:
            ls = self.param("layer_scale", nn.initializers.constant(LAYER_SCALE_INIT), (c, 1, 1), jnp.float32)
            h = h * ls.reshape(c)
        return x + h


def _conv(features: int, k: int, name: str) -> nn.Conv:
    return nn.Conv(features, (k, k), (k, k), padding=((0, 0), (0, 0)), name=name)


class ConvNeXt(nn.Module):
    """ConvNeXt: x f32[B,H,W,3] (ImageNet-normalised RGB) -> logits f32[B,num_classes].

    Intermediates (`ConvNeXtConfig.feature_names`): `stem` (after the stem LayerNorm),
    `stage1`..`stage4` (stage outputs; `stage4` is the Grad-CAM layer), `pooled`.
    """

    config: ConvNeXtConfig = CONFIGS["convnext_tiny"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_rgb_batch(self, x)
        cfg, nm = self.config, self.config.names
        x = feature(self, "stem", _ln(nm.stem_norm)(_conv(cfg.dims[0], 4, nm.stem_conv)(x)))
        for s, (depth, dim) in enumerate(zip(cfg.depths, cfg.dims)):
            if s > 0:
                down = nm.downsample.format(s=s, f=2 * s)
                x = _conv(dim, 2, f"{down}_1")(_ln(f"{down}_0")(x))
            for b in range(depth):
                x = Block(cfg, name=nm.block.format(s=s, f=2 * s + 1, b=b))(x)
            x = feature(self, f"stage{s + 1}", x)
        x = feature(self, "pooled", jnp.mean(x, axis=(1, 2)))
        return nn.Dense(cfg.num_classes, name=nm.head_fc)(_ln(nm.head_norm)(x))


# torchvision eval transforms: resize 236 (tiny) / 230 (small) / 232 (base, large) -> crop 224, bilinear;
# timm default pretrained cfgs: convnextv2_large.fcmae_ft_in22k_in1k 224 (crop 0.875), convnextv2_huge
# .fcmae_ft_in22k_in1k_384 384 (crop 1.0), bicubic. The zoo resizes the whole image to the eval size.
TORCHVISION_PORT = TorchPort(
    ConvNeXt, TORCHVISION_CONFIGS, 224, "bilinear",
    "torchvision {name} (weights: torchvision state_dict .pth; bilinear, ImageNet mean/std)",
    key_fn=dotted_key_fn(leaves={"layer_scale": "layer_scale"}),
)
TIMM_KEYS = dotted_key_fn(words=("conv_dw",))
TIMM_PORTS = {
    name: TorchPort(
        ConvNeXt, TIMM_CONFIGS, size, "bicubic",
        "timm {name} (weights: timm state_dict .pth; bicubic, ImageNet mean/std)", key_fn=TIMM_KEYS,
    )
    for name, size in (("convnextv2_large", 224), ("convnextv2_huge", 384))
}


def spec(name: str):
    return TIMM_PORTS[name].spec(name) if name in TIMM_PORTS else TORCHVISION_PORT.spec(name)


def convert(state_dict, config: ConvNeXtConfig = CONFIGS["convnext_tiny"]) -> dict:
    """Checked torch state_dict -> Flax variables of `ConvNeXt(config)` (layout by `config.timm`)."""
    return (TIMM_PORTS["convnextv2_large"] if config.timm else TORCHVISION_PORT).convert(state_dict, config)
