"""`rexjax.explain(model, image, key=...)`: a ReX explanation of one image, end to end.

    model  a registered name ("efficientnet_lite0", see `rexjax.models.known_models()`), a
           `rexjax.models.Model`, a `Classifier`, or any JAX-traceable batched callable
           `x[B, H, W, C] -> logits[B, K]` (non-Flax models work too).
    image  a path or PIL image (zoo models preprocess it), or an array `[H, W, C]` already in
           the model's input space.

`explain` keeps the last few compiled explainers, keyed by (model, config), so calling it
again on the same model and settings does not recompile (a zoo name also reuses the loaded
weights). `make_explainer` returns the `Explainer` itself, to hold and reuse explicitly.
"""

from __future__ import annotations

import collections
from typing import Any, Optional

from rexjax.causal import Explainer, RexConfig
from rexjax.causal.explainer import CALL_OPTIONS
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


__all__ = ["explain", "make_explainer", "cached_explainer", "Explainer", "RexConfig", "Explanation"]
