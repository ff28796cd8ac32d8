"""`Explainer`: ReX on one Classifier with one RexConfig, as a short composition of the engines.

    explainer = Explainer(classifier, RexConfig(), mask_mode=0.0, batch_size=None)
    explanation = explainer(x_or_path, key=key)         # an `Explanation`

The engine behind the ReX Method (`methods.make("rex")`) and the conveniences
`rexjax.explain` / `explain_many`; users call those. Pipeline: full-image probabilities
(`Classifier.full_probs`) -> responsibility search (`search.py`) -> extraction of the primary
explanation (global `extract.py` or spatial `spatial.py`) -> optionally spotlights
(`multiple.py`) and a contrastive union (`contrastive.py`). `mask_mode` and `batch_size` are
resolved here, once, at the boundary (they are not part of the RexConfig). The search and the
global extraction are compiled on first use per image shape; the spatial, spotlight and
contrastive engines are built only when the config asks for them.

Inputs: `x[*S, C]` with S = [N] (1-D signal), [H, W] (image) or [D, H, W] (volume); the
classifier maps `x[B, *S, C]` to scores. The search and the global extraction work on every
rank (boxes and their split rule per rank: `partition.py`); the responsibility map and the
mask have shape S. The spatial strategy, spotlights (`multiple`) and contrastive unions grow
circles on images only and are refused for signals and volumes (`SPATIAL_KINDS`).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import checks
from rexjax.batching import resolve_batch_size
from rexjax.causal.config import RexConfig
from rexjax.causal.contrastive import make_contrastive_search
from rexjax.causal.extract import make_global_extractor
from rexjax.causal.multiple import make_multiple
from rexjax.causal.search import make_lockstep_search, make_search
from rexjax.causal.spatial import make_spatial_extractor
from rexjax.classifier import Classifier
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.types import Explanation

KINDS = {1: "signal", 2: "image", 3: "volume"}  # inputs by spatial rank
SPATIAL_KINDS = (2,)  # spatial ranks the circle-based parts (spatial, multiple, contrastive) take


class Explainer:
    """ReX on one model and config; call it on images (see module doc).

    model: anything `Classifier.of` takes (zoo name, zoo Model, Classifier, batched callable).
    config: a RexConfig (None: the defaults). mask_mode: what masked pixels show (a number,
    "min", "max", "mean", "blur", "blur:SIGMA") or "ad" (ConvAD). batch_size: images per model
    call (None: `batching.default_batch_size()` for the default backend, resolved here).
    """

    def __init__(self, model: Any, config: Optional[RexConfig] = None, *, mask_mode: MaskMode = 0.0,
                 batch_size: Optional[int] = None):
        config = RexConfig() if config is None else config
        if not isinstance(config, RexConfig):
            raise ValueError(f"config must be a RexConfig, got {type(config).__name__}")
        self.classifier = Classifier.of(model)
        self.config = config
        self.mask_mode = parse_mask_mode(mask_mode)
        self.batch_size = resolve_batch_size(batch_size)
        self.classify = self.classifier.masked(self.mask_mode)
        self._search = make_search(self.classify, config.search, self.batch_size)
        self._extract = make_global_extractor(self.classify, config, self.batch_size)
        self._lockstep_searches: dict = {}

    @functools.cached_property
    def _spatial(self):
        return make_spatial_extractor(self.classify, self.config, self.batch_size, self._extract)

    @functools.cached_property
    def _multiple(self):
        return make_multiple(self.classify, self.config, self.batch_size, self._extract)

    @functools.cached_property
    def _contrastive(self):
        return make_contrastive_search(self.classify, self.config, self.batch_size)

    def _lockstep(self, mesh):
        """The lockstep search over `mesh` (None: one device), built once per mesh."""
        if mesh not in self._lockstep_searches:
            self._lockstep_searches[mesh] = make_lockstep_search(self.classify, self.config.search, self.batch_size, mesh)
        return self._lockstep_searches[mesh]

    def _prepare(self, image, target: Optional[int]):
        """-> (x, target, full confidence, whether the full input is top-1 = target)."""
        x = self.classifier.prepare(image)
        spatial = x.shape[:-1]
        kind, cfg = KINDS[len(spatial)], self.config
        min_box = cfg.search.min_box_size
        if min(spatial) < 2 or math.prod(spatial) < min_box:
            size = "x".join(str(n) for n in spatial)
            raise ValueError(f"{kind} {size} is smaller than the minimum box size ({min_box} pixels)")
        if len(spatial) not in SPATIAL_KINDS and (cfg.strategy == "spatial" or cfg.wants_spotlights):
            raise ValueError(
                f"strategy 'spatial', multiple and contrastive explanations grow circles on images [H, W, C] "
                f"only; x is a {kind} of shape {tuple(x.shape)}: use strategy='global', multiple=None, "
                "contrastive=False"
            )
        self.classifier.num_classes_for(x)  # a model that refuses this shape: one ValueError
        probs = np.asarray(self.classifier.full_probs(x))
        decided = self.classifier.predicted_class(probs)
        target = decided if target is None else checks.target(target, probs.shape[0])
        return x, target, float(probs[target]), decided == target

    def __call__(self, image, *, key: Any, target: Optional[int] = None, progress: bool = False) -> Explanation:
        """Explains `image` (path, PIL image or f32[*S,C] in the model's input space: a
        signal [N, C], an image [H, W, C] or a volume [D, H, W, C]).

        key: required (integer seed or jax.random key); target: class (default: top-1).
        """
        key = checks.key(key)
        start = time.perf_counter()
        x, target, full_conf, full_passes = self._prepare(image, target)
        found = self._search(key, x, target, full_conf, progress=progress, full_passes=full_passes)
        return self._finish(key, x, target, full_conf, found, start, time.perf_counter(), progress=progress)

    def explain_many(self, images, *, keys, targets=None, mesh=None, progress: bool = False) -> list[Explanation]:
        """Explains several images with their searches in lockstep.

        images: a sequence of what `__call__` takes, all of one shape once prepared; keys: one
        per image (integer seeds or jax.random keys); targets: None (top-1 each) or one per
        image (None entries: top-1). mesh: None (one device) or `search.image_mesh(devices)`:
        the images are split over the mesh's devices. Every explanation equals
        `self(images[i], key=keys[i], target=targets[i])` (tested), except the shared costs:
        `forward_images_map` is this image's part of the rows pushed (search.py) and
        `time_map` the lockstep search's wall time / the image count. The extractions run
        image by image after the search.
        """
        images = list(images)
        keys = [checks.key(k) for k in keys]
        targets = [None] * len(images) if targets is None else list(targets)
        if not images or len(keys) != len(images) or len(targets) != len(images):
            raise ValueError(f"explain_many needs >= 1 image and one key (and target) per image; got "
                             f"{len(images)} images, {len(keys)} keys, {len(targets)} targets")
        start = time.perf_counter()
        prepared = [self._prepare(im, t) for im, t in zip(images, targets)]
        shapes = sorted({tuple(p[0].shape) for p in prepared})
        if len(shapes) > 1:
            raise ValueError(f"explain_many: images must share one shape once prepared, got {shapes}")
        xs, tgts, confs, passes = zip(*prepared)
        found = self._lockstep(mesh)(keys, jnp.stack(xs), tgts, confs, passes, progress=progress)
        share = (time.perf_counter() - start) / len(images)
        return [self._finish(k, *p[:3], f, 0.0, share, progress=progress) for k, p, f in zip(keys, prepared, found)]

    def _finish(self, key, x, target, full_conf, found, start, t_map, progress: bool = False) -> Explanation:
        """Extraction, spotlights and the record, after the search (`start`/`t_map`: clock
        readings around the search, so t_map - start is the map's time)."""
        cfg = self.config
        spatial = x.shape[:-1]
        kept = int(found.kept.sum())
        if kept == 0:
            warnings.warn(
                f"ReX: every iteration was discarded ({cfg.search.iters} iterations, none got below depth 1; "
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
                masks = np.stack([p.mask for p in candidates]) if candidates else np.zeros((0,) + spatial, bool)
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
            area=ex.pixels / float(math.prod(spatial)),
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
            mask_mode=self.mask_mode,
            batch_size=self.batch_size,
            key=np.asarray(jax.random.key_data(key)).tolist(),
            device=str(jax.devices()[0]),
            strategy=cfg.strategy,
            multiple=multi,
            contrastive=contra,
        )


def explainer_for(model: Any, config: RexConfig, mask_mode: MaskMode = 0.0, batch_size: Optional[int] = None) -> Explainer:
    """The Explainer of (model, config, mask_mode, batch_size), built once and kept on the
    model's Classifier (`Classifier.memo`): the ReX Method and `rexjax.explain` share it."""
    classifier = Classifier.of(model)
    mode, batch = parse_mask_mode(mask_mode), resolve_batch_size(batch_size)
    return classifier.memo(("rex.Explainer", config, mode, batch),
                           lambda: Explainer(classifier, config, mask_mode=mode, batch_size=batch))
