"""SHAPE (SHifted Adversaries using Pixel Elimination): the necessity map, inverse RISE.

    N(lambda) = 1 / (P[M(lambda) = 0] N) * sum_i [f_t(x) - f_t(x (.) M_i)] (1 - M_i(lambda))
                                                                         (SHAPE Eq. 6)

with the RISE masks (`rexjax.saliency.rise.rise_mask`; same key -> same masks as RISE),
f_t(x) from `classifier.full_probs` and P[M(lambda) = 0] = 1 - p (bilinear upsampling keeps
E[M(lambda)] = p). The paper's setting is N 6000, s 7, p 0.1 (the default here). Under
mask_mode "ad" the masks are binary (nearest upsampling, `rise.resolve_upsample`): ConvAD
binarises a mask at > 0, and then P[pixel hidden] = 1 - p holds exactly.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp

from rexjax import batching
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.saliency.rise import check_mask_args, masked_scores_sum, resolve_upsample
from rexjax.types import Attribution


def shape(
    n_masks: int = 6000,
    grid: int = 7,
    p: float = 0.1,
    mask_mode: MaskMode = 0.0,
    batch_size: Optional[int] = None,
    upsample: str = "auto",
):
    """SHAPE factory. Returns `fn(key, classifier, x, target) -> Attribution`.

    forward_images = n_masks rounded up to whole chunks + 1 (the unmasked image for f_t(x)).
    upsample: as in `rise` ("auto": bilinear, binary nearest masks under mask_mode "ad").
    """
    p = check_mask_args(n_masks, grid, p)
    if p >= 1.0:
        raise ValueError("p must be < 1 for SHAPE (P[M(lambda) = 0] = 1 - p is the divisor)")
    mask_mode = parse_mask_mode(mask_mode)
    upsample = resolve_upsample(upsample, mask_mode)
    batch_size = batching.resolve_batch_size(batch_size)

    @functools.partial(jax.jit, static_argnums=1)
    def shape_map(key, classifier, x, target):
        full = classifier.full_probs(x)[target]  # traced here: the same program as before the refactor

        def weight(probs, m, ok):
            return jnp.einsum("b,bhw->hw", (full - probs) * ok, 1.0 - m)

        total = masked_scores_sum(
            classifier.masked(mask_mode), x, target, key, n_masks, grid, p, batch_size, weight, upsample
        )
        return total / ((1.0 - p) * n_masks)

    def explain(key, classifier, x, target) -> Attribution:
        x, t = classifier.check(x, target)
        return Attribution(shape_map(key, classifier, x, t), batching.padded_count(n_masks, batch_size) + 1)

    return explain
