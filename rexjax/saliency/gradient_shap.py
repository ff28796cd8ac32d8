"""GradientSHAP (Lundberg & Lee 2017; Captum `GradientShap` semantics): expected gradients.

For k = 1..n: a baseline b_k drawn uniformly from `baselines`, x_k = x + N(0, stdev^2),
a_k ~ U(0, 1);

    phi = 1/n sum_k (x_k - b_k) * grad f_t(b_k + a_k (x_k - b_k))

(an IG whose path point, baseline and input noise are sampled). The map sums phi over
channels. f_t: target logit (default) or probability. forward_images = n_samples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

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
from rexjax.saliency.integrated_gradients import input_gradients


def gradient_shap(n_samples: int = 50, stdev: float = 0.0, baselines=None, output: str = "logit", batch_size: int = 32):
    """GradientSHAP factory. `baselines`: None (one all-zero baseline), [H,W,C] or [K,H,W,C].

    Returns `(key, logits_fn, x, target) -> Saliency`.
    """
    check_positive(n_samples=n_samples, batch_size=batch_size)
    if not stdev >= 0:
        raise ValueError(f"stdev must be >= 0, got {stdev!r}")
    score_of = functools.partial(target_logit_fn, output=output)
    score_of(lambda z: z)

    @functools.partial(jax.jit, static_argnums=0)
    def attributions(logits_fn, key, x, base, target):
        score = score_of(logits_fn)
        kb, kn, ka = jax.random.split(key, 3)
        which = jax.random.randint(kb, (n_samples,), 0, base.shape[0])
        noise = jax.random.normal(kn, (n_samples,) + x.shape, x.dtype) * stdev
        alpha = jax.random.uniform(ka, (n_samples,), x.dtype)

        def chunk(idx):
            k = jnp.minimum(idx, n_samples - 1)
            b = base[which[k]]
            xn = x[None] + noise[k]
            g = input_gradients(score, b + alpha[k, None, None, None] * (xn - b), target)
            return jnp.einsum("b,bhwc->hwc", valid(idx, n_samples), (xn - b) * g)

        return chunk_map(chunk, n_samples, batch_size).sum(0) / n_samples

    def attribute(key, logits_fn, x, target):
        x = check_image(x)
        t = check_target(target, num_classes_logits(logits_fn, x))
        base = jnp.zeros((1,) + x.shape, x.dtype) if baselines is None else jnp.asarray(baselines, x.dtype)
        if base.ndim == 3:
            base = base[None]
        if base.shape[1:] != x.shape:
            raise ValueError(f"baselines must be [K, {', '.join(map(str, x.shape))}], got {base.shape}")
        return attributions(logits_fn, key, x, base, t)

    def explain(key, logits_fn, x, target) -> Saliency:
        return Saliency(attribute(key, logits_fn, x, target).sum(-1), n_samples)

    explain.attribute = attribute
    return explain
