"""LIME (Ribeiro et al. 2016) for images, as lime's `LimeImageExplainer`, on a MaskedClassifier.

Superpixels on the host (quickshift with lime's defaults, or SLIC); in JAX: n samples
z in {0,1}^M (row 0 all ones, the rest uniform), v(z) = f_t(x (.) z[seg]), cosine distance
d = 1 - sqrt(|z| / M) to the all-ones row, kernel weight sqrt(exp(-d^2 / width^2)) (width
0.25), and a weighted ridge fit with an unpenalised intercept (sklearn `Ridge(alpha=1)`, as
lime; pinned against lime 0.2.0.1's own numbers in tests/fixtures/lime_shapley):

    beta = argmin sum_i w_i (v_i - b - z_i . beta)^2 + alpha |beta|^2        (LIME Eq. 2)

The map paints beta_j on superpixel j. Deviations: hidden superpixels show the
MaskedClassifier's substrate (lime: each superpixel's mean colour), and all M coefficients
are kept (lime's `num_features` selection only affects its own visualisation). Samples are
shown through `classifier.masked(mask_mode)`, `batch_size` at a time; the Attribution's
record is a `LimeRecord` (segments, coefficients, intercept).
forward_images = n_samples rounded up to whole chunks.
Signals [N, C] and volumes [D, H, W, C] take user `segments` (int labels over the spatial
axes, i32[N] or i32[D, H, W]); superpixels are computed for images only, so without
`segments` they are refused with one line.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import batching, checks
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.saliency.kernel_shap import coalition_values
from rexjax.saliency.superpixels import make_segmenter, resolved_settings
from rexjax.types import Attribution


class LimeRecord(NamedTuple):
    """LIME's extras: superpixels i32[H, W] (labels 0..M-1), beta f32[M] and the intercept."""

    segments: np.ndarray
    coefficients: jax.Array
    intercept: jax.Array


def weighted_ridge(z, y, w, alpha):
    """(beta f32[M], intercept) of the weighted ridge regression with free intercept."""
    sw = w / w.sum()
    zm, ym = sw @ z, sw @ y
    zc, yc = z - zm, y - ym
    a = (zc * w[:, None]).T @ zc + alpha * jnp.eye(z.shape[1])
    beta = jnp.linalg.solve(a, (zc * w[:, None]).T @ yc)
    return beta, ym - zm @ beta


def cosine_distance(z) -> jax.Array:
    """f32[N]: cosine distance of each row of z f32[N, M] (binary) to the all-ones row,
    1 - z.1 / (|z| sqrt(M)) = 1 - sqrt(|z|_1 / M); 1 for the empty row (sklearn's
    `pairwise_distances(z, ones, metric="cosine")`, what lime_image uses)."""
    return 1.0 - jnp.sqrt(z.sum(1) / z.shape[1])


def kernel_weights(z, kernel_width: float) -> jax.Array:
    """f32[N]: lime_image's kernel sqrt(exp(-d^2 / width^2)) of the cosine distance d."""
    d = cosine_distance(z)
    return jnp.sqrt(jnp.exp(-(d**2) / kernel_width**2))


def lime_samples(key, n: int, m: int) -> jax.Array:
    """f32[n, M]: row 0 all ones, the others uniform over {0, 1}^M."""
    z = jax.random.bernoulli(key, 0.5, (n, m)).astype(jnp.float32)
    return z.at[0].set(1.0)


def lime(
    n_samples: int = 1000,
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    superpixel: str = "quickshift",
    segments=None,
    mask_mode: MaskMode = 0.0,
    batch_size: Optional[int] = None,
    **superpixel_options,
):
    """LIME factory (lime defaults) -> `fn(classifier, x, target, *, key, segments=None) ->
    Attribution`; superpixels as in `superpixels.make_segmenter`, record `LimeRecord`."""
    checks.positive_int(n_samples=n_samples)
    for name, v in (("kernel_width", kernel_width), ("alpha", alpha)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if not kernel_width > 0 or not alpha >= 0:
        raise ValueError(f"kernel_width must be > 0 and alpha >= 0, got {kernel_width}, {alpha}")
    segment = make_segmenter(superpixel, segments, superpixel_options)
    mask_mode = parse_mask_mode(mask_mode)
    batch_size = batching.resolve_batch_size(batch_size)

    @functools.partial(jax.jit, static_argnums=(0, 4))
    def fit(classify, x, target, segments, m, key):
        z = lime_samples(key, n_samples, m)
        y = coalition_values(classify, x, target, segments, z, batch_size)
        return weighted_ridge(z, y, kernel_weights(z, kernel_width), alpha)

    def explain(classifier, x, target, *, key, segments=None) -> Attribution:
        x, t = classifier.check(x, target, ranks=checks.INPUT_RANKS)  # N-D: with `segments` only
        seg, m = segment(x, segments)
        seg_j = jnp.asarray(seg)
        beta, intercept = fit(classifier.masked(mask_mode), x, t, seg_j, m, key)
        return Attribution(beta[seg_j], batching.padded_count(n_samples, batch_size), LimeRecord(seg, beta, intercept))

    return explain


def settings(config: dict) -> dict:
    """Every setting `lime(**config)` runs with, defaults and superpixel options included."""
    return resolved_settings(lime, config)
