"""EVA-02 (Fang et al. 2023, "EVA-02: A Visual Representation for Neon Genesis") in Flax linen
(NHWC), weight-compatible with timm's `eva02_large_patch14_448` (timm 1.0.31 `models/eva.py`).

Architecture (timm `Eva` with `qkv_fused=False, swiglu_mlp=True, scale_mlp=True,
use_rot_pos_emb=True, ref_feat_shape=16`, global_pool "avg"):
patch embedding conv p x p / p -> tokens [B, gh*gw, D] -> prepend the class token -> add the
learned absolute position embedding (resampled as `vit.resample_pos_embed` at another grid)
-> `depth` pre-norm blocks

    x = x + proj(attention(rope(q), rope(k), v))   q, k, v = separate Linears of norm1(x)
    x = x + fc2(LN(silu(fc1_g(h)) * fc1_x(h)))      h = norm2(x)   (SwiGLU with sub-LN)

(k_proj has no bias, as timm; LayerNorm eps 1e-6; no attention inner norm) -> mean of the patch
tokens (the class token is not pooled) -> `fc_norm` LayerNorm -> Linear head. timm's final
`norm` is the identity for average pooling, so the checkpoint has no `norm.*` keys.

Rotary position embedding (timm `RotaryEmbeddingCat`, `in_pixels=False`, interleaved
rotation): per head (dimension d, nb = d/4 bands `1/T^(i/nb)`, T = 10000) and patch token at
grid cell (i, j) of a gh x gw grid, the positions are scaled to the reference grid,
`(i * ref/gh, j * ref/gw)`; the angles `pos_axis * band` ([h bands, w bands], each repeated
twice) rotate consecutive channel pairs: `x' = x cos + rot(x) sin`, `rot(x) = [-x1, x0, -x3,
x2, ...]`. The class token is not rotated. The tables are constants per token, so
Activation-Deactivation needs no rule of its own for them (the attention itself goes through
`rexjax.models.layers.attention`, which `ad/rules_attention.py` rewrites).

Inputs: any size whose sides are multiples of the patch (timm with `dynamic_img_size=True`;
the default timm model accepts only 448 x 448, where both give the same numbers).

Key layout: Flax module names are the timm module paths, so `vit.key_fn` names every key.

Feature points (`feature`: perturbable and sown): `patch_embed` [B,gh,gw,D], `last_block`
[B,gh,gw,D] (patch tokens after the last block: the Grad-CAM layer), `pre_logits` [B,D]
(after `fc_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.convert.checks import convert_state_dict
from rexjax.models.layers import attention
from rexjax.models.model import ModelSpec, variables_template
from rexjax.models.preprocess import Preprocess
from rexjax.models.torch_port import feature
from rexjax.models.vit import NAMES, PatchTransformerSizes, _ln, embed_patches, key_fn

# timm.data.OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, in 0..255 units
OPENAI_CLIP_MEAN = tuple(255 * m for m in (0.48145466, 0.4578275, 0.40821073))
OPENAI_CLIP_STD = tuple(255 * s for s in (0.26862954, 0.26130258, 0.27577711))


@dataclass(frozen=True, kw_only=True)
class EvaConfig(PatchTransformerSizes):
    """EVA-02 hyperparameters. mlp_dim = int(dim * 4 * 2/3) as timm; ref_grid = timm's
    `ref_feat_shape` (the rotary positions are scaled to this grid)."""

    ref_grid: int = 16
    rope_temperature: float = 10000.0

    def __post_init__(self):
        self.check_sizes(self.ref_grid)
        if (self.dim // self.heads) % 4:
            raise ValueError(f"head dimension {self.dim // self.heads} must be a multiple of 4 (2-D rotary embedding)")


CONFIGS = {"eva02_large_patch14_448": EvaConfig(patch=14, dim=1024, depth=24, heads=16, mlp_dim=2730, image_size=448)}


def rope_tables(grid: tuple[int, int], ref: tuple[int, int], head_dim: int, temperature: float = 10000.0):
    """(sin, cos), each f32[gh*gw, head_dim]: timm `RotaryEmbeddingCat(in_pixels=False,
    ref_feat_shape=ref).get_embed(grid)` split in halves (row-major tokens). Computed in
    float32 in timm's order of operations (`freq_bands`, `_build_grid`, `_rope_layout`)."""
    nb = head_dim // 4
    bands = (np.float32(1.0) / np.float32(temperature) ** (np.arange(nb, dtype=np.float32) / np.float32(nb))).astype(np.float32)
    axes = [np.arange(g, dtype=np.float32) / np.float32(g) * np.float32(r) for g, r in zip(grid, ref)]
    pos = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)[..., None] * bands  # [gh, gw, 2, nb]
    n = grid[0] * grid[1]
    layout = lambda t: np.repeat(t.reshape(n, 2 * nb), 2, axis=-1).astype(np.float32)  # noqa: E731
    return layout(np.sin(pos)), layout(np.cos(pos))


