"""KernelSHAP (Lundberg & Lee 2017) over superpixels, on a MaskedClassifier.

A coalition z in {0,1}^M shows the superpixels with z_j = 1. With v(z) = f_t(x (.) z[seg]),
the Shapley values solve the weighted least squares

    min_phi sum_z pi(z) (v(z) - v(0) - z . phi)^2   s.t.  sum_j phi_j = v(1) - v(0),
    pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|))                         (Theorem 2)

solved by eliminating phi_M. When `n_samples >= 2^M - 2` every coalition is enumerated
with weight pi (the solution is then the exact Shapley value); otherwise coalition sizes
are drawn from pi's size marginal, members uniformly, each with weight 1 (as shap/Captum).
Coalitions are shown through `classifier.masked(mask_mode)`, `batch_size` at a time.
The map paints phi_j on superpixel j; the Attribution's record is a `ShapRecord`
(segments, shap_values). forward_images = 2 (v(0), v(1) in one chunk) + the coalition rows
rounded up to whole chunks.
Signals [N, C] and volumes [D, H, W, C] take user `segments` (int labels over the spatial
axes, i32[N] or i32[D, H, W]); superpixels are computed for images only, so without
`segments` they are refused with one line.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import batching, checks
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.saliency.superpixels import make_segmenter, resolved_settings
from rexjax.types import Attribution


class ShapRecord(NamedTuple):
    """KernelSHAP's extras: the superpixels i32[H, W] (labels 0..M-1) and phi f32[M]."""

    segments: np.ndarray
    shap_values: jax.Array


def coalition_values(classify, x, target, segments, z, batch_size):
    """v(z) for rows of z f32[N, M] -> f32[N] (`batch_size` rows per model call)."""

    def evaluate(idx):
        return classify(x, z[idx][:, segments])[:, target]

    return batching.push(evaluate, z.shape[0], batch_size=batch_size, read=lambda v, idx: v).values


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


def coalition_rows(n_samples: int, m: int) -> int:
    """Coalitions evaluated for M superpixels: all 2^M - 2 proper ones, or n_samples."""
    return 2**m - 2 if n_samples >= 2**m - 2 else n_samples


def kernel_shap(
    n_samples: int = 256,
    superpixel: str = "slic",
    segments=None,
    mask_mode: MaskMode = 0.0,
    batch_size: Optional[int] = None,
    **superpixel_options,
):
    """KernelSHAP factory -> `fn(classifier, x, target, *, key, segments=None) -> Attribution`;
    superpixels as in `superpixels.make_segmenter`, record `ShapRecord(segments, shap_values)`."""
    checks.positive_int(n_samples=n_samples)
    segment = make_segmenter(superpixel, segments, superpixel_options)
    mask_mode = parse_mask_mode(mask_mode)
    batch_size = batching.resolve_batch_size(batch_size)

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

    def explain(classifier, x, target, *, key, segments=None) -> Attribution:
        x, t = classifier.check(x, target, ranks=checks.INPUT_RANKS)  # N-D: with `segments` only
        seg, m = segment(x, segments)
        if m < 2:
            raise ValueError(f"KernelSHAP needs at least 2 superpixels, got {m}")
        seg_j = jnp.asarray(seg)
        phi = shap_values(classifier.masked(mask_mode), x, t, seg_j, m, key)
        fwd = 2 + batching.padded_count(coalition_rows(n_samples, m), batch_size)
        return Attribution(phi[seg_j], fwd, ShapRecord(seg, phi))

    return explain


def settings(config: dict) -> dict:
    """Every setting `kernel_shap(**config)` runs with, defaults and superpixel options included."""
    return resolved_settings(kernel_shap, config)
