"""Records shared across rexjax: the ReX configuration and the Explanation result."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import numpy as np

from rexjax.causal.partition import DISTRIBUTIONS
from rexjax.causal.responsibility import RULES

QUEUE_STYLES = ("area", "all")


def default_batch_size() -> int:
    """Mutant batch size per backend: small on CPU (cache-bound), large on accelerators."""
    return 16 if jax.default_backend() == "cpu" else 128


@dataclasses.dataclass(frozen=True)
class RexConfig:
    """ReX hyper-parameters. Defaults reproduce rex-xai 0.4.1 (see BUILD_NOTES.md).

    iters: independent random partitions (Alg. 3's N), summed.
    min_box_size: a box with fewer pixels is not split (bounds the parent, as ReX).
    tree_depth: boxes deeper than this are not split (root depth 0).
    queue_len: passing mutants refined per round and iteration, smallest area first.
    queue_style: "area" (queue_len smallest) or "all" (every passing mutant, up to 14).
    max_active: boxes of a job split in one round (each with the others held visible).
    refine_static: False (default): boxes held visible while a sibling was split stay
        visible but are not refined further (fixes the reference, which drops them);
        True: they are refined in the next round too (paper Sec. 5.2, "then reversing the
        procedure"), about 2x the forward images.
    distribution: split-point law, "uniform" or "betabinom" with `distribution_args` (a, b).
    responsibility: "rex" (1/n per passing mutant), "weighted", or "minimal_k" (paper, 1/(k+1)).
    confidence_filter: a mutant passes when its top-1 is the target and its confidence is at
        least this fraction of the full-image confidence.
    search_limit: stop an iteration after this many mutants (None = unbounded).
    discard_shallow: drop iterations that never got below the root's children (as ReX).
    chunk_size: pixels added per extraction step (None = min_box_size).
    min_confidence: gamma, the fraction of the full-image confidence the explanation keeps.
    batch_size: images per model call (None = 16 on CPU, 128 on accelerators).
    mask_value: occlusion value (number, "min", "max", "mean", "blur", "blur:SIGMA") or "ad".
    """

    iters: int = 20
    min_box_size: int = 10
    tree_depth: int = 10
    queue_len: int = 1
    queue_style: str = "area"
    max_active: int = 3
    refine_static: bool = False
    distribution: str = "uniform"
    distribution_args: tuple[float, float] = (1.0, 1.0)
    responsibility: str = "rex"
    confidence_filter: float = 0.0
    search_limit: Optional[int] = None
    discard_shallow: bool = True
    chunk_size: Optional[int] = None
    min_confidence: float = 0.0
    batch_size: Optional[int] = None
    mask_value: Any = 0.0

    def __post_init__(self):
        def need(ok: bool, what: str):
            if not ok:
                raise ValueError(f"RexConfig: {what}")

        need(isinstance(self.iters, int) and self.iters > 0, f"iters must be > 0, got {self.iters!r}")
        need(self.min_box_size >= 1, f"min_box_size must be >= 1, got {self.min_box_size!r}")
        need(self.tree_depth >= 1, f"tree_depth must be >= 1, got {self.tree_depth!r}")
        need(1 <= self.queue_len <= 14, f"queue_len must be in [1, 14], got {self.queue_len!r}")
        need(self.max_active >= 3, f"max_active must be >= 3, got {self.max_active!r}")
        need(self.queue_style in QUEUE_STYLES, f"queue_style must be one of {QUEUE_STYLES}, got {self.queue_style!r}")
        need(self.distribution in DISTRIBUTIONS, f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        need(
            len(self.distribution_args) == 2 and min(self.distribution_args) > 0,
            f"distribution_args must be two positive numbers, got {self.distribution_args!r}",
        )
        need(self.responsibility in RULES, f"responsibility must be one of {RULES}, got {self.responsibility!r}")
        need(0.0 <= self.confidence_filter <= 1.0, f"confidence_filter must be in [0, 1], got {self.confidence_filter!r}")
        need(self.search_limit is None or self.search_limit > 0, f"search_limit must be > 0 or None, got {self.search_limit!r}")
        need(self.chunk_size is None or self.chunk_size >= 1, f"chunk_size must be >= 1, got {self.chunk_size!r}")
        need(0.0 <= self.min_confidence <= 1.0, f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        need(self.batch_size is None or self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size!r}")

    @property
    def queue_capacity(self) -> int:
        return 14 if self.queue_style == "all" else self.queue_len

    def resolved(self) -> "RexConfig":
        """Copy with `chunk_size` and `batch_size` filled in."""
        return dataclasses.replace(
            self,
            chunk_size=self.chunk_size or self.min_box_size,
            batch_size=self.batch_size or default_batch_size(),
        )


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Result of `rexjax.explain` for one image.

    responsibility: f32[H, W] causal responsibility map (sum over iterations).
    mask: bool[H, W] sufficient explanation (True = pixel kept).
    target: explained class; target_label its name when the model has labels.
    full_confidence / explanation_confidence: target probability on the full image and on
        the explanation alone (everything else masked).
    sufficient: the model's top-1 on the explanation alone is the target.
    area: fraction of pixels in the explanation.
    forward_images: images pushed through the model (map + extraction + target).
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
    config: RexConfig
    key: Any
    device: str
    strategy: str = "global"
    multiple: Optional["MultiExplanation"] = None
    contrastive: Optional["ContrastiveExplanation"] = None

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
            "device": self.device,
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
