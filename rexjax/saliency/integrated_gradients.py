"""Integrated Gradients (Sundararajan et al. 2017):

    IG_i(x) = (x_i - x'_i) * int_0^1 d f_t(x' + a (x - x')) / d x_i  da        (IG Eq. 1)

The integral uses `n_steps` nodes of Gauss-Legendre (Captum's default) or a Riemann rule;
the path points are pushed through `classifier.logits` `batch_size` at a time
(`rexjax.batching.push`). f_t is the target logit (`output="logit"`, Captum's convention on
an un-softmaxed model) or probability (`output="prob"`). The map is the attribution summed
over channels, so sum(map) ~= f_t(x) - f_t(x') (completeness); the Attribution's record
(`ChannelAttributions`) holds the per-channel attributions f32[H, W, C].
forward_images = n_steps rounded up to whole chunks (one gradient = one image).
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import batching, checks
from rexjax.saliency.gradients import OUTPUTS, ChannelAttributions, input_gradients, target_score
from rexjax.types import Attribution

QUADRATURES = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def quadrature(n_steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Nodes a_k in [0, 1] and weights w_k with sum_k w_k g(a_k) ~= int_0^1 g."""
    if rule == "gausslegendre":
        t, w = np.polynomial.legendre.leggauss(n_steps)
        return (t + 1) / 2, w / 2
    if rule == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError("riemann_trapezoid needs n_steps >= 2")
        a = np.linspace(0, 1, n_steps)
        w = np.full(n_steps, 1.0 / (n_steps - 1))
        w[[0, -1]] /= 2
        return a, w
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}.get(rule)
    if offset is None:
        raise ValueError(f"rule must be one of {QUADRATURES}, got {rule!r}")
    return (np.arange(n_steps) + offset) / n_steps, np.full(n_steps, 1.0 / n_steps)


def path_attributions(score, x, baseline, target, alphas, weights, batch_size):
    """(x - x') * sum_k w_k grad f_t(x' + a_k (x - x')), chunked over k -> f32[H, W, C]."""
    n = alphas.shape[0]
    delta = x - baseline

    def evaluate(k):
        pts = baseline[None] + alphas[k, None, None, None] * delta[None]
        return input_gradients(score, pts, target)

    def fold(g, idx, ok):
        return jnp.einsum("b,bhwc->hwc", weights[jnp.minimum(idx, n - 1)] * ok, g)

    return delta * batching.push(evaluate, n, batch_size=batch_size, fold=fold).total


def integrated_gradients(
    n_steps: int = 50,
    rule: str = "gausslegendre",
    baseline=0.0,
    output: str = "logit",
    batch_size: Optional[int] = None,
):
    """IG factory. `baseline`: a number or an array [H, W, C] in the model's input space.

    Returns `fn(classifier, x, target, *, key) -> Attribution(map f32[H, W], forward_images,
    ChannelAttributions(f32[H, W, C]))` (key unused).
    """
    checks.positive_int(n_steps=n_steps)
    batch_size = batching.resolve_batch_size(batch_size)
    alphas, weights = quadrature(n_steps, rule)
    checks.one_of("output", output, OUTPUTS)
    if np.ndim(baseline) not in (0, 3):
        raise ValueError(f"baseline must be a number or an image [H, W, C], got shape {np.shape(baseline)}")

    @functools.partial(jax.jit, static_argnums=0)
    def ig(classifier, x, base, target):
        return path_attributions(
            target_score(classifier, output), x, base, target, jnp.asarray(alphas, x.dtype),
            jnp.asarray(weights, x.dtype), batch_size,
        )

    def explain(classifier, x, target, *, key) -> Attribution:
        del key
        classifier.require_gradients("integrated_gradients")
        x, t = classifier.check(x, target)
        base = jnp.asarray(baseline, x.dtype)
        if base.ndim and base.shape != x.shape:
            raise ValueError(f"baseline must be a number or shaped like x {x.shape}, got {base.shape}")
        a = ig(classifier, x, jnp.broadcast_to(base, x.shape), t)
        return Attribution(a.sum(-1), batching.padded_count(n_steps, batch_size), ChannelAttributions(a))

    return explain
