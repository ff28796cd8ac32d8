"""ConvAD rules for layout primitives: broadcasting, reshapes, transposes, squeezes, flips,
slices, explicit padding, concatenation, splits and gathers (rule signature: `ad/mask.py`).

The mask is moved the same way as the value, whatever the layout (a reshape that splits or
merges position axes carries it; nothing is dropped silently). Only an op that removes the
last position axis of size 1 (squeeze of a 1x1 map) is a dimension-altering checkpoint
after which the value is clean.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from rexjax.ad.mask import (
    Mask,
    concrete,
    deactivate,
    drop_axes,
    insert_axes,
    mask_axes,
    pending_keepdims,
    pointwise,
    unsupported,
    valid_or_ones,
)
from rexjax.jaxpr import bind


def broadcast_in_dim(ctx, eqn, vals, masks):
    """Broadcasting (e.g. [B,H,W,1] -> [B,H,W,C], or replication of a size-1 axis). New
    axes are constant for the mask, except the size-1 axes a keepdims puts back right after
    a partial spatial reduction (`Mask.reduced`), which keep their position tag."""
    (mask,) = [mk for mk in masks if mk is not None]
    if masks[0] is None:
        raise unsupported(eqn, "masked dynamic shape operand")
    shape, bd = eqn.params["shape"], eqn.params["broadcast_dimensions"]
    if pending_keepdims(mask, vals[0].shape, shape) and tuple(bd) == tuple(
        b for b in range(len(shape)) if b not in {a for a, _ in mask.reduced}
    ):
        return bind(eqn, vals), [insert_axes(mask, mask.reduced)]
    axes = mask_axes(mask)
    mshape = [1] * len(shape)
    for i, j in enumerate(bd):
        if i in axes:
            mshape[j] = shape[j]
    m = lax.broadcast_in_dim(mask.m, mshape, bd)
    spatial = tuple(sorted(bd[i] for i in mask.spatial))
    mixed = tuple(sorted(bd[i] for i in mask.mixed))
    rep = tuple(j for j in range(len(shape)) if j not in bd)
    valid = None
    if mask.valid is not None:
        vshape = [shape[j] if j in spatial else 1 for j in range(len(shape))]
        valid = concrete(lambda: lax.broadcast_in_dim(mask.valid, vshape, bd))
    return bind(eqn, vals), [Mask(m, spatial, valid, mixed, rep=rep)]


def _big_groups(a, b):
    """Aligned groups of the non-unit axes of two shapes of equal size, with equal products:
    [(in_axes, out_axes), ...] in order (size-1 axes are placed by `reshape`)."""
    ia = [k for k, s in enumerate(a) if s != 1]
    ib = [k for k, s in enumerate(b) if s != 1]
    groups, i, j = [], 0, 0
    while i < len(ia) or j < len(ib):
        gi, gj, pa, pb = [], [], 1, 1
        while True:
            if pa <= pb and i < len(ia):
                gi.append(ia[i])
                pa *= a[ia[i]]
                i += 1
            elif j < len(ib):
                gj.append(ib[j])
                pb *= b[ib[j]]
                j += 1
            else:
                break
            if pa == pb and gi and gj:
                break
        groups.append((gi, gj))
    return groups


def _slot(shape, axis) -> int:
    """Number of non-unit axes before `axis`."""
    return sum(1 for k in range(axis) if shape[k] != 1)


def _unit_axes(mask: Mask, in_shape: tuple, out_shape: tuple, groups: list) -> tuple[list, dict]:
    """Where each size-1 position axis of the input goes in a reshape.

    -> (attached, out_tags). out_tags {size-1 output axis: "spatial" | "mixed"}: an input axis
    carried to a size-1 output axis at the same place (between the same groups), in order.
    attached[t] [(input axis, tag), ...]: the axes merged into group t instead (the group
    after or before its place, whichever takes positions: one with a position axis, or a
    copy axis whose copies are positions); an axis no group can take is dropped (a size-1
    position squeezed away).
    """
    attached = [[] for _ in groups]
    out_tags = {}
    bounds_in = np.cumsum([0] + [len(gi) for gi, _ in groups]).tolist()
    bounds_out = np.cumsum([0] + [len(gj) for _, gj in groups]).tolist()
    ones_in = [a for a, n in enumerate(in_shape) if n == 1]
    ones_out = [b for b, n in enumerate(out_shape) if n == 1]

    def kind(t):  # what a group may take a size-1 position axis into
        if t < 0 or t >= len(groups):
            return 0
        gi = groups[t][0]
        if len(gi) == 1 and gi[0] in mask.rep:
            return 2  # a copy axis next to it: the copies are positions
        return 1 if any(a in mask.spatial for a in gi) else 0

    for a in ones_in:
        if a not in mask.spatial:
            continue
        k = _slot(in_shape, a)
        tag = "mixed" if a in mask.mixed else "spatial"
        if k in bounds_in:
            t = bounds_in.index(k)
            same_in = [c for c in ones_in if _slot(in_shape, c) == k]
            same_out = [b for b in ones_out if _slot(out_shape, b) == bounds_out[t]]
            r = same_in.index(a)
            if r < len(same_out):
                out_tags[same_out[r]] = tag
                continue
            candidates = [t, t - 1]
        else:
            candidates = [max(t for t in range(len(groups)) if bounds_in[t] < k)]
        best = max(candidates, key=kind)
        if kind(best):
            attached[best].append((a, tag))
    return attached, out_tags


def _group_layout(eqn, mask: Mask, out_shape: tuple, groups: list, attached: list, out_tags: dict):
    """The output mask's layout, group by group (`reshape`'s doc).

    -> (mat_in: input axes on which the mask is materialised at full size, mshape_out and
    vshape_out: the output mask's and validity's shapes, spatial and mixed: sets of output
    axes). A group carrying the batch axis must be that axis alone (else `unsupported`).
    """
    axes = mask_axes(mask)
    mat_in = set()
    mshape_out = [1] * len(out_shape)
    vshape_out = [1] * len(out_shape)
    spatial, mixed = set(out_tags), {b for b, t in out_tags.items() if t == "mixed"}
    for (gi, gj), att in zip(groups, attached):
        sp = [a for a in gi if a in mask.spatial]
        batch = [a for a in gi if a in axes and a not in mask.spatial]
        chan = [a for a in gi if a not in axes and a not in mask.rep]
        if not sp and not batch and not att:
            continue
        if batch:
            if len(gi) != 1 or len(gj) != 1 or att:
                raise unsupported(eqn, "reshape mixes the batch axis of a masked activation with other axes")
            mshape_out[gj[0]] = mask.m.shape[gi[0]]
            continue
        if len(gi) == 1 and len(gj) == 1 and sp:  # one position axis carried as it is
            mshape_out[gj[0]] = vshape_out[gj[0]] = out_shape[gj[0]]
            spatial.add(gj[0])
            if gi[0] in mask.mixed:
                mixed.add(gj[0])
            continue
        # split / merge of positions (possibly with channels): materialise, tag every axis
        mat_in.update(gi)
        is_mixed = any(a in mask.mixed for a in gi) or any(t == "mixed" for _, t in att) or bool(chan)
        for b in gj:
            mshape_out[b] = vshape_out[b] = out_shape[b]
            spatial.add(b)
            if is_mixed:
                mixed.add(b)
    for b in out_tags:
        mshape_out[b] = vshape_out[b] = 1
    return mat_in, mshape_out, vshape_out, spatial, mixed


def _reshaped_mask(mask: Mask, in_shape: tuple, mat_in: set, mshape_out: list, vshape_out: list,
                   spatial: set, mixed: set) -> Mask:
    """The mask and validity broadcast to full size on `mat_in` and reshaped to the output layout."""
    full_in = [in_shape[a] if a in mat_in else mask.m.shape[a] for a in range(len(in_shape))]
    m = jnp.reshape(jnp.broadcast_to(mask.m, full_in), mshape_out)
    valid = None
    if mask.valid is not None:
        vin = [in_shape[a] if (a in mat_in or a in mask.spatial) else 1 for a in range(len(in_shape))]
        valid = np.broadcast_to(mask.valid, vin).reshape(vshape_out)
    return Mask(m, tuple(sorted(spatial)), valid, tuple(sorted(mixed)))


def reshape(ctx, eqn, vals, masks):
    """Any static reshape; the mask follows the value, never dropped silently.

    Axes are matched in groups of equal size (`_big_groups`). A group that only carries
    one axis to one axis keeps its tag. A group that splits or merges position axes
    (space-to-depth, pixel shuffle, patchify, [B,H,W,C] -> [B,HW,C]) gets a mask at full
    size on the group (materialised over any channel axis in it) and position tags on
    every output axis; if it merged positions with channels (a flatten before a Dense,
    the patches of a patchify) those axes are `mixed`. A group that mixes the batch axis
    of a masked value with others is an error. A size-1 position axis keeps its tag on a
    size-1 output axis at the same place, or else passes it to the group it is merged into
    (`_unit_axes`; the layout: `_group_layout`; the arrays: `_reshaped_mask`).
    """
    (x,), (mask,) = vals[:1], masks[:1]
    if eqn.params.get("dimensions") is not None or any(mk is not None for mk in masks[1:]):
        raise unsupported(eqn, "reshape with dimensions or dynamic shapes")
    in_shape, out_shape = tuple(x.shape), tuple(eqn.params["new_sizes"])
    if in_shape == out_shape:
        return bind(eqn, vals), [mask]
    if pending_keepdims(mask, in_shape, out_shape):
        return bind(eqn, vals), [insert_axes(mask, mask.reduced)]
    groups = _big_groups(in_shape, out_shape)
    attached, out_tags = _unit_axes(mask, in_shape, out_shape, groups)
    layout = _group_layout(eqn, mask, out_shape, groups, attached, out_tags)
    out, new = _finish(bind(eqn, vals)[0], _reshaped_mask(mask, in_shape, *layout))
    return [out], [new]


def _finish(val, mask: Mask):
    """A value left without spatial axes is switched off where masked and becomes clean."""
    if mask is not None and not mask.spatial:
        return deactivate(val, mask), None
    return val, mask


def transpose(ctx, eqn, vals, masks):
    """Axis permutation: the mask is permuted the same way."""
    perm = tuple(eqn.params["permutation"])
    (mask,) = masks
    pos = {p: k for k, p in enumerate(perm)}  # input axis -> output axis
    valid = None if mask.valid is None else np.transpose(mask.valid, perm)
    new = Mask(
        jnp.transpose(mask.m, perm),
        tuple(sorted(pos[a] for a in mask.spatial)),
        valid,
        tuple(sorted(pos[a] for a in mask.mixed)),
        rep=tuple(sorted(pos[a] for a in mask.rep)),
    )
    return bind(eqn, vals), [new]


def squeeze(ctx, eqn, vals, masks):
    """Removing size-1 axes; removing the last spatial axis makes the value clean."""
    out, new = _finish(bind(eqn, vals)[0], drop_axes(masks[0], eqn.params["dimensions"]))
    return [out], [new]


def _moved(mask: Mask, m, valid) -> Mask:
    """Same axes and tags, new arrays (a flip, slice, pad, split moved positions around)."""
    return Mask(m, mask.spatial, valid, mask.mixed)


def rev(ctx, eqn, vals, masks):
    """Flips: the mask is flipped along the flipped axes where it varies."""
    (mask,) = masks
    dims = tuple(d for d in eqn.params["dimensions"] if mask.m.shape[d] > 1)
    valid = None if mask.valid is None else np.flip(mask.valid, eqn.params["dimensions"])
    return bind(eqn, vals), [_moved(mask, lax.rev(mask.m, dims), valid)]


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
    return bind(eqn, vals), [_moved(mask, cut(mask.m), valid)]


def pad(ctx, eqn, vals, masks):
    """Explicit padding: an external additive procedure (paper, Sec. 4 and App. C).

    The padded positions are neither visible nor masked: they get mask 0 and validity
    False, so checkpoints keep their padding value and position attribution ignores them.
    (`jnp.pad` modes that copy pixels, "edge" / "reflect" / "wrap" / "symmetric", are not
    this primitive: they are slices, flips, broadcasts and concatenations, and the copies
    carry the masks of the pixels they copy.)
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
    return bind(eqn, vals), [_moved(mask, m, valid)]


