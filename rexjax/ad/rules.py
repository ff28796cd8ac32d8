"""ConvAD mask rules, one small function per primitive family.

Each rule has the signature `rule(ctx, eqn, vals, masks) -> (outvals, outmasks)` and is
called only when at least one input carries a `Mask` (see `interpreter.py` for the
invariant every rule keeps). Checkpoints (Eq. 1) are `deactivate(...)` calls. Rules, with
where they follow the paper and where we chose, are listed in BUILD_NOTES.md `## ConvAD`.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rexjax.ad.interpreter import (
    Mask,
    Options,
    bind,
    deactivate,
    eval_jaxpr,
    unsupported,
)

# ----------------------------------------------------------------------------- helpers


def _concrete(fn) -> np.ndarray:
    """Evaluates `fn()` at trace time (static shapes only) into a numpy array."""
    with jax.ensure_compile_time_eval():
        return np.asarray(fn())


def _mask_axes(mask: Mask) -> set:
    """Axes along which the mask may vary: spatial axes and the batch axis."""
    return set(mask.spatial) | {a for a, s in enumerate(mask.m.shape) if s > 1}


def _valid_or_ones(mask: Mask) -> np.ndarray:
    """The static validity map (1 = real position), size 1 off the spatial axes."""
    if mask.valid is not None:
        return mask.valid.astype(np.float32)
    shape = [s if a in mask.spatial else 1 for a, s in enumerate(mask.m.shape)]
    return np.ones(shape, np.float32)


def _window_count_1d(n, k, stride, pad, lhs_dil=1, rhs_dil=1) -> np.ndarray:
    """Real (non-padding, non-hole) input positions under each window along one axis."""
    lo, hi = pad
    n_dil = (n - 1) * lhs_dil + 1 if n > 0 else 0
    n_out = max(0, (n_dil + lo + hi - ((k - 1) * rhs_dil + 1)) // stride + 1)
    start = np.arange(n_out)[:, None] * stride - lo + np.arange(k)[None, :] * rhs_dil
    real = (start >= 0) & (start < n_dil) & (start % lhs_dil == 0)
    return real.sum(1).astype(np.float32)


def _full_count(mask: Mask, ksize, strides, pads, lhs_dil, rhs_dil, out_axes, out_rank, traced) -> np.ndarray:
    """`full` of `_threshold`: the window count of an all-real map, in numpy when the
    validity map is separable (no explicit pad), else by running `traced` at trace time.

    ksize/strides/... are per input spatial axis (in `mask.spatial` order); `out_axes`
    are the matching output axes.
    """
    if mask.valid is not None:
        return _concrete(lambda: traced(jnp.asarray(_valid_or_ones(mask))))
    full = np.ones([1] * out_rank, np.float32)
    for i, (a, b) in enumerate(zip(mask.spatial, out_axes)):
        c = _window_count_1d(mask.m.shape[a], ksize[i], strides[i], pads[i], lhs_dil[i], rhs_dil[i])
        shape = [1] * out_rank
        shape[b] = c.shape[0]
        full = full * c.reshape(shape)
    return full


def _threshold(ctx: Options, count: jax.Array, full: np.ndarray) -> jax.Array:
    """`M' = 1(Phi > tau)` with `Phi = count / full` (Definition 4, padding not counted).

    A window made only of padding (`full == 0`) stays active: it sees no input at all, and
    switching it off would change the unmasked model (Theorem 1).
    """
    keep = count > ctx.tau * full
    if np.any(full == 0):
        keep = keep | (full == 0)
    return keep.astype(jnp.float32)


def _finish(val: jax.Array, mask: Mask):
    """A value left without spatial axes is switched off where masked and becomes clean."""
    if mask is not None and not mask.spatial:
        return deactivate(val, mask), None
    return val, mask


def _same_valid(eqn, masks) -> Optional[np.ndarray]:
    valids = [mk.valid for mk in masks]
    if all(v is None for v in valids):
        return None
    if any(v is None for v in valids) or not all(
        v.shape == valids[0].shape and np.array_equal(v, valids[0]) for v in valids
    ):
        raise unsupported(eqn, "operands padded differently")
    return valids[0]


def _combine(ctx: Options, eqn, masks, vals, additive: bool):
    """Mask of an n-ary pointwise op whose masked operands carry different masks.

    additive (add/sub/concatenate): a combination of representations (paper, App. C):
    each operand is switched off where its own mask is 0 (checkpoint), and the result is
    active iff the fraction of active operands is > tau (Definition 4 over the operands):
    OR at tau < 1/2, AND at tau >= 1/2 for two operands.
    otherwise (mul, max, select, ...): AND of the masks, no checkpoint (exact: a position
    is active only where every operand is clean).
    """
    present = [mk for mk in masks if mk is not None]
    spatial = present[0].spatial
    if any(mk.spatial != spatial for mk in present):
        raise unsupported(eqn, "operands have different spatial axes")
    valid = _same_valid(eqn, present)
    if additive:
        vals = [deactivate(v, mk) for v, mk in zip(vals, masks)]
        total = sum(mk.m for mk in present)
        m = (total > ctx.tau * len(present)).astype(jnp.float32)
    else:
        m = present[0].m
        for mk in present[1:]:
            m = m * mk.m
    return vals, Mask(m, spatial, valid)


# ------------------------------------------------------------------ pointwise families

UNARY = (
    "neg sign floor ceil round is_finite exp exp2 log log1p expm1 tanh logistic sin cos tan "
    "asin acos atan sinh cosh asinh acosh atanh sqrt rsqrt cbrt abs not erf erfc erf_inv "
    "lgamma digamma integer_pow square convert_element_type reduce_precision copy copy_p "
    "real imag conj population_count clz sharding_constraint"
).split()
BINARY = (
    "add sub mul div rem pow max min atan2 nextafter and or xor eq ne lt le gt ge "
    "shift_left shift_right_logical shift_right_arithmetic add_any"
).split()
NARY = ["select_n", "clamp"]
ADDITIVE = {"add", "sub", "add_any"}


def elementwise(ctx, eqn, vals, masks):
    """Activations, BN/affine with broadcast constants, SE gating, residual adds.

    Shape-preserving and position-wise, so the mask passes through (paper case 1: no
    checkpoint needed until the next position-mixing op). Operands with different masks
    are combined by `_combine`.
    """
    present = [mk for mk in masks if mk is not None]
    if all(mk is present[0] for mk in present):
        return bind(eqn, vals), [present[0]]
    vals, mask = _combine(ctx, eqn, masks, vals, eqn.primitive.name in ADDITIVE)
    return bind(eqn, vals), [mask]


def passthrough_each(ctx, eqn, vals, masks):
    """Multi-operand identities (optimization_barrier): each output keeps its mask."""
    return bind(eqn, vals), list(masks)


# -------------------------------------------------------------------- layout families


def broadcast_in_dim(ctx, eqn, vals, masks):
    """Broadcasting (e.g. [B,H,W,1] -> [B,H,W,C], or replication of a size-1 axis)."""
    (mask,) = [mk for mk in masks if mk is not None]
    if masks[0] is None:
        raise unsupported(eqn, "masked dynamic shape operand")
    shape, bd = eqn.params["shape"], eqn.params["broadcast_dimensions"]
    axes = _mask_axes(mask)
    mshape = [1] * len(shape)
    for i, j in enumerate(bd):
        if i in axes:
            mshape[j] = shape[j]
    m = lax.broadcast_in_dim(mask.m, mshape, bd)
    spatial = tuple(sorted(bd[i] for i in mask.spatial))
    valid = None
    if mask.valid is not None:
        vshape = [shape[j] if j in spatial else 1 for j in range(len(shape))]
        valid = _concrete(lambda: lax.broadcast_in_dim(mask.valid, vshape, bd))
    return bind(eqn, vals), [Mask(m, spatial, valid)]


def _reshape_groups(a, b):
    """Splits two shapes of equal size into aligned groups of axes with equal products."""
    groups, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        gi, gj, pi, pj = [], [], 1, 1
        if i < len(a):
            gi.append(i)
            pi *= a[i]
            i += 1
        if j < len(b):
            gj.append(j)
            pj *= b[j]
            j += 1
        while pi != pj:
            if pi < pj and i < len(a):
                gi.append(i)
                pi *= a[i]
                i += 1
            elif j < len(b):
                gj.append(j)
                pj *= b[j]
                j += 1
            else:
                break
        while i < len(a) and a[i] == 1:
            gi.append(i)
            i += 1
        while j < len(b) and b[j] == 1:
            gj.append(j)
            j += 1
        groups.append((gi, gj))
    return groups


def reshape(ctx, eqn, vals, masks):
    """Reshapes that keep every non-unit masked axis intact (only split/merge other axes).

    A reshape that merges a spatial axis away (flatten before a Dense) is a
    dimension-altering op: checkpoint, and the result is clean (no spatial axes left).
    """
    (x,), (mask,) = vals[:1], masks[:1]
    if eqn.params.get("dimensions") is not None or any(mk is not None for mk in masks[1:]):
        raise unsupported(eqn, "reshape with dimensions or dynamic shapes")
    in_shape, out_shape = x.shape, tuple(eqn.params["new_sizes"])
    axes = _mask_axes(mask)
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


def _drop_axes(mask: Mask, drop) -> Mask:
    """The mask with size-1 axes `drop` removed."""
    drop = tuple(sorted(set(drop)))
    keep = [a for a in range(mask.m.ndim) if a not in drop]
    spatial = tuple(keep.index(a) for a in mask.spatial if a not in drop)
    valid = None if mask.valid is None else np.squeeze(mask.valid, drop)
    return Mask(lax.squeeze(mask.m, drop), spatial, valid)


def squeeze(ctx, eqn, vals, masks):
    """Removing size-1 axes; removing the last spatial axis makes the value clean."""
    out, new = _finish(bind(eqn, vals)[0], _drop_axes(masks[0], eqn.params["dimensions"]))
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
    axes = _mask_axes(mask)
    for a, c in enumerate(cfg):
        if a in axes and a not in mask.spatial and tuple(c) != (0, 0, 0):
            raise unsupported(eqn, "padding along the batch axis of a masked activation")
    mcfg = [tuple(int(v) for v in c) if a in mask.spatial else (0, 0, 0) for a, c in enumerate(cfg)]
    m = lax.pad(mask.m, jnp.float32(0), mcfg)
    base = _valid_or_ones(mask)
    valid = _concrete(lambda: lax.pad(jnp.asarray(base), jnp.float32(0), mcfg)) > 0.5
    return bind(eqn, vals), [Mask(m, mask.spatial, valid)]


def concatenate(ctx, eqn, vals, masks):
    """Concatenation: along a spatial axis the masks are concatenated (an unmasked operand
    counts as visible); along channels it is a combination of representations (`_combine`).
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
    return elementwise_additive(ctx, eqn, vals, masks)


