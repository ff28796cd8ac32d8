"""RISE (Petsiuk et al. 2018): saliency = E[f(x * M) M] / p over random smooth masks.

Masks (as eclique/RISE): an s x s Bernoulli(p) grid, bilinearly upsampled to
(s+1)*ceil(H/s) x (s+1)*ceil(W/s), then cropped to H x W at a random shift in
[0, ceil(H/s)) x [0, ceil(W/s)). Mask i depends only on row i of
`uniform(key, (N, s*s + 2))`, so the set of masks does not depend on the batch size. The
map is the Monte-Carlo estimate

    S(lambda) = 1 / (N p) * sum_i f_t(x (.) M_i) M_i(lambda)          (RISE Eq. 6)

with f_t the target-class probability from `classifier.masked(mask_mode)`, the masks pushed
`batch_size` at a time (`rexjax.batching.push`). Signals [N, C] and volumes [D, H, W, C]: the
same on every spatial axis (an s^k grid of cells, k random shifts: `uniform(key, (N, s^k + k))`,
which is the images' stream for k = 2).

Under ConvAD (`mask_mode="ad"`) a mask is binary by definition (AD switches a pixel off or
leaves it on; a soft mask would be binarised at > 0, leaving e.g. 92 % of pixels visible at
p = 0.5 while the 1/(N p) weights assume p). So with `mask_mode="ad"` the cells are
upsampled by *nearest* instead of bilinear (`upsample="auto"`): every pixel then shows one
Bernoulli(p) cell, the mask is 0/1, a pixel is visible with probability exactly p, and
Eq. 6's normalisation holds unchanged. The geometry (cell size (s+1) ceil(H/s) / s, random
shift) is the same. `upsample="bilinear"` with `mask_mode="ad"` is refused.
Deviation: jax.image.resize clamps at the border where skimage (RISE) reflects; the
interpolated values differ only in the half cell at the border of the upsampled grid,
which the random crop mostly removes.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import batching, checks
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.saliency.occlusion import spatial_sum
from rexjax.types import Attribution


UPSAMPLES = ("auto", "bilinear", "nearest")


def resolve_upsample(upsample: str, mask_mode) -> str:
    """"auto" -> "nearest" (binary masks) under mask_mode "ad", else "bilinear" (RISE's own).

    "bilinear" under "ad" is refused: ConvAD sees a mask binarised at > 0, so soft masks
    would show far more than the fraction p the RISE/SHAPE weights assume."""
    if upsample not in UPSAMPLES:
        raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
    if upsample == "auto":
        return "nearest" if mask_mode == "ad" else "bilinear"
    if upsample == "bilinear" and mask_mode == "ad":
        raise ValueError(
            "upsample='bilinear' gives soft masks, which mask_mode='ad' (ConvAD) binarises at > 0 "
            "(about 92 % of pixels visible at p = 0.5 instead of p): use upsample='nearest' or 'auto'"
        )
    return upsample


def _interp_matrix(grid: int, size: int, method: str = "bilinear") -> jax.Array:
    """f32[size, grid]: upsampling (half-pixel centres; bilinear with edge clamp, or nearest,
    whose rows are one-hot) of `grid` cells."""
    with jax.ensure_compile_time_eval():
        return jax.image.resize(jnp.eye(grid, dtype=jnp.float32), (size, grid), method)


def mask_uniforms(key: jax.Array, n_masks: int, grid: int, rank: int = 2) -> jax.Array:
    """f32[N, s^k + k] (k = `rank` spatial axes; images s*s + 2): the uniforms mask i is made of
    (row i); independent of batching."""
    return jax.random.uniform(key, (n_masks, grid**rank + rank))


def rise_mask(u: jax.Array, grid: int, p: float, hw: tuple[int, ...], upsample: str = "bilinear") -> jax.Array:
    """One RISE mask f32[*hw] in [0, 1] (1 = visible) from its uniforms `u[s^k + k]`, k = len(hw).

    Images: cells = u[:s*s] < p; shift (dy, dx) = floor(u[-2:] * (ch, cw)). Equals
    `resize(cells, ((s+1) ch, (s+1) cw), upsample)[dy:dy+H, dx:dx+W]`, computed as the
    separable product R_y cells R_x^T of the cropped interpolation matrices (with
    "nearest" the rows of R are one-hot, so the mask is exactly 0/1). k = 1, 3: the same per
    axis (cells u[:s^k] < p, shifts u[-k:]), the matrices applied axis by axis.
    """
    k = len(hw)
    sizes = [math.ceil(n / grid) for n in hw]
    cells = (u[: grid**k] < p).astype(jnp.float32).reshape((grid,) * k)
    shifts = [jnp.minimum((u[-k + i] * c).astype(jnp.int32), c - 1) for i, c in enumerate(sizes)]
    r = [jax.lax.dynamic_slice_in_dim(_interp_matrix(grid, (grid + 1) * c, upsample), d, n)
         for c, d, n in zip(sizes, shifts, hw)]
    if k == 2:
        return r[0] @ cells @ r[1].T
    for axis in range(k):
        cells = jnp.moveaxis(jnp.tensordot(r[axis], cells, axes=([1], [axis])), 0, axis)
    return cells


class MaskStream(NamedTuple):
    """The settings RISE and SHAPE share, validated: N masks of an s x s grid keeping a cell
    with probability p, upsampled by `upsample` ("bilinear" or "nearest"), shown through
    `classifier.masked(mask_mode)` `batch_size` at a time."""

    n_masks: int
    grid: int
    p: float
    mask_mode: MaskMode
    batch_size: int
    upsample: str


def mask_stream(n_masks, grid, p, mask_mode, batch_size, upsample) -> MaskStream:
    """The factory arguments of RISE / SHAPE, checked (ValueError naming the bad one) and resolved."""
    checks.positive_int(n_masks=n_masks, grid=grid)
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 < float(p) <= 1.0:
        raise ValueError(f"p (probability a grid cell is kept) must be in (0, 1], got {p!r}")
    mask_mode = parse_mask_mode(mask_mode)
    return MaskStream(n_masks, grid, float(p), mask_mode, batching.resolve_batch_size(batch_size),
                      resolve_upsample(upsample, mask_mode))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def rise_masks(
    key: jax.Array, n_masks: int, grid: int, p: float, hw: tuple[int, int], upsample: str = "bilinear"
) -> jax.Array:
    """All N masks of the stream defined by `key` -> f32[N, *hw] (for tests and plots);
    `upsample` as resolved by `resolve_upsample` ("bilinear" or "nearest")."""
    u = mask_uniforms(key, n_masks, grid, len(hw))
    return jax.vmap(lambda r: rise_mask(r, grid, p, hw, upsample))(u)


def masked_scores_sum(classify, x, target, key, stream: MaskStream, weight):
    """sum over chunks of weight(f_t(x (.) M)[B], M[B,*S], ok[B]) -> f32[*S] for the
    masks M of `stream` drawn from `key` (x f32[*S, C]; images S = [H, W]).

    ok is 0 for the padding of the last chunk; `weight` must zero those rows.
    """
    hw = x.shape[:-1]
    u = mask_uniforms(key, stream.n_masks, stream.grid, len(hw))

    def evaluate(idx):
        m = jax.vmap(lambda r: rise_mask(r, stream.grid, stream.p, hw, stream.upsample))(u[idx])
        return classify(x, m)[:, target], m

    def fold(out, idx, ok):
        return weight(out[0], out[1], ok)

    return batching.push(evaluate, stream.n_masks, batch_size=stream.batch_size, fold=fold).total


def rise(
    n_masks: int = 4000, grid: int = 7, p: float = 0.5, mask_mode: MaskMode = 0.0, batch_size: Optional[int] = None,
    upsample: str = "auto",
):
    """RISE factory (defaults: RISE paper N 4000, s 7, p 0.5; SHAPE's setting: 6000, 7, 0.1).

    Returns `fn(classifier, x[*S,C], target, *, key) -> Attribution` (x a signal [N, C], an
    image [H, W, C] or a volume [D, H, W, C]); the masks are shown
    through `classifier.masked(mask_mode)`. forward_images = n_masks rounded up to whole chunks.
    upsample: "auto" (bilinear, RISE's soft masks; nearest, i.e. binary masks, under
    mask_mode "ad"), "bilinear" (refused under "ad") or "nearest".
    """
    stream = mask_stream(n_masks, grid, p, mask_mode, batch_size, upsample)

    def weight(probs, m, ok):
        return spatial_sum(probs * ok, m)

    @functools.partial(jax.jit, static_argnums=1)
    def rise_map(key, classify, x, target):
        return masked_scores_sum(classify, x, target, key, stream, weight) / (stream.n_masks * stream.p)

    def explain(classifier, x, target, *, key) -> Attribution:
        x, t = classifier.check(x, target, ranks=checks.INPUT_RANKS)
        return Attribution(
            rise_map(key, classifier.masked(stream.mask_mode), x, t),
            batching.padded_count(stream.n_masks, stream.batch_size),
        )

    return explain