def apply_rope(x: jax.Array, sin: np.ndarray, cos: np.ndarray) -> jax.Array:
    """x f32[B, N, heads, d] rotated per token (timm `apply_rot_embed`, interleaved):
    `x cos + rot(x) sin`, rot([x0, x1, x2, x3, ...]) = [-x1, x0, -x3, x2, ...]; sin, cos [N, d]."""
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    # concatenate, not stack: Activation-Deactivation has rules for slice/concatenate/reshape
    rot = jnp.concatenate([-pairs[..., 1:], pairs[..., :1]], axis=-1).reshape(x.shape)
    return x * cos[None, :, None] + rot * sin[None, :, None]


class EvaAttention(nn.Module):
    """x f32[B, 1+N, D] -> [B, 1+N, D]: separate q/k/v Linears (k without bias), rotary
    embedding on the N patch tokens of q and k, `layers.attention`, output Linear."""

    heads: int

    @nn.compact
    def __call__(self, x: jax.Array, sin: np.ndarray, cos: np.ndarray) -> jax.Array:
        b, n, d = x.shape
        split = lambda t: t.reshape(b, n, self.heads, d // self.heads)  # noqa: E731
        q = split(nn.Dense(d, name="q_proj")(x))
        k = split(nn.Dense(d, use_bias=False, name="k_proj")(x))
        v = split(nn.Dense(d, name="v_proj")(x))
        q, k = (jnp.concatenate([t[:, :1], apply_rope(t[:, 1:], sin, cos)], axis=1) for t in (q, k))
        return nn.Dense(d, name="proj")(attention(q, k, v).reshape(b, n, d))


class SwiGLU(nn.Module):
    """timm `SwiGLU` with sub-LN (`scale_mlp`): x[..., D] -> fc2(LN(silu(fc1_g x) * fc1_x x))."""

    hidden: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = jax.nn.silu(nn.Dense(self.hidden, name="fc1_g")(x)) * nn.Dense(self.hidden, name="fc1_x")(x)
        return nn.Dense(x.shape[-1], name="fc2")(_ln("norm")(h))


class EvaBlock(nn.Module):
    """Pre-norm EVA-02 block: x[B, 1+N, D] -> [B, 1+N, D]."""

    config: EvaConfig

    @nn.compact
    def __call__(self, x: jax.Array, sin: np.ndarray, cos: np.ndarray) -> jax.Array:
        x = x + EvaAttention(self.config.heads, name="attn")(_ln("norm1")(x), sin, cos)
        return x + SwiGLU(self.config.mlp_dim, name="mlp")(_ln("norm2")(x))


class Eva(nn.Module):
    """EVA-02: x f32[B,H,W,3] (normalised RGB, H and W multiples of the patch) -> logits f32[B,num_classes]."""

    config: EvaConfig = CONFIGS["eva02_large_patch14_448"]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        # the stem keys are timm ViT's (cls_token, pos_embed, patch_embed.proj); the class token is drawn as timm's Eva draws it
        tokens, (gh, gw) = embed_patches(self, x, cfg, NAMES["timm"], cls_init=nn.initializers.normal(0.02))
        b, _, d = tokens.shape
        sin, cos = rope_tables((gh, gw), (cfg.ref_grid, cfg.ref_grid), d // cfg.heads, cfg.rope_temperature)
        for i in range(cfg.depth):
            tokens = EvaBlock(cfg, name=f"blocks.{i}")(tokens, sin, cos)
        grid = feature(self, "last_block", tokens[:, 1:].reshape(b, gh, gw, d))
        pooled = feature(self, "pre_logits", _ln("fc_norm")(jnp.mean(grid, axis=(1, 2))))
        return nn.Dense(cfg.num_classes, name="head")(pooled)


def convert(state_dict, config: EvaConfig = CONFIGS["eva02_large_patch14_448"]) -> dict:
    """timm state_dict -> Flax variables of `Eva(config)`, every key and shape checked
    (CheckpointMismatchError names every bad key)."""
    template = variables_template(Eva(config), (config.image_size, config.image_size))
    return convert_state_dict(state_dict, template, key_fn, source="EVA-02 (timm) state_dict")


def spec(name: str) -> ModelSpec:
    """The ModelSpec of `name` (no bundled weights). timm's pretrained eval transform is a
    squash resize of the whole image to 448 (crop_pct 1.0), the zoo's own convention."""
    cfg = CONFIGS[name]
    size = cfg.image_size
    return ModelSpec(
        name=name,
        make_module=lambda: Eva(cfg),
        input_size=(size, size),
        num_classes=cfg.num_classes,
        preprocess=Preprocess((size, size), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, "bicubic"),
        key_fn=key_fn,
        feature_names=cfg.feature_names,
        description=(
            f"timm {name} (weights: timm state_dict .pth; source eval: resize {size} bicubic, crop_pct 1.0 "
            f"(squash), OpenAI CLIP mean {tuple(round(m / 255, 3) for m in OPENAI_CLIP_MEAN)} "
            f"std {tuple(round(s / 255, 3) for s in OPENAI_CLIP_STD)})"
        ),
    )