def elementwise_additive(ctx, eqn, vals, masks):
    """Like `elementwise`, always treating differing masks as a combination."""
    present = [mk for mk in masks if mk is not None]
    if all(mk is present[0] for mk in present):
        return bind(eqn, vals), [present[0]]
    vals, mask = _combine(ctx, eqn, masks, vals, additive=True)
    return bind(eqn, vals), [mask]


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


# --------------------------------------------------------- position-mixing (checkpoints)


def conv(ctx, eqn, vals, masks):
    """`conv_general_dilated` (Alg. 1 lines 4-7; grouped/depthwise included).

    Checkpoint before the conv; new mask `1(Phi > tau)` with `Phi` = (conv of M with a
    kernel of ones, same window/stride/padding/dilation) / (the same conv of the validity
    map): the paper's mean kernel `J/(m n)` with padding not counted (Definition 4).
    A 1x1 unpadded conv is pointwise: no checkpoint, and at stride 1 the same mask.
    """
    x, w = vals
    mask, wmask = masks
    if wmask is not None or mask is None:
        raise unsupported(eqn, "masked kernel")
    p = eqn.params
    dn = p["dimension_numbers"]
    lhs_f, lhs_sp = dn.lhs_spec[1], tuple(dn.lhs_spec[2:])
    if set(mask.spatial) != set(lhs_sp) or mask.m.shape[lhs_f] != 1:
        raise unsupported(eqn, "mask axes do not match the convolution's spatial axes")
    if p["batch_group_count"] != 1:
        raise unsupported(eqn, "batch_group_count > 1")
    ksize = [w.shape[a] for a in dn.rhs_spec[2:]]
    pointwise = (
        all(k == 1 for k in ksize)
        and all(tuple(pd) == (0, 0) for pd in p["padding"])
        and all(d == 1 for d in p["lhs_dilation"])
    )
    if (
        pointwise
        and all(s == 1 for s in p["window_strides"])
        and tuple(dn.out_spec) == tuple(dn.lhs_spec)
        and mask.valid is None
    ):
        return bind(eqn, vals), [mask]
    xin = x if pointwise else deactivate(x, mask)
    y = bind(eqn, [xin, w])[0]

    kshape = list(w.shape)
    kshape[dn.rhs_spec[0]] = kshape[dn.rhs_spec[1]] = 1
    ones_k = np.ones(kshape, np.float32)

    def count_of(m):
        return lax.conv_general_dilated(
            m,
            ones_k,
            window_strides=p["window_strides"],
            padding=p["padding"],
            lhs_dilation=p["lhs_dilation"],
            rhs_dilation=p["rhs_dilation"],
            dimension_numbers=dn,
            precision=lax.Precision.HIGHEST,
        )

    # spatial axes in mask.spatial order, with their kernel/output axes
    order = [lhs_sp.index(a) for a in mask.spatial]
    full = _full_count(
        mask,
        [ksize[i] for i in order],
        [p["window_strides"][i] for i in order],
        [tuple(p["padding"][i]) for i in order],
        [p["lhs_dilation"][i] for i in order],
        [p["rhs_dilation"][i] for i in order],
        [dn.out_spec[2 + i] for i in order],
        y.ndim,
        count_of,
    )
    count = count_of(mask.m)
    spatial = tuple(sorted(dn.out_spec[2:]))
    return [y], [Mask(_threshold(ctx, count, full), spatial, None)]


