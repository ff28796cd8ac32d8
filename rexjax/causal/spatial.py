"""Spatial extraction: grow a circle from the most responsible pixel, then search inside it.

Reference behaviour Sec. 5.3, fixed-shape form Sec. 12.5. From the centre (the argmax of the
responsibility map, first in row-major order) circles of radii

    r_0 = initial_radius,   r_{i+1} = max(floor(r_i (1 + eta)), r_i + 1)

are tested, the schedule precomputed on the host up to the radius that covers the whole image
from any centre, ceil(hypot(H-1, W-1)), or `expansion_limit` radii. The radii are evaluated
`batch_size` at a time (one call when the schedule fits in a batch), stopping at the first
block with a hit. The first circle the model classifies as the target (confidence >=
`min_confidence` x full) restricts the map and the global prefix search (`extract.py`) runs
on it.

Bugs of the reference fixed here (BUILD_NOTES.md): the radius always grows (no infinite loop
when floor(r(1+eta)) = r), `expansion_limit = 1` means one radius (not unlimited), a circle that
covers the image ends the search instead of falling through to `None`. Deviation: the
restricted map ranks the circle's pixels first (in responsibility order) and the rest after
them in responsibility order, instead of zeroing the outside (which ranks outside pixels and
zero-responsibility inside pixels together by descending flat index, i.e. bottom-right first).

`make_tester` tests N candidate mask sets (circles here, spotlights in `multiple.py`, subset
unions in `contrastive.py`) through `rexjax.batching.push` with a pass/fail judge.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.batching import push, resolve_batch_size
from rexjax.causal.config import RexConfig, check_radius_schedule
from rexjax.causal.extract import make_global_extractor, pixel_rank


def default_judge(probs: jax.Array, target, threshold) -> jax.Array:
    """`probs[b, M, K]` -> bool[b]: image 0 of each item has top-1 = target, conf >= threshold."""
    return (jnp.argmax(probs[:, 0], -1) == target) & (probs[:, 0, target] >= threshold)


def make_tester(
    classify: Callable,
    render: Callable,
    batch_size: int,
    *,
    judge: Callable = default_judge,
    first_only: bool = False,
) -> Callable:
    """Returns jitted `test(x, params, valid, aux, target, threshold) -> (passes bool[N], forward)`.

    params: pytree with leading axis N (one candidate each); valid: bool[N] candidates to test
    (the others are skipped and read False); aux: pytree passed to `render` unchanged.
    render(params_b, aux, h, w) -> masks [b, M, H, W] (M images per candidate, 1 = visible).
    judge(probs[b, M, K], target, threshold) -> bool[b].
    first_only: stop after the first block of `batch_size` candidates (in index order) that
    holds a pass; then `argmax(passes)` is the first passing candidate.
    forward: images pushed through the model (`batching.push`: whole blocks, padding included).
    """
    batch = resolve_batch_size(batch_size)

    @jax.jit
    def test(x, params, valid, aux, target, threshold):
        h, w = x.shape[:2]
        n = valid.shape[0]

        def evaluate(idx):
            masks = render(jax.tree_util.tree_map(lambda a: a[idx], params), aux, h, w)
            b, m = masks.shape[:2]
            return classify(x, masks.reshape((b * m, h, w))).reshape((b, m, -1))

        def read(probs, idx):
            return judge(probs, target, threshold)

        m = jax.eval_shape(lambda p: render(p, aux, h, w), jax.tree_util.tree_map(lambda a: a[:1], params)).shape[1]
        out = push(
            evaluate, n, batch_size=batch, read=read, valid=valid, stop=(lambda ok: ok) if first_only else None,
            images_per_candidate=m,
        )
        return out.values, out.forward_images

    return test


def circle(centre: jax.Array, radius: jax.Array, height: int, width: int) -> jax.Array:
    """bool[H, W]: pixels within Euclidean distance `radius` of `centre` (row, col)."""
    iy = jnp.arange(height)[:, None] - centre[0]
    ix = jnp.arange(width)[None, :] - centre[1]
    return iy * iy + ix * ix <= radius * radius


def render_circles(params, aux, height: int, width: int) -> jax.Array:
    """params = (centres int32[b, 2], radii int32[b]) -> masks bool[b, 1, H, W].

    aux: None, or bool[H, W] pixels kept hidden inside every circle.
    """
    centres, radii = params
    masks = jax.vmap(lambda c, r: circle(c, r, height, width))(centres, radii)
    if aux is not None:
        masks = masks & ~aux
    return masks[:, None]


def radius_schedule(
    height: int, width: int, initial_radius: int = 25, eta: float = 0.2, limit: Optional[int] = None
) -> np.ndarray:
    """Host: int32 radii r_0 = initial, r_{i+1} = max(floor(r_i(1+eta)), r_i + 1).

    Ends at the first radius that covers the image from any centre (clipped to it) or after
    `limit` radii, so it has at most `ceil(hypot(H-1, W-1)) - initial + 1` entries.
    """
    check_radius_schedule("radius_schedule", initial_radius, eta, limit)
    full = max(1, math.ceil(math.hypot(height - 1, width - 1)))
    radii, r = [], int(initial_radius)
    while True:
        radii.append(min(r, full))
        if r >= full or (limit is not None and len(radii) >= limit):
            return np.asarray(radii, np.int32)
        r = max(int(math.floor(r * (1.0 + eta))), r + 1)


@jax.jit
def restrict_map(resp: jax.Array, region: jax.Array) -> jax.Array:
    """A map whose `pixel_rank` puts `region` first, each part in `resp`'s rank order.

    resp f32[H, W], region bool[H, W] -> f32[H, W] of distinct integers (exact for H*W < 2^23).
    """
    n = resp.size
    score = (n - pixel_rank(resp)).astype(jnp.float32)
    return jnp.where(region, score + n, score)


class SpatialExtraction(NamedTuple):
    mask: np.ndarray  # bool[H, W], the explanation (all False when not found, as extract.py)
    confidence: float  # target probability with only the explanation visible
    sufficient: bool  # a passing circle and a passing prefix inside the restricted map
    pixels: int
    forward_images: int  # circle tests + restricted prefix search
    centre: tuple  # (row, col) of the circles
    radius: int  # the first passing radius, -1 if none
    circles_tested: int  # radii of the schedule evaluated (<= len(schedule))


def padded(values: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Pads the leading axis of `values` to a multiple of `multiple`; returns (values, valid)."""
    n = values.shape[0]
    size = max(multiple, -(-n // multiple) * multiple)
    out = np.zeros((size,) + values.shape[1:], values.dtype)
    out[:n] = values
    return out, np.arange(size) < n


def make_spatial_extractor(
    classify: Callable, config: RexConfig, batch_size: int, global_extractor: Optional[Callable] = None
) -> Callable:
    """Returns `extract(x, resp, target, full_confidence, centre=None) -> SpatialExtraction`.

    `classify`: MaskedClassifier `(x[H,W,C], masks[B,H,W]) -> probs[B,K]`; `config.spatial`
    is the radius schedule. `centre` (row, col) overrides the argmax of `resp` (spotlights).
    `global_extractor` (from `make_global_extractor` with the same config) is reused when given.
    """
    sc = config.spatial
    prefix = global_extractor or make_global_extractor(classify, config, batch_size)
    tester = make_tester(classify, render_circles, batch_size, first_only=True)

    def extract(x, resp, target, full_confidence, centre=None) -> SpatialExtraction:
        h, w = x.shape[:2]
        resp = jnp.asarray(resp, jnp.float32)
        if centre is None:
            centre = np.unravel_index(int(jnp.argmax(resp)), (h, w))
        centre = (int(centre[0]), int(centre[1]))
        if not (0 <= centre[0] < h and 0 <= centre[1] < w):
            raise ValueError(f"centre must lie in the {h}x{w} image, got {centre}")
        radii = radius_schedule(h, w, sc.initial_radius, sc.radius_eta, sc.expansion_limit)
        radii_p, valid = padded(radii, batch_size)
        centres = np.broadcast_to(np.asarray(centre, np.int32), (radii_p.shape[0], 2))
        threshold = jnp.float32(config.extract.min_confidence * full_confidence)
        params = (jnp.asarray(centres), jnp.asarray(radii_p))
        passes, images = tester(x, params, jnp.asarray(valid), None, target, threshold)
        passes, images = np.asarray(passes), int(images)
        tested = min(len(radii), images)
        if not passes.any():
            return SpatialExtraction(np.zeros((h, w), bool), 0.0, False, 0, images, centre, -1, tested)
        radius = int(radii_p[int(np.argmax(passes))])
        region = circle(jnp.asarray(centre), radius, h, w)
        ex = prefix(x, restrict_map(resp, region), target, full_confidence)
        return SpatialExtraction(
            ex.mask, ex.confidence, ex.sufficient, ex.pixels, images + ex.forward_images, centre, radius, tested
        )

    return extract
