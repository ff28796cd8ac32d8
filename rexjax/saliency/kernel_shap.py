"""KernelSHAP (Lundberg & Lee 2017) over superpixels, on a MaskedClassifier.

A coalition z in {0,1}^M shows the superpixels with z_j = 1. With v(z) = f_t(x (.) z[seg]),
the Shapley values solve the weighted least squares

    min_phi sum_z pi(z) (v(z) - v(0) - z . phi)^2   s.t.  sum_j phi_j = v(1) - v(0),
    pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|))                         (Theorem 2)

solved by eliminating phi_M. When `n_samples >= 2^M - 2` every coalition is enumerated
with weight pi (the solution is then the exact Shapley value); otherwise coalition sizes
are drawn from pi's size marginal, members uniformly, each with weight 1 (as shap/Captum).
The map paints phi_j on superpixel j. forward_images = rows + 2.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.saliency._common import (
    Saliency,
    check_image,
    check_positive,
    check_target,
    chunk_map,
    flatten_chunks,
    num_classes_masked,
)
from rexjax.saliency.superpixels import resolve_segments


def coalition_values(classify, x, target, segments, z, batch_size):
    """v(z) for rows of z f32[N, M] -> f32[N] (chunked)."""
    n = z.shape[0]

    def chunk(idx):
        masks = z[jnp.minimum(idx, n - 1)][:, segments]
        return classify(x, masks)[:, target]

    return flatten_chunks(chunk_map(chunk, n, batch_size), n)


def all_coalitions(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Every proper non-empty coalition f32[2^M - 2, M] and its Shapley kernel weight."""
    z = np.array([c for c in itertools.product((0.0, 1.0), repeat=m)][1:-1], np.float32)
    k = z.sum(1).astype(int)
    w = np.array([(m - 1) / (math.comb(m, s) * s * (m - s)) for s in k], np.float32)
    return z, w


def sample_coalitions(key, n: int, m: int) -> jax.Array:
    """n coalitions f32[n, M]: size ~ pi's marginal (M-1)/(s(M-s)), members uniform."""
    sizes = np.arange(1, m)
    p = (m - 1) / (sizes * (m - sizes))
    ks, kp = jax.random.split(key)
    s = jax.random.choice(ks, jnp.asarray(sizes), (n,), p=jnp.asarray(p / p.sum()))
    ranks = jnp.argsort(jnp.argsort(jax.random.uniform(kp, (n, m)), axis=1), axis=1)
    return (ranks < s[:, None]).astype(jnp.float32)


def constrained_wls(z, y, w, total):
    """phi f32[M] minimising sum w (y - z phi)^2 subject to sum(phi) = total."""
    xr = z[:, :-1] - z[:, -1:]
    yr = y - z[:, -1] * total
    sw = jnp.sqrt(w)[:, None]
    phi, *_ = jnp.linalg.lstsq(xr * sw, yr * sw[:, 0])
    return jnp.concatenate([phi, (total - phi.sum())[None]])


def kernel_shap(n_samples: int = 256, superpixel: str = "slic", batch_size: int = 64, **superpixel_kwargs):
    """KernelSHAP factory. Returns `(key, classify, x, target, segments=None) -> Saliency`.

    `segments` (int [H, W]) overrides the host superpixels (`superpixel` method + kwargs).
    """
    check_positive(n_samples=n_samples, batch_size=batch_size)

    @functools.partial(jax.jit, static_argnums=(0, 4))
    def shap_values(classify, x, target, segments, m, key):
        if n_samples >= 2**m - 2:
            z, w = (jnp.asarray(a) for a in all_coalitions(m))
        else:
            z, w = sample_coalitions(key, n_samples, m), jnp.ones((n_samples,), jnp.float32)
        ends = jnp.stack([jnp.zeros((m,)), jnp.ones((m,))])
        v0, v1 = coalition_values(classify, x, target, segments, ends, 2)
        y = coalition_values(classify, x, target, segments, z, batch_size) - v0
        return constrained_wls(z, y, w, v1 - v0)

    def explain(key, classify, x, target, segments=None) -> Saliency:
        x = check_image(x)
        t = check_target(target, num_classes_masked(classify, x))
        segments, m = resolve_segments(x, segments, superpixel, **superpixel_kwargs)
        if m < 2:
            raise ValueError(f"KernelSHAP needs at least 2 superpixels, got {m}")
        phi = shap_values(classify, x, t, jnp.asarray(segments), m, key)
        rows = 2**m - 2 if n_samples >= 2**m - 2 else n_samples
        return Saliency(phi[jnp.asarray(segments)], rows + 2)

    explain.shap_values = shap_values
    return explain
