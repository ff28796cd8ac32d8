"""Explanation area: the fraction of the image an explanation occupies (ReX paper Table 1).

`area_ratio` is pixels / (H W) of a boolean mask (the corrected ReX ratio; rex-xai 0.4.1
divides by the channel count twice, reference section 8). `make_area` turns any saliency map
into a sufficient explanation with the ReX global extraction
(`rexjax.causal.make_global_extractor`) and measures it, as the ReX paper does for every tool.
"""

from __future__ import annotations

from typing import Optional

from rexjax import checks
from rexjax.batching import resolve_batch_size
from rexjax.causal import RexConfig, make_global_extractor
from rexjax.masking import MaskMode


def area_ratio(mask) -> float:
    """Fraction of pixels set in a boolean mask [H, W]."""
    return float(checks.bool_mask(mask, "mask").mean())


def make_area(classifier, *, mask_mode: MaskMode = 0.0, batch_size: Optional[int] = None):
    """`area(x, saliency, target, full_confidence) -> (area, Extraction)`: the ReX global
    extraction (the reference's: prefix steps of min_box_size = 10 pixels, first prefix classified as
    the target, no prefix_growth, no pruning) on `classifier.masked(mask_mode)`, applied to
    any saliency map, and its area
    pixels / (H W). Build it once per classifier (the extractor is compiled once).
    When no prefix is sufficient (possible only when `target` is not the model's top-1 on the
    full image) the area is NaN, not 0: nothing was found (`Extraction.sufficient` is False),
    and summaries skip NaN areas."""
    # The reference's extraction whatever RexConfig's defaults: every prefix step, no pruning (the
    # metric must not change when the explainer's fast budget does).
    extract = make_global_extractor(classifier.masked(mask_mode), RexConfig.from_dict({"prefix_growth": 0.0, "prune_grids": ()}),
                                    resolve_batch_size(batch_size))

    def area(x, saliency, target, full_confidence):
        x = checks.image(x)
        saliency = checks.saliency(saliency, x.shape[:2])
        ex = extract(x, saliency, int(target), float(full_confidence))
        if not ex.sufficient:
            return float("nan"), ex
        return ex.pixels / float(ex.mask.size), ex

    return area
