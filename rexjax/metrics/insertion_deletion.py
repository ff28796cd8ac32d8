"""Insertion and deletion curves (Petsiuk et al. 2018) and their AUCs, two conventions.

Pixels are ranked by the saliency map, descending, ties broken by descending flat index
(ReX's order, reference section 5.1). Curve point k shows the top `min(k step, H W)`
pixels (insertion) or hides them (deletion); the value is the target-class probability from
the MaskedClassifier (hidden pixels show its substrate).

* `REX` (rex-xai `--analyse`, ReX paper Table 1): zero substrate for both curves, step 100,
  points k = 1..ceil(N/step) (no 0-pixel point), AUC = SciPy `simpson(curve, dx=step)`
  divided by `full-image confidence * floor(N/step) * step` (may exceed 1).
* `RISE` (eclique/RISE `CausalMetric`): insertion over a Gaussian-blurred copy (sigma 5;
  rexjax's `gaussian_blur` truncates at 3 sigma where RISE uses an 11-tap kernel), deletion
  over zeros, step 224, points k = 0..ceil(N/step), AUC = trapezoid on [0, 1]
  `(sum - y0/2 - yn/2) / (n - 1)`, not normalised.

The convention used is recorded in the result.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate

from rexjax.causal.extract import pixel_rank
from rexjax.masking import masked_classifier, occlusion
from rexjax.saliency._common import (
    check_image,
    check_positive,
    check_target,
    chunk_map,
    flatten_chunks,
    num_classes_masked,
)


class Convention(NamedTuple):
    """How curves are built and integrated (stored with every result)."""

    name: str
    step: int
    insertion_substrate: str  # mask value given to `masking`, or "mask_mode" (caller's)
    deletion_substrate: str
    include_start: bool  # a 0-pixel point at the start of the curves
    auc_rule: str  # "simpson" (dx = step) or "trapezoid" (x in [0, 1])
    normalise: bool  # divide by full-image confidence * floor(N/step) * step


REX = Convention("rex", 100, "mask_mode", "mask_mode", False, "simpson", True)
RISE = Convention("rise", 224, "blur:5", "0", True, "trapezoid", False)
CONVENTIONS = {"rex": REX, "rise": RISE}


class InsertionDeletion(NamedTuple):
    insertion: np.ndarray  # f32[n] target probability per point (not normalised)
    deletion: np.ndarray
    pixels: np.ndarray  # i32[n] pixels inserted / deleted at each point
    insertion_auc: float
    deletion_auc: float
    full_confidence: float
    forward_images: int
    convention: Convention


def curve_counts(n_pixels: int, step: int, include_start: bool) -> np.ndarray:
    k = np.arange(0 if include_start else 1, -(-n_pixels // step) + 1)
    return np.minimum(k * step, n_pixels).astype(np.int32)


def auc(curve: np.ndarray, convention: Convention, n_pixels: int, full_confidence: float) -> float:
    """Area under one curve with the convention's rule and normalisation."""
    curve = np.asarray(curve, np.float64)
    if convention.auc_rule == "simpson":
        area = float(scipy.integrate.simpson(curve, dx=convention.step)) if len(curve) > 1 else 0.0
    elif convention.auc_rule == "trapezoid":
        n = len(curve)
        area = float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (n - 1)) if n > 1 else 0.0
    else:
        raise ValueError(f"auc_rule must be 'simpson' or 'trapezoid', got {convention.auc_rule!r}")
    if convention.normalise:
        area /= full_confidence * (n_pixels // convention.step) * convention.step
    return area


def convention_classifiers(model, convention: Convention, mask_mode=0.0):
    """(insertion, deletion) MaskedClassifiers for a batched logits `model`.

    A substrate of "mask_mode" uses the caller's `mask_mode` (0 = ReX's zero, or "ad").
    """
    def build(sub):
        return masked_classifier(model, mask_mode) if sub == "mask_mode" else occlusion(model, sub)

    return build(convention.insertion_substrate), build(convention.deletion_substrate)


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def _curves(ins_classify, del_classify, x, saliency, target, batch_size, counts):
    rank = pixel_rank(saliency)
    n = counts.shape[0]

    def chunk(idx):
        c = counts[jnp.minimum(idx, n - 1)][:, None, None]
        shown = (rank[None] < c).astype(x.dtype)
        return ins_classify(x, shown)[:, target], del_classify(x, 1 - shown)[:, target]

    ins, dele = chunk_map(chunk, n, batch_size)
    full = ins_classify(x, jnp.ones((1,) + x.shape[:2], x.dtype))[0, target]
    return flatten_chunks(ins, n), flatten_chunks(dele, n), full


def insertion_deletion(
    classify,
    x,
    saliency,
    target,
    convention: Convention = REX,
    batch_size: int = 64,
    deletion_classify: Optional[object] = None,
) -> InsertionDeletion:
    """Insertion/deletion curves of `saliency[H, W]` for `target` on `x[H, W, C]`.

    `classify` is the MaskedClassifier for insertion (and deletion unless
    `deletion_classify` is given); `convention_classifiers` builds the pair a convention
    asks for. forward_images = 2 * points + 1.
    """
    x = check_image(x)
    saliency = jnp.asarray(saliency, jnp.float32)
    if saliency.shape != x.shape[:2]:
        raise ValueError(f"saliency must be [H, W] = {x.shape[:2]}, got {saliency.shape}")
    if isinstance(convention, str):
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
        convention = CONVENTIONS[convention]
    check_positive(step=convention.step, batch_size=batch_size)
    t = check_target(target, num_classes_masked(classify, x))
    n_pixels = x.shape[0] * x.shape[1]
    counts = curve_counts(n_pixels, convention.step, convention.include_start)
    ins, dele, full = _curves(
        classify, deletion_classify or classify, x, saliency, t, batch_size, jnp.asarray(counts)
    )
    ins, dele, full = np.asarray(ins), np.asarray(dele), float(full)
    return InsertionDeletion(
        ins, dele, counts, auc(ins, convention, n_pixels, full), auc(dele, convention, n_pixels, full),
        full, 2 * len(counts) + 1, convention,
    )
