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
import jax.numpy as jnp
import numpy as np

from rexjax import checks
from rexjax.causal.config import RexConfig
from rexjax.causal.contrastive import make_contrastive_search
from rexjax.causal.extract import make_global_extractor
from rexjax.causal.multiple import make_multiple
from rexjax.causal.search import make_lockstep_search, make_search
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
        self._lockstep_searches: dict = {}

    @functools.cached_property
    def _spatial(self):
        return make_spatial_extractor(self.classify, self.config, self._extract)

    @functools.cached_property
    def _multiple(self):
        return make_multiple(self.classify, self.config, self._extract)

    @functools.cached_property
    def _contrastive(self):
        return make_contrastive_search(self.classify, self.config)

    def _lockstep(self, mesh):
        """The lockstep search over `mesh` (None: one device), built once per mesh."""
        if mesh not in self._lockstep_searches:
            self._lockstep_searches[mesh] = make_lockstep_search(self.classify, self.config, mesh)
        return self._lockstep_searches[mesh]

    def _cfg(self, call_options: dict) -> RexConfig:
        unknown = sorted(set(call_options) - set(CALL_OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; per-call options are {CALL_OPTIONS}")
        return dataclasses.replace(self.config, **call_options) if call_options else self.config

    def _prepare(self, image, target: Optional[int], cfg: RexConfig):
        """-> (x, target, full confidence, whether the full image is top-1 = target)."""
        x = self.classifier.prepare(image)
        h, w = x.shape[:2]
        if h < 2 or w < 2 or h * w < cfg.min_box_size:
            raise ValueError(f"image {h}x{w} is smaller than the minimum box size ({cfg.min_box_size} pixels)")
        probs = np.asarray(self.classifier.full_probs(x))
        target = int(np.argmax(probs)) if target is None else checks.target(target, probs.shape[0])
        return x, target, float(probs[target]), int(np.argmax(probs)) == target

    def __call__(self, image, *, key: Any, target: Optional[int] = None, progress: bool = False, **call_options) -> Explanation:
        """Explains `image` (path, PIL image or f32[H,W,C] in the model's input space).

        key: required (integer seed or jax.random key); target: class (default: top-1).
        call_options: per-call values of `strategy`, `multiple`, `contrastive`,
        `permitted_overlap` (default: the config's).
        """
        cfg = self._cfg(call_options)
        key = checks.key(key)
        start = time.perf_counter()
        x, target, full_conf, full_passes = self._prepare(image, target, cfg)
        found = self._search(key, x, target, full_conf, progress=progress, full_passes=full_passes)
        return self._finish(cfg, key, x, target, full_conf, found, start, time.perf_counter(), progress=progress)

    def explain_many(
        self, images, *, keys, targets=None, mesh=None, progress: bool = False, **call_options
    ) -> list[Explanation]:
        """Explains several images with their searches in lockstep (issue 13 items 6-7).

        images: a sequence of what `__call__` takes, all of one shape once prepared; keys: one
        per image (integer seeds or jax.random keys); targets: None (top-1 each) or one per
        image (None entries: top-1). mesh: None (one device) or `search.image_mesh(devices)`:
        the images are split over the mesh's devices. Every explanation equals
        `self(images[i], key=keys[i], target=targets[i])` (tested), except the shared costs:
        `forward_images_map` is this image's part of the rows pushed (search.py) and
        `time_map` the lockstep search's wall time / the image count. The extractions run
        image by image after the search.
        """
        cfg = self._cfg(call_options)
        images = list(images)
        keys = [checks.key(k) for k in keys]
        targets = [None] * len(images) if targets is None else list(targets)
        if not images or len(keys) != len(images) or len(targets) != len(images):
            raise ValueError(f"explain_many needs >= 1 image and one key (and target) per image; got "
                             f"{len(images)} images, {len(keys)} keys, {len(targets)} targets")
        start = time.perf_counter()
        prepared = [self._prepare(im, t, cfg) for im, t in zip(images, targets)]
        shapes = sorted({tuple(p[0].shape) for p in prepared})
        if len(shapes) > 1:
            raise ValueError(f"explain_many: images must share one shape once prepared, got {shapes}")
        xs, tgts, confs, passes = zip(*prepared)
        found = self._lockstep(mesh)(keys, jnp.stack(xs), tgts, confs, passes, progress=progress)
        share = (time.perf_counter() - start) / len(images)
        return [self._finish(cfg, k, *p[:3], f, 0.0, share, progress=progress) for k, p, f in zip(keys, prepared, found)]

    def _finish(self, cfg, key, x, target, full_conf, found, start, t_map, progress: bool = False) -> Explanation:
        """Extraction, spotlights and the record, after the search (`start`/`t_map`: clock
        readings around the search, so t_map - start is the map's time)."""
        h, w = x.shape[:2]
        kept = int(found.kept.sum())
        if kept == 0:
            warnings.warn(
                f"ReX: every iteration was discarded ({cfg.iters} iterations, none got below depth 1; "
                "discard_shallow=True): the responsibility map is all zero and the explanation follows "
                "pixel order only. Check the target, confidence_filter and mask_mode, or set discard_shallow=False.",
                UserWarning,
                stacklevel=3,
            )
        t0 = time.perf_counter()
        if cfg.strategy == "spatial":
            ex = self._spatial(x, found.responsibility, target, full_conf)
        else:
            ex = self._extract(x, found.responsibility, target, full_conf, progress=progress)
        time_extract = time.perf_counter() - t0
        multi = contra = None
        if cfg.wants_spotlights:
            k = cfg.multiple or cfg.spotlight.spotlights + 1
            multi, candidates = self._multiple(
                key, x, found.responsibility, target, full_conf, ex, cfg.strategy, k, cfg.permitted_overlap
            )
            if cfg.contrastive:
                masks = np.stack([p.mask for p in candidates]) if candidates else np.zeros((0, h, w), bool)
                contra = self._contrastive(x, masks, target, full_conf)
        time_other = time.perf_counter() - t0 - time_extract
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
            wall_time=(t_map - start) + time_extract + time_other,
            time_map=t_map - start,
            time_extract=time_extract,
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
