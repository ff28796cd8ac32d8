"""Integrated Gradients (Sundararajan et al. 2017):

    IG_i(x) = (x_i - x'_i) * int_0^1 d f_t(x' + a (x - x')) / d x_i  da        (IG Eq. 1)

The integral uses `n_steps` nodes of Gauss-Legendre (Captum's default) or a Riemann rule.
f_t is the target logit (`output="logit"`, Captum's convention on an un-softmaxed model) or
probability (`output="prob"`). The map is the attribution summed over channels, so
sum(map) ~= f_t(x) - f_t(x') (completeness). forward_images = n_steps.
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
    num_classes_logits,
    target_logit_fn,
    valid,
)

RULES = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


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
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return (np.arange(n_steps) + offset) / n_steps, np.full(n_steps, 1.0 / n_steps)


def input_gradients(score, xb: jax.Array, target) -> jax.Array:
    """d f_t / d x for each image of a batch `xb[B,H,W,C]` (images are independent)."""
    return jax.grad(lambda z: score(z, target).sum())(xb)


def path_attributions(score, x, baseline, target, alphas, weights, batch_size):
    """(x - x') * sum_k w_k grad f_t(x' + a_k (x - x')), chunked over k -> f32[H, W, C]."""
    n = alphas.shape[0]
    delta = x - baseline

    def chunk(idx):
        k = jnp.minimum(idx, n - 1)
        pts = baseline[None] + alphas[k, None, None, None] * delta[None]
        g = input_gradients(score, pts, target)
        return jnp.einsum("b,bhwc->hwc", weights[k] * valid(idx, n), g)

    return delta * chunk_map(chunk, n, batch_size).sum(0)


def integrated_gradients(
    n_steps: int = 50,
    rule: str = "gausslegendre",
    baseline=0.0,
    output: str = "logit",
    batch_size: int = 32,
):
    """IG factory. `baseline`: a number or an array [H, W, C] in model input space.

    Returns `(key, logits_fn, x, target) -> Saliency` (key unused); logits_fn maps
    x[B,H,W,C] -> logits[B,K].
    """
    check_positive(n_steps=n_steps, batch_size=batch_size)
    alphas, weights = quadrature(n_steps, rule)
    score_of = functools.partial(target_logit_fn, output=output)
    score_of(lambda z: z)  # validates `output`

    @functools.partial(jax.jit, static_argnums=0)
    def ig(logits_fn, x, base, target):
        return path_attributions(
            score_of(logits_fn), x, base, target, jnp.asarray(alphas, x.dtype),
            jnp.asarray(weights, x.dtype), batch_size,
        )

    def attribute(key, logits_fn, x, target) -> jax.Array:
        del key
        x = check_image(x)
        t = check_target(target, num_classes_logits(logits_fn, x))
        base = jnp.asarray(baseline, x.dtype)
        if base.ndim and base.shape != x.shape:
            raise ValueError(f"baseline must be a number or shaped like x {x.shape}, got {base.shape}")
        base = jnp.broadcast_to(base, x.shape)
        return ig(logits_fn, x, base, t)

    def explain(key, logits_fn, x, target) -> Saliency:
        return Saliency(attribute(key, logits_fn, x, target).sum(-1), n_steps)

    explain.attribute = attribute
    return explain
