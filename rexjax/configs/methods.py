"""Per-method ml_collections configs, generated from the factories' own keyword defaults.

    method_config("rise")      ConfigDict(n_masks=4000, grid=7, p=0.5, upsample="auto")
    method_config("rex")       the ReX config (`rexjax.configs.rex`, preset "fast")
    all_method_configs()       {registry name: its ConfigDict}

A factory's defaults are the one source (they follow the papers); nothing here repeats a
value. Left out: the options every occlusion method shares (`mask_mode`, `batch_size`: set once
per run and passed with `methods.make(..., shared=...)`) and array-valued options whose
default is None (`segments`, `baselines`: not settable from a command line). An optional
scalar (default None, annotated Optional[str|int|float]) becomes a typed placeholder.
"""

from __future__ import annotations

import inspect

import ml_collections
from ml_collections.config_dict import placeholder

from rexjax import methods
from rexjax.configs import rex

SHARED = ("mask_mode", "batch_size")


def method_config(name: str) -> ml_collections.ConfigDict:
    """The ConfigDict of method `name`'s factory defaults (module doc)."""
    canonical = methods.canonical(name)
    if canonical == "rex":
        return rex.get_config()
    factory = methods.factory(canonical)
    out = ml_collections.ConfigDict()
    for p in inspect.signature(factory).parameters.values():
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) or p.name in SHARED or p.default is p.empty:
            continue
        if p.default is None:
            kind = rex.optional_scalar(factory, p.name)
            if kind is not None:
                out[p.name] = placeholder(kind)
            continue
        out[p.name] = p.default
    return out


def all_method_configs() -> dict[str, ml_collections.ConfigDict]:
    """{registry name: method_config(name)} for every registered method."""
    return {name: method_config(name) for name in methods.names()}
