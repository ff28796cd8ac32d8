"""Sliding-window occlusion (Zeiler & Fergus 2014; Captum `Occlusion` semantics).

Each window position occludes a `window x window` box (mask 0 there, so the
MaskedClassifier decides what the box shows: a value, blur, or ConvAD). The map is, per
pixel, the mean over the windows covering it of f_t(x) - f_t(x with the window hidden).
Window positions are 0, stride, 2 stride, ... and, unlike Captum, one extra last position
flush with the border when the stride does not reach it, so every pixel is covered.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.saliency._common import (
    Saliency,
    check_image,
    check_positive,
    check_target,
    chunk_map,
    num_classes_masked,
    valid,
)


def _starts(size: int, window: int, stride: int) -> np.ndarray:
    last = max(size - window, 0)
    s = list(range(0, last + 1, stride))
    if s[-1] != last:
        s.append(last)
    return np.asarray(s, np.int32)


def window_corners(hw: tuple[int, int], window: int, stride: int) -> np.ndarray:
    """Top-left corners i32[n, 2] of all window positions on an H x W image."""
    rows, cols = _starts(hw[0], window, stride), _starts(hw[1], window, stride)
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)


def box_masks(corners: jax.Array, window: int, hw: tuple[int, int]) -> jax.Array:
    """f32[B, H, W], 1 inside the window at each corner."""
    r = jnp.arange(hw[0])[None, :, None]
    c = jnp.arange(hw[1])[None, None, :]
    r0, c0 = corners[:, 0, None, None], corners[:, 1, None, None]
    inside = (r >= r0) & (r < r0 + window) & (c >= c0) & (c < c0 + window)
    return inside.astype(jnp.float32)


def occlusion(window: int = 16, stride: int = 8, batch_size: int = 64):
    """Occlusion factory. Returns `(key, classify, x, target) -> Saliency` (key unused).

    forward_images = number of window positions + 1 (the unoccluded image).
    """
    check_positive(window=window, stride=stride, batch_size=batch_size)

    @functools.partial(jax.jit, static_argnums=0)
    def occ_map(classify, x, target):
        hw = x.shape[:2]
        corners = jnp.asarray(window_corners(hw, window, stride))
        n = corners.shape[0]
        full = classify(x, jnp.ones((1,) + hw, x.dtype))[0, target]

        def chunk(idx):
            boxes = box_masks(corners[jnp.minimum(idx, n - 1)], window, hw)
            drop = full - classify(x, 1.0 - boxes)[:, target]
            return jnp.einsum("b,bhw->hw", drop * valid(idx, n), boxes)

        total = chunk_map(chunk, n, batch_size).sum(0)
        count = box_masks(corners, window, hw).sum(0)
        return total / count

    def explain(key, classify, x, target) -> Saliency:
        del key
        x = check_image(x)
        if window > min(x.shape[:2]):
            raise ValueError(f"window ({window}) must fit in the image {x.shape[:2]}")
        t = check_target(target, num_classes_masked(classify, x))
        n = len(window_corners(x.shape[:2], window, stride))
        return Saliency(occ_map(classify, x, t), n + 1)

    return explain
