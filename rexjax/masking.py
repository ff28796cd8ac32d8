"""The masked classifier: what does the model say when only the pixels in `m` are visible?

    MaskedClassifier: (x: f32[*S, C], masks: f32|bool[B, *S]) -> f32[B, K] probabilities

S is the spatial shape: [H, W] for images, [N] for 1-D signals, [D, H, W] for volumes. A mask
value of 1/True means *visible*. The occlusion concept has one name, `mask_mode`:

* a number, or "zero" / "min" / "max" / "mean" (the input's per-channel statistic over S), or
  "blur" / "blur:SIGMA" (a Gaussian-blurred copy, separable over S): `painted(probs_fn,
  mask_mode)` shows `x*m + v*(1-m)` in the model's input space;
* "spectral" (1-D signals only, the tool's spectral mask value): `v` depends on the mask,
  each run of hidden elements linearly interpolated between the nearest visible elements on
  either side (`spectral_fill`);
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

NAMED_VALUES = ("zero", "min", "max", "mean", "blur", "spectral")


def gaussian_blur(x: jax.Array, sigma: float) -> jax.Array:
    """Separable Gaussian blur of `x[*S, C]` over its spatial axes, one after the other (edge
    padding), kernel radius ceil(3 sigma)."""
    radius = max(1, int(3.0 * sigma + 0.999))
    t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    for axis in range(x.ndim - 1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        xp = jnp.pad(x, pad, mode="edge")
        n = x.shape[axis]
        x = sum(k[i] * jax.lax.slice_in_dim(xp, i, i + n, axis=axis) for i in range(2 * radius + 1))
    return x


def spectral_fill(x: jax.Array, visible: jax.Array) -> jax.Array:
    """The "spectral" substrate of a signal `x[N, C]` under one mask `visible bool[N]` -> f32[N, C].

    Each run of hidden elements is filled by linear interpolation between the nearest visible
    elements on either side, per channel: at i between visible l < i < r, x[l] + (x[r] - x[l])
    (i - l) / (r - l); a run at an edge takes its one visible neighbour's value; with nothing
    visible, 0. Visible elements keep their value. Static shapes: l and r are cumulative
    max / min of the visible indices. Deviations from the tool (`mutants/occlusions.py`), which
    interpolates between the run's own first and last (hidden) values, leaves the run's last
    element as it was, adds Gaussian noise (sigma 0.02), handles channel 0 only and stops at the
    first run of length <= 1: here no hidden value shows, no noise, every channel, every run.
    """
    n = x.shape[0]
    i = jnp.arange(n)
    left = jax.lax.cummax(jnp.where(visible, i, -1))
    right = jax.lax.cummin(jnp.where(visible, i, n), reverse=True)
    has_l, has_r = left >= 0, right < n
    xl, xr = x[jnp.maximum(left, 0)], x[jnp.minimum(right, n - 1)]
    t = ((i - left) / jnp.maximum(right - left, 1)).astype(x.dtype)[:, None]
    both = xl + (xr - xl) * t
    fill = jnp.where(has_r[:, None], jnp.where(has_l[:, None], both, xr), jnp.where(has_l[:, None], xl, 0.0))
    return jnp.where(visible[:, None], x, fill.astype(x.dtype))


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
    """The substrate shown at masked elements, broadcastable to `x[*S, C]` (not "spectral",
    whose substrate depends on the mask: `spectral_fill`)."""
    value = parse_mask_mode(mask_mode)
    one = (1,) * (x.ndim - 1) + (x.shape[-1],)
    spatial = tuple(range(x.ndim - 1))
    if isinstance(value, float):
        return jnp.full(one, value, x.dtype)
    if value == "zero":
        return jnp.zeros(one, x.dtype)
    if value == "min":
        return x.min(axis=spatial, keepdims=True)
    if value == "max":
        return x.max(axis=spatial, keepdims=True)
    if value == "mean":
        return x.mean(axis=spatial, keepdims=True)
    if value == "ad":
        raise ValueError("mask_mode 'ad' has no fill image; use Classifier.masked('ad')")
    if value == "spectral":
        raise ValueError("mask_mode 'spectral' depends on the mask; use spectral_fill(x, visible)")
    sigma = 10.0 if value == "blur" else float(value[5:])
    return gaussian_blur(x, sigma)


def apply_masks(x: jax.Array, masks: jax.Array, fill: jax.Array) -> jax.Array:
    """`x[*S,C]`, `masks[B,*S]` (1 = visible), `fill` (broadcastable to `x`, or one per mask
    `[B,*S,C]`) -> mutants `[B,*S,C]`."""
    chex.assert_rank(masks, x.ndim)
    chex.assert_equal_shape_suffix([x[..., 0], masks], x.ndim - 1)
    m = masks.astype(x.dtype)[..., None]
    fill = fill if fill.ndim == x.ndim + 1 else fill[None]
    return x[None] * m + fill * (1 - m)


def spectral_mutants(x: jax.Array, masks: jax.Array) -> jax.Array:
    """`x[N, C]`, `masks[B, N]` -> mutants `[B, N, C]` under mask_mode "spectral": the visible
    elements (m > 0.5, the anchors of `spectral_fill`) blended as `x*m + fill*(1-m)`, so binary
    masks show x or the interpolation and soft ones (RISE) mix the two."""
    if x.ndim != 2:
        raise ValueError(
            f"mask_mode 'spectral' interpolates along 1-D signals x[N, C]; got x of shape {tuple(x.shape)} "
            "(use a number, 'min', 'mean' or 'blur')"
        )
    fill = jax.vmap(lambda m: spectral_fill(x, m > 0.5))(masks)
    return apply_masks(x, masks, fill)


def painted(probs_fn: Callable[[jax.Array], jax.Array], mask_mode: MaskMode = 0.0) -> MaskedClassifier:
    """MaskedClassifier painting masked pixels with `mask_mode` (a value, statistic or blur).

    probs_fn: batched `x[B,*S,C] -> probabilities[B,K]`.
    """
    value = parse_mask_mode(mask_mode)
    if value == "ad":
        raise ValueError("painted() takes a value; mask_mode 'ad' is built by deactivated()")

    def classify(x: jax.Array, masks: jax.Array) -> jax.Array:
        if value == "spectral":
            return probs_fn(spectral_mutants(x, masks))
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
