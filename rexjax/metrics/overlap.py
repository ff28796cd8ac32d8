"""Overlap of two pixel sets (minimal pixel sets paper): Sorensen-Dice and Hausdorff.

    DC(A, B) = 2 |A & B| / (|A| + |B|)          (1 when both are empty)
    H(A, B)  = max(max_a min_b |a - b|, max_b min_a |a - b|)   (Euclidean, pixels)

Hausdorff uses an exact Euclidean distance transform (SciPy), O(H W), on the host; it is
inf when exactly one set is empty and 0 when both are.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from rexjax import checks


def dice(a, b) -> float:
    """Sorensen-Dice coefficient of boolean masks a, b [H, W]."""
    a = checks.bool_mask(a, "a")
    b = checks.bool_mask(b, "b", a.shape)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def _directed(a: np.ndarray, b: np.ndarray) -> float:
    """max over a of the distance to the nearest pixel of b."""
    return float(scipy.ndimage.distance_transform_edt(~b)[a].max())


def hausdorff(a, b) -> float:
    """Symmetric Hausdorff distance (pixels) between boolean masks a, b [H, W]."""
    a = checks.bool_mask(a, "a")
    b = checks.bool_mask(b, "b", a.shape)
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        return float("inf")
    return max(_directed(a, b), _directed(b, a))
