"""IN / OUT fractions of an explanation against a reference region (ReX paper, Tables 1-3).

    IN  = |E & S| / |E|     (fraction of the explanation inside the segmentation)
    OUT = |E \\ S| / |E|     (fraction outside, e.g. outside a photobombing occlusion)

E and S are boolean [H, W] masks. An empty explanation gives NaN for both.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class InOut(NamedTuple):
    inside: float
    outside: float


def _bool_mask(m, name: str, shape=None) -> np.ndarray:
    m = np.asarray(m)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a mask [H, W], got shape {m.shape}")
    if shape is not None and m.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {m.shape}")
    return m.astype(bool) if m.dtype == bool else m > 0.5


def in_out(explanation, segment) -> InOut:
    """IN and OUT fractions of boolean `explanation[H, W]` w.r.t. `segment[H, W]`."""
    e = _bool_mask(explanation, "explanation")
    s = _bool_mask(segment, "segment", e.shape)
    n = e.sum()
    if n == 0:
        return InOut(float("nan"), float("nan"))
    inside = float((e & s).sum() / n)
    return InOut(inside, 1.0 - inside)
