"""ReX's ml_collections config, generated from `rexjax.causal.RexConfig` (no hand copies).

    get_config()          the "fast" preset: RexConfig's defaults
    get_config("paper")   the paper's budget (`rexjax.causal.PAPER_BUDGET` applied)

    rexjax explain IMAGE --config=rexjax/configs/rex.py:paper --config.search.iters=10

Field names are the library's: `search.*` (SearchConfig), `extract.*` (ExtractConfig),
`strategy`, `multiple`, `permitted_overlap`, `contrastive`, `spatial.*`, `spotlight.*`.
Optional fields (None by default) are ml_collections placeholders of their type, so
`--config.multiple=3` works. `RexConfig.from_dict(config)` turns it back into the record.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

import ml_collections
from ml_collections.config_dict import placeholder

from rexjax.causal.config import PAPER_BUDGET, RexConfig

PRESETS = {"fast": {}, "paper": PAPER_BUDGET}


SCALARS = (str, int, float, bool)


def optional_scalar(owner, name: str):
    """T when `owner`'s (a class's or a function's) `name` is annotated Optional[T] with T a
    scalar type (what a typed ml_collections placeholder can hold), else None."""
    try:
        hint = typing.get_type_hints(owner).get(name)
    except (NameError, TypeError):
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(hint) and len(args) == 1 and args[0] in SCALARS else None


def to_config_dict(record: Any) -> ml_collections.ConfigDict:
    """A frozen dataclass (nested dataclasses included) -> ConfigDict with the same field
    names and values; tuples stay tuples, None fields become typed placeholders."""
    out = ml_collections.ConfigDict()
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if dataclasses.is_dataclass(value):
            out[field.name] = to_config_dict(value)
        elif value is None:
            out[field.name] = placeholder(optional_scalar(type(record), field.name) or object)
        else:
            out[field.name] = value
    return out


def preset_config(preset: str = "fast") -> RexConfig:
    """The RexConfig of a named preset ("fast" or "paper")."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    return RexConfig().replace(**PRESETS[preset]) if PRESETS[preset] else RexConfig()


def get_config(preset: Optional[str] = None) -> ml_collections.ConfigDict:
    """The ConfigDict of preset `preset` (None or "" = "fast")."""
    return to_config_dict(preset_config(preset or "fast"))
