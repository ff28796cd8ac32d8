"""Contrastive explanations: sufficient and necessary unions of sufficient explanations.

Reference behaviour Sec. 7 (fixed-shape form Sec. 12.6). Given candidate explanations (the
primary one and the spotlights', `multiple.py`), the subsets of candidates are visited in
increasing size, then lexicographic order (`itertools.combinations`); for subset `S` with
union `U` two images are tested: `U` alone visible (*sufficient*: top-1 = target and target
confidence >= `min_confidence` x full) and `U` hidden with the rest visible (*necessary*:
top-1 != target). The first subset satisfying both is the contrastive explanation.

All subsets of up to `max_candidates` candidates are laid out once as a fixed
`bool[2^max - 1, max]` table; unions are rendered on device by a masked matmul; the pairs are
tested `batch_size // 2` subsets per model call with early exit at the first block with a hit.
Fixed versus the reference: no `exit()` when nothing qualifies; the result says so
(`found=False`, `message`). Exact duplicate candidates are merged before the enumeration.
"""

from __future__ import annotations

import itertools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.causal.config import RexConfig
from rexjax.causal.spatial import make_tester
from rexjax.types import ContrastiveExplanation


def subset_table(n: int) -> np.ndarray:
    """bool[2^n - 1, n]: every non-empty subset, by size then lexicographically."""
    rows = [
        [i in combo for i in range(n)] for k in range(1, n + 1) for combo in itertools.combinations(range(n), k)
    ]
    return np.asarray(rows, bool).reshape(-1, n)


def render_unions(bits, masks, height: int, width: int) -> jax.Array:
    """bits bool[b, n], masks bool[n, H, W] -> bool[b, 2, H, W]: (union, complement)."""
    union = jnp.einsum("bn,nhw->bhw", bits.astype(jnp.float32), masks.astype(jnp.float32)) > 0
    return jnp.stack([union, ~union], axis=1)


def judge_contrastive(probs: jax.Array, target, threshold) -> jax.Array:
    """probs[b, 2, K]: image 0 (union only) passes and image 1 (union hidden) is not the target."""
    sufficient = (jnp.argmax(probs[:, 0], -1) == target) & (probs[:, 0, target] >= threshold)
    return sufficient & (jnp.argmax(probs[:, 1], -1) != target)


def make_contrastive_search(classify: Callable, config: RexConfig, batch_size: int) -> Callable:
    """Returns `search(x, candidates bool[n, H, W], target, full_confidence) -> ContrastiveExplanation`.

    Only the first `config.spotlight.max_candidates` distinct candidates are combined
    (2^max - 1 subsets); `config.extract.min_confidence` applies; `batch_size` images per model call.
    """
    max_candidates, min_confidence = config.spotlight.max_candidates, config.extract.min_confidence
    table = jnp.asarray(subset_table(max_candidates))
    tester = make_tester(classify, render_unions, max(1, batch_size // 2), judge=judge_contrastive, first_only=True)
    pair = jax.jit(lambda x, union: classify(x, jnp.stack([union, ~union])))

    def search(x, candidates, target, full_confidence) -> ContrastiveExplanation:
        h, w = x.shape[:2]
        candidates = np.asarray(candidates, bool).reshape(-1, h, w)
        kept = []  # first index of each distinct non-empty candidate
        for i, m in enumerate(candidates):
            if m.any() and not any(np.array_equal(m, candidates[j]) for j in kept):
                kept.append(i)
        kept = kept[:max_candidates]
        n = len(kept)
        empty = np.zeros((h, w), bool)
        if n == 0:
            return ContrastiveExplanation(
                False, empty, (), 0, 0.0, -1, 0.0, 0.0, 0, "no sufficient explanation to build a contrastive one from"
            )
        masks = np.zeros((max_candidates, h, w), bool)
        masks[:n] = candidates[kept]
        valid = ~np.asarray(table)[:, n:].any(axis=1)
        threshold = jnp.float32(min_confidence * full_confidence)
        passes, images = tester(x, table, jnp.asarray(valid), jnp.asarray(masks), target, threshold)
        passes, images = np.asarray(passes), int(images)
        if not passes.any():
            return ContrastiveExplanation(
                False, empty, (), n, 0.0, -1, 0.0, 0.0, images,
                f"no union of the {n} distinct sufficient explanations is necessary: with any of them "
                f"hidden the rest of the image is still classified as {target}",
            )
        bits = np.asarray(table)[int(np.argmax(passes))]
        subset = tuple(kept[i] for i in np.flatnonzero(bits))
        union = masks[bits].any(axis=0)
        probs = np.asarray(pair(x, jnp.asarray(union)))
        return ContrastiveExplanation(
            found=True,
            mask=union,
            subset=subset,
            candidates=n,
            confidence=float(probs[0, target]),
            counterfactual_class=int(np.argmax(probs[1])),
            counterfactual_confidence=float(probs[1, target]),
            area=float(union.mean()),
            forward_images=images + 2,
            message=f"union of {len(subset)} of {n} sufficient explanations",
        )

    return search
