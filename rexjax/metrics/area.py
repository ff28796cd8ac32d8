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


def make_area(classify, *, chunk_size: int = 10, min_confidence: float = 0.0, batch_size: int = 16):
    """`area(x, saliency, target, full_confidence) -> (area, Extraction)`: the ReX global
    extraction (`rexjax.causal.extract`, ReX defaults: chunks of 10 pixels, first prefix
    classified as the target) applied to any saliency map, and its area pixels / (H W)."""
    from rexjax.causal.extract import make_global_extractor

    extract = make_global_extractor(
        classify, chunk_size=chunk_size, min_confidence=min_confidence, batch_size=batch_size
    )

    def area(x, saliency, target, full_confidence):
        if np.shape(saliency) != tuple(np.shape(x)[:2]):
            raise ValueError(f"saliency must be [H, W] = {np.shape(x)[:2]}, got {np.shape(saliency)}")
        ex = extract(x, saliency, int(target), float(full_confidence))
        return ex.pixels / float(ex.mask.size), ex

    return area


def explanation_area(classify, x, saliency, target, full_confidence, **options):
    """One-off `make_area(classify, **options)(x, saliency, target, full_confidence)`."""
    return make_area(classify, **options)(x, saliency, target, full_confidence)
