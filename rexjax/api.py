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

from rexjax.causal.extract import make_global_extractor
from rexjax.causal.search import make_search
from rexjax.masking import masked_classifier, parse_mask_value
from rexjax.types import Explanation, RexConfig


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
    """ReX on one model with one configuration; call it on images. Compiles once per shape."""

    def __init__(self, model, **config):
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

    def __call__(self, image, *, target: Optional[int] = None, key: Any = None, progress: bool = False) -> Explanation:
        cfg = self.config
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
        ex = self._extract(x, found.responsibility, target, full_conf)
        end = time.perf_counter()
        labels = getattr(self.model, "labels", None)
        forward = 1 + found.forward_images + ex.forward_images
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
            time_extract=end - t_map,
            max_depth=int(found.depth_reached.max()),
            config=cfg,
            key=np.asarray(jax.random.key_data(key)).tolist(),
            device=str(jax.devices()[0]),
        )


def make_explainer(model, **config) -> Explainer:
    """ReX explainer for `model` with `RexConfig` fields as keyword arguments."""
    return Explainer(model, **config)


def explain(model, image, *, target: Optional[int] = None, key: Any = None, **config) -> Explanation:
    """Explains `model`'s decision on `image` with ReX (see module doc; config: RexConfig)."""
    return Explainer(model, **config)(image, target=target, key=key)


__all__ = ["explain", "make_explainer", "Explainer", "RexConfig", "Explanation"]
