"""Insertion and deletion curves (Petsiuk et al. 2018) and their AUCs, two conventions.

Pixels are ranked by the saliency map, descending, ties broken by descending flat index
(ReX's order, reference section 5.1). Curve point k shows the top `min(k step, H W)`
pixels (insertion) or hides them (deletion); the value is the target-class probability from
the convention's MaskedClassifiers `classifier.masked(substrate)` (hidden pixels show the
substrate), the points pushed `batch_size` at a time (`rexjax.batching.push`).

* `REX` (rex-xai `--analyse`, ReX paper Table 1): the caller's `mask_mode` (ReX: 0) for both
  curves, step 100, points k = 1..ceil(N/step) (no 0-pixel point), AUC = SciPy
  `simpson(curve, dx=step)` divided by `full-image confidence * floor(N/step) * step` (may
  exceed 1); the full-image confidence is `classifier.full_probs(x)[target]`.
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

from rexjax import batching, checks
from rexjax.causal import pixel_rank
from rexjax.masking import MaskMode, parse_mask_mode


class Convention(NamedTuple):
    """How curves are built and integrated (stored with every result)."""

    name: str
    step: int
    insertion_substrate: str  # a mask_mode for `Classifier.masked`, or "mask_mode" (the caller's)
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
    forward_images: int  # 2 x points rounded up to whole chunks + 1 (the full image)
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


def resolve_convention(convention) -> Convention:
    """A Convention, or its name in CONVENTIONS."""
    if isinstance(convention, str):
        return CONVENTIONS[checks.one_of("convention", convention, sorted(CONVENTIONS))]
    if not isinstance(convention, Convention):
        raise ValueError(f"convention must be a Convention or one of {sorted(CONVENTIONS)}, got {convention!r}")
    return convention


def substrates(convention, mask_mode: MaskMode = 0.0) -> tuple[MaskMode, MaskMode]:
    """(insertion, deletion) substrates the convention's curves show at hidden pixels, as
    parsed mask modes, the convention's "mask_mode" replaced by the caller's `mask_mode`
    (REX under mask_mode="ad": ("ad", "ad"); RISE: ("blur:5", 0.0) whatever the mask_mode)."""
    convention = resolve_convention(convention)
    mask_mode = parse_mask_mode(mask_mode)
    return tuple(
        parse_mask_mode(mask_mode if sub == "mask_mode" else sub)
        for sub in (convention.insertion_substrate, convention.deletion_substrate)
    )


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def _curves(ins_classify, del_classify, x, saliency, target, batch_size, counts):
    rank = pixel_rank(saliency)
    n = counts.shape[0]

    def evaluate(idx):
        shown = (rank[None] < counts[idx][:, None, None]).astype(x.dtype)
        return ins_classify(x, shown)[:, target], del_classify(x, 1 - shown)[:, target]

    return batching.push(evaluate, n, batch_size=batch_size, read=lambda out, idx: out).values


def insertion_deletion(
    classifier,
    x,
    saliency,
    target,
    convention: Convention = REX,
    batch_size: Optional[int] = None,
    mask_mode: MaskMode = 0.0,
) -> InsertionDeletion:
    """Insertion/deletion curves of `saliency[H, W]` for `target` on `x[H, W, C]`.

    classifier: a `rexjax.classifier.Classifier`; the convention's substrates become
    `classifier.masked(...)` ("mask_mode" = the caller's `mask_mode`, e.g. 0 or "ad").
    """
    x, t = classifier.check(x, target)
    saliency = checks.saliency(saliency, x.shape[:2])
    convention = resolve_convention(convention)
    checks.positive_int(step=convention.step)
    batch_size = batching.resolve_batch_size(batch_size)
    ins_classify, del_classify = (classifier.masked(sub) for sub in substrates(convention, mask_mode))
    n_pixels = x.shape[0] * x.shape[1]
    if convention.step > n_pixels:
        raise ValueError(
            f"step {convention.step} exceeds the image's {n_pixels} pixels ({x.shape[0]} x {x.shape[1]}): "
            f"use a step of at most {n_pixels}"
        )
    counts = curve_counts(n_pixels, convention.step, convention.include_start)
    ins, dele = _curves(ins_classify, del_classify, x, saliency, t, batch_size, jnp.asarray(counts))
    ins, dele = np.asarray(ins), np.asarray(dele)
    full = float(classifier.full_probs(x)[t])
    return InsertionDeletion(
        ins, dele, counts, auc(ins, convention, n_pixels, full), auc(dele, convention, n_pixels, full),
        full, 2 * batching.padded_count(len(counts), batch_size) + 1, convention,
    )
