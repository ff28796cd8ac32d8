"""ConvAD rules for linear maps: convolutions (Alg. 1 lines 4-7), named conv-like jit
functions (depthwise_conv) and `dot_general` (Dense, patch embeddings, linear resampling)
(rule signature: `ad/mask.py`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rexjax.ad.mask import Mask, concrete, deactivate, full_count, mask_axes, threshold, unsupported, valid_or_ones
from rexjax.jaxpr import bind


def conv(ctx, eqn, vals, masks):
    """`conv_general_dilated` (Alg. 1 lines 4-7; grouped/depthwise included).

    Checkpoint before the conv; new mask `1(Phi > tau)` with `Phi` = (conv of M with a
    kernel of ones, same window/stride/padding/dilation) / (the same conv of the validity
    map): the paper's mean kernel `J/(m n)` with padding not counted (Definition 4).
    A 1x1 unpadded conv is pointwise: no checkpoint, and at stride 1 the same mask.
    An input whose feature axis carries positions too (`Mask.mixed`: space-to-depth by
    reshape) goes to `_conv_over_features`.
    """
    x, w = vals
    mask, wmask = masks
    if wmask is not None or mask is None:
        raise unsupported(eqn, "masked kernel")
    p = eqn.params
    dn = p["dimension_numbers"]
    lhs_f, lhs_sp = dn.lhs_spec[1], tuple(dn.lhs_spec[2:])
    if p["batch_group_count"] != 1:
        raise unsupported(eqn, "batch_group_count > 1")
    if set(mask.spatial) == set(lhs_sp) | {lhs_f} and lhs_f not in lhs_sp:
        return _conv_over_features(ctx, eqn, vals, mask)
    if set(mask.spatial) != set(lhs_sp) or mask.m.shape[lhs_f] != 1:
        raise unsupported(eqn, "mask axes do not match the convolution's spatial axes")
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
    count_of = _mask_counter(p, np.ones(kshape, np.float32))

    # spatial axes in mask.spatial order, with their kernel/output axes
    order = [lhs_sp.index(a) for a in mask.spatial]
    full = full_count(
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
    return [y], [Mask(threshold(ctx, count, full), spatial, None, _out_mixed(mask, dn))]


def _mask_counter(p, ones_k: np.ndarray):
    """`m -> conv(m, ones_k)` with the conv's own strides, padding and dilations (params `p`):
    the number of visible inputs in each output's receptive field."""

    def count_of(m):
        return lax.conv_general_dilated(
            m,
            ones_k,
            window_strides=p["window_strides"],
            padding=p["padding"],
            lhs_dilation=p["lhs_dilation"],
            rhs_dilation=p["rhs_dilation"],
            dimension_numbers=p["dimension_numbers"],
            precision=lax.Precision.HIGHEST,
        )

    return count_of


def _out_mixed(mask, dn) -> tuple:
    """Output spatial axes of a conv whose input spatial axis is `mixed` stay mixed."""
    pairs = zip(dn.lhs_spec[2:], dn.out_spec[2:])
    return tuple(sorted(o for i, o in pairs if i in mask.mixed))


def _conv_over_features(ctx, eqn, vals, mask):
    """A conv whose feature axis carries positions too (space-to-depth, patches merged
    into channels by a reshape: the feature axis is `mixed`). Definition 4 over input
    features: `Phi` = visible (position, channel) inputs in the receptive field / real
    ones, counted by the same conv of the mask with a kernel of ones over every input
    feature. Grouped convs would need a mask per output channel: not supported."""
    x, w = vals
    p = eqn.params
    dn = p["dimension_numbers"]
    if p["feature_group_count"] != 1:
        raise unsupported(
            eqn, "grouped conv over a feature axis that carries positions (space-to-depth into a depthwise conv)"
        )
    y = bind(eqn, [deactivate(x, mask), w])[0]
    kshape = list(w.shape)
    kshape[dn.rhs_spec[0]] = 1
    count_of = _mask_counter(p, np.ones(kshape, np.float32))

    base = valid_or_ones(mask)
    full = concrete(lambda: count_of(jnp.asarray(base)))
    count = count_of(mask.m)
    spatial = tuple(sorted(dn.out_spec[2:]))
    return [y], [Mask(threshold(ctx, count, full), spatial, None, _out_mixed(mask, dn))]


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
    axes = mask_axes(mask)

    def count_of(m):
        c = bind(eqn, [jnp.broadcast_to(m, x.shape).astype(x.dtype), ones_w])[0]
        idx = tuple(slice(None) if a in axes else slice(0, 1) for a in range(c.ndim))
        return c[idx].astype(jnp.float32)

    base = valid_or_ones(mask)
    with jax.ensure_compile_time_eval():
        full = np.asarray(count_of(jnp.asarray(base)))
    full = full[tuple(slice(0, 1) if a not in mask.spatial else slice(None) for a in range(full.ndim))]
    return [y], [Mask(threshold(ctx, count_of(mask.m), full), mask.spatial, None, mask.mixed)]


