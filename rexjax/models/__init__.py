"""Flax model zoo (NHWC, model input space): `load(name, weights=None|PATH) -> Model`.

    model = rexjax.models.load("efficientnet_lite0")     # bundled real weights
    x = model.preprocess("third_party/images/ladybird.jpg")[None]   # f32[1,224,224,3]
    logits = model(x)                                     # f32[1,1000], jitted
    model.apply_fn(model.variables, x)                    # pure, un-jitted (ConvAD traces it)
    model.features(x, ["head"])                           # named intermediate feature maps

Layout: `model` (ModelSpec, Model, ModelInfo), `registry` (the name -> family table, lookup,
`load`, `list_models`), `cache` (orbax cache of converted weights), one module per family.
Importing `rexjax.models` imports no family module; `load(name)` imports the one it needs.

Adding a model family (e.g. `rexjax/models/resnet.py`):
  1. write the Flax module (NHWC, logits out; feature points via `self.sow("intermediates",
     name, x)` and `x = self.perturb(name, x)` in the top-level module);
  2. give the module a function `spec(name) -> ModelSpec` (module factory, input size,
     `key_fn` flax path -> torch key for the checked converter, optional bundled weights,
     preprocessing); nothing runs at import time;
  3. add its model names to `FAMILIES` in `rexjax/models/registry.py`.
A model outside the zoo can be added at run time with `register(name, builder)`.
"""

from __future__ import annotations

from rexjax.models.model import Model, ModelInfo, ModelSpec
from rexjax.models.registry import (check_factory, check_model, get_spec, known_models, list_models, load, load_model,
                                    register)

__all__ = ["Model", "ModelInfo", "ModelSpec", "check_factory", "check_model", "get_spec", "known_models", "list_models",
           "load", "load_model", "register"]
