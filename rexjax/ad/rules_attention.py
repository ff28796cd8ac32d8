"""Activation-Deactivation for vision transformers: the rule for the named attention
function `rexjax.models.layers.attention` (rule signature: `ad/mask.py`).

The token mask comes from the generic rules: the patch-embedding conv (kernel = stride =
patch) gives each patch token `1(Phi > tau)` with `Phi` the fraction of visible pixels in
its window (Definition 4, `rules_conv.conv`); the reshape to [B, N, D] keeps it on the token
axis; the class token (a parameter concatenated in front) is unmasked, so always active;
per-token ops (LayerNorm over channels, Dense/MLP, residual adds) pass the mask through.

In attention a token mixes with all others, so an inactive token must leave as a key and as
a value: its attention logits are -inf before the softmax (`layers.attention_core`'s
`key_keep`) and its keys/values are switched off first (Eq. 1), so not even a NaN there can
reach an active query. Each query row then depends only on its own query and the active
tokens: the output keeps the query's mask (an inactive query row may hold anything, the lazy
invariant of `ad/mask.py`). With every token active the logits are those of the plain model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rexjax.ad.mask import Mask, deactivate, unsupported
from rexjax.jaxpr import bind
from rexjax.models.layers import attention_core

ATTENTION_FUNCTIONS = ("attention",)
"""Names of `jax.jit` functions `f(q, k, v)` with q, k, v f32[B, N, heads, d] that are
`layers.attention` (the interpreter sends their equations to `attention`)."""

_masked_attention = jax.jit(attention_core)


def _token_keep(eqn, mask: Mask, shape) -> jax.Array:
    """bool[B, N] from the mask of a key or value f32[B, N, heads, d] (positions on axis 1)."""
    if mask.spatial != (1,) or mask.mixed or mask.valid is not None or mask.m.shape[2:] != (1, 1):
        raise unsupported(eqn, "attention keys/values must carry a token mask on axis 1 only ([B, N, heads, d])")
    return jnp.broadcast_to(mask.m[:, :, 0, 0] > 0, shape[:2])


def attention(ctx, eqn, vals, masks):
    """`attention(q, k, v)` with masked operands: drop inactive key/value tokens; the output
    carries the query's mask (None when the queries are clean)."""
    if len(vals) != 3:
        raise unsupported(eqn, "attention must be f(q, k, v)")
    (q, k, v), (mq, mk, mv) = vals, masks
    if mk is None and mv is None:
        return bind(eqn, vals), [mq]
    keep = None
    for x, mask in ((k, mk), (v, mv)):
        if mask is not None:
            t = _token_keep(eqn, mask, x.shape)
            keep = t if keep is None else keep & t
    out = _masked_attention(q, deactivate(k, mk), deactivate(v, mv), keep)
    return [out], [mq]
