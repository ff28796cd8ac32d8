"""Conveniences on top of the ReX Method: `explain` (one image) and `explain_many` (a list).

The one documented ReX entry is the Method, `rexjax.methods.make("rex", **config)`, called
as every explainer is: `method(classifier, x, target=None, *, key) -> Attribution` (its
`record` is the `Explanation`). These two functions do the same computation for the common
cases and return the `Explanation` itself:

    model  a registered name ("efficientnet_lite0", see `rexjax.models.known_models()`), a
           `rexjax.models.Model`, a `Classifier`, or any JAX-traceable batched callable
           `x[B, H, W, C] -> logits[B, K]` (non-Flax models work too).
    image  a path or PIL image (zoo models preprocess it), or an array `[H, W, C]` already in
           the model's input space.
    key    required: an integer seed or a `jax.random` key. A data-set run keys image `name`
           with `rexjax.keys.for_image(seed, name)`, as `rexjax explain --seed` does.
    config a RexConfig (or None) and/or its field names as keywords (`iters=20`, nested parts
           as dicts); mask_mode and batch_size are the call's, as for every method.

Compiled programs are cached on the `Classifier` (the object the caller holds), keyed by
(config, mask_mode, batch_size): call again with the same Classifier and settings and
nothing recompiles. A model given by name or as a bare callable gets a fresh Classifier per
call (hold `rexjax.Classifier.of(model)` to reuse the compiled programs).

`explain_many(model, images, keys=...)` explains a list of images: `lockstep` images at a
time per device with their searches in one device call per round, split over every local
device (`jax.sharding`); each result equals `explain(model, images[i], key=keys[i])`.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax

from rexjax.causal import RexConfig
from rexjax.causal.config import rex_config
from rexjax.causal.explainer import explainer_for
from rexjax.causal.search import image_mesh
from rexjax.masking import MaskMode
from rexjax.types import Explanation


def explain(model: Any, image: Any, target: Optional[int] = None, *, key: Any, config: Optional[RexConfig] = None,
            mask_mode: MaskMode = 0.0, batch_size: Optional[int] = None, progress: bool = False,
            **fields) -> Explanation:
    """Explains `model`'s decision on `image` with ReX (module doc); target None = top-1."""
    return explainer_for(model, rex_config(config, **fields), mask_mode, batch_size)(
        image, key=key, target=target, progress=progress)


def explain_many(
    model: Any,
    images: Sequence[Any],
    targets: Optional[Sequence[Optional[int]]] = None,
    *,
    keys: Sequence[Any],
    config: Optional[RexConfig] = None,
    mask_mode: MaskMode = 0.0,
    batch_size: Optional[int] = None,
    devices: Optional[Sequence[Any]] = None,
    lockstep: int = 4,
    progress: bool = False,
    **fields,
) -> list[Explanation]:
    """Explains every image of `images` with ReX; one Explanation per image, in order.

    keys: one seed or jax.random key per image (required); targets: None or one class (or
    None = top-1) per image; devices: the devices to split the images over (default every
    local device, `jax.local_devices()`; one device: no sharding); lockstep: images searched
    together per device and device call (the image axis beside the iteration axis; memory
    grows with it). Images must share one shape once prepared (zoo models resize to theirs).
    Result i equals `explain(model, images[i], targets[i], key=keys[i])` except the shared
    costs (`Explainer.explain_many`).
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
    explainer = explainer_for(model, rex_config(config, **fields), mask_mode, batch_size)
    group = lockstep * len(devices)
    out: list[Explanation] = []
    for i in range(0, len(images), group):
        out += explainer.explain_many(images[i : i + group], keys=keys[i : i + group], targets=targets[i : i + group],
                                      mesh=mesh, progress=progress)
    return out


__all__ = ["explain", "explain_many", "explainer_for", "rex_config"]
