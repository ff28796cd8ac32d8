"""Model lookup and loading: `get_spec(name)`, `load(name, weights)`, `list_models()`.

The zoo is the explicit table `FAMILIES` (model name -> module that builds it); each family
module has a function `spec(name) -> ModelSpec` (cheap: no weights are read). A family
module is imported the first time one of its models is looked up, never at import time.
`register(name, builder)` adds a user model (`builder()` returns its ModelSpec).

`load` turns a spec into a `Model` (module + variables + preprocessing + labels): weights
come from `weights=PATH` (a torch `.pth` state_dict, read without torch) or the spec's
bundled default; converted variables are cached (`rexjax.models.cache`, orbax).
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models import cache
from rexjax.models.convert.checks import check_finite, convert_state_dict
from rexjax.models.convert.pth import load_state_dict
from rexjax.models.model import Model, ModelInfo, ModelSpec, variables_template
from rexjax.models.preprocess import Preprocess

FAMILIES: dict[str, str] = {
    "efficientnet_lite0": "rexjax.models.efficientnet_lite",
    "efficientnet_lite1": "rexjax.models.efficientnet_lite",
    "efficientnet_lite2": "rexjax.models.efficientnet_lite",
    "efficientnet_v2_s": "rexjax.models.efficientnet_v2",
    "regnety_120": "rexjax.models.regnet",
    "resnet50": "rexjax.models.resnet",
    "resnet101": "rexjax.models.resnet",
    "resnet152": "rexjax.models.resnet",
    "resnet152d": "rexjax.models.resnet",
    "vgg16": "rexjax.models.vgg",
    "vgg19": "rexjax.models.vgg",
    "convnext_tiny": "rexjax.models.convnext",
    "convnext_small": "rexjax.models.convnext",
    "convnext_base": "rexjax.models.convnext",
    "convnext_large": "rexjax.models.convnext",
    "convnextv2_large": "rexjax.models.convnext",
    "convnextv2_huge": "rexjax.models.convnext",
    "inception_v3": "rexjax.models.inception",
    "inception_v4": "rexjax.models.inception",
    "inception_resnet_v2": "rexjax.models.inception",
    "vit_b_16": "rexjax.models.vit",
    "vit_b_32": "rexjax.models.vit",
    "vit_l_16": "rexjax.models.vit",
    "vit_large_patch16_224": "rexjax.models.vit",
    "vit_huge_patch14_224": "rexjax.models.vit",
    "eva02_large_patch14_448": "rexjax.models.eva",
}
# models added with `register`, looked up before the zoo
USER_MODELS: dict[str, Callable[[], ModelSpec]] = {}


def register(name: str, builder: Callable[[], ModelSpec], *, overwrite: bool = False) -> None:
    """Adds a model: `builder()` returns its ModelSpec. See `rexjax.models` for a recipe."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise ValueError(f"builder for {name!r} must be a callable returning a ModelSpec")
    taken = name in FAMILIES or (name in USER_MODELS and USER_MODELS[name] is not builder)
    if taken and not overwrite:
        raise ValueError(f"model {name!r} is already registered (pass overwrite=True to replace it)")
    USER_MODELS[name] = builder


def known_models() -> list[str]:
    return sorted(set(FAMILIES) | set(USER_MODELS))


def get_spec(name: str) -> ModelSpec:
    """The ModelSpec of `name`; ValueError naming the known models if there is none."""
    if name in USER_MODELS:
        spec = USER_MODELS[name]()
    elif name in FAMILIES:
        spec = importlib.import_module(FAMILIES[name]).spec(name)
    else:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(known_models())}")
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"builder for {name!r} returned {type(spec).__name__}, not a ModelSpec")
    return spec


def convert_weights(spec: ModelSpec, weights: str, template: dict, state_dict: Optional[dict] = None) -> dict:
    """Reads the torch .pth state_dict `weights` (or takes `state_dict`, already read from it)
    and converts it to `template`'s structure (all checked: keys, shapes, dtypes, and every
    value finite)."""
    state_dict = load_state_dict(weights) if state_dict is None else state_dict
    if spec.convert is not None:
        variables = spec.convert(state_dict, template)
    elif spec.key_fn is None:
        raise ValueError(f"model {spec.name!r} has no torch weight converter")
    else:
        variables = convert_state_dict(state_dict, template, spec.key_fn, source=f"weights file {weights!r}")
    check_finite(variables, f"weights file {weights!r}")
    return variables


def is_onnx_path(name) -> bool:
    """Whether `name` is a path to an ONNX model (ends in `.onnx`), for `rexjax.models.onnx`."""
    return isinstance(name, (str, os.PathLike)) and os.fspath(name).lower().endswith(".onnx")


