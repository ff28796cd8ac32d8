"""Gradients of the target score with respect to the input: the core of the gradient
baselines (integrated_gradients, gradient_shap, and noise_tunnel around them).

    score = target_score(classifier, output)     # score(xb f32[B,H,W,C], target) -> f32[B]
    g = input_gradients(score, xb, target)       # d score / d xb, f32[B,H,W,C]

The gradient methods' Attribution carries the per-channel attributions f32[H, W, C], whose
channel sum is the map, as its record (`ChannelAttributions`).

`output="logit"`: the target logit (Captum's convention on an un-softmaxed model; the
log-probability for a Classifier with `outputs="probs"`); `output="prob"`: its probability.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from rexjax import checks

OUTPUTS = ("logit", "prob")


class ChannelAttributions(NamedTuple):
    """The record of IG, GradientSHAP and LRP: `attributions` f32[H, W, C], per input channel
    (the map is their sum over channels)."""

    attributions: jax.Array


def target_score(classifier, output: str = "logit") -> Callable[[jax.Array, int], jax.Array]:
    """`score(xb f32[B,H,W,C], target) -> f32[B]`: the target's logit or probability."""
    checks.one_of("output", output, OUTPUTS)
    scores = classifier.logits if output == "logit" else classifier.probs

    def score(xb: jax.Array, target) -> jax.Array:
        return scores(xb)[:, target]

    return score


def input_gradients(score: Callable, xb: jax.Array, target) -> jax.Array:
    """d score_t / d x for each image of a batch `xb[B,H,W,C]` (images are independent)."""
    return jax.grad(lambda z: score(z, target).sum())(xb)
