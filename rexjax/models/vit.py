"""Vision Transformers (Dosovitskiy et al. 2021) in Flax linen (NHWC), weight-compatible with
torchvision `vit_b_16`, `vit_b_32`, `vit_l_16` and timm `vit_large_patch16_224`,
`vit_huge_patch14_224`.

Architecture (both sources): patch embedding conv p x p / p (input sides must be multiples
of p: torchvision and timm reject other sizes) -> tokens [B, gh*gw, D] ->
prepend the class token -> add learned position embeddings -> `depth` pre-norm blocks
`x = x + attn(ln1(x)); x = x + mlp(ln2(x))` (LayerNorm eps 1e-6, exact-erf GELU MLP, multi-
head self-attention through `rexjax.models.layers.attention`, the named function that
Activation-Deactivation rewrites) -> final LayerNorm -> class token -> Linear head.

Position embeddings are learned for the `image_size // patch` grid; at any other grid they
are resampled as timm's `resample_abs_pos_embed` (dynamic image size): the grid part is
interpolated bicubically with timm's defaults (torch `F.interpolate(mode="bicubic",
align_corners=False, antialias=True)`: `cubic_weights`) and the class token's entry kept.
torchvision itself only accepts `image_size` inputs; the same rule is used for both layouts.

Key layouts: Flax module names are the torch module paths (dots included), so
`key_fn(path) = '.'.join(modules) + '.' + weight|bias` (raw parameters such as
`class_token` keep their name; torchvision's packed `in_proj` gives `in_proj_weight`).

Feature points (`feature`: perturbable and sown): `patch_embed` [B,gh,gw,D] (the patch
embedding), `last_block` [B,gh,gw,D] (the patch tokens after the last block: the Grad-CAM
layer, as pytorch-grad-cam's ViT recipe), `pre_logits` [B,D] (class token after the norm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.convert.checks import convert_state_dict
from rexjax.models.layers import attention
from rexjax.models.model import ModelSpec, variables_template
from rexjax.models.preprocess import Preprocess
from rexjax.models.torch_port import IMAGENET_MEAN, IMAGENET_STD, LEAF_NAMES, check_rgb_batch, feature

LN_EPS = 1e-6
LAYOUTS = ("torchvision", "timm")


@dataclass(frozen=True, kw_only=True)
class PatchTransformerSizes:
    """What every patch transformer config (ViT, EVA-02) shares: the sizes (patch side,
    token width dim, depth blocks, heads, MLP width, the image_size the position embeddings
    are learned for), the class count, the size checks, the patch grid and the feature points."""

    patch: int
    dim: int
    depth: int
    heads: int
    mlp_dim: int
    image_size: int
    num_classes: int = 1000

    def check_sizes(self, *more: int) -> None:
        """ValueError unless every size (and `more`) is positive and dim splits into heads."""
        if self.dim % self.heads or min(self.patch, self.dim, self.depth, self.heads, self.mlp_dim, *more) < 1:
            raise ValueError(f"dim {self.dim} must be a positive multiple of heads {self.heads}")
        if self.image_size < self.patch:
            raise ValueError(f"image_size {self.image_size} is smaller than the patch {self.patch}")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ("patch_embed", "last_block", "pre_logits")


@dataclass(frozen=True, kw_only=True)
class ViTConfig(PatchTransformerSizes):
    """ViT hyperparameters. layout: "torchvision" (`VisionTransformer` key names) or "timm"."""

    layout: str = "torchvision"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        self.check_sizes()


@dataclass(frozen=True)
class Names:
    """Torch module paths of one layout ({i} = block index)."""

    cls: str
    pos: str
    patch: str
    block: str
    ln1: str
    attn: str
    qkv: str
    proj: str
    ln2: str
    fc1: str
    fc2: str
    norm: str
    head: str


NAMES = {
    "torchvision": Names(
        "class_token", "encoder.pos_embedding", "conv_proj", "encoder.layers.encoder_layer_{i}",
        "ln_1", "self_attention", "in_proj", "out_proj", "ln_2", "mlp.0", "mlp.3", "encoder.ln", "heads.head",
    ),
    "timm": Names(
        "cls_token", "pos_embed", "patch_embed.proj", "blocks.{i}",
        "norm1", "attn", "qkv", "proj", "norm2", "mlp.fc1", "mlp.fc2", "norm", "head",
    ),
}

CONFIGS = {
    "vit_b_16": ViTConfig(patch=16, dim=768, depth=12, heads=12, mlp_dim=3072, image_size=224),
    "vit_b_32": ViTConfig(patch=32, dim=768, depth=12, heads=12, mlp_dim=3072, image_size=224),
    "vit_l_16": ViTConfig(patch=16, dim=1024, depth=24, heads=16, mlp_dim=4096, image_size=224),
    "vit_large_patch16_224": ViTConfig(patch=16, dim=1024, depth=24, heads=16, mlp_dim=4096, image_size=224, layout="timm"),
    "vit_huge_patch14_224": ViTConfig(patch=14, dim=1280, depth=32, heads=16, mlp_dim=5120, image_size=224, layout="timm"),
}

# eval preprocessing as each source defines it: (resize, crop, mean, std, interpolation)
SOURCE_PREPROCESS = {
    "vit_b_16": (256, 224, IMAGENET_MEAN, IMAGENET_STD, "bilinear"),  # ViT_B_16_Weights.IMAGENET1K_V1
    "vit_b_32": (256, 224, IMAGENET_MEAN, IMAGENET_STD, "bilinear"),  # ViT_B_32_Weights.IMAGENET1K_V1
    "vit_l_16": (242, 224, IMAGENET_MEAN, IMAGENET_STD, "bilinear"),  # ViT_L_16_Weights.IMAGENET1K_V1
    # timm pretrained_cfg: crop_pct 0.9 (resize 248), inception mean/std 0.5
    "vit_large_patch16_224": (248, 224, (127.5,) * 3, (127.5,) * 3, "bicubic"),
    "vit_huge_patch14_224": (248, 224, (127.5,) * 3, (127.5,) * 3, "bicubic"),
}


def cubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """f32[n_out, n_in]: torch's antialiased bicubic interpolation along one axis as a
    matrix, `out = W @ in` (`F.interpolate(mode="bicubic", align_corners=False,
    antialias=True)`, ATen `_compute_indices_weights_aa`: Keys kernel a=-0.5 stretched by
    max(1, n_in/n_out), taps restricted to the input and normalised to sum 1)."""
    a = -0.5
    scale = n_in / n_out
    support = 2.0 * max(scale, 1.0)
    invscale = 1.0 / scale if scale >= 1.0 else 1.0

    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x < 1, near, np.where(x < 2, far, 0.0))

    w = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = kernel((np.arange(lo, hi) - center + 0.5) * invscale)
        w[i, lo:hi] = taps / taps.sum()
    return w.astype(np.float32)


def resample_pos_embed(pos: jax.Array, old: tuple[int, int], new: tuple[int, int]) -> jax.Array:
    """pos f32[1, 1 + old_h*old_w, D] -> f32[1, 1 + new_h*new_w, D] (timm
    `resample_abs_pos_embed`, one prefix token): unchanged if `new == old`, else the grid
    part is resampled bicubically (`cubic_weights` on each axis) and the class entry kept."""
    if tuple(new) == tuple(old):
        return pos
    d = pos.shape[-1]
    grid = pos[0, 1:].reshape(old[0], old[1], d)
    wh, ww = cubic_weights(old[0], new[0]), cubic_weights(old[1], new[1])
    grid = jnp.einsum("ih,hwd->iwd", wh, grid, precision=jax.lax.Precision.HIGHEST)
    grid = jnp.einsum("jw,iwd->ijd", ww, grid, precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([pos[:, :1], grid.reshape(1, new[0] * new[1], d)], axis=1)


def embed_patches(
    module: nn.Module, x: jax.Array, cfg: PatchTransformerSizes, nm: Names, cls_init: Callable = nn.initializers.zeros
) -> tuple[jax.Array, tuple[int, int]]:
    """The patch transformers' stem, called from `module`'s compact method (the class token
    `nm.cls`, position embedding `nm.pos` and patch conv `nm.patch` are `module`'s):
    x f32[B,H,W,3] (H, W multiples of the patch) -> (tokens f32[B, 1+gh*gw, D] = [class
    token, patch embeddings] + the position embeddings resampled to the gh x gw grid
    (`resample_pos_embed`), (gh, gw)). Feature point `patch_embed` [B,gh,gw,D]."""
    check_rgb_batch(module, x)
    if x.shape[1] % cfg.patch or x.shape[2] % cfg.patch:
        name = type(module).__name__
        raise ValueError(f"{name} input height and width must be multiples of the patch {cfg.patch}, got {x.shape[1:3]}")
    cls = module.param(nm.cls, cls_init, (1, 1, cfg.dim), jnp.float32)
    pos = module.param(nm.pos, nn.initializers.normal(0.02), (1, 1 + cfg.grid**2, cfg.dim), jnp.float32)
    p = cfg.patch
    x = nn.Conv(cfg.dim, (p, p), (p, p), padding="VALID", name=nm.patch)(x)
    b, gh, gw, d = x.shape
    x = feature(module, "patch_embed", x)
    tokens = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, d)), x.reshape(b, gh * gw, d)], axis=1)
    return tokens + resample_pos_embed(pos, (cfg.grid, cfg.grid), (gh, gw)), (gh, gw)


def _ln(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LN_EPS, use_fast_variance=False, name=name)


class SelfAttention(nn.Module):
    """Multi-head self-attention: x[B,N,D] -> [B,N,D]; packed qkv Linear (torch order q, k, v,
    heads contiguous), `layers.attention`, output Linear."""

    heads: int
    names: Names

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, n, d = x.shape
        qkv = nn.Dense(3 * d, name=self.names.qkv)(x).reshape(b, n, 3, self.heads, d // self.heads)
        out = attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
        return nn.Dense(d, name=self.names.proj)(out.reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm encoder block: x[B,N,D] -> [B,N,D]."""

    config: ViTConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg, nm = self.config, NAMES[self.config.layout]
        x = x + SelfAttention(cfg.heads, nm, name=nm.attn)(_ln(nm.ln1)(x))
        h = jax.nn.gelu(nn.Dense(cfg.mlp_dim, name=nm.fc1)(_ln(nm.ln2)(x)), approximate=False)
        return x + nn.Dense(cfg.dim, name=nm.fc2)(h)


class ViT(nn.Module):
    """ViT: x f32[B,H,W,3] (normalised RGB, H and W multiples of the patch) -> logits f32[B,num_classes]."""

    config: ViTConfig = CONFIGS["vit_b_16"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg, nm = self.config, NAMES[self.config.layout]
        tokens, (gh, gw) = embed_patches(self, x, cfg, nm)
        for i in range(cfg.depth):
            tokens = Block(cfg, name=nm.block.format(i=i))(tokens)
        b, _, d = tokens.shape
        grid = feature(self, "last_block", tokens[:, 1:].reshape(b, gh, gw, d))
        tokens = jnp.concatenate([tokens[:, :1], grid.reshape(b, gh * gw, d)], axis=1)
        pooled = feature(self, "pre_logits", _ln(nm.norm)(tokens)[:, 0])
        return nn.Dense(cfg.num_classes, name=nm.head)(pooled)


def key_fn(path: tuple[str, ...]) -> str:
    """Flax variable path -> torch key (module docstring)."""
    *mods, leaf = path[1:]
    if leaf not in LEAF_NAMES:  # a raw parameter: class token, position embedding
        return ".".join(mods + [leaf])
    prefix = ".".join(mods)
    return prefix + ("_" if mods and mods[-1] == "in_proj" else ".") + LEAF_NAMES[leaf]


def convert(state_dict, config: ViTConfig = CONFIGS["vit_b_16"]) -> dict:
    """torch state_dict -> Flax variables of `ViT(config)`, every key and shape checked
    (CheckpointMismatchError names every bad key)."""
    template = variables_template(ViT(config), (config.image_size, config.image_size))
    return convert_state_dict(state_dict, template, key_fn, source=f"ViT ({config.layout}) state_dict")


def spec(name: str) -> ModelSpec:
    """The ModelSpec of `name` (no bundled weights). The zoo resizes the whole image to the
    crop size (`torch_port`); the source's resize/crop is recorded in the description."""
    cfg = CONFIGS[name]
    resize, crop, mean, std, resample = SOURCE_PREPROCESS[name]
    return ModelSpec(
        name=name,
        make_module=lambda: ViT(cfg),
        input_size=(cfg.image_size, cfg.image_size),
        num_classes=cfg.num_classes,
        preprocess=Preprocess((crop, crop), mean, std, resample),
        key_fn=key_fn,
        feature_names=cfg.feature_names,
        description=(
            f"{cfg.layout} {name} (weights: {cfg.layout} state_dict .pth; source eval: resize {resize} "
            f"{resample}, center crop {crop}, mean {tuple(round(m / 255, 3) for m in mean)} "
            f"std {tuple(round(s / 255, 3) for s in std)})"
        ),
    )
