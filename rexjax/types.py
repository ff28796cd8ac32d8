"""Records and Protocols shared across rexjax. Imports nothing from rexjax.

Protocols (what the layers exchange):

    MaskedClassifier  (x f32[H, W, C], masks f32|bool[B, H, W]) -> probs f32[B, K]
                      1/True = visible; built by `Classifier.masked(mask_mode)`
    Method            (classifier, x f32[H, W, C], target int | None = None, *, key) -> Attribution
                      every explainer, ReX included (`rexjax.methods.make(name, **config)`)

Shapes are written for images; the black-box methods (rex, occlusion, rise, shape, and
kernel_shap / lime with user segments) also take signals x f32[N, C] and volumes
f32[D, H, W, C], with masks, maps and explanation masks over the spatial shape ([N],
[D, H, W]) and `area` the fraction of elements.

Records: `Attribution` (what every Method returns), and ReX's richer `Explanation` with its
parts (`ExplanationPart`, `MultiExplanation`, `ContrastiveExplanation`), which a ReX
Attribution carries as its `record`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional, Protocol

import jax
import numpy as np


class MaskedClassifier(Protocol):
    """What the model says when only the pixels in each mask are visible."""

    def __call__(self, x: jax.Array, masks: jax.Array) -> jax.Array:
        """x f32[H, W, C], masks f32|bool[B, H, W] (1 = visible) -> probabilities f32[B, K]."""


class Attribution(NamedTuple):
    """What every Method returns.

    map: f32[H, W], higher = more important for the target.
    forward_images: images pushed through the model (padding of the last chunk included; a
        gradient evaluation of one image counts as one image).
    record: the method's richer result, or None (ReX: its `Explanation`).
    """

    map: Any
    forward_images: int
    record: Any = None


class Method(Protocol):
    """An explainer: `method(classifier, x, target=None, *, key) -> Attribution`.

    classifier: a `rexjax.classifier.Classifier`; x: f32[H, W, C] in the model's input space;
    target: class index (None: the classifier's top-1 class on x); key: keyword only and
    required, a `jax.random` key or an integer seed (deterministic methods ignore it; a
    missing key is a ValueError naming `key`).
    """

    name: str

    def __call__(self, classifier: Any, x: jax.Array, target: Optional[int] = None, *, key: Any) -> Attribution: ...


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Result of `rexjax.explain` for one image.

    responsibility: f32[H, W] causal responsibility map (sum over iterations).
    mask: bool[H, W] sufficient explanation (True = pixel kept).
    target: explained class; target_label its name when the model has labels.
    full_confidence / explanation_confidence: target probability on the full image and on
        the explanation alone (everything else masked).
    sufficient: the model's top-1 on the explanation alone is the target (False when none
        was found: then mask is all False, area 0 and explanation_confidence 0).
    area: fraction of pixels in the explanation.
    forward_images: images pushed through the model (map + extraction + target), padding of
        each batch included; mutants: the search's mutant images without padding.
    max_depth: deepest level any iteration reached; iteration_depths: each iteration's;
    iterations_kept: iterations summed into the map (`discard_shallow` drops those that
        never got below depth 1; 0 means an all-zero map and a warning was issued).
    """

    responsibility: np.ndarray
    mask: np.ndarray
    target: int
    target_label: Optional[str]
    full_confidence: float
    explanation_confidence: float
    sufficient: bool
    area: float
    forward_images: int
    forward_images_map: int
    forward_images_extract: int
    wall_time: float
    time_map: float
    time_extract: float
    max_depth: int
    config: Any  # rexjax.causal.RexConfig
    key: Any
    device: str
    mask_mode: Any = 0.0  # what masked pixels showed (resolved at the call, not in the config)
    batch_size: int = 0  # images per model call (resolved at the call)
    strategy: str = "global"
    multiple: Optional["MultiExplanation"] = None
    contrastive: Optional["ContrastiveExplanation"] = None
    iterations_kept: int = 0
    iteration_depths: tuple = ()
    mutants: int = 0

    def stats(self) -> dict:
        """JSON-serialisable summary (no arrays)."""
        extra = {}
        if self.strategy != "global":
            extra["strategy"] = self.strategy
        if self.multiple is not None:
            extra["multiple"] = self.multiple.stats()
        if self.contrastive is not None:
            extra["contrastive"] = self.contrastive.stats()
        return {
            "target": self.target,
            "label": self.target_label,
            "full_confidence": round(self.full_confidence, 6),
            "explanation_confidence": round(self.explanation_confidence, 6),
            "sufficient": self.sufficient,
            "area": round(self.area, 6),
            "forward_images": self.forward_images,
            "forward_images_map": self.forward_images_map,
            "forward_images_extract": self.forward_images_extract,
            "wall_time_s": round(self.wall_time, 3),
            "time_map_s": round(self.time_map, 3),
            "time_extract_s": round(self.time_extract, 3),
            "images_per_s": round(self.forward_images / max(self.wall_time, 1e-9), 2),
            "max_depth": self.max_depth,
            "iterations_kept": self.iterations_kept,
            "iteration_depths": list(self.iteration_depths),
            "mutants": self.mutants,
            "device": self.device,
            "mask_mode": self.mask_mode,
            "batch_size": self.batch_size,
            **extra,
        }


@dataclasses.dataclass(frozen=True)
class ExplanationPart:
    """One of several sufficient explanations (`explain(..., multiple=K)`).

    mask: bool[H, W]; area: fraction of pixels; confidence: target probability on the
    explanation alone; source: "global", "spatial" or "spotlight"; centre/radius: the passing
    circle (None for the global one); forward_images: images spent on this one (its circle
    tests and its prefix search; the shared map is counted in the parent Explanation).
    """

    mask: np.ndarray
    area: float
    confidence: float
    sufficient: bool
    source: str
    forward_images: int
    centre: Optional[tuple] = None
    radius: Optional[int] = None

    def stats(self) -> dict:
        return {
            "area": round(self.area, 6),
            "confidence": round(self.confidence, 6),
            "sufficient": self.sufficient,
            "source": self.source,
            "forward_images": self.forward_images,
            "centre": None if self.centre is None else list(self.centre),
            "radius": self.radius,
        }


@dataclasses.dataclass(frozen=True)
class MultiExplanation:
    """Spotlight search result: up to K sufficient explanations, pairwise Dice <= permitted_overlap.

    parts: the selected explanations (the primary one first when selected); candidates: the
    sufficient explanations found before deduplication (primary included); spotlights_found:
    the sufficient spotlight explanations among them; dice: f32[n, n] between `parts`;
    forward_images: images for the spotlights (circle tests + prefix searches), excluding the
    primary explanation's.
    """

    parts: tuple
    candidates: int
    spotlights: int
    spotlights_found: int
    permitted_overlap: float
    dice: np.ndarray
    forward_images: int
    wall_time: float

    def stats(self) -> dict:
        return {
            "count": len(self.parts),
            "candidates": self.candidates,
            "spotlights": self.spotlights,
            "spotlights_found": self.spotlights_found,
            "permitted_overlap": self.permitted_overlap,
            "max_dice": round(float(np.max(self.dice - np.eye(len(self.parts)), initial=0.0)), 6),
            "forward_images": self.forward_images,
            "wall_time_s": round(self.wall_time, 3),
            "parts": [p.stats() for p in self.parts],
        }


@dataclasses.dataclass(frozen=True)
class ContrastiveExplanation:
    """Sufficient and necessary: only `mask` visible -> target; `mask` hidden -> not target.

    found: False when no union of the candidate explanations qualifies (`message` says why;
    `mask` is then all False). subset: indices into the candidates combined; confidence:
    target probability with only `mask` visible; counterfactual_class / _confidence: top-1
    class and target probability with `mask` hidden and the rest visible.
    """

    found: bool
    mask: np.ndarray
    subset: tuple
    candidates: int
    confidence: float
    counterfactual_class: int
    counterfactual_confidence: float
    area: float
    forward_images: int
    message: str

    def stats(self) -> dict:
        return {
            "found": self.found,
            "subset": list(self.subset),
            "candidates": self.candidates,
            "area": round(self.area, 6),
            "confidence": round(self.confidence, 6),
            "counterfactual_class": self.counterfactual_class,
            "counterfactual_confidence": round(self.counterfactual_confidence, 6),
            "forward_images": self.forward_images,
            "message": self.message,
        }