def concatenate(ctx, eqn, vals, masks):
    """Concatenation: along a spatial axis the masks are concatenated (an unmasked operand
    counts as visible); along channels it is a combination of representations (`mask.combine`).
    Operands without elements along the axis (zero-width pieces) take no part in the masks.
    """
    d = eqn.params["dimension"]
    kept = [k for k, v in enumerate(vals) if v.shape[d] > 0]
    if len(kept) < len(vals):
        if all(masks[k] is None for k in kept):
            return bind(eqn, vals), [None]
        if len(kept) == 1:
            return bind(eqn, vals), [masks[kept[0]]]
        if d not in masks[next(k for k in kept if masks[k] is not None)].spatial:
            raise unsupported(eqn, "zero-width pieces in a concatenation along channels")
        outs, (new,) = _spatial_concat(eqn, d, [vals[k] for k in kept], [masks[k] for k in kept])
        return bind(eqn, vals), [new]
    present = [mk for mk in masks if mk is not None]
    ref = present[0]
    if any(mk.spatial != ref.spatial for mk in present):
        raise unsupported(eqn, "operands have different spatial axes")
    if d in ref.spatial:
        return _spatial_concat(eqn, d, vals, masks)
    if any(mk.m.shape[d] > 1 for mk in present):
        raise unsupported(eqn, "concatenation along the batch axis of a masked activation")
    return pointwise(ctx, eqn, vals, masks, additive=True)