def conv_like(ctx, eqn, vals, masks):
    """A named jit function `f(x, kernel)` that is a convolution (depthwise_conv).

    The activation goes through `f` unchanged after a checkpoint; the mask count is
    `f(M broadcast to x's shape, ones_like(kernel))`, normalised by the same on the
    validity map, which reproduces the conv rule without knowing f's window.
    """
    if len(vals) != 2 or masks[0] is None or masks[1] is not None:
        raise unsupported(eqn, f"conv-like '{eqn.params['name']}' must be f(masked x, kernel)")
    x, w = vals
    mask = masks[0]
    y = bind(eqn, [deactivate(x, mask), w])[0]
    if y.ndim != x.ndim:
        raise unsupported(eqn, "conv-like function changes the rank")
    ones_w = np.ones(w.shape, w.dtype)
    axes = _mask_axes(mask)

    def count_of(m):
        c = bind(eqn, [jnp.broadcast_to(m, x.shape).astype(x.dtype), ones_w])[0]
        idx = tuple(slice(None) if a in axes else slice(0, 1) for a in range(c.ndim))
        return c[idx].astype(jnp.float32)

    base = _valid_or_ones(mask)
    with jax.ensure_compile_time_eval():
        full = np.asarray(count_of(jnp.asarray(base)))
    full = full[tuple(slice(0, 1) if a not in mask.spatial else slice(None) for a in range(full.ndim))]
    return [y], [Mask(_threshold(ctx, count_of(mask.m), full), mask.spatial, None)]


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
    axes = _mask_axes(mask)
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
    full = _full_count(
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
    new = Mask(_threshold(ctx, count, full), mask.spatial, None)
    return [deactivate(y, new)], [new]


def reduce(ctx, eqn, vals, masks):
    """`reduce_{sum,max,min}` (global pooling is reduce_sum [+ div] over H, W).

    Over non-masked axes (channels): pointwise, the mask loses those axes. Over spatial
    axes: checkpoint first (the paper: deactivate, then the model's own mean), or with
    pool="masked_mean" rescale the sum to the mean of visible positions. When no spatial
    axis is left, the result is clean and carries no mask (no tau threshold on it: it
    has no position, and thresholding would switch the whole decision off).
    """
    (x,), (mask,) = vals, masks
    name = eqn.primitive.name
    red = set(eqn.params["axes"])
    axes = _mask_axes(mask)
    if not red & axes:
        out = bind(eqn, vals)[0]
        return [out], [_drop_axes(mask, red)]
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
    full = _concrete(lambda: jnp.sum(jnp.asarray(_valid_or_ones(mask)), axis=red_t))
    new = Mask(_threshold(ctx, count, full), spatial, None)
    return [deactivate(y, new)], [new]


def dot_general(ctx, eqn, vals, masks):
    """Dense layers. Over channels (a Dense on [B,H,W,C]) it is a 1x1 conv: pointwise.
    Contracting spatial axes (flatten-then-Dense) is a DA op: checkpoint, result clean.
    """
    if all(mk is not None for mk in masks):
        raise unsupported(eqn, "both operands masked")
    side = 0 if masks[0] is not None else 1
    mask, x = masks[side], vals[side]
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    cs, bs = (lc, lb) if side == 0 else (rc, rb)
    cs, bs = list(cs), list(bs)
    axes = _mask_axes(mask)
    if set(cs) & axes:
        if set(cs) & (axes - set(mask.spatial)) or set(mask.spatial) - set(cs):
            raise unsupported(eqn, "contraction over some but not all masked axes")
        vals = list(vals)
        vals[side] = deactivate(x, mask)
        return bind(eqn, vals), [None]
    free = [a for a in range(x.ndim) if a not in cs and a not in bs]
    other = vals[1 - side]
    n_other_free = other.ndim - len(lc if side == 1 else rc) - len(bs)
    order = bs + free
    m = jnp.transpose(mask.m, order + cs).reshape([mask.m.shape[a] for a in order])
    pos = {a: k for k, a in enumerate(order)}
    if side == 0:
        m = m.reshape(m.shape + (1,) * n_other_free)
        spatial = tuple(sorted(pos[a] for a in mask.spatial))
        ins = None
    else:
        nb = len(bs)
        m = m.reshape(m.shape[:nb] + (1,) * n_other_free + m.shape[nb:])
        spatial = tuple(sorted(pos[a] + (n_other_free if pos[a] >= nb else 0) for a in mask.spatial))
        ins = nb
    valid = None
    if mask.valid is not None:
        v = np.transpose(mask.valid, order + cs).reshape([mask.valid.shape[a] for a in order])
        if ins is None:
            v = v.reshape(v.shape + (1,) * n_other_free)
        else:
            v = v.reshape(v.shape[:ins] + (1,) * n_other_free + v.shape[ins:])
        valid = v
    return bind(eqn, vals), [Mask(m, spatial, valid)]


# ------------------------------------------------------------------- sub-jaxpr families


def call(ctx, eqn, vals, masks):
    """`jit` (pjit), `custom_jvp_call`, `custom_vjp_call`, `remat`: recurse into the body,
    except named conv-like functions (`conv_like`)."""
    p = eqn.params
    if eqn.primitive.name in ("jit", "pjit") and p.get("name") in ctx.conv_like:
        return conv_like(ctx, eqn, vals, masks)
    closed = p.get("jaxpr", p.get("call_jaxpr"))
    if closed is None:
        raise unsupported(eqn, "call primitive without a jaxpr")
    if hasattr(closed, "consts"):
        jaxpr, consts = closed.jaxpr, closed.consts
    else:
        jaxpr, consts = closed, ()
    return eval_jaxpr(ctx, jaxpr, consts, vals, masks)


RULES = {
    **{name: elementwise for name in UNARY + BINARY + NARY},
    "optimization_barrier": passthrough_each,
    "broadcast_in_dim": broadcast_in_dim,
    "reshape": reshape,
    "transpose": transpose,
    "squeeze": squeeze,
    "rev": rev,
    "slice": slice_,
    "pad": pad,
    "concatenate": concatenate,
    "split": split,
    "conv_general_dilated": conv,
    "reduce_window_sum": reduce_window,
    "reduce_window_max": reduce_window,
    "reduce_window_min": reduce_window,
    "reduce_sum": reduce,
    "reduce_max": reduce,
    "reduce_min": reduce,
    "dot_general": dot_general,
    "jit": call,
    "pjit": call,
    "closed_call": call,
    "core_call": call,
    "custom_jvp_call": call,
    "custom_vjp_call": call,
    "custom_vjp_call_jaxpr": call,
    "remat2": call,
    "checkpoint": call,
}
