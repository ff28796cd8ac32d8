"""Evaluation metrics for saliency maps and explanations.

    insertion_deletion(classifier, x, saliency, target, convention=REX)  curves and AUCs (REX / RISE)
    make_area(classifier)(x, saliency, target, full_confidence)        ReX-extraction area of any map
    area_ratio(mask), in_out(explanation, segment)                      area; IN / OUT vs a segmentation
    dice(a, b), hausdorff(a, b)                                         overlap of two pixel sets
    rho_robustness(key, classifier, x, mask, target, others)          rho-robustness (ConvAD paper):
                                                     K1 solid colours, K2 images of other classes
    rho_noise(...), rho(..., backgrounds)                               IID-noise / any contexts

`classifier` is a `rexjax.classifier.Classifier`; `batch_size=None` means
`rexjax.batching.default_batch_size()`.
"""

from rexjax.metrics.area import area_ratio, make_area
from rexjax.metrics.inout import InOut, in_out
from rexjax.metrics.insertion_deletion import (
    CONVENTIONS,
    REX,
    RISE,
    Convention,
    InsertionDeletion,
    insertion_deletion,
    pixel_rank,
    resolve_convention,
    substrates,
)
from rexjax.metrics.overlap import dice, hausdorff
from rexjax.metrics.robustness import (
    Robustness,
    colour_bounds,
    noise_backgrounds,
    other_class_backgrounds,
    rho,
    rho_noise,
    rho_robustness,
    solid_backgrounds,
)

__all__ = [
    "CONVENTIONS", "REX", "RISE", "Convention", "InOut", "InsertionDeletion", "Robustness",
    "area_ratio", "colour_bounds", "dice", "hausdorff", "in_out", "insertion_deletion", "make_area",
    "noise_backgrounds", "other_class_backgrounds", "pixel_rank", "resolve_convention", "rho", "rho_noise",
    "rho_robustness", "solid_backgrounds", "substrates",
]
