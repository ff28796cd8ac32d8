"""A one-output (binary) model as two classes whose argmax is its thresholded decision.

A binary model returns one column per image: a probability p (outputs="probs", e.g. a
sigmoid) or a logit z (outputs="logits", p = sigmoid(z)). With threshold t in (0, 1) it
decides class 1 (positive) when p >= t, else class 0. Every method and metric decides "is
this image classified as the target" by the argmax of the classifier's probabilities, so the
two classes are presented with the threshold folded in:

    margin  d = logit(p) - logit(t)            (= z - logit(t) for a logit)
    logits  [0, d]                  f32[B, 2]
    probs   [sigmoid(-d), sigmoid(d)]          f32[B, 2]

i.e. class 1's odds are p's odds divided by t's odds: its probability is >= 1/2 exactly when
p >= t, and the argmax is the decision. At t = 0.5 the probabilities are [1 - p, p] (up to
float rounding); for another t they are the decision's margin, not p (p = 0.9 at t = 0.8
presents 0.69). The decision is taken on the model's own output: p >= t (t rounded to
float32) for probabilities, z >= logit(t) for logits; within MARGIN of the threshold the
margin is moved to +-MARGIN on the decided side, so float rounding (and p == t exactly, a
tie for the argmax) never flips it; it is clipped to +-LIMIT, so p = 0 or 1 keeps finite
logits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MARGIN = 1e-6  # sigmoid(+-MARGIN) are distinct float32 values on either side of 1/2
LIMIT = 1e4  # |d| at most: p = 0 or 1 has an infinite logit; sigmoid(+-LIMIT) is already 1 / 0 in float32


def check_threshold(t) -> float:
    """t as a float in the open interval (0, 1) (ValueError naming binary_threshold)."""
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not 0 < t < 1:
        raise ValueError(f"binary_threshold must be a number in (0, 1), got {t!r}")
    return float(t)


def margin(out: jax.Array, outputs: str, t: float) -> jax.Array:
    """The model's one column out f32[B, 1] -> the decision margin d f32[B] (module doc)."""
    if out.ndim != 2 or out.shape[1] != 1:
        raise ValueError(f"binary_threshold needs a model with one output column [B, 1], got shape {out.shape}")
    logit_t = np.float32(np.log(t) - np.log1p(-t))
    if outputs == "probs":
        p = out[:, 0]
        d = jnp.log(p) - jnp.log1p(-p) - logit_t
        positive = p >= np.float32(t)
    else:
        d = out[:, 0] - logit_t
        positive = d >= 0
    d = jnp.clip(d, -LIMIT, LIMIT)
    return jnp.where(positive, jnp.maximum(d, MARGIN), jnp.minimum(d, -MARGIN))


def logits(out: jax.Array, outputs: str, t: float) -> jax.Array:
    """out f32[B, 1] -> the two classes' logits [0, d] f32[B, 2]."""
    d = margin(out, outputs, t)
    return jnp.stack([jnp.zeros_like(d), d], -1)


def probs(out: jax.Array, outputs: str, t: float) -> jax.Array:
    """out f32[B, 1] -> the two classes' probabilities [sigmoid(-d), sigmoid(d)] f32[B, 2]."""
    d = margin(out, outputs, t)
    return jnp.stack([jax.nn.sigmoid(-d), jax.nn.sigmoid(d)], -1)