def dot_general(ctx, eqn, vals, masks):
    """Dense layers and other linear maps with one masked operand.

    No masked axis contracted (a Dense over channels of [B,H,W,C]): a 1x1 conv, pointwise,
    the mask moves to the output layout. Otherwise a DA op: checkpoint first, then

    * contraction over features too (any channel or `mixed` axis: flatten-then-Dense, the
      Dense of a patchify): the output's remaining position axes get `1(Phi > tau)` with
      `Phi` = visible fraction of the contracted positions (a patch embedding by reshape
      equals a conv with kernel = stride = patch); with no position axis left the result
      is clean (the paper's flatten + Dense; no tau on a decision without position);
    * contraction over position axes only (a linear resampling such as bilinear
      `jax.image.resize`, token mixing): the other operand's free axes are positions, and
      each output position's receptive field is where the weights are non-zero: `Phi` =
      visible / real inputs with a non-zero weight. No position axis left: clean.
    """
    if all(mk is not None for mk in masks):
        raise unsupported(eqn, "both operands masked (e.g. attention scores between masked positions)")
    side = 0 if masks[0] is not None else 1
    mask, x = masks[side], vals[side]
    other = vals[1 - side]
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    cs, bs = (lc, lb) if side == 0 else (rc, rb)
    co, bo = (rc, rb) if side == 0 else (lc, lb)
    cs, bs = list(cs), list(bs)
    axes = mask_axes(mask)
    if set(cs) & axes:
        return _contract_positions(ctx, eqn, vals, mask, side, cs, bs, list(co), list(bo), axes)
    free = [a for a in range(x.ndim) if a not in cs and a not in bs]
    n_other_free = other.ndim - len(lc if side == 1 else rc) - len(bs)
    order = bs + free
    m = jnp.transpose(mask.m, order + cs).reshape([mask.m.shape[a] for a in order])
    pos = {a: k for k, a in enumerate(order)}
    nb = len(bs)

    def out_axis(a):
        k = pos[a]
        return k if side == 0 or k < nb else k + n_other_free

    if side == 0:
        m = m.reshape(m.shape + (1,) * n_other_free)
    else:
        m = m.reshape(m.shape[:nb] + (1,) * n_other_free + m.shape[nb:])
    spatial = tuple(sorted(out_axis(a) for a in mask.spatial))
    mixed = tuple(sorted(out_axis(a) for a in mask.mixed))
    valid = None
    if mask.valid is not None:
        v = np.transpose(mask.valid, order + cs).reshape([mask.valid.shape[a] for a in order])
        if side == 0:
            v = v.reshape(v.shape + (1,) * n_other_free)
        else:
            v = v.reshape(v.shape[:nb] + (1,) * n_other_free + v.shape[nb:])
        valid = v
    return bind(eqn, vals), [Mask(m, spatial, valid, mixed)]


def _contract_positions(ctx, eqn, vals, mask, side, cs, bs, co, bo, axes):
    """`dot_general` contracting masked axes (see `dot_general`)."""
    x, other = vals[side], vals[1 - side]
    if set(cs) & (axes - set(mask.spatial)) or set(bs) & set(mask.spatial):
        raise unsupported(eqn, "contraction or batching over the batch axis of a masked activation")
    vals = list(vals)
    vals[side] = deactivate(x, mask)
    y = bind(eqn, vals)[0]
    features = any(a not in mask.spatial or a in mask.mixed for a in cs)
    left = [a for a in mask.spatial if a not in cs]
    if features and not left:
        return [y], [None]
    # count = the same contraction of the mask (materialised on the contracted and batch
    # axes) with `weights`: ones (features) or the weights' non-zero pattern (positions)
    mfull = [x.shape[a] if (a in cs or a in bs) else mask.m.shape[a] for a in range(x.ndim)]
    ofree = [a for a in range(other.ndim) if a not in co and a not in bo]
    if features:
        weights = np.ones([1 if a in ofree else other.shape[a] for a in range(other.ndim)], np.float32)
    else:
        weights = (other != 0).astype(jnp.float32)

    def count_of(m):
        operands = [jnp.broadcast_to(m, mfull), weights]
        if side == 1:
            operands.reverse()
        return lax.dot_general(
            *operands, eqn.params["dimension_numbers"], precision=lax.Precision.HIGHEST,
            preferred_element_type=jnp.float32,
        )

    base = valid_or_ones(mask)  # numpy: a jnp array made under a jit trace is a tracer
    if isinstance(weights, np.ndarray):
        full = concrete(lambda: count_of(jnp.asarray(base)))
    else:
        full = count_of(jnp.asarray(base))
    count = count_of(mask.m)
    # output layout: batch, lhs free, rhs free
    xfree = [a for a in range(x.ndim) if a not in cs and a not in bs]
    nb = len(bs)
    if side == 0:
        xpos = {a: nb + k for k, a in enumerate(xfree)}
        opos = {a: nb + len(xfree) + k for k, a in enumerate(ofree)}
    else:
        opos = {a: nb + k for k, a in enumerate(ofree)}
        xpos = {a: nb + len(ofree) + k for k, a in enumerate(xfree)}
    spatial = {xpos[a] for a in left}
    mixed = {xpos[a] for a in left if a in mask.mixed}
    if not features:
        spatial |= set(opos.values())
    if not spatial:
        return [y], [None]
    return [y], [Mask(threshold(ctx, count, full), tuple(sorted(spatial)), None, tuple(sorted(mixed)))]
