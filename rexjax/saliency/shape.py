"""SHAPE (SHifted Adversaries using Pixel Elimination): the necessity map, inverse RISE.

    N(lambda) = 1 / (P[M(lambda) = 0] N) * sum_i [f_t(x) - f_t(x (.) M_i)] (1 - M_i(lambda))
                                                                         (SHAPE Eq. 6)

with the RISE masks (`rexjax.saliency.rise.rise_mask`; same key -> same masks as RISE) and
P[M(lambda) = 0] = 1 - p (bilinear upsampling keeps E[M(lambda)] = p). The paper's
setting is N 6000, s 7, p 0.1 (the default here).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rexjax.saliency._common import Saliency, check_image, check_target, num_classes_masked
from rexjax.saliency.rise import _check_rise_args, masked_scores_sum


def shape(n_masks: int = 6000, grid: int = 7, p: float = 0.1, batch_size: int = 64):
    """SHAPE factory. Returns `(key, classify, x, target) -> Saliency`.

    forward_images = n_masks + 1 (the unmasked image for f_t(x)).
    """
    _check_rise_args(n_masks, grid, p, batch_size)
    p = float(p)
    if p >= 1.0:
        raise ValueError("p must be < 1 for SHAPE (P[M(lambda) = 0] = 1 - p is the divisor)")

    @functools.partial(jax.jit, static_argnums=1)
    def shape_map(key, classify, x, target):
        full = classify(x, jnp.ones((1,) + x.shape[:2], x.dtype))[0, target]

        def weight(probs, m, ok):
            return jnp.einsum("b,bhw->hw", (full - probs) * ok, 1.0 - m)

        total = masked_scores_sum(classify, x, target, key, n_masks, grid, p, batch_size, weight)
        return total / ((1.0 - p) * n_masks)

    def explain(key, classify, x, target) -> Saliency:
        x = check_image(x)
        t = check_target(target, num_classes_masked(classify, x))
        return Saliency(shape_map(key, classify, x, t), n_masks + 1)

    return explain
