"""`Explainer`: ReX on one Classifier with one RexConfig, as a short composition of the engines.

    explainer = Explainer(classifier, RexConfig(iters=20))
    explanation = explainer(x_or_path, key=0)          # an `Explanation`

Pipeline: full-image probabilities (`Classifier.full_probs`) -> responsibility search
(`search.py`) -> extraction of the primary explanation (global `extract.py` or spatial
`spatial.py`) -> optionally spotlights (`multiple.py`) and a contrastive union
(`contrastive.py`). The search and the global extraction are compiled on first use per image
shape; the spatial, spotlight and contrastive engines are built only when asked for.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from typing import Any, Optional

import jax
import numpy as np

from rexjax import checks
from rexjax.causal.config import RexConfig
from rexjax.causal.contrastive import make_contrastive_search
from rexjax.causal.extract import make_global_extractor
from rexjax.causal.multiple import make_multiple
from rexjax.causal.search import make_search
from rexjax.causal.spatial import make_spatial_extractor
from rexjax.classifier import Classifier
from rexjax.types import Explanation

CALL_OPTIONS = ("strategy", "multiple", "contrastive", "permitted_overlap")


class Explainer:
    """ReX on one model and config; call it on images (see module doc).

    model: anything `Classifier.of` takes (zoo name, zoo Model, Classifier, batched callable).
    config: a RexConfig (or None: built from `options`, RexConfig field names).
    """

    def __init__(self, model: Any, config: Optional[RexConfig] = None, **options):
        if config is not None and options:
            raise ValueError(f"pass either config or options, not both (got {sorted(options)})")
        config = config if config is not None else RexConfig.from_dict(options)
        if not isinstance(config, RexConfig):
            raise ValueError(f"config must be a RexConfig, got {type(config).__name__}")
        self.classifier = Classifier.of(model)
        self.config = config.resolved()
        self.classify = self.classifier.masked(self.config.mask_mode)
        self._search = make_search(self.classify, self.config)
        self._extract = make_global_extractor(self.classify, self.config)

    @functools.cached_property
    def _spatial(self):
        return make_spatial_extractor(self.classify, self.config, self._extract)

    @functools.cached_property
    def _multiple(self):
        return make_multiple(self.classify, self.config, self._extract)

    @functools.cached_property
    def _contrastive(self):
        return make_contrastive_search(self.classify, self.config)

    def __call__(self, image, *, key: Any, target: Optional[int] = None, progress: bool = False, **call_options) -> Explanation:
        """Explains `image` (path, PIL image or f32[H,W,C] in the model's input space).

        key: required (integer seed or jax.random key); target: class (default: top-1).
        call_options: per-call values of `strategy`, `multiple`, `contrastive`,
        `permitted_overlap` (default: the config's).
        """
        unknown = sorted(set(call_options) - set(CALL_OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; per-call options are {CALL_OPTIONS}")
        cfg = dataclasses.replace(self.config, **call_options) if call_options else self.config
        key = checks.key(key)
        x = self.classifier.prepare(image)
        h, w = x.shape[:2]
        if h < 2 or w < 2 or h * w < cfg.min_box_size:
            raise ValueError(f"image {h}x{w} is smaller than the minimum box size ({cfg.min_box_size} pixels)")
        start = time.perf_counter()
        probs = np.asarray(self.classifier.full_probs(x))
        target = int(np.argmax(probs)) if target is None else checks.target(target, probs.shape[0])
        full_conf = float(probs[target])
        full_passes = int(np.argmax(probs)) == target  # the root's full subset (filter <= 1 holds)
        found = self._search(key, x, target, full_conf, progress=progress, full_passes=full_passes)
        kept = int(found.kept.sum())
        if kept == 0:
            warnings.warn(
                f"ReX: every iteration was discarded ({cfg.iters} iterations, none got below depth 1; "
                "discard_shallow=True): the responsibility map is all zero and the explanation follows "
                "pixel order only. Check the target, confidence_filter and mask_mode, or set discard_shallow=False.",
                UserWarning,
                stacklevel=2,
            )
        t_map = time.perf_counter()
        if cfg.strategy == "spatial":
            ex = self._spatial(x, found.responsibility, target, full_conf)
        else:
            ex = self._extract(x, found.responsibility, target, full_conf)
        end = t_extract = time.perf_counter()
        multi = contra = None
        if cfg.wants_spotlights:
            k = cfg.multiple or cfg.spotlight.spotlights + 1
            multi, candidates = self._multiple(
                key, x, found.responsibility, target, full_conf, ex, cfg.strategy, k, cfg.permitted_overlap
            )
            if cfg.contrastive:
                masks = np.stack([p.mask for p in candidates]) if candidates else np.zeros((0, h, w), bool)
                contra = self._contrastive(x, masks, target, full_conf)
            end = time.perf_counter()
        forward = 1 + found.forward_images + ex.forward_images
        forward += (multi.forward_images if multi is not None else 0) + (contra.forward_images if contra else 0)
        return Explanation(
            responsibility=found.responsibility,
            mask=ex.mask,
            target=target,
            target_label=self.classifier.label(target),
            full_confidence=full_conf,
            explanation_confidence=ex.confidence,
            sufficient=ex.sufficient,
            area=ex.pixels / float(h * w),
            forward_images=forward,
            forward_images_map=found.forward_images,
            forward_images_extract=ex.forward_images,
            wall_time=end - start,
            time_map=t_map - start,
            time_extract=t_extract - t_map,
            max_depth=int(found.depth_reached.max()),
            iterations_kept=kept,
            iteration_depths=tuple(int(d) for d in found.depth_reached),
            mutants=found.mutants,
            config=cfg,
            key=np.asarray(jax.random.key_data(key)).tolist(),
            device=str(jax.devices()[0]),
            strategy=cfg.strategy,
            multiple=multi,
            contrastive=contra,
        )
