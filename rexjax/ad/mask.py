"""ConvAD's vocabulary: the `Mask` carried beside an activation, the `Options`, the
checkpoint `deactivate` (Eq. 1), the error for uncovered primitives, and the helpers that
several rule families share (window counts, the `Phi > tau` threshold, combining masks).

Every rule (`rules_*.py`) has the signature

    rule(ctx: Options, eqn, vals: list[Array], masks: list[Mask | None]) -> (outvals, outmasks)

and is called only when at least one input carries a `Mask`. Invariant kept by every rule
("lazy deactivation"): a masked value may hold anything at positions where its mask is 0,
but its entries at mask-1 positions, and *all* entries of unmasked values, depend only on
visible input pixels. Position-mixing operations (convolutions, pooling, reductions,
combinations of differently masked values) are the paper's checkpoints: they first switch
off (`deactivate`, Eq. 1) the masked positions of their inputs.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.jaxpr import bind

POOL_MODES = ("deactivate", "masked_mean")


class Mask(NamedTuple):
    """The mask `M'_i` travelling beside one activation.

    m: float32 array of 0/1 with the value's rank, size 1 on every axis where the mask does
       not vary (channels), so `m` broadcasts against the value; full size on every spatial
       axis. 1 = active (visible).
    spatial: sorted tuple of the value's position axes (the axes convolutions slide over,
       and any axis a reshape made out of them).
    valid: None (every position is a real one) or a static numpy bool array shaped like `m`
       with size 1 on non-spatial axes: False where an explicit `pad` inserted the
       position. Padding is neither visible nor masked: it is never switched off and does
       not count in the position-attribution ratio (Definition 4 counts input features).
    mixed: the spatial axes that also index features: a reshape merged positions with
       channels into them (flatten before a Dense, space-to-depth, patchify). A contraction
       over a mixed axis is a Dense over features (`rules_conv.dot_general`); a conv whose
       feature axis is mixed counts visible (position, channel) inputs.
    reduced: set only by a reduction over some (not all) spatial axes, for the keepdims
       that usually follows it: `((axis, tag), ...)` in the coordinates before the
       reduction, tag "spatial" / "mixed" / "" ; a broadcast or reshape that puts size-1
       axes back exactly there re-tags them (so a `mean(..., keepdims=True)` keeps its
       position axis, and a later concatenation along it concatenates masks).
    rep: axes a `broadcast_in_dim` created (the value is a copy along them): a reshape
       that merges one into a position axis makes positions, not features (`jnp.repeat`
       upsampling, the strips of `jnp.pad(mode="edge")`).
    """

    m: jax.Array
    spatial: tuple
    valid: Optional[np.ndarray] = None
    mixed: tuple = ()
    reduced: tuple = ()
    rep: tuple = ()


@dataclasses.dataclass(frozen=True)
class Options:
    """ConvAD hyperparameters (see `rexjax.ad.convad`).

    poison: testing aid (leak check): the input is not zeroed at entry and every masked
    intermediate value gets NaN at its mask-0 (real) positions, so any rule that lets a
    masked position reach an active one makes the output differ or non-finite.
    """

    tau: float = 0.0
    pool: str = "deactivate"
    conv_like: tuple = ("depthwise_conv",)
    poison: bool = False


class UnsupportedPrimitiveError(NotImplementedError):
    """A primitive without a ConvAD rule touched a masked activation."""


def unsupported(eqn, why: str = "") -> UnsupportedPrimitiveError:
    """The error raised when no rule (or no case of a rule) covers `eqn`."""
    name = eqn.primitive.name
    msg = f"ConvAD has no rule for primitive '{name}' applied to a masked activation"
    if why:
        msg += f" ({why})"
    return UnsupportedPrimitiveError(f"{msg}; equation: {eqn}")


def deactivate(x: jax.Array, mask: Optional[Mask], fill: float = 0.0) -> jax.Array:
    """Checkpoint (Eq. 1): `x` with masked real positions replaced by `fill`."""
    if mask is None:
        return x
    keep = mask.m > 0
    if mask.valid is not None:
        keep = keep | ~mask.valid
    return jnp.where(keep, x, jnp.asarray(fill, x.dtype))


def poison(x: jax.Array, mask: Optional[Mask]) -> jax.Array:
    """`Options.poison`: NaN at the masked real positions of a floating value (others as is)."""
    if mask is None or not jnp.issubdtype(x.dtype, jnp.floating) or x.size == 0:
        return x
    return deactivate(x, mask, float("nan"))


# ------------------------------------------------------------------- shared helpers


def concrete(fn) -> np.ndarray:
    """Evaluates `fn()` at trace time (static shapes only) into a numpy array."""
    with jax.ensure_compile_time_eval():
        return np.asarray(fn())


def mask_axes(mask: Mask) -> set:
    """Axes along which the mask may vary: spatial axes and the batch axis."""
    return set(mask.spatial) | {a for a, s in enumerate(mask.m.shape) if s > 1}


def valid_or_ones(mask: Mask) -> np.ndarray:
    """The static validity map (1 = real position), size 1 off the spatial axes."""
    if mask.valid is not None:
        return mask.valid.astype(np.float32)
    shape = [s if a in mask.spatial else 1 for a, s in enumerate(mask.m.shape)]
    return np.ones(shape, np.float32)


def drop_axes(mask: Mask, drop) -> Mask:
    """The mask with size-1 axes `drop` removed."""
    drop = tuple(sorted(set(drop)))
    keep = [a for a in range(mask.m.ndim) if a not in drop]
    spatial = tuple(keep.index(a) for a in mask.spatial if a not in drop)
    mixed = tuple(keep.index(a) for a in mask.mixed if a not in drop)
    valid = None if mask.valid is None else np.squeeze(mask.valid, drop)
    return Mask(jax.lax.squeeze(mask.m, drop), spatial, valid, mixed)


def insert_axes(mask: Mask, tagged) -> Mask:
    """The mask with size-1 axes inserted at the output positions `tagged = ((axis, tag), ...)`
    (tag "spatial", "mixed" or ""; the inverse of `drop_axes` for a keepdims)."""
    new = sorted(a for a, _ in tagged)
    rank = mask.m.ndim + len(new)
    old = [a for a in range(rank) if a not in new]  # old axis k -> output axis old[k]
    spatial = {old[a] for a in mask.spatial} | {a for a, t in tagged if t}
    mixed = {old[a] for a in mask.mixed} | {a for a, t in tagged if t == "mixed"}
    m = jnp.expand_dims(mask.m, new)
    valid = None if mask.valid is None else np.expand_dims(mask.valid, new)
    return Mask(m, tuple(sorted(spatial)), valid, tuple(sorted(mixed)))


def pending_keepdims(mask: Mask, in_shape, out_shape) -> bool:
    """Whether `in -> out` only puts back, as size-1 axes, the axes `mask.reduced` names."""
    if not mask.reduced:
        return False
    new = sorted(a for a, _ in mask.reduced)
    if len(out_shape) != len(in_shape) + len(new) or any(out_shape[a] != 1 for a in new):
        return False
    return [s for b, s in enumerate(out_shape) if b not in new] == list(in_shape)


def window_count_1d(n, k, stride, pad, lhs_dil=1, rhs_dil=1) -> np.ndarray:
    """Real (non-padding, non-hole) input positions under each window along one axis."""
    lo, hi = pad
    n_dil = (n - 1) * lhs_dil + 1 if n > 0 else 0
    n_out = max(0, (n_dil + lo + hi - ((k - 1) * rhs_dil + 1)) // stride + 1)
    start = np.arange(n_out)[:, None] * stride - lo + np.arange(k)[None, :] * rhs_dil
    real = (start >= 0) & (start < n_dil) & (start % lhs_dil == 0)
    return real.sum(1).astype(np.float32)


def full_count(mask: Mask, ksize, strides, pads, lhs_dil, rhs_dil, out_axes, out_rank, traced) -> np.ndarray:
    """`full` of `threshold`: the window count of an all-real map, in numpy when the
    validity map is separable (no explicit pad), else by running `traced` at trace time.

    ksize/strides/... are per input spatial axis (in `mask.spatial` order); `out_axes`
    are the matching output axes.
    """
    if mask.valid is not None:
        return concrete(lambda: traced(jnp.asarray(valid_or_ones(mask))))
    full = np.ones([1] * out_rank, np.float32)
    for i, (a, b) in enumerate(zip(mask.spatial, out_axes)):
        c = window_count_1d(mask.m.shape[a], ksize[i], strides[i], pads[i], lhs_dil[i], rhs_dil[i])
        shape = [1] * out_rank
        shape[b] = c.shape[0]
        full = full * c.reshape(shape)
    return full


def threshold(ctx: Options, count: jax.Array, full: np.ndarray) -> jax.Array:
    """`M' = 1(Phi > tau)` with `Phi = count / full` (Definition 4, padding not counted).

    A window made only of padding (`full == 0`) stays active: it sees no input at all, and
    switching it off would change the unmasked model (Theorem 1).
    """
    keep = count > ctx.tau * full
    if not isinstance(full, np.ndarray):  # traced (a dot_general with a traced weights matrix)
        keep = keep | (full == 0)
    elif np.any(full == 0):
        keep = keep | (full == 0)
    return keep.astype(jnp.float32)


def _same_valid(eqn, masks) -> Optional[np.ndarray]:
    valids = [mk.valid for mk in masks]
    if all(v is None for v in valids):
        return None
    if any(v is None for v in valids) or not all(
        v.shape == valids[0].shape and np.array_equal(v, valids[0]) for v in valids
    ):
        raise unsupported(eqn, "operands padded differently")
    return valids[0]


def combine(ctx: Options, eqn, masks, vals, additive: bool):
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
    mixed = tuple(sorted(set().union(*(mk.mixed for mk in present))))
    if additive:
        vals = [deactivate(v, mk) for v, mk in zip(vals, masks)]
        total = sum(mk.m for mk in present)
        m = (total > ctx.tau * len(present)).astype(jnp.float32)
    else:
        m = present[0].m
        for mk in present[1:]:
            m = m * mk.m
    return vals, Mask(m, spatial, valid, mixed)


def pointwise(ctx: Options, eqn, vals, masks, additive: bool):
    """A position-wise op: one shared mask passes through (no checkpoint needed until the
    next position-mixing op); different masks are combined by `combine`."""
    present = [mk for mk in masks if mk is not None]
    if all(mk is present[0] for mk in present):
        return bind(eqn, vals), [present[0]]
    vals, mask = combine(ctx, eqn, masks, vals, additive)
    return bind(eqn, vals), [mask]