def _spatial_concat(eqn, d, vals, masks):
    present = [mk for mk in masks if mk is not None]
    ref = present[0]
    if any(mk.spatial != ref.spatial for mk in present):
        raise unsupported(eqn, "operands have different spatial axes")
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
    mixed = tuple(sorted(set().union(*(mk.mixed for mk in present))))
    return bind(eqn, vals), [Mask(jnp.concatenate(ms, axis=d), ref.spatial, valid, mixed)]


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
    return outs, [_moved(mask, m, v) for m, v in zip(ms, vs)]


def gather(ctx, eqn, vals, masks):
    """`gather` with unmasked indices (integer-array indexing, `jnp.take`, nearest
    `jax.image.resize`): every output element is a copy of one input element, so the mask
    is gathered with the same indices (indices into axes where the mask is constant are
    set to 0; out-of-bounds fill counts as visible: a constant, no pixel in it).

    Output tags: a slice axis keeps its operand axis's tag; the index (batch) axes are
    positions if an indexed axis is one (mixed if it is mixed or features are indexed too).
    """
    (x, idx), (mask, imask) = vals, masks
    if imask is not None or mask is None:
        raise unsupported(eqn, "masked indices")
    p = eqn.params
    dn = p["dimension_numbers"]
    if dn.operand_batching_dims or dn.start_indices_batching_dims:
        raise unsupported(eqn, "gather with batching dims")
    if mask.valid is not None:
        raise unsupported(eqn, "gather from an explicitly padded activation")
    axes = mask_axes(mask)
    indexed = list(dn.start_index_map)
    if any(a in axes and a not in mask.spatial for a in indexed):
        raise unsupported(eqn, "gather along the batch axis of a masked activation")
    const = [k for k, a in enumerate(indexed) if a not in axes]
    midx = idx
    if const:
        midx = jnp.asarray(idx).at[..., jnp.asarray(const)].set(0)
    sizes = [
        1 if a in dn.collapsed_slice_dims or mask.m.shape[a] == 1 else s for a, s in enumerate(p["slice_sizes"])
    ]
    mp = dict(p, slice_sizes=tuple(sizes))
    if p.get("fill_value") is not None or "FILL" in str(p["mode"]):
        mp["fill_value"] = 1.0
    m = eqn.primitive.bind(mask.m, midx, **mp)
    rank = m.ndim
    offset_src = [a for a in range(x.ndim) if a not in dn.collapsed_slice_dims]
    spatial, mixed = set(), set()
    for b, a in zip(dn.offset_dims, offset_src):
        if a in mask.spatial:
            spatial.add(b)
        if a in mask.mixed:
            mixed.add(b)
    index_axes = [b for b in range(rank) if b not in dn.offset_dims]
    if any(a in mask.spatial for a in indexed):
        spatial.update(index_axes)
        if any(a in mask.mixed for a in indexed) or const:
            mixed.update(index_axes)
    else:  # only feature axes are indexed: the mask is the same along the index axes
        m = m[tuple(slice(0, 1) if b in index_axes else slice(None) for b in range(rank))]
    out, new = _finish(bind(eqn, vals)[0], Mask(m, tuple(sorted(spatial)), None, tuple(sorted(mixed))))
    return [out], [new]
