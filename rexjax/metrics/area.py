"""Explanation area: the fraction of the image an explanation occupies (ReX paper Table 1).

`area_ratio` is pixels / (H W) of a boolean mask (the corrected ReX ratio; rex-xai 0.4.1
divides by the channel count twice, reference section 8). `explanation_area` turns any
saliency map into a sufficient explanation with the ReX extraction
(`rexjax.causal.extract.extract_global`) and measures it, as the ReX paper does for every tool.
"""

from __future__ import annotations

import numpy as np

from rexjax.metrics.inout import _bool_mask


def area_ratio(mask) -> float:
    """Fraction of pixels set in a boolean mask [H, W]."""
    m = _bool_mask(mask, "mask")
    return float(m.mean())
