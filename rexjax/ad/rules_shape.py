"""ConvAD rules for layout primitives: broadcasting, reshapes, transposes, squeezes, flips,
slices, explicit padding, concatenation and splits (rule signature: `ad/mask.py`).

The mask is moved the same way as the value; an op that removes the last spatial axis
(flatten before a Dense, squeeze of a 1x1 map) is a dimension-altering checkpoint after
which the value is clean.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from rexjax.ad.mask import Mask, concrete, deactivate, drop_axes, mask_axes, pointwise, unsupported, valid_or_ones
from rexjax.jaxpr import bind


def broadcast_in_dim(ctx, eqn, vals, masks):
    """Broadcasting (e.g. [B,H,W,1] -> [B,H,W,C], or replication of a size-1 axis)."""
    (mask,) = [mk for mk in masks if mk is not None]
    if masks[0] is None:
        raise unsupported(eqn, "masked dynamic shape operand")
    shape, bd = eqn.params["shape"], eqn.params["broadcast_dimensions"]
    axes = mask_axes(mask)
    mshape = [1] * len(shape)
    for i, j in enumerate(bd):
        if i in axes:
            mshape[j] = shape[j]
    m = lax.broadcast_in_dim(mask.m, mshape, bd)
    spatial = tuple(sorted(bd[i] for i in mask.spatial))
    valid = None
    if mask.valid is not None:
        vshape = [shape[j] if j in spatial else 1 for j in range(len(shape))]
        valid = concrete(lambda: lax.broadcast_in_dim(mask.valid, vshape, bd))
    return bind(eqn, vals), [Mask(m, spatial, valid)]


class _Axes:
    """A cursor over one shape's axes that collects the current group and its product."""

    def __init__(self, shape):
        self.shape, self.i = shape, 0
        self.start()

    def start(self):
        self.group, self.product = [], 1

    def more(self) -> bool:
        return self.i < len(self.shape)

    def take(self):
        self.group.append(self.i)
        self.product *= self.shape[self.i]
        self.i += 1

    def take_ones(self):
        while self.more() and self.shape[self.i] == 1:
            self.take()


def _reshape_groups(a, b):
    """Splits two shapes of equal size into aligned groups of axes with equal products."""
    ca, cb = _Axes(a), _Axes(b)
    groups = []
    while ca.more() or cb.more():
        ca.start()
        cb.start()
        for c in (ca, cb):
            if c.more():
                c.take()
        while ca.product != cb.product:
            if ca.product < cb.product and ca.more():
                ca.take()
            elif cb.more():
                cb.take()
            else:
                break
        ca.take_ones()
        cb.take_ones()
        groups.append((ca.group, cb.group))
    return groups


def _finish(val, mask: Mask):
    """A value left without spatial axes is switched off where masked and becomes clean."""
    if mask is not None and not mask.spatial:
        return deactivate(val, mask), None
    return val, mask


def reshape(ctx, eqn, vals, masks):
    """Reshapes that keep every non-unit masked axis intact (only split/merge other axes).

    A reshape that merges a spatial axis away (flatten before a Dense) is a
    dimension-altering op: checkpoint, and the result is clean (no spatial axes left).
    """
    (x,), (mask,) = vals[:1], masks[:1]
    if eqn.params.get("dimensions") is not None or any(mk is not None for mk in masks[1:]):
        raise unsupported(eqn, "reshape with dimensions or dynamic shapes")
    in_shape, out_shape = x.shape, tuple(eqn.params["new_sizes"])
    axes = mask_axes(mask)
    mshape, spatial, flattened = [1] * len(out_shape), [], False
    for gi, gj in _reshape_groups(in_shape, out_shape):
        big_in = [a for a in gi if in_shape[a] != 1]
        big_out = [b for b in gj if out_shape[b] != 1]
        masked = [a for a in big_in if a in axes]
        if not masked:
            continue
        if len(big_in) == 1 and len(big_out) == 1:
            mshape[big_out[0]] = out_shape[big_out[0]]
            if big_in[0] in mask.spatial:
                spatial.append(big_out[0])
        elif all(a in mask.spatial for a in masked):
            flattened = True
        else:
            raise unsupported(eqn, "reshape mixes the batch axis of a masked activation")
    if flattened:
        if spatial:
            raise unsupported(eqn, "reshape flattens some spatial axes but not all")
        return bind(eqn, [deactivate(x, mask)] + vals[1:]), [None]
    m = jnp.reshape(mask.m, mshape)
    valid = None
    if mask.valid is not None:
        vshape = [s if b in spatial else 1 for b, s in enumerate(mshape)]
        valid = mask.valid.reshape(vshape)
    out, new = _finish(bind(eqn, vals)[0], Mask(m, tuple(spatial), valid))
    return [out], [new]


def transpose(ctx, eqn, vals, masks):
    """Axis permutation: the mask is permuted the same way."""
    perm = tuple(eqn.params["permutation"])
    (mask,) = masks
    spatial = tuple(sorted(k for k, p in enumerate(perm) if p in mask.spatial))
    valid = None if mask.valid is None else np.transpose(mask.valid, perm)
    return bind(eqn, vals), [Mask(jnp.transpose(mask.m, perm), spatial, valid)]


