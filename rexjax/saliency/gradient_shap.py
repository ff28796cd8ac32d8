"""GradientSHAP (Lundberg & Lee 2017; Captum `GradientShap` semantics): expected gradients.

For k = 1..n: a baseline b_k drawn uniformly from `baselines`, x_k = x + N(0, stdev^2),
a_k ~ U(0, 1);

    phi = 1/n sum_k (x_k - b_k) * grad f_t(b_k + a_k (x_k - b_k))

(an IG whose path point, baseline and input noise are sampled), pushed through
`classifier.logits` `batch_size` samples at a time. The map sums phi over channels
(the record, `ChannelAttributions`, holds phi f32[H, W, C]). f_t: target logit (default) or probability.
forward_images = n_samples rounded up to whole chunks.
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


def gradient_shap(
    n_samples: int = 50, stdev: float = 0.0, baselines=None, output: str = "logit", batch_size: Optional[int] = None
):
    """GradientSHAP factory. `baselines`: None (one all-zero baseline), [H,W,C] or [K,H,W,C].

    Returns `fn(classifier, x, target, *, key) -> Attribution(map f32[H, W], forward_images,
    ChannelAttributions(phi f32[H, W, C]))`.
    """
    checks.positive_int(n_samples=n_samples)
    batch_size = batching.resolve_batch_size(batch_size)
    if isinstance(stdev, bool) or not isinstance(stdev, (int, float, np.integer, np.floating)) or not stdev >= 0:
        raise ValueError(f"stdev must be a number >= 0, got {stdev!r}")
    checks.one_of("output", output, OUTPUTS)
    if baselines is not None and np.ndim(baselines) not in (3, 4):
        raise ValueError(f"baselines must be None, [H, W, C] or [K, H, W, C], got shape {np.shape(baselines)}")

    @functools.partial(jax.jit, static_argnums=0)
    def attributions(classifier, key, x, base, target):
        score = target_score(classifier, output)
        kb, kn, ka = jax.random.split(key, 3)
        which = jax.random.randint(kb, (n_samples,), 0, base.shape[0])
        noise = jax.random.normal(kn, (n_samples,) + x.shape, x.dtype) * stdev
        alpha = jax.random.uniform(ka, (n_samples,), x.dtype)

        def evaluate(k):
            b = base[which[k]]
            xn = x[None] + noise[k]
            g = input_gradients(score, b + alpha[k, None, None, None] * (xn - b), target)
            return (xn - b) * g

        def fold(phi, idx, ok):
            return jnp.einsum("b,bhwc->hwc", ok, phi)

        return batching.push(evaluate, n_samples, batch_size=batch_size, fold=fold).total / n_samples

    def explain(classifier, x, target, *, key) -> Attribution:
        classifier.require_gradients("gradient_shap")
        x, t = classifier.check(x, target)
        base = jnp.zeros((1,) + x.shape, x.dtype) if baselines is None else jnp.asarray(baselines, x.dtype)
        if base.ndim == 3:
            base = base[None]
        if base.shape[1:] != x.shape:
            raise ValueError(f"baselines must be [K, {', '.join(map(str, x.shape))}], got {base.shape}")
        phi = attributions(classifier, key, x, base, t)
        return Attribution(phi.sum(-1), batching.padded_count(n_samples, batch_size), ChannelAttributions(phi))

    return explain
