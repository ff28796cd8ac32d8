"""Sliding-window occlusion (Zeiler & Fergus 2014; Captum `Occlusion` semantics).

Inputs `x[*S, C]` with S = [N] (signals), [H, W] (images) or [D, H, W] (volumes): each
window position occludes a box of side `window` on every spatial axis (mask 0 there, so
`classifier.masked(mask_mode)` decides what the box shows: a value, blur, or ConvAD). The
map is, per pixel, the mean over the windows covering it of f_t(x) - f_t(x with the window
hidden), with f_t(x) from `classifier.full_probs`. Window positions are 0, stride,
2 stride, ... and, unlike Captum, one extra last position flush with the border when the
stride does not reach it, so every pixel is covered.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import batching, checks
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.types import Attribution


def _starts(size: int, window: int, stride: int) -> np.ndarray:
    last = max(size - window, 0)
    s = list(range(0, last + 1, stride))
    if s[-1] != last:
        s.append(last)
    return np.asarray(s, np.int32)


def window_corners(shape: tuple[int, ...], window: int, stride: int) -> np.ndarray:
    """Lowest corners i32[n, k] of all window positions over a spatial `shape` of k axes
    (images: top-left corners on an H x W image), row-major."""
    starts = [_starts(n, window, stride) for n in shape]
    return np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(shape))


def box_masks(corners: jax.Array, window: int, shape: tuple[int, ...]) -> jax.Array:
    """f32[B, *shape], 1 inside the window at each corner `corners[B, k]`."""
    k = len(shape)
    inside = jnp.ones((1,) * (k + 1), bool)
    for ax, n in enumerate(shape):
        i = jnp.arange(n).reshape((1,) + tuple(n if a == ax else 1 for a in range(k)))
        lo = corners[:, ax].reshape((-1,) + (1,) * k)
        inside = inside & (i >= lo) & (i < lo + window)
    return inside.astype(jnp.float32)


def spatial_sum(weights: jax.Array, maps: jax.Array) -> jax.Array:
    """sum_b weights[b] maps[b] -> f32[*S] for `maps[B, *S]` (1 to 3 spatial axes; the einsum
    "b,bhw->hw" on images)."""
    axes = "dhw"[3 - (maps.ndim - 1):]
    return jnp.einsum(f"b,b{axes}->{axes}", weights, maps)


def occlusion(window: int = 16, stride: int = 8, mask_mode: MaskMode = 0.0, batch_size: Optional[int] = None):
    """Occlusion factory. Returns `fn(classifier, x, target, *, key) -> Attribution` (key unused).

    forward_images = window positions rounded up to whole chunks + 1 (the unoccluded image).
    """
    checks.positive_int(window=window, stride=stride)
    mask_mode = parse_mask_mode(mask_mode)
    batch_size = batching.resolve_batch_size(batch_size)

    @functools.partial(jax.jit, static_argnums=0)
    def occ_map(classifier, x, target):
        hw = x.shape[:-1]
        corners = jnp.asarray(window_corners(hw, window, stride))
        n = corners.shape[0]
        classify = classifier.masked(mask_mode)
        full = classifier.full_probs(x)[target]  # traced into this program, not a call of its own

        def evaluate(idx):
            boxes = box_masks(corners[idx], window, hw)
            return classify(x, 1.0 - boxes)[:, target], boxes

        def fold(out, idx, ok):
            drop = full - out[0]
            return spatial_sum(drop * ok, out[1])

        total = batching.push(evaluate, n, batch_size=batch_size, fold=fold).total
        count = box_masks(corners, window, hw).sum(0)
        return total / count

    def explain(classifier, x, target, *, key) -> Attribution:
        del key
        x, t = classifier.check(x, target, ranks=checks.INPUT_RANKS)
        if window > min(x.shape[:-1]):
            raise ValueError(f"window ({window}) must fit in the input {tuple(x.shape[:-1])}")
        n = len(window_corners(x.shape[:-1], window, stride))
        return Attribution(occ_map(classifier, x, t), batching.padded_count(n, batch_size) + 1)

    return explain