def load(name: str, weights: Optional[str | os.PathLike] = None, *, use_cache: bool = True, seed: int = 0) -> Model:
    """Loads a zoo model by name, or an ONNX classifier from a path ending in `.onnx`
    (`rexjax.models.onnx.load_onnx`: an `OnnxModel`, weights inside the graph).

    weights: None -> the model's bundled weights if installed, else random init (with a
    warning); a path -> that torch `.pth` state_dict (zip or legacy format). Converted
    variables are cached (orbax, keyed on the file's content) and reused while the source
    file is unchanged; an unwritable cache directory warns once and runs uncached.
    """
    if is_onnx_path(name):
        if weights is not None:
            raise ValueError(f"model {os.fspath(name)!r}: an ONNX model holds its weights (weights= is for zoo models)")
        from rexjax.models.onnx import load_onnx

        return load_onnx(name)
    spec = get_spec(name)
    module = spec.make_module()
    template = variables_template(module, spec.input_size)
    path = os.fspath(weights) if weights is not None else (spec.default_weights() if spec.default_weights else None)
    if weights is not None and not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist")
    if path is None:
        warnings.warn(
            f"{name}: no weights found; initialising randomly (seed {seed}). Pass weights=PATH "
            "to a torch state_dict (.pth) for real predictions.",
            stacklevel=2,
        )
        variables = module.init(jax.random.key(seed), jnp.zeros((1, *spec.input_size, 3), jnp.float32))
        variables = {k: v for k, v in variables.items() if k in template}
    else:
        if use_cache and cache.writable():  # the file is read once: the bytes hashed are the bytes converted
            variables = cache.load(name, path, template, lambda sd: convert_weights(spec, path, template, sd))
        else:
            variables = convert_weights(spec, path, template)
        variables = jax.tree_util.tree_map(jnp.asarray, variables)
    labels = tuple(spec.labels())
    if len(labels) != spec.num_classes:
        raise ValueError(f"{name}: {len(labels)} labels for {spec.num_classes} classes")
    return Model(
        name=name,
        module=module,
        variables=variables,
        input_size=tuple(spec.input_size),
        num_classes=spec.num_classes,
        labels=labels,
        has_weights=path is not None,
        preprocessing=spec.preprocess or Preprocess(tuple(spec.input_size)),
        feature_names=tuple(spec.feature_names),
        weights_path=path,
    )


def list_models(names: Optional[Sequence[str]] = None) -> list[ModelInfo]:
    """One ModelInfo per known model (or per name in `names`); parameter counts come
    from `jax.eval_shape` (no weights are read or allocated)."""
    out = []
    for name in known_models() if names is None else names:
        spec = get_spec(name)
        template = variables_template(spec.make_module(), spec.input_size)
        count = int(sum(np.prod(s.shape) for s in jax.tree_util.tree_leaves(template.get("params", {}))))
        has = bool(spec.default_weights and spec.default_weights())
        prep = (spec.preprocess or Preprocess(tuple(spec.input_size))).describe()
        out.append(ModelInfo(name, tuple(spec.input_size), spec.num_classes, count, has, spec.description, prep))
    return out


def check_factory(spec: str) -> None:
    """Checks a model given as 'package.module:factory' (a callable returning a model, e.g. a
    JAX callable x[B,H,W,C] -> logits[B,K] or a zoo-like object): importable and callable.
    Returns None (such a model has no ModelSpec); ValueError naming `spec` otherwise."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"model {spec!r}: expected a zoo name or 'package.module:factory'")
    try:
        found = getattr(importlib.import_module(module), attr, None)
    except ImportError as e:
        raise ValueError(f"model {spec!r}: cannot import {module} ({e})") from None
    if not callable(found):
        raise ValueError(f"model {spec!r}: {module} has no callable {attr!r}")


def check_model(spec: str) -> Optional[ModelSpec]:
    """The ModelSpec of zoo model `spec` (cheap: no weights read), or None for a
    'package.module:factory' model once `check_factory` accepts it, or for an ONNX file
    (`*.onnx`) that is a regular file. ValueError otherwise."""
    if is_onnx_path(spec):
        if not os.path.isfile(spec):
            raise ValueError(f"model {spec!r}: no such ONNX file")
        return None
    if ":" in spec:
        check_factory(spec)
        return None
    return get_spec(spec)


def load_model(spec: str, weights: Optional[str | os.PathLike] = None):
    """The model `spec` names: zoo model `load(spec, weights)`, an ONNX file (`*.onnx`), or
    what the factory 'package.module:factory' returns (weights files are for zoo models only)."""
    if ":" not in spec or is_onnx_path(spec):
        return load(spec, weights)
    if weights is not None:
        raise ValueError(f"model {spec!r}: a weights file is for a zoo model; the factory builds its own")
    check_factory(spec)
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)()
