"""rho-robustness of an explanation (Activation-Deactivation paper, Definition 2).

The explanation's pixels (mask E, 1 = explanation) are pasted on each context image b_j:
`x E + b_j (1 - E)`; rho is the fraction of contexts whose top-1 class is the target.
Contexts: K1 solid colours and K2 IID-noise images (`solid_backgrounds`, `iid_backgrounds`,
uniform per channel between the bounds of the model input space, by default the
per-channel min/max of x), or any images the caller supplies (the paper's K2 uses images of
other classes: pass them as `backgrounds`). The pasted images are classified whole (all
pixels visible) with `classifier.probs`, `batch_size` at a time (`rexjax.batching.push`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from rexjax import batching, checks


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
def _hits(classifier, x, mask, backgrounds, target, batch_size):
    m = mask.astype(x.dtype)[..., None]

    def evaluate(idx):
        pasted = x[None] * m + backgrounds[idx] * (1 - m)
        return jnp.argmax(classifier.probs(pasted), axis=-1) == target

    return batching.push(evaluate, backgrounds.shape[0], batch_size=batch_size, read=lambda v, idx: v).values


def rho(classifier, x, mask, target, backgrounds, batch_size: Optional[int] = None) -> float:
    """Fraction of `backgrounds[K, H, W, C]` on which x's pixels under `mask` give `target`."""
    x, t = classifier.check(x, target)
    mask = jnp.asarray(checks.bool_mask(mask, "mask", x.shape[:2]))
    backgrounds = jnp.asarray(backgrounds, x.dtype)
    if backgrounds.ndim != 4 or backgrounds.shape[1:] != x.shape or backgrounds.shape[0] == 0:
        raise ValueError(f"backgrounds must be [K>0, {', '.join(map(str, x.shape))}], got {backgrounds.shape}")
    batch_size = batching.resolve_batch_size(batch_size)
    return float(_hits(classifier, x, mask, backgrounds, t, batch_size).mean())


def rho_robustness(
    key, classifier, x, mask, target, k_solid: int = 100, k_iid: int = 100,
    bounds: Optional[tuple] = None, batch_size: Optional[int] = None,
) -> Robustness:
    """rho against `k_solid` solid colours and `k_iid` IID-noise backgrounds (paper: 100 each).

    key: an integer seed or a `jax.random` key (required). forward_images counts the
    backgrounds rounded up to whole chunks.
    """
    checks.positive_int(k_solid=k_solid, k_iid=k_iid)
    batch_size = batching.resolve_batch_size(batch_size)
    x = checks.image(x)
    ks, ki = jax.random.split(checks.key(key))
    r1 = rho(classifier, x, mask, target, solid_backgrounds(ks, k_solid, x, bounds), batch_size)
    r2 = rho(classifier, x, mask, target, iid_backgrounds(ki, k_iid, x, bounds), batch_size)
    return Robustness(r1, r2, batching.padded_count(k_solid, batch_size) + batching.padded_count(k_iid, batch_size))
