"""Sufficient explanations from a responsibility map: the greedy global strategy.

ReX paper Alg. 3 lines 10-17; reference behaviour Sec. 5.1-5.2. Pixels are ranked by
responsibility, descending, ties broken by descending flat index (row-major), exactly as the
reference (so within a box of equal responsibility the bottom-right pixels come first). The
explanation is the shortest prefix of `k * chunk_size` ranked pixels, k = 1, 2, ..., that the
model classifies as the target with confidence >= `min_confidence` x full-image confidence.
Prefixes are checked `batch_size` at a time in one jitted `lax.while_loop`, stopping at the
first block with a hit; the hit's own prefix is returned and the last, partial block is
evaluated (both are bugs of the reference, Sec. 11.2 item 7).

Not found (no prefix passes, i.e. not even the whole image is classified as the target with
enough confidence): the mask is all False, 0 pixels, `sufficient` False, confidence 0.0 -
the reference's `final_mask = None` / all-False explanation, and the same convention as the
spatial strategy (`spatial.py`) and contrastive search. (Before issue 11 the global
extraction returned the full image here, which looked like a 100% explanation.)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.batching import push
from rexjax.causal.config import RexConfig


class Extraction(NamedTuple):
    mask: np.ndarray  # bool[H, W], the explanation (True = kept; all False when not found)
    confidence: float  # target probability with only the explanation visible (0.0 when not found)
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


def make_global_extractor(classify: Callable, config: RexConfig) -> Callable:
    """Returns `extract(x, resp, target, full_confidence) -> Extraction` (jitted core).

    `classify`: MaskedClassifier `(x[H,W,C], masks[B,H,W]) -> probs[B,K]`; `config`: its
    `chunk_size`, `min_confidence` and `batch_size` are used.
    """
    cfg = config.resolved()
    chunk, batch_size = cfg.chunk_size, cfg.batch_size

    @jax.jit
    def run(x, resp, target, full_confidence):
        rank = pixel_rank(resp)
        n = rank.size
        steps = -(-n // chunk)  # prefixes k = 1..steps; the last shows every pixel
        threshold = cfg.min_confidence * full_confidence

        def evaluate(idx):  # candidate i is the prefix of (i + 1) chunks
            masks = rank[None] < jnp.minimum((idx + 1) * chunk, n)[:, None, None]
            return classify(x, masks)

        def read(probs, idx):
            hit = (jnp.argmax(probs, -1) == target) & (probs[:, target] >= threshold)
            return hit, probs[:, target]

        out = push(evaluate, steps, batch_size=batch_size, read=read, stop=lambda v: v[0])
        hit, conf = out.values
        found = hit.any()
        first = jnp.argmax(hit)
        k = jnp.where(found, first + 1, 0)  # not found: nothing (module doc)
        mask = rank < jnp.minimum(k * chunk, n)
        return mask, jnp.where(found, conf[first], 0.0), found, out.forward_images

    def extract(x, resp, target, full_confidence) -> Extraction:
        mask, conf, found, forward = run(x, jnp.asarray(resp, jnp.float32), target, full_confidence)
        mask = np.asarray(mask)
        return Extraction(mask, float(conf), bool(found), int(mask.sum()), int(forward))

    return extract
