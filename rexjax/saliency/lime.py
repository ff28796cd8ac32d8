"""LIME (Ribeiro et al. 2016) for images, as lime's `LimeImageExplainer`, on a MaskedClassifier.

Superpixels on the host (quickshift with lime's defaults, or SLIC); in JAX: n samples
z in {0,1}^M (row 0 all ones, the rest uniform), v(z) = f_t(x (.) z[seg]), cosine distance
d = 1 - sqrt(|z| / M) to the all-ones row, kernel weight sqrt(exp(-d^2 / width^2)) (width
0.25), and a weighted ridge fit with an unpenalised intercept:

    beta = argmin sum_i w_i (v_i - b - z_i . beta)^2 + alpha |beta|^2        (LIME Eq. 2)

The map paints beta_j on superpixel j. Deviations: hidden superpixels show the
MaskedClassifier's substrate (lime: each superpixel's mean colour), and all M coefficients
are kept (lime's `num_features` selection only affects its own visualisation).
forward_images = n_samples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rexjax.saliency._common import Saliency, check_image, check_positive, check_target, num_classes_masked
from rexjax.saliency.kernel_shap import coalition_values
from rexjax.saliency.superpixels import resolve_segments


def weighted_ridge(z, y, w, alpha):
    """(beta f32[M], intercept) of the weighted ridge regression with free intercept."""
    sw = w / w.sum()
    zm, ym = sw @ z, sw @ y
    zc, yc = z - zm, y - ym
    a = (zc * w[:, None]).T @ zc + alpha * jnp.eye(z.shape[1])
    beta = jnp.linalg.solve(a, (zc * w[:, None]).T @ yc)
    return beta, ym - zm @ beta


def lime_samples(key, n: int, m: int) -> jax.Array:
    """f32[n, M]: row 0 all ones, the others uniform over {0, 1}^M."""
    z = jax.random.bernoulli(key, 0.5, (n, m)).astype(jnp.float32)
    return z.at[0].set(1.0)


def lime(
    n_samples: int = 1000,
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    superpixel: str = "quickshift",
    batch_size: int = 64,
    **superpixel_kwargs,
):
    """LIME factory (lime defaults). Returns `(key, classify, x, target, segments=None) -> Saliency`."""
    check_positive(n_samples=n_samples, batch_size=batch_size)
    if not kernel_width > 0 or not alpha >= 0:
        raise ValueError(f"kernel_width must be > 0 and alpha >= 0, got {kernel_width}, {alpha}")

    @functools.partial(jax.jit, static_argnums=(0, 4))
    def coefficients(classify, x, target, segments, m, key):
        z = lime_samples(key, n_samples, m)
        y = coalition_values(classify, x, target, segments, z, batch_size)
        d = 1.0 - jnp.sqrt(z.sum(1) / m)
        w = jnp.sqrt(jnp.exp(-(d**2) / kernel_width**2))
        return weighted_ridge(z, y, w, alpha)[0]

    def explain(key, classify, x, target, segments=None) -> Saliency:
        x = check_image(x)
        t = check_target(target, num_classes_masked(classify, x))
        segments, m = resolve_segments(x, segments, superpixel, **superpixel_kwargs)
        beta = coefficients(classify, x, t, jnp.asarray(segments), m, key)
        return Saliency(beta[jnp.asarray(segments)], n_samples)

    explain.coefficients = coefficients
    return explain
