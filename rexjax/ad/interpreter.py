"""ConvAD forward pass (Activation-Deactivation, Alg. 1) on the generic jaxpr walker.

`convad(apply_fn, tau=...)` traces `apply_fn(variables, x)` to a jaxpr once per input shape
and walks it with `rexjax.jaxpr.eval_jaxpr`. Every env entry is a pair `(value, mask)`:
`mask` is either None (no spatial extent, or an unmasked constant / parameter) or a `Mask`,
the binary map `M'_i` of Definition 5 at that value's resolution. This module owns the rule
table `PRIMITIVE_RULES` (primitive name -> rule from `rules_*.py`); the override handed to
the walker (`_step`) binds equations without masked inputs as they are, hands masked ones to
their rule, and lets the walker descend into call-like equations (jit, custom_jvp, ...).
Equations whose outputs have no elements (the zero-width pieces `jnp.pad` builds) carry no
mask. With `poison=True` (a testing aid) every masked output is overwritten with NaN at
its masked positions (`mask.poison`), and the input is poisoned instead of zeroed.

Checkpoints (`mask.deactivate`, Eq. 1) happen in position-mixing rules (convolutions,
pooling, reductions, combinations of differently masked values); shape-preserving
pointwise ops (activations, BN, SE gating) pass the mask through untouched, which is why
deactivating at the next checkpoint is equivalent to the paper's checkpoint "immediately
after the last operation prior to the convolutional layer" (invariant: `ad/mask.py`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from rexjax import jaxpr as jaxpr_walker
from rexjax.ad import rules_attention, rules_conv, rules_elementwise, rules_reduce, rules_shape
from rexjax.ad.mask import POOL_MODES, Mask, Options, deactivate, unsupported
from rexjax.ad.mask import poison as poison_masked

PRIMITIVE_RULES: dict = {
    **{name: rules_elementwise.elementwise for name in rules_elementwise.PRIMITIVES},
    "optimization_barrier": rules_elementwise.passthrough_each,
    "broadcast_in_dim": rules_shape.broadcast_in_dim,
    "reshape": rules_shape.reshape,
    "transpose": rules_shape.transpose,
    "squeeze": rules_shape.squeeze,
    "rev": rules_shape.rev,
    "slice": rules_shape.slice_,
    "pad": rules_shape.pad,
    "concatenate": rules_shape.concatenate,
    "split": rules_shape.split,
    "gather": rules_shape.gather,
    "conv_general_dilated": rules_conv.conv,
    "dot_general": rules_conv.dot_general,
    "reduce_window_sum": rules_reduce.reduce_window,
    "reduce_window_max": rules_reduce.reduce_window,
    "reduce_window_min": rules_reduce.reduce_window,
    "reduce_sum": rules_reduce.reduce,
    "reduce_max": rules_reduce.reduce,
    "reduce_min": rules_reduce.reduce,
}
"""Primitive name -> ConvAD rule `(ctx, eqn, vals, masks) -> (outvals, outmasks)`.

Call-like primitives (`rexjax.jaxpr.CALL_PRIMITIVES`) have no entry: the walker evaluates
their bodies with the same rules, except named conv-like jit functions (`Options.conv_like`),
which take `rules_conv.conv_like`, and the named attention function (`rules_attention`)."""


def _lift(value):
    """Constants and literals carry no mask."""
    return value, None


def _step(ctx: Options) -> Callable:
    """The walker override: `(eqn, [(value, mask), ...]) -> [(value, mask), ...] | None`."""

    def step(eqn, entries):
        vals = [v for v, _ in entries]
        masks = [mk for _, mk in entries]
        if all(mk is None for mk in masks) or all(_empty(v) for v in eqn.outvars):
            # unmasked inputs, or outputs without elements (jnp.pad's zero-width pieces)
            return [(o, None) for o in jaxpr_walker.bind(eqn, vals)]
        name = eqn.primitive.name
        if name in ("jit", "pjit") and eqn.params.get("name") in ctx.conv_like:
            rule = rules_conv.conv_like
        elif name in ("jit", "pjit") and eqn.params.get("name") in rules_attention.ATTENTION_FUNCTIONS:
            rule = rules_attention.attention
        elif jaxpr_walker.sub_jaxpr(eqn) is not None:
            return None  # the walker descends into the body
        else:
            rule = PRIMITIVE_RULES.get(name)
            if rule is None:
                raise unsupported(eqn)
        outvals, outmasks = rule(ctx, eqn, vals, masks)
        if ctx.poison:
            outvals = [poison_masked(v, mk) for v, mk in zip(outvals, outmasks)]
        return list(zip(outvals, outmasks))

    return step


def _empty(var) -> bool:
    shape = getattr(var.aval, "shape", None)
    return shape is not None and 0 in shape


def convad(
    apply_fn: Callable,
    *,
    tau: float = 0.0,
    pool: str = "deactivate",
    conv_like: Sequence[str] = ("depthwise_conv",),
    poison: bool = False,
) -> Callable:
    """ConvAD (Alg. 1): `f(variables, x[B,*S,C], mask[B,*S]) -> apply_fn(variables, x)`.

    `S` is the input's 1, 2 or 3 position axes (a signal `[N]`, an image `[H,W]`, a volume
    `[D,H,W]`); `mask` is 1 (or any value > 0) where an element is visible, 0 where it is
    masked; masked elements never influence the output. The rules read the position axes
    from each equation (convolution dimension numbers, window shapes), so 1-D and 3-D
    convolutions and pooling take the same rules as 2-D ones. With an all-ones mask the output equals
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
      poison: testing aid, the leak check (`Options.poison`): the input is not zeroed and
        every masked intermediate holds NaN at its masked positions. With correct rules the
        output is finite and bitwise the normal one (compare eager runs: two jitted
        programs can differ in the last ulp through fusion alone).
    """
    if not (0.0 <= float(tau) < 1.0):
        raise ValueError(f"tau must be in [0, 1), got {tau!r}")
    if pool not in POOL_MODES:
        raise ValueError(f"pool must be one of {POOL_MODES}, got {pool!r}")
    if isinstance(conv_like, str):
        raise ValueError("conv_like must be a sequence of function names, not a string")
    ctx = Options(tau=float(tau), pool=pool, conv_like=tuple(conv_like), poison=bool(poison))
    step = _step(ctx)

    def forward(variables, x: jax.Array, mask: jax.Array):
        if x.ndim not in (3, 4, 5):
            raise ValueError(f"x must be [B, *S, C] with 1-3 position axes S, got shape {x.shape}")
        if mask.shape != x.shape[:-1]:
            raise ValueError(f"mask must be [B, *S] = {x.shape[:-1]}, got shape {mask.shape}")
        closed, out_shape = jax.make_jaxpr(apply_fn, return_shape=True)(variables, x)
        leaves = jax.tree_util.tree_leaves(variables)
        m = (mask > 0).astype(jnp.float32)[..., None]
        in_mask = Mask(m=m, spatial=tuple(range(1, x.ndim - 1)))
        # Alg. 1: the input is multiplied by M
        x_in = poison_masked(x, in_mask) if ctx.poison else deactivate(x, in_mask)
        args = [(leaf, None) for leaf in leaves] + [(x_in, in_mask)]
        if len(args) != len(closed.jaxpr.invars):
            raise ValueError("apply_fn must take exactly (variables, x)")
        outs = jaxpr_walker.eval_jaxpr(closed.jaxpr, closed.consts, args, step, lift=_lift)
        outs = [deactivate(o, mk) for o, mk in outs]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return forward
