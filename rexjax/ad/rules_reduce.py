"""ConvAD rules for pooling and reductions: `reduce_window_{sum,max,min}` (max/avg pooling)
and `reduce_{sum,max,min}` (global pooling, channel reductions) (rule signature:
`ad/mask.py`)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from rexjax.ad.mask import (
    Mask,
    concrete,
    deactivate,
    drop_axes,
    full_count,
    mask_axes,
    threshold,
    unsupported,
    valid_or_ones,
)
from rexjax.jaxpr import bind


REDUCE_FILL = {
    "reduce_sum": 0.0,
    "reduce_max": -np.inf,
    "reduce_min": np.inf,
    "reduce_window_sum": 0.0,
    "reduce_window_max": -np.inf,
    "reduce_window_min": np.inf,
}


def reduce_window(ctx, eqn, vals, masks):
    """Max/min/average pooling (`reduce_window_{max,min,sum}`): a DA operation.

    Checkpoint before (masked positions filled with 0 for sums, -inf/+inf for max/min,
    so max-pool ignores them); mask by the same window rule as `conv`; checkpoint after
    (Eq. 1 "post DA"). With pool="masked_mean" a sum window is rescaled to the mean of its
    visible positions.
    """
    (x,), (mask,) = vals, masks
    p = eqn.params
    name = eqn.primitive.name
    axes = mask_axes(mask)
    rank = x.ndim
    wd, ws = list(p["window_dimensions"]), list(p["window_strides"])
    pads, bdil, wdil = list(p["padding"]), list(p["base_dilation"]), list(p["window_dilation"])
    for a in range(rank):
        if a in mask.spatial:
            continue
        if a in axes and (wd[a], ws[a], tuple(pads[a]), bdil[a]) != (1, 1, (0, 0), 1):
            raise unsupported(eqn, "pooling over the batch axis of a masked activation")
        wd[a], ws[a], pads[a], bdil[a], wdil[a] = 1, 1, (0, 0), 1, 1

    def count_of(m):
        return lax.reduce_window(m, 0.0, lax.add, wd, ws, pads, bdil, wdil)

    sp = mask.spatial
    full = full_count(
        mask,
        [wd[a] for a in sp],
        [ws[a] for a in sp],
        [tuple(pads[a]) for a in sp],
        [bdil[a] for a in sp],
        [wdil[a] for a in sp],
        sp,
        rank,
        count_of,
    )
    count = count_of(mask.m)
    y = bind(eqn, [deactivate(x, mask, REDUCE_FILL[name])])[0]
    if name == "reduce_window_sum" and ctx.pool == "masked_mean":
        y = y * jnp.where(count > 0, full / jnp.maximum(count, 1.0), 0.0).astype(y.dtype)
    new = Mask(threshold(ctx, count, full), mask.spatial, None, mask.mixed)
    return [deactivate(y, new)], [new]


def reduce(ctx, eqn, vals, masks):
    """`reduce_{sum,max,min}` (global pooling is reduce_sum [+ div] over H, W).

    Over non-masked axes (channels): pointwise, the mask loses those axes. Over spatial
    axes: checkpoint first (the paper: deactivate, then the model's own mean), or with
    pool="masked_mean" rescale the sum to the mean of visible positions. When no spatial
    axis is left, the result is clean and carries no mask (no tau threshold on it: it
    has no position, and thresholding would switch the whole decision off). When some
    are left (pooling along one axis, e.g. an adaptive pool), the reduced axes are noted
    in `Mask.reduced` so that a keepdims right after puts them back as position axes.
    """
    (x,), (mask,) = vals, masks
    name = eqn.primitive.name
    red = set(eqn.params["axes"])
    axes = mask_axes(mask)
    if not red & axes:
        out = bind(eqn, vals)[0]
        return [out], [drop_axes(mask, red)]
    if red & (axes - set(mask.spatial)):
        raise unsupported(eqn, "reduction over the batch axis of a masked activation")
    if name not in REDUCE_FILL:
        raise unsupported(eqn, "only sum/max/min reductions over spatial axes")
    y = bind(eqn, [deactivate(x, mask, REDUCE_FILL[name])])[0]
    red_t = tuple(sorted(red))
    count = jnp.sum(mask.m, axis=red_t)
    if name == "reduce_sum" and ctx.pool == "masked_mean":
        n = float(math.prod(x.shape[a] for a in red_t))
        y = y * jnp.where(count > 0, n / jnp.maximum(count, 1.0), 0.0).astype(y.dtype)
    keep = [a for a in range(x.ndim) if a not in red]
    spatial = tuple(keep.index(a) for a in mask.spatial if a not in red)
    if not spatial:
        if name != "reduce_sum":  # all positions masked: -inf/+inf -> 0
            y = jnp.where(count > 0, y, jnp.zeros_like(y))
        return [y], [None]
    full = concrete(lambda: jnp.sum(jnp.asarray(valid_or_ones(mask)), axis=red_t))
    mixed = tuple(keep.index(a) for a in mask.mixed if a not in red)
    tags = tuple((a, "mixed" if a in mask.mixed else "spatial" if a in mask.spatial else "") for a in red_t)
    new = Mask(threshold(ctx, count, full), spatial, None, mixed, reduced=tags)
    return [deactivate(y, new)], [new]
