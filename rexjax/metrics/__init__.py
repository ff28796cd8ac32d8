"""Evaluation metrics for saliency maps and explanations (see each module)."""

from rexjax.metrics.area import area_ratio, explanation_area, make_area
from rexjax.metrics.inout import InOut, in_out
from rexjax.metrics.insertion_deletion import (
    CONVENTIONS,
    REX,
    RISE,
    Convention,
    InsertionDeletion,
    convention_classifiers,
    insertion_deletion,
    pixel_rank,
)
from rexjax.metrics.overlap import dice, hausdorff
from rexjax.metrics.robustness import Robustness, iid_backgrounds, rho, rho_robustness, solid_backgrounds

__all__ = [
    "CONVENTIONS", "REX", "RISE", "Convention", "InOut", "InsertionDeletion", "Robustness",
    "area_ratio", "convention_classifiers", "explanation_area", "make_area", "dice", "hausdorff",
    "iid_backgrounds", "in_out",
    "insertion_deletion", "pixel_rank", "rho", "rho_robustness", "solid_backgrounds",
]
