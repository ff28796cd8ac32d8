"""`rexjax.explain(model, image, ...)`: a ReX explanation of one image, end to end.

    model  a registered name ("efficientnet_lite0", see `rexjax.models.list_models()`), a
           `rexjax.models.Model`, or any JAX-traceable batched callable
           `x[B, H, W, C] -> logits[B, K]` (non-Flax models work too).
    image  a path or PIL image (zoo models preprocess it), or an array `[H, W, C]` already in
           the model's input space.

`make_explainer` builds the jitted pieces once and is the thing to reuse across images
(the CLI and the benchmark do); `explain` is the one-call convenience.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.causal.contrastive import make_contrastive_search
from rexjax.causal.extract import make_global_extractor
from rexjax.causal.multiple import SpotlightConfig, dice_matrix, make_spotlight_search, select_compatible
from rexjax.causal.search import make_search
from rexjax.causal.spatial import SpatialConfig, make_spatial_extractor
from rexjax.masking import masked_classifier, parse_mask_value
from rexjax.types import ExplanationPart, Explanation, MultiExplanation, RexConfig

STRATEGIES = ("global", "spatial")


def resolve_model(model):
    """A registered name -> the zoo Model; anything callable is returned as is."""
    if isinstance(model, str):
        from rexjax import models

        return models.load(model)
    if not callable(model):
        raise ValueError(f"model must be a registered name or a batched callable, got {type(model).__name__}")
    return model


def prepare_image(model, image) -> jax.Array:
    """Path / PIL image / array -> validated `f32[H, W, C]` in the model's input space."""
    if isinstance(image, (str, os.PathLike)) or type(image).__module__.startswith("PIL"):
        if not hasattr(model, "preprocess"):
            raise ValueError("image paths need a zoo model (with `preprocess`); pass an array for a plain callable")
        image = model.preprocess(image)
    x = np.asarray(image)
    if x.ndim != 3:
        raise ValueError(f"image must have rank 3 [H, W, C], got shape {x.shape}")
    if hasattr(model, "preprocess") and x.shape[-1] != 3:
        raise ValueError(f"image must have 3 channels (NHWC RGB), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ValueError("image contains non-finite or non-numeric values")
    return jnp.asarray(x, jnp.float32)


class Explainer:
    """ReX on one model with one configuration; call it on images. Compiles once per shape.

    spatial: `SpatialConfig` (circle schedule of `strategy="spatial"`); spotlight:
    `SpotlightConfig` (the search behind `multiple=K` and `contrastive=True`).
    """

    def __init__(
        self, model, *, spatial: Optional[SpatialConfig] = None, spotlight: Optional[SpotlightConfig] = None, **config
    ):
        self.model = resolve_model(model)
        self.config = RexConfig(**config).resolved()
        self.mask_mode = parse_mask_value(self.config.mask_value)
        self.classify: Callable = masked_classifier(self.model, self.mask_mode)
        self._full = jax.jit(lambda x: self.classify(x, jnp.ones((1,) + x.shape[:2], x.dtype))[0])
        self._search = make_search(self.classify, self.config)
        self._extract = make_global_extractor(
            self.classify,
            chunk_size=self.config.chunk_size,
            min_confidence=self.config.min_confidence,
            batch_size=self.config.batch_size,
        )
        self.spatial_config = spatial or SpatialConfig()
        self.spotlight_config = spotlight or SpotlightConfig()
        if not isinstance(self.spatial_config, SpatialConfig) or not isinstance(self.spotlight_config, SpotlightConfig):
            raise ValueError("spatial must be a SpatialConfig and spotlight a SpotlightConfig")
        common = dict(
            chunk_size=self.config.chunk_size,
            min_confidence=self.config.min_confidence,
            batch_size=self.config.batch_size,
            global_extractor=self._extract,
        )
        sc = self.spatial_config
        self._spatial = make_spatial_extractor(
            self.classify, initial_radius=sc.initial_radius, radius_eta=sc.radius_eta,
            expansion_limit=sc.expansion_limit, **common,
        )
        self._spotlights = make_spotlight_search(self.classify, config=self.spotlight_config, **common)
        self._contrastive = make_contrastive_search(
            self.classify, batch_size=self.config.batch_size, min_confidence=self.config.min_confidence
        )

    def __call__(
        self,
        image,
        *,
        target: Optional[int] = None,
        key: Any = None,
        progress: bool = False,
        strategy: str = "global",
        multiple: Optional[int] = None,
        contrastive: bool = False,
        permitted_overlap: float = 0.0,
    ) -> Explanation:
        """Explains `image`. strategy: "global" or "spatial" extraction of the main mask;
        multiple=K: also up to K sufficient explanations with pairwise Dice <=
        `permitted_overlap` (`Explanation.multiple`); contrastive: a sufficient and necessary
        union of them (`Explanation.contrastive`, `found=False` when none exists; it fills
        `Explanation.multiple` too, with the candidates it combined)."""
        cfg = self.config
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if multiple is not None and not (isinstance(multiple, (int, np.integer)) and multiple >= 1):
            raise ValueError(f"multiple must be an integer >= 1 or None, got {multiple!r}")
        if not (isinstance(permitted_overlap, (int, float)) and 0.0 <= permitted_overlap <= 1.0):
            raise ValueError(f"permitted_overlap must be in [0, 1], got {permitted_overlap!r}")
        x = prepare_image(self.model, image)
        h, w = x.shape[:2]
        if h < 2 or w < 2 or h * w < cfg.min_box_size:
            raise ValueError(f"image {h}x{w} is smaller than the minimum box size ({cfg.min_box_size} pixels)")
        if key is None:
            key = jax.random.key(0)
        elif isinstance(key, int):
            key = jax.random.key(key)
        start = time.perf_counter()
        probs = np.asarray(self._full(x))
        if target is None:
            target = int(np.argmax(probs))
        elif not (isinstance(target, (int, np.integer)) and 0 <= target < probs.shape[0]):
            raise ValueError(f"target must be a class index in [0, {probs.shape[0]}), got {target!r}")
        target = int(target)
        full_conf = float(probs[target])
        found = self._search(key, x, target, full_conf, progress=progress)
        t_map = time.perf_counter()
        if strategy == "spatial":
            ex = self._spatial(x, found.responsibility, target, full_conf)
        else:
            ex = self._extract(x, found.responsibility, target, full_conf)
        end = t_extract = time.perf_counter()
        multi = contra = None
        if multiple is not None or contrastive:
            k = multiple or self.spotlight_config.spotlights + 1
            multi, candidates = self._multiple(
                key, x, found.responsibility, target, full_conf, ex, strategy, k, permitted_overlap
            )
            if contrastive:
                masks = np.stack([p.mask for p in candidates]) if candidates else np.zeros((0, h, w), bool)
                contra = self._contrastive(x, masks, target, full_conf)
            end = time.perf_counter()
        labels = getattr(self.model, "labels", None)
        forward = 1 + found.forward_images + ex.forward_images
        forward += (multi.forward_images if multi is not None else 0) + (contra.forward_images if contra else 0)
        return Explanation(
            responsibility=found.responsibility,
            mask=ex.mask,
            target=target,
            target_label=labels[target] if labels is not None and target < len(labels) else None,
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
            config=cfg,
            key=np.asarray(jax.random.key_data(key)).tolist(),
            device=str(jax.devices()[0]),
            strategy=strategy,
            multiple=multi,
            contrastive=contra,
        )

    def _multiple(self, key, x, resp, target, full_conf, ex, strategy, k, permitted_overlap):
        """Spotlight search around the primary explanation `ex`; -> (MultiExplanation, candidates)."""
        start = time.perf_counter()
        h, w = x.shape[:2]
        primary = ExplanationPart(
            mask=ex.mask, area=ex.pixels / float(h * w), confidence=ex.confidence, sufficient=ex.sufficient,
            source=strategy, forward_images=ex.forward_images,
            centre=getattr(ex, "centre", None), radius=getattr(ex, "radius", None),
        )
        # Key 0 of `key` (the search's iterations use 1..iters).
        held = ex.mask if ex.sufficient else None
        spots = self._spotlights(
            jax.random.fold_in(key, 0), x, resp, target, full_conf, primary=held, enough=k,
            permitted_overlap=permitted_overlap,
        )
        candidates = [p for p in [primary] + spots.parts if p.sufficient and p.mask.any()]
        if not candidates:
            dice, chosen = np.zeros((0, 0)), []
        else:
            d = dice_matrix(np.stack([p.mask for p in candidates]))
            prefer = 0 if candidates[0] is primary else None
            chosen = select_compatible(d, [p.area for p in candidates], permitted_overlap, k, prefer)
            dice = d[np.ix_(chosen, chosen)]
        multi = MultiExplanation(
            parts=tuple(candidates[i] for i in chosen),
            candidates=len(candidates),
            spotlights=self.spotlight_config.spotlights,
            spotlights_found=len(spots.parts),  # sufficient spotlight explanations, duplicates included
            permitted_overlap=float(permitted_overlap),
            dice=dice,
            forward_images=spots.forward_images,
            wall_time=time.perf_counter() - start,
        )
        return multi, candidates


def make_explainer(model, **config) -> Explainer:
    """ReX explainer for `model` with `RexConfig` fields (and `spatial`, `spotlight`) as keywords."""
    return Explainer(model, **config)


def explain(
    model,
    image,
    *,
    target: Optional[int] = None,
    key: Any = None,
    strategy: str = "global",
    multiple: Optional[int] = None,
    contrastive: bool = False,
    permitted_overlap: float = 0.0,
    **config,
) -> Explanation:
    """Explains `model`'s decision on `image` with ReX (see module doc and `Explainer.__call__`;
    config: RexConfig fields, `spatial=SpatialConfig(...)`, `spotlight=SpotlightConfig(...)`)."""
    return Explainer(model, **config)(
        image, target=target, key=key, strategy=strategy, multiple=multiple, contrastive=contrastive,
        permitted_overlap=permitted_overlap,
    )


__all__ = ["explain", "make_explainer", "Explainer", "RexConfig", "Explanation", "SpatialConfig", "SpotlightConfig"]