def squeeze(ctx, eqn, vals, masks):
    """Removing size-1 axes; removing the last spatial axis makes the value clean."""
    out, new = _finish(bind(eqn, vals)[0], drop_axes(masks[0], eqn.params["dimensions"]))
    return [out], [new]


def rev(ctx, eqn, vals, masks):
    """Flips: the mask is flipped along the flipped axes where it varies."""
    (mask,) = masks
    dims = tuple(d for d in eqn.params["dimensions"] if mask.m.shape[d] > 1)
    valid = None if mask.valid is None else np.flip(mask.valid, eqn.params["dimensions"])
    return bind(eqn, vals), [Mask(lax.rev(mask.m, dims), mask.spatial, valid)]


def slice_(ctx, eqn, vals, masks):
    """Static slices (crops, strided subsampling): the mask is sliced the same way."""
    (mask,) = masks
    p = eqn.params
    strides = p["strides"] or (1,) * len(p["start_indices"])

    def cut(arr):
        idx = tuple(
            slice(s, l, st) if arr.shape[a] > 1 or a in mask.spatial else slice(None)
            for a, (s, l, st) in enumerate(zip(p["start_indices"], p["limit_indices"], strides))
        )
        return arr[idx]

    valid = None if mask.valid is None else cut(mask.valid)
    return bind(eqn, vals), [Mask(cut(mask.m), mask.spatial, valid)]


def pad(ctx, eqn, vals, masks):
    """Explicit padding: an external additive procedure (paper, Sec. 4 and App. C).

    The padded positions are neither visible nor masked: they get mask 0 and validity
    False, so checkpoints keep their padding value and position attribution ignores them.
    """
    mask, pad_mask = masks
    if pad_mask is not None:
        raise unsupported(eqn, "masked padding value")
    cfg = eqn.params["padding_config"]
    axes = mask_axes(mask)
    for a, c in enumerate(cfg):
        if a in axes and a not in mask.spatial and tuple(c) != (0, 0, 0):
            raise unsupported(eqn, "padding along the batch axis of a masked activation")
    mcfg = [tuple(int(v) for v in c) if a in mask.spatial else (0, 0, 0) for a, c in enumerate(cfg)]
    m = lax.pad(mask.m, jnp.float32(0), mcfg)
    base = valid_or_ones(mask)
    valid = concrete(lambda: lax.pad(jnp.asarray(base), jnp.float32(0), mcfg)) > 0.5
    return bind(eqn, vals), [Mask(m, mask.spatial, valid)]


def concatenate(ctx, eqn, vals, masks):
    """Concatenation: along a spatial axis the masks are concatenated (an unmasked operand
    counts as visible); along channels it is a combination of representations (`mask.combine`).
    """
    d = eqn.params["dimension"]
    present = [mk for mk in masks if mk is not None]
    ref = present[0]
    if any(mk.spatial != ref.spatial for mk in present):
        raise unsupported(eqn, "operands have different spatial axes")
    if d in ref.spatial:
        rank = ref.m.ndim
        common = [max(mk.m.shape[a] for mk in present) for a in range(rank)]

        def shape_of(x):
            return [x.shape[a] if a == d else common[a] for a in range(rank)]

        ms = [
            jnp.broadcast_to(mk.m, shape_of(x)) if mk is not None else jnp.ones(shape_of(x))
            for x, mk in zip(vals, masks)
        ]
        valid = None
        if any(mk is not None and mk.valid is not None for mk in masks):
            vs = []
            for x, mk in zip(vals, masks):
                vshape = [x.shape[a] if a in ref.spatial else 1 for a in range(rank)]
                v = mk.valid if mk is not None and mk.valid is not None else np.ones(vshape, bool)
                vs.append(np.broadcast_to(v, vshape))
            valid = np.concatenate(vs, axis=d)
        return bind(eqn, vals), [Mask(jnp.concatenate(ms, axis=d), ref.spatial, valid)]
    if any(mk.m.shape[d] > 1 for mk in present):
        raise unsupported(eqn, "concatenation along the batch axis of a masked activation")
    return pointwise(ctx, eqn, vals, masks, additive=True)


def split(ctx, eqn, vals, masks):
    """`jnp.split`: along a spatial axis the mask is split too; elsewhere it is shared."""
    (mask,) = masks
    axis, sizes = eqn.params["axis"], [int(s) for s in eqn.params["sizes"]]
    outs = bind(eqn, vals)
    if axis not in mask.spatial:
        if mask.m.shape[axis] > 1:
            raise unsupported(eqn, "split along the batch axis of a masked activation")
        return outs, [mask] * len(outs)
    cuts = np.cumsum(sizes)[:-1].tolist()
    ms = jnp.split(mask.m, cuts, axis=axis)
    vs = [None] * len(ms) if mask.valid is None else np.split(mask.valid, cuts, axis=axis)
    return outs, [Mask(m, mask.spatial, v) for m, v in zip(ms, vs)]
