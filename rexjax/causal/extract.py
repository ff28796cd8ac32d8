"""Sufficient explanations from a responsibility map: the greedy global strategy.

ReX paper Alg. 3 lines 10-17; reference behaviour Sec. 5.1-5.2. Pixels are ranked by
responsibility, descending, ties broken by descending flat index (row-major), exactly as the
reference (so within a box of equal responsibility the bottom-right pixels come first). The
explanation is the shortest prefix of `k * chunk_size` ranked pixels, k = 1, 2, ..., that the
model classifies as the target with confidence >= `min_confidence` x full-image confidence.
Prefixes are checked `batch_size` at a time in one jitted `lax.while_loop`, stopping at the
first block with a hit; the hit's own prefix is returned and the last, partial block is
evaluated (both are bugs of the reference, Sec. 11.2 item 7).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Extraction(NamedTuple):
    mask: np.ndarray  # bool[H, W], the explanation (True = kept)
    confidence: float  # target probability with only the explanation visible
    sufficient: bool  # a passing prefix was found
    pixels: int  # pixels in the explanation
    forward_images: int


def pixel_rank(resp: jax.Array) -> jax.Array:
    """`resp[H, W]` -> `int32[H, W]` rank of each pixel (0 = most responsible).

    Ties: larger flat index first (the reference's descending (row, col) order).
    """
    flat = resp.reshape(-1)
    index = jnp.arange(flat.size)
    order = jnp.lexsort((-index, -flat))  # last key is primary
    return jnp.zeros_like(index).at[order].set(index).reshape(resp.shape).astype(jnp.int32)


def make_global_extractor(
    classify: Callable, *, chunk_size: int = 10, min_confidence: float = 0.0, batch_size: int = 16
) -> Callable:
    """Returns jitted `extract(x, resp, target, full_confidence) -> Extraction`.

    `classify`: MaskedClassifier `(x[H,W,C], masks[B,H,W]) -> probs[B,K]`.
    """
    if chunk_size < 1 or batch_size < 1:
        raise ValueError(f"chunk_size and batch_size must be >= 1, got {chunk_size}, {batch_size}")

    @jax.jit
    def run(x, resp, target, full_confidence):
        rank = pixel_rank(resp)
        n = rank.size
        steps = -(-n // chunk_size)  # prefixes k = 1..steps; the last shows every pixel
        threshold = min_confidence * full_confidence

        def cond(c):
            start, found = c[0], c[1]
            return (~found) & (start < steps)

        def body(c):
            start, _, k, conf, blocks = c
            ks = start + 1 + jnp.arange(batch_size)
            masks = rank[None] < jnp.minimum(ks * chunk_size, n)[:, None, None]
            probs = classify(x, masks)
            hit = (jnp.argmax(probs, -1) == target) & (probs[:, target] >= threshold) & (ks <= steps)
            first = jnp.argmax(hit)
            found = hit.any()
            k = jnp.where(found, ks[first], k)
            conf = jnp.where(found, probs[first, target], conf)
            return start + batch_size, found, k, conf, blocks + 1

        init = (jnp.int32(0), jnp.bool_(False), jnp.int32(steps), jnp.float32(0.0), jnp.int32(0))
        _, found, k, conf, blocks = jax.lax.while_loop(cond, body, init)
        mask = rank < jnp.minimum(k * chunk_size, n)
        return mask, conf, found, blocks * batch_size

    def extract(x, resp, target, full_confidence) -> Extraction:
        mask, conf, found, forward = run(x, jnp.asarray(resp, jnp.float32), target, full_confidence)
        mask = np.asarray(mask)
        return Extraction(mask, float(conf), bool(found), int(mask.sum()), int(forward))

    return extract


def extract_global(classify, x, resp, target, full_confidence, **options) -> Extraction:
    """One-off convenience around `make_global_extractor` (compiles on every call)."""
    return make_global_extractor(classify, **options)(x, resp, target, full_confidence)
