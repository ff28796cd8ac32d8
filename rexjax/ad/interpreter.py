"""ConvAD forward pass (Activation-Deactivation, Alg. 1) as a jaxpr interpreter.

`convad(apply_fn, tau=...)` traces `apply_fn(variables, x)` to a jaxpr once per input shape
and evaluates it equation by equation. Every value carries, beside it, either `None`
(no spatial extent, or an unmasked constant / parameter) or a `Mask`: the binary map `M'_i`
of Definition 5 at that value's resolution. The per-primitive rules live in `rules.py`.

Invariant kept by every rule ("lazy deactivation"): a masked value may hold anything at
positions where its mask is 0, but its entries at mask-1 positions, and *all* entries of
unmasked values, depend only on visible input pixels. Position-mixing operations
(convolutions, pooling, reductions, combinations of differently masked values) are the
paper's checkpoints: they first switch off (`where(M, z, 0)`, Eq. 1) the masked positions
of their inputs, so masked pixels never reach the logits. Shape-preserving pointwise ops
(activations, BN, SE gating) pass the mask through untouched, which is why deactivating at
the next checkpoint is equivalent to the paper's checkpoint "immediately after the last
operation prior to the convolutional layer".
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

POOL_MODES = ("deactivate", "masked_mean")


class Mask(NamedTuple):
    """The mask `M'_i` travelling beside one activation.

    m: float32 array of 0/1 with the value's rank, size 1 on every axis where the mask does
       not vary (channels), so `m` broadcasts against the value. 1 = active (visible).
    spatial: sorted tuple of the value's spatial axes (the axes convolutions slide over).
    valid: None (every position is a real one) or a static numpy bool array shaped like `m`
       with size 1 on non-spatial axes: False where an explicit `pad` inserted the
       position. Padding is neither visible nor masked: it is never switched off and does
       not count in the position-attribution ratio (Definition 4 counts input features).
    """

    m: jax.Array
    spatial: tuple
    valid: Optional[np.ndarray] = None


@dataclasses.dataclass(frozen=True)
class Options:
    """ConvAD hyperparameters (see `convad`)."""

    tau: float = 0.0
    pool: str = "deactivate"
    conv_like: tuple = ("depthwise_conv",)


class UnsupportedPrimitiveError(NotImplementedError):
    """A primitive without a ConvAD rule touched a masked activation."""


def unsupported(eqn, why: str = "") -> UnsupportedPrimitiveError:
    """The error raised when no rule (or no case of a rule) covers `eqn`."""
    name = eqn.primitive.name
    msg = f"ConvAD has no rule for primitive '{name}' applied to a masked activation"
    if why:
        msg += f" ({why})"
    return UnsupportedPrimitiveError(f"{msg}; equation: {eqn}")


def bind(eqn, invals: Sequence[Any]) -> list:
    """Evaluates `eqn` on plain values, exactly as `jax.core.eval_jaxpr` does."""
    params = eqn.primitive.get_bind_params(eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def eval_jaxpr(
    ctx: Options,
    jaxpr: jcore.Jaxpr,
    consts: Sequence[Any],
    vals: Sequence[Any],
    masks: Sequence[Optional[Mask]],
) -> tuple[list, list]:
    """Evaluates `jaxpr` on (value, mask) pairs; returns the output values and masks."""
    from rexjax.ad.rules import RULES  # rules import this module

    env: dict = {}

    def read(v):
        if isinstance(v, jcore.Literal):
            return v.val, None
        return env[v]

    for var, c in zip(jaxpr.constvars, consts):
        env[var] = (c, None)
    for var, val, mask in zip(jaxpr.invars, vals, masks):
        env[var] = (val, mask)
    for eqn in jaxpr.eqns:
        invals, inmasks = zip(*(read(v) for v in eqn.invars)) if eqn.invars else ((), ())
        if all(mk is None for mk in inmasks):
            outvals, outmasks = bind(eqn, invals), [None] * len(eqn.outvars)
        else:
            rule = RULES.get(eqn.primitive.name)
            if rule is None:
                raise unsupported(eqn)
            outvals, outmasks = rule(ctx, eqn, list(invals), list(inmasks))
        for var, val, mask in zip(eqn.outvars, outvals, outmasks):
            env[var] = (val, mask)
    outs = [read(v) for v in jaxpr.outvars]
    return [o[0] for o in outs], [o[1] for o in outs]


def deactivate(x: jax.Array, mask: Optional[Mask], fill: float = 0.0) -> jax.Array:
    """Checkpoint (Eq. 1): `x` with masked real positions replaced by `fill`."""
    if mask is None:
        return x
    keep = mask.m > 0
    if mask.valid is not None:
        keep = keep | ~mask.valid
    return jnp.where(keep, x, jnp.asarray(fill, x.dtype))


def convad(
    apply_fn: Callable,
    *,
    tau: float = 0.0,
    pool: str = "deactivate",
    conv_like: Sequence[str] = ("depthwise_conv",),
) -> Callable:
    """ConvAD (Alg. 1): `f(variables, x[B,H,W,C], mask[B,H,W]) -> apply_fn(variables, x)`.

    `mask` is 1 (or any value > 0) where a pixel is visible, 0 where it is masked; masked
    pixels never influence the output. With an all-ones mask the output equals
    `apply_fn(variables, x)` (Theorem 1). Works under `jit` and `vmap`; the model's code
    is not changed (it is traced to a jaxpr on every call, i.e. once per shape under jit).

    Args:
      apply_fn: `(variables, x[B,H,W,C]) -> logits` (e.g. a Flax `module.apply`).
      tau: threshold on the position-attribution ratio `Phi` (Definition 4): a unit stays
        active iff the fraction of visible positions among the real (non-padding) inputs
        of its window is > tau. 0 switches off only fully masked windows. In [0, 1).
      pool: global/average pooling over masked positions: "deactivate" (the paper: zero the
        masked positions, then the model's own mean) or "masked_mean" (mean over the
        active positions only).
      conv_like: names of `jax.jit` functions `(x, kernel, ...)` that are convolutions in
        disguise (`rexjax.models.layers.depthwise_conv`); their mask is the same function
        applied to the mask with a kernel of ones.
    """
    if not (0.0 <= float(tau) < 1.0):
        raise ValueError(f"tau must be in [0, 1), got {tau!r}")
    if pool not in POOL_MODES:
        raise ValueError(f"pool must be one of {POOL_MODES}, got {pool!r}")
    if isinstance(conv_like, str):
        raise ValueError("conv_like must be a sequence of function names, not a string")
    ctx = Options(tau=float(tau), pool=pool, conv_like=tuple(conv_like))

    def forward(variables, x: jax.Array, mask: jax.Array):
        if x.ndim != 4:
            raise ValueError(f"x must be [B, H, W, C], got shape {x.shape}")
        if mask.shape != x.shape[:3]:
            raise ValueError(f"mask must be [B, H, W] = {x.shape[:3]}, got shape {mask.shape}")
        closed, out_shape = jax.make_jaxpr(apply_fn, return_shape=True)(variables, x)
        leaves = jax.tree_util.tree_leaves(variables)
        m = (mask > 0).astype(jnp.float32)[..., None]
        in_mask = Mask(m=m, spatial=(1, 2))
        vals = leaves + [deactivate(x, in_mask)]  # Alg. 1: the input is multiplied by M
        masks = [None] * len(leaves) + [in_mask]
        if len(vals) != len(closed.jaxpr.invars):
            raise ValueError("apply_fn must take exactly (variables, x)")
        outs, out_masks = eval_jaxpr(ctx, closed.jaxpr, closed.consts, vals, masks)
        outs = [deactivate(o, mk) for o, mk in zip(outs, out_masks)]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return forward
