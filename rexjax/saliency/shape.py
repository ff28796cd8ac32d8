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

from rexjax import batching, checks
from rexjax.masking import MaskMode
from rexjax.saliency.occlusion import spatial_sum
from rexjax.saliency.rise import mask_stream, masked_scores_sum
from rexjax.types import Attribution


def shape(
    n_masks: int = 6000, grid: int = 7, p: float = 0.1, mask_mode: MaskMode = 0.0, batch_size: Optional[int] = None,
    upsample: str = "auto",
):
    """SHAPE factory. Returns `fn(classifier, x, target, *, key) -> Attribution` (x a signal
    [N, C], an image [H, W, C] or a volume [D, H, W, C], as RISE).

    forward_images = n_masks rounded up to whole chunks + 1 (the unmasked image for f_t(x)).
    upsample: as in `rise` ("auto": bilinear, binary nearest masks under mask_mode "ad").
    """
    stream = mask_stream(n_masks, grid, p, mask_mode, batch_size, upsample)
    if stream.p >= 1.0:
        raise ValueError("p must be < 1 for SHAPE (P[M(lambda) = 0] = 1 - p is the divisor)")

    @functools.partial(jax.jit, static_argnums=1)
    def shape_map(key, classifier, x, target):
        full = classifier.full_probs(x)[target]  # traced into this program, not a call of its own

        def weight(probs, m, ok):
            return spatial_sum((full - probs) * ok, 1.0 - m)

        total = masked_scores_sum(classifier.masked(stream.mask_mode), x, target, key, stream, weight)
        return total / ((1.0 - stream.p) * stream.n_masks)

    def explain(classifier, x, target, *, key) -> Attribution:
        x, t = classifier.check(x, target, ranks=checks.INPUT_RANKS)
        fwd = batching.padded_count(stream.n_masks, stream.batch_size) + 1
        return Attribution(shape_map(key, classifier, x, t), fwd)

    return explain
