"""Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019): the smooth mask of a fixed
area that keeps the target class most, found by gradient ascent (optax).

The mask m = upsample(sigmoid(theta)) f32[H, W] in [0, 1] (1 = visible) comes from
parameters theta f32[ceil(H / stride), ceil(W / stride)], bilinearly upsampled (the paper's
smooth, low-resolution masks). The "preservation game"
maximises

    Phi(m) = f_t(x (.) m + v (.) (1 - m)) - lambda_area * ||vecsort(m) - r_a||^2 / (H W)   (Eqs. 5, 7)

with f_t the target probability through `classifier.masked(mask_mode)` (v the mask_mode fill;
the paper's is a blur, "blur:10" here) and r_a the sorted reference vector with a fraction
`area` of ones: the area constraint of Eq. 5 as a rank-based penalty, so the mask has
(about) `area` H W visible pixels. theta starts at 0 (m = 0.5) and is optimised with
optax.adam(learning_rate) for `n_steps` steps in one jitted `lax.scan`.

The map is m; the record (`ExtremalRecord`) holds the binary mask of the a H W pixels with
the largest m (the paper's extremal region), its area and the target probability with only
those pixels visible. Deviations from TorchRay's reference implementation: a sigmoid
parametrisation instead of clamping, a fixed lambda_area instead of its ramp, and bilinear
upsampling instead of the smooth-max kernel. `mask_mode="ad"` is refused: the
optimisation needs soft masks, which ConvAD binarises.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rexjax import checks
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.types import Attribution


class ExtremalRecord(NamedTuple):
    """mask bool[H, W]: the `area` H W pixels of largest m; area: its pixel fraction;
    confidence: the target probability with only `mask` visible; loss f32[n_steps]: -Phi."""

    mask: np.ndarray
    area: float
    confidence: float
    loss: np.ndarray


def smooth_mask(theta: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """theta f32[h, w] -> m f32[H, W] in [0, 1]: sigmoid, then bilinear upsampling."""
    return jnp.clip(jax.image.resize(jax.nn.sigmoid(theta), hw, "bilinear"), 0.0, 1.0)


def area_penalty(m: jax.Array, area: float) -> jax.Array:
    """||vecsort(m) - r_a||^2 / N with r_a = [0] * (N - k) + [1] * k, k = round(area N)."""
    n = m.size
    k = int(round(area * n))
    reference = jnp.concatenate([jnp.zeros(n - k), jnp.ones(k)])
    return jnp.mean((jnp.sort(m.ravel()) - reference) ** 2)


def top_pixels(m: jax.Array, area: float) -> jax.Array:
    """bool[H, W]: the round(area H W) pixels of largest m (ties by index, stable)."""
    k = max(int(round(area * m.size)), 1)
    order = jnp.argsort(-m.ravel(), stable=True)
    return jnp.zeros(m.size, bool).at[order[:k]].set(True).reshape(m.shape)


def extremal(
    area: float = 0.1,
    n_steps: int = 300,
    learning_rate: float = 0.1,
    stride: int = 8,
    lambda_area: float = 10.0,
    mask_mode: MaskMode = "blur:10",
):
    """Extremal perturbation factory (defaults: the paper's area 0.1 of its {0.025, 0.05,
    0.1, 0.2} set, TorchRay's 8-pixel mask resolution; steps and rate sized for CPU).

    Returns `fn(classifier, x[H,W,C], target, *, key) -> Attribution(m, n_steps + 1, record)`:
    one forward and backward pass per step plus the final check of the binary mask. The
    key is unused (the optimisation is deterministic)."""
    if isinstance(area, bool) or not isinstance(area, (int, float)) or not 0.0 < float(area) < 1.0:
        raise ValueError(f"area must be in (0, 1), got {area!r}")
    checks.positive_int(n_steps=n_steps, stride=stride)
    for name, v in (("learning_rate", learning_rate), ("lambda_area", lambda_area)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    mask_mode = parse_mask_mode(mask_mode)
    if mask_mode == "ad":
        raise ValueError("mask_mode 'ad' is not supported by extremal: it optimises soft masks, which ConvAD binarises")
    area, learning_rate, lambda_area = float(area), float(learning_rate), float(lambda_area)
    optimiser = optax.adam(learning_rate)

    @functools.partial(jax.jit, static_argnums=1)
    def optimise(x, classify, target):
        hw = x.shape[:2]
        theta0 = jnp.zeros((math.ceil(hw[0] / stride), math.ceil(hw[1] / stride)), jnp.float32)

        def loss_fn(theta):
            m = smooth_mask(theta, hw)
            return -classify(x, m[None])[0, target] + lambda_area * area_penalty(m, area)

        def step(carry, _):
            theta, state = carry
            loss, grad = jax.value_and_grad(loss_fn)(theta)
            updates, state = optimiser.update(grad, state)
            return (optax.apply_updates(theta, updates), state), loss

        (theta, _), losses = jax.lax.scan(step, (theta0, optimiser.init(theta0)), None, length=n_steps)
        m = smooth_mask(theta, hw)
        region = top_pixels(m, area)
        confidence = classify(x, region[None].astype(jnp.float32))[0, target]
        return m, region, confidence, losses

    def explain(classifier, x, target, *, key) -> Attribution:
        del key
        classifier.require_gradients("extremal")
        x, t = classifier.check(x, target)
        m, region, confidence, losses = optimise(x, classifier.masked(mask_mode), t)
        region = np.asarray(region)
        record = ExtremalRecord(region, float(region.mean()), float(confidence), np.asarray(losses))
        return Attribution(m, n_steps + 1, record)

    return explain
