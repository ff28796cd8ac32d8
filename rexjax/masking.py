"""The masked classifier: what does the model say when only the pixels in `m` are visible?

    MaskedClassifier: (x: f32[H, W, C], masks: f32|bool[B, H, W]) -> f32[B, K] probabilities

A mask value of 1/True means *visible*. Two families:

* `occlusion(logits_fn, value)`: `x*m + v*(1-m)` in the model's input space, with `v` a
  constant (default 0, as ReX), the image's per-channel min/max/mean, or a Gaussian-blurred
  copy of the image (`"blur"` or `"blur:SIGMA"`).
* `"ad"` (ConvAD, `rexjax.ad.convad`): the mask travels through the network beside the
  activations, so masked pixels never reach the logits.

Methods (ReX, RISE, LIME, metrics, ...) take a MaskedClassifier and never know which one
they got: `masked_classifier(model, mask_mode)` builds it from a model.
"""

from __future__ import annotations

from typing import Callable, Union

import math

import jax
import jax.numpy as jnp

MaskedClassifier = Callable[[jax.Array, jax.Array], jax.Array]
LogitsFn = Callable[[jax.Array], jax.Array]
MaskMode = Union[float, int, str]

NAMED_VALUES = ("zero", "min", "max", "mean", "blur")


def gaussian_blur(x: jax.Array, sigma: float) -> jax.Array:
    """Separable Gaussian blur of `x[H, W, C]` (edge padding), kernel radius ceil(3 sigma)."""
    radius = max(1, int(3.0 * sigma + 0.999))
    t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    xp = jnp.pad(x, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    x = sum(k[i] * xp[i : i + x.shape[0]] for i in range(2 * radius + 1))
    xp = jnp.pad(x, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(k[i] * xp[:, i : i + x.shape[1]] for i in range(2 * radius + 1))


def parse_mask_value(value: MaskMode) -> MaskMode:
    """Validates a mask value: a number, one of NAMED_VALUES, "blur:SIGMA", or "ad"."""
    if isinstance(value, bool):
        raise ValueError(f"mask value must be a number or a name, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"mask value must be finite, got {value!r}")
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        if value in NAMED_VALUES or value == "ad":
            return value
        if value.startswith("blur:"):
            try:
                sigma = float(value[5:])
            except ValueError:
                sigma = -1.0
            if sigma > 0:
                return value
    raise ValueError(
        f"unknown mask value {value!r}: expected a number, one of {NAMED_VALUES}, "
        "'blur:SIGMA' (SIGMA > 0) or 'ad'"
    )


def fill_image(x: jax.Array, value: MaskMode) -> jax.Array:
    """The substrate shown at masked pixels, broadcastable to `x[H, W, C]`."""
    value = parse_mask_value(value)
    if isinstance(value, float):
        return jnp.full((1, 1, x.shape[-1]), value, x.dtype)
    if value == "zero":
        return jnp.zeros((1, 1, x.shape[-1]), x.dtype)
    if value == "min":
        return x.min(axis=(0, 1), keepdims=True)
    if value == "max":
        return x.max(axis=(0, 1), keepdims=True)
    if value == "mean":
        return x.mean(axis=(0, 1), keepdims=True)
    if value == "ad":
        raise ValueError("mask mode 'ad' has no fill image; use masked_classifier(model, 'ad')")
    sigma = 10.0 if value == "blur" else float(value[5:])
    return gaussian_blur(x, sigma)


def apply_masks(x: jax.Array, masks: jax.Array, fill: jax.Array) -> jax.Array:
    """`x[H,W,C]`, `masks[B,H,W]` (1 = visible), `fill` -> mutants `[B,H,W,C]`."""
    m = masks.astype(x.dtype)[..., None]
    return x[None] * m + fill[None] * (1 - m)


def occlusion(logits_fn: LogitsFn, value: MaskMode = 0.0) -> MaskedClassifier:
    """Masked classifier that paints masked pixels with `value` (see module doc)."""
    value = parse_mask_value(value)

    def classify(x: jax.Array, masks: jax.Array) -> jax.Array:
        return jax.nn.softmax(logits_fn(apply_masks(x, masks, fill_image(x, value))), axis=-1)

    return classify


def masked_classifier(model, mask_mode: MaskMode = 0.0, **ad_options) -> MaskedClassifier:
    """Builds the masked classifier for `model` (a batched callable `x[B,H,W,C] -> logits`).

    `mask_mode="ad"` needs a model with `apply_fn(variables, x)` and `variables`
    (every zoo model has them) and uses ConvAD; anything else is an occlusion value.
    """
    mask_mode = parse_mask_value(mask_mode)
    if mask_mode != "ad":
        return occlusion(model, mask_mode)
    if not (hasattr(model, "apply_fn") and hasattr(model, "variables")):
        raise ValueError(
            "mask_mode='ad' needs a Flax model with `apply_fn` and `variables` "
            "(e.g. rexjax.models.load(name)); a plain callable can only be occluded"
        )
    from rexjax.ad import convad  # ConvAD is optional at import time

    ad_logits = convad(model.apply_fn, **ad_options)

    def classify(x: jax.Array, masks: jax.Array) -> jax.Array:
        xb = jnp.broadcast_to(x[None], (masks.shape[0],) + x.shape)
        return jax.nn.softmax(ad_logits(model.variables, xb, masks.astype(x.dtype)), axis=-1)

    return classify
