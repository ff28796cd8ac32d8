"""IN / OUT fractions of an explanation against a reference region (ReX paper, Tables 1-3).

    IN  = |E & S| / |E|     (fraction of the explanation inside the segmentation)
    OUT = |E \\ S| / |E|     (fraction outside, e.g. outside a photobombing occlusion)

E and S are boolean [H, W] masks. An empty explanation gives NaN for both.
"""

from __future__ import annotations

from typing import NamedTuple

from rexjax import checks


class InOut(NamedTuple):
    inside: float
    outside: float


def in_out(explanation, segment) -> InOut:
    """IN and OUT fractions of boolean `explanation[H, W]` w.r.t. `segment[H, W]`."""
    e = checks.bool_mask(explanation, "explanation")
    s = checks.bool_mask(segment, "segment", e.shape)
    n = e.sum()
    if n == 0:
        return InOut(float("nan"), float("nan"))
    inside = float((e & s).sum() / n)
    return InOut(inside, 1.0 - inside)
