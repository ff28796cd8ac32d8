"""Flax model zoo (NHWC, model input space): `load(name, weights=None|PATH) -> Model`.

    model = rexjax.models.load("efficientnet_lite0")     # bundled real weights
    x = model.preprocess("third_party/images/ladybird.jpg")[None]   # f32[1,224,224,3]
    logits = model(x)                                     # f32[1,1000], jitted
    model.apply_fn(model.variables, x)                    # pure, un-jitted (ConvAD traces it)
    model.features(x, ["head"])                           # named intermediate feature maps

Adding a model family (e.g. `rexjax/models/resnet.py`):
  1. write the Flax module (NHWC, logits out; feature points via `self.sow("intermediates",
     name, x)` and `x = self.perturb(name, x)` in the top-level module);
  2. at import time call `register(name, builder)` where `builder()` returns a `ModelSpec`
     (module factory, input size, `key_fn` flax path -> torch key for the checked converter,
     optional bundled weights, preprocessing);
  3. add the module to `ZOO_MODULES` below; it is imported the first time the registry is used.
"""

from __future__ import annotations

import importlib

from rexjax.models.registry import (
    Model,
    ModelInfo,
    ModelSpec,
    get_spec,
    known_models,
    list_models,
    load,
    register,
)

ZOO_MODULES = (
    "rexjax.models.efficientnet_lite",
    "rexjax.models.resnet",
    "rexjax.models.vgg",
    "rexjax.models.regnet",
    "rexjax.models.efficientnet_v2",
)

_imported = False


def _import_zoo() -> None:
    global _imported
    if not _imported:
        _imported = True
        for mod in ZOO_MODULES:
            importlib.import_module(mod)


__all__ = ["Model", "ModelInfo", "ModelSpec", "ZOO_MODULES", "get_spec", "known_models", "list_models", "load", "register"]
