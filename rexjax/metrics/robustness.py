"""rho-robustness of an explanation (Activation-Deactivation paper, Definition 2).

The explanation's pixels (mask E, 1 = explanation) are pasted on each context image b_j:
`x E + b_j (1 - E)`; rho is the fraction of contexts whose top-1 class is the target.
Contexts: K1 solid colours and K2 IID-noise images (`solid_backgrounds`, `iid_backgrounds`,
uniform per channel between the bounds of the model input space, by default the
per-channel min/max of x), or any images the caller supplies (the paper's K2 uses images of
other classes: pass them as `backgrounds`). The pasted images are classified whole (all
pixels visible) by the MaskedClassifier.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from rexjax.saliency._common import (
    check_image,
    check_positive,
    check_target,
    chunk_map,
    flatten_chunks,
    num_classes_masked,
)


class Robustness(NamedTuple):
    rho_solid: float
    rho_iid: float
    forward_images: int


def _bounds(x, bounds):
    if bounds is None:
        return x.min(axis=(0, 1)), x.max(axis=(0, 1))
    low, high = (jnp.broadcast_to(jnp.asarray(b, x.dtype), x.shape[-1:]) for b in bounds)
    return low, high


def solid_backgrounds(key, k: int, x, bounds=None) -> jax.Array:
    """k solid-colour images shaped like x: one uniform colour per image -> f32[k, H, W, C]."""
    low, high = _bounds(x, bounds)
    c = jax.random.uniform(key, (k, 1, 1, x.shape[-1]), x.dtype)
    return jnp.broadcast_to(low + c * (high - low), (k,) + x.shape)


def iid_backgrounds(key, k: int, x, bounds=None) -> jax.Array:
    """k IID uniform-noise images shaped like x -> f32[k, H, W, C]."""
    low, high = _bounds(x, bounds)
    return low + jax.random.uniform(key, (k,) + x.shape, x.dtype) * (high - low)


@functools.partial(jax.jit, static_argnums=(0, 5))
def _hits(classify, x, mask, backgrounds, target, batch_size):
    n = backgrounds.shape[0]
    ones = jnp.ones((1,) + x.shape[:2], x.dtype)
    m = mask.astype(x.dtype)[..., None]

    def chunk(idx):
        pasted = x * m + backgrounds[jnp.minimum(idx, n - 1)] * (1 - m)
        probs = jax.vmap(lambda img: classify(img, ones)[0])(pasted)
        return jnp.argmax(probs, axis=-1) == target

    return flatten_chunks(chunk_map(chunk, n, batch_size), n)


def rho(classify, x, mask, target, backgrounds, batch_size: int = 32) -> float:
    """Fraction of `backgrounds[K, H, W, C]` on which x's pixels under `mask` give `target`."""
    x = check_image(x)
    mask = jnp.asarray(mask)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask must be [H, W] = {x.shape[:2]}, got {mask.shape}")
    backgrounds = jnp.asarray(backgrounds, x.dtype)
    if backgrounds.ndim != 4 or backgrounds.shape[1:] != x.shape or backgrounds.shape[0] == 0:
        raise ValueError(f"backgrounds must be [K>0, {', '.join(map(str, x.shape))}], got {backgrounds.shape}")
    check_positive(batch_size=batch_size)
    t = check_target(target, num_classes_masked(classify, x))
    return float(_hits(classify, x, mask, backgrounds, t, batch_size).mean())


def rho_robustness(
    key, classify, x, mask, target, k_solid: int = 100, k_iid: int = 100,
    bounds: Optional[tuple] = None, batch_size: int = 32,
) -> Robustness:
    """rho against `k_solid` solid colours and `k_iid` IID-noise backgrounds (paper: 100 each)."""
    check_positive(k_solid=k_solid, k_iid=k_iid)
    x = check_image(x)
    ks, ki = jax.random.split(key)
    r1 = rho(classify, x, mask, target, solid_backgrounds(ks, k_solid, x, bounds), batch_size)
    r2 = rho(classify, x, mask, target, iid_backgrounds(ki, k_iid, x, bounds), batch_size)
    return Robustness(r1, r2, k_solid + k_iid)
