"""`rexjax.explain(model, image, key=...)`: a ReX explanation of one image, end to end.

    model  a registered name ("efficientnet_lite0", see `rexjax.models.known_models()`), a
           `rexjax.models.Model`, a `Classifier`, or any JAX-traceable batched callable
           `x[B, H, W, C] -> logits[B, K]` (non-Flax models work too).
    image  a path or PIL image (zoo models preprocess it), or an array `[H, W, C]` already in
           the model's input space.

`explain` keeps the last few compiled explainers, keyed by (model, config), so calling it
again on the same model and settings does not recompile (a zoo name also reuses the loaded
weights). `make_explainer` returns the `Explainer` itself, to hold and reuse explicitly.

`explain_many(model, images, keys=...)` explains a list of images: `lockstep` images at a
time per device with their searches in one device call per round, split over every local
device (`jax.sharding`); each result equals `explain(model, images[i], key=keys[i])`.
"""

from __future__ import annotations

import collections
from typing import Any, Optional, Sequence

import jax

from rexjax.causal import Explainer, RexConfig
from rexjax.causal.explainer import CALL_OPTIONS
from rexjax.causal.search import image_mesh
from rexjax.types import Explanation

CACHE_SIZE = 4  # explainers kept by `explain` (each holds its model's weights)
_explainers: "collections.OrderedDict[tuple, Explainer]" = collections.OrderedDict()


def make_explainer(model: Any, config: Optional[RexConfig] = None, **options) -> Explainer:
    """ReX explainer for `model`: a RexConfig, or its fields as keywords."""
    return Explainer(model, config, **options)


def cached_explainer(model: Any, config: RexConfig) -> Explainer:
    """The Explainer for (model, config) from `explain`'s small LRU cache (built on a miss).

    A model given by name is keyed by the name; any other object by identity (the cache holds
    a reference, so the identity stays valid).
    """
    ident = ("name", model) if isinstance(model, str) else ("object", id(model))
    cache_key = (ident, config)
    explainer = _explainers.pop(cache_key, None)
    if explainer is None:
        explainer = Explainer(model, config)
    _explainers[cache_key] = explainer
    while len(_explainers) > CACHE_SIZE:
        _explainers.popitem(last=False)
    return explainer


def explain(model: Any, image: Any, *, key: Any, target: Optional[int] = None, progress: bool = False, **options) -> Explanation:
    """Explains `model`'s decision on `image` with ReX (module doc). key: required seed or
    jax.random key; options: RexConfig fields (`spatial`/`spotlight` as configs or dicts)."""
    call = {k: options.pop(k) for k in CALL_OPTIONS if k in options}
    config = RexConfig.from_dict(options)
    return cached_explainer(model, config)(image, key=key, target=target, progress=progress, **call)


def explain_many(
    model: Any,
    images: Sequence[Any],
    *,
    keys: Sequence[Any],
    targets: Optional[Sequence[Optional[int]]] = None,
    devices: Optional[Sequence[Any]] = None,
    lockstep: int = 4,
    progress: bool = False,
    **options,
) -> list[Explanation]:
    """Explains every image of `images` with ReX; one Explanation per image, in order.

    keys: one seed or jax.random key per image (required); targets: None or one class (or
    None = top-1) per image; devices: the devices to split the images over (default every
    local device, `jax.local_devices()`; one device: no sharding); lockstep: images searched
    together per device and device call (the image axis beside the iteration axis; memory
    grows with it); options: RexConfig fields, as `explain`. Images must share one shape
    once prepared (zoo models resize to theirs). Result i equals
    `explain(model, images[i], key=keys[i], target=targets[i])` except the shared costs
    (`Explainer.explain_many`).
    """
    if isinstance(lockstep, bool) or not isinstance(lockstep, int) or lockstep < 1:
        raise ValueError(f"lockstep must be an integer >= 1, got {lockstep!r}")
    images, keys = list(images), list(keys)
    targets = [None] * len(images) if targets is None else list(targets)
    if len(keys) != len(images) or len(targets) != len(images):
        raise ValueError(f"keys (and targets) must have one entry per image: {len(images)} images, "
                         f"{len(keys)} keys, {len(targets)} targets")
    devices = jax.local_devices() if devices is None else list(devices)
    mesh = image_mesh(devices) if len(devices) > 1 else None
    call = {k: options.pop(k) for k in CALL_OPTIONS if k in options}
    explainer = cached_explainer(model, RexConfig.from_dict(options))
    group = lockstep * len(devices)
    out: list[Explanation] = []
    for i in range(0, len(images), group):
        out += explainer.explain_many(images[i : i + group], keys=keys[i : i + group], targets=targets[i : i + group],
                                      mesh=mesh, progress=progress, **call)
    return out


__all__ = ["explain", "explain_many", "make_explainer", "cached_explainer", "Explainer", "RexConfig", "Explanation"]
