"""Shared pieces of the saliency baselines: the result record, input checks, chunking.

Every method is a factory returning a function `(key, model, x, target) -> Saliency`:

    key:    a `jax.random` key (ignored by deterministic methods, but always taken)
    model:  what the method needs to see of the model (see each method):
              mask-based methods  -> a MaskedClassifier `(x[H,W,C], masks[B,H,W]) -> probs[B,K]`
              gradient methods    -> a batched logits function `x[B,H,W,C] -> logits[B,K]`
              Grad-CAM(++)        -> `features_and_logits(x[B,H,W,C], delta) -> (feat, logits)`
    x:      f32[H, W, C] in the model's input space
    target: class index

`forward_images` counts images pushed through the model; a gradient evaluation
(forward + backward) of one image counts as one forward image.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Saliency(NamedTuple):
    """map: f32[H, W] (higher = more important for `target`); forward_images: model images used."""

    map: jax.Array
    forward_images: int


def check_image(x, name: str = "x") -> jax.Array:
    """x must be a float array [H, W, C]."""
    x = jnp.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"{name} must be an image [H, W, C] (rank 3), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be floating point (model input space), got {x.dtype}")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got {x.shape}")
    return x


def check_target(target, num_classes: int) -> int:
    """target must be a class index in [0, num_classes)."""
    try:
        t = int(target)
    except (TypeError, ValueError):
        raise ValueError(f"target must be an integer class index, got {target!r}") from None
    if not 0 <= t < num_classes:
        raise ValueError(f"target must be in [0, {num_classes}), got {t}")
    return t


def check_positive(**kwargs) -> None:
    for name, v in kwargs.items():
        if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def num_classes_masked(classify, x) -> int:
    """Number of classes of a MaskedClassifier (shape inference only, no model call)."""
    out = jax.eval_shape(classify, x, jnp.ones((1,) + x.shape[:2], x.dtype))
    if len(out.shape) != 2:
        raise ValueError(f"model must return [B, K] scores, got shape {out.shape}")
    return out.shape[1]


def num_classes_logits(logits_fn, x) -> int:
    """Number of classes of a batched logits function (shape inference only)."""
    out = jax.eval_shape(logits_fn, x[None])
    if len(out.shape) != 2:
        raise ValueError(f"model must return logits [B, K], got shape {out.shape}")
    return out.shape[1]


def chunk_map(fn: Callable, n: int, batch_size: int):
    """Runs `fn(idx: i32[b]) -> pytree` over 0..n-1 in chunks of b = min(batch_size, n).

    The last chunk is padded with indices >= n; `fn` must tolerate them (clip) and the
    caller must drop or zero their outputs (use `valid(idx, n)`). Returns the stacked
    per-chunk outputs, leaves shaped [n_chunks, ...]. One compiled chunk shape.
    """
    b = min(batch_size, n)
    nb = -(-n // b)
    idx = jnp.arange(nb * b, dtype=jnp.int32).reshape(nb, b)
    return jax.lax.map(fn, idx)


def flatten_chunks(y, n: int):
    """[n_chunks, b, ...] -> [n, ...] (drops padding)."""
    return y.reshape((-1,) + y.shape[2:])[:n]


def valid(idx: jax.Array, n: int) -> jax.Array:
    return (idx < n).astype(jnp.float32)


def upsample(m: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """Bilinear resize of `m[h, w]` to `hw` (half-pixel centres, edge clamp)."""
    return jax.image.resize(m, tuple(hw), "bilinear")


def target_logit_fn(logits_fn, output: str):
    """x[B,H,W,C], target -> f32[B] scores: raw logits (`"logit"`) or softmax (`"prob"`)."""
    if output not in ("logit", "prob"):
        raise ValueError(f"output must be 'logit' or 'prob', got {output!r}")

    def score(xb, target):
        z = logits_fn(xb)
        if output == "prob":
            z = jax.nn.softmax(z, axis=-1)
        return z[:, target]

    return score
