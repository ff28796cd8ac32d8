"""ConvAD rules for linear maps: convolutions (Alg. 1 lines 4-7), named conv-like jit
functions (depthwise_conv) and `dot_general` (Dense) (rule signature: `ad/mask.py`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from rexjax.ad.mask import Mask, deactivate, full_count, mask_axes, threshold, unsupported, valid_or_ones
from rexjax.jaxpr import bind


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
    return [y], [Mask(threshold(ctx, count, full), spatial, None)]


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
    return [y], [Mask(threshold(ctx, count_of(mask.m), full), mask.spatial, None)]


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
    axes = mask_axes(mask)
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
