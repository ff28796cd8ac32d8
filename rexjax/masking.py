"""The masked classifier: what does the model say when only the pixels in `m` are visible?

    MaskedClassifier: (x: f32[H, W, C], masks: f32|bool[B, H, W]) -> f32[B, K] probabilities

A mask value of 1/True means *visible*. The occlusion concept has one name, `mask_mode`:

* a number, or "zero" / "min" / "max" / "mean" (the image's per-channel statistic), or "blur"
  / "blur:SIGMA" (a Gaussian-blurred copy): `painted(probs_fn, mask_mode)` shows
  `x*m + v*(1-m)` in the model's input space;
* "ad" (ConvAD, `rexjax.ad.convad`): `deactivated(apply_fn, variables, to_probs)` carries the
  mask through the network beside the activations, so masked pixels never reach the logits.

Methods (ReX, RISE, LIME, the metrics, ...) take a MaskedClassifier from
`Classifier.masked(mask_mode)` and never know which one they got.
"""

from __future__ import annotations

import math
from typing import Callable, Union

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.ad import convad
from rexjax.types import MaskedClassifier

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


def parse_mask_mode(value: MaskMode, name: str = "mask_mode") -> MaskMode:
    """Validates a mask mode: a number, one of NAMED_VALUES, "blur:SIGMA", or "ad".

    Numbers (and numeric strings) come back as float, names as given.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number or a name, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return float(value)
    if isinstance(value, str):
        try:
            return parse_mask_mode(float(value), name)
        except ValueError:
            pass
        if value in NAMED_VALUES or value == "ad":
            return value
        if value.startswith("blur:"):
            try:
                sigma = float(value[5:])
            except ValueError:
                sigma = -1.0
            if sigma > 0 and math.isfinite(sigma):
                return value
    raise ValueError(
        f"unknown {name} {value!r}: expected a number, one of {NAMED_VALUES}, 'blur:SIGMA' (SIGMA > 0) or 'ad'"
    )


def fill_image(x: jax.Array, mask_mode: MaskMode) -> jax.Array:
    """The substrate shown at masked pixels, broadcastable to `x[H, W, C]`."""
    value = parse_mask_mode(mask_mode)
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
        raise ValueError("mask_mode 'ad' has no fill image; use Classifier.masked('ad')")
    sigma = 10.0 if value == "blur" else float(value[5:])
    return gaussian_blur(x, sigma)


def apply_masks(x: jax.Array, masks: jax.Array, fill: jax.Array) -> jax.Array:
    """`x[H,W,C]`, `masks[B,H,W]` (1 = visible), `fill` -> mutants `[B,H,W,C]`."""
    chex.assert_rank([x, masks], [3, 3])
    chex.assert_equal_shape_suffix([x[..., 0], masks], 2)
    m = masks.astype(x.dtype)[..., None]
    return x[None] * m + fill[None] * (1 - m)


def painted(probs_fn: Callable[[jax.Array], jax.Array], mask_mode: MaskMode = 0.0) -> MaskedClassifier:
    """MaskedClassifier painting masked pixels with `mask_mode` (a value, statistic or blur).

    probs_fn: batched `x[B,H,W,C] -> probabilities[B,K]`.
    """
    value = parse_mask_mode(mask_mode)
    if value == "ad":
        raise ValueError("painted() takes a value; mask_mode 'ad' is built by deactivated()")

    def classify(x: jax.Array, masks: jax.Array) -> jax.Array:
        return probs_fn(apply_masks(x, masks, fill_image(x, value)))

    return classify


def deactivated(apply_fn: Callable, variables, to_probs: Callable, **ad_options) -> MaskedClassifier:
    """MaskedClassifier with Activation-Deactivation (ConvAD): `apply_fn(variables, x)` is
    traced and re-evaluated with the mask beside every activation; `to_probs` maps its
    outputs to probabilities (softmax for logits, identity for a model that returns them).

    Masks are binary here: a pixel is on or off (ConvAD's indicator `1(M > 0)`), there is no
    "half visible". A soft mask (values strictly between 0 and 1) is refused with a
    ValueError when the call is eager; inside jit the values cannot be inspected and count
    as visible where > 0. Methods that draw soft masks draw binary ones under "ad" (RISE,
    SHAPE: nearest upsampling, `rexjax.saliency.rise.resolve_upsample`).
    """
    ad_outputs = convad(apply_fn, **ad_options)

    def classify(x: jax.Array, masks: jax.Array) -> jax.Array:
        if not isinstance(masks, jax.core.Tracer):
            values = np.asarray(masks, np.float32)
            if not np.isin(values, (0.0, 1.0)).all():
                raise ValueError(
                    "mask_mode='ad' takes binary masks (1 visible, 0 masked); got values strictly "
                    "between 0 and 1, which ConvAD would count as fully visible"
                )
        xb = jnp.broadcast_to(x[None], (masks.shape[0],) + x.shape)
        return to_probs(ad_outputs(variables, xb, masks.astype(x.dtype)))

    return classify
