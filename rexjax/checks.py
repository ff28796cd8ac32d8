"""Argument checks shared by every rexjax module: one message style, naming the argument.

Each check returns the validated (and normalised) value or raises `ValueError` whose message
names the argument and what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

INPUT_RANKS = (2, 3, 4)  # x[*spatial, C]: a signal [N, C], an image [H, W, C], a volume [D, H, W, C]
_SHAPES = {3: "an image [H, W, C]", 2: "a signal [N, C]", 4: "a volume [D, H, W, C]"}  # images first


def _kinds(ranks) -> str:
    """'an image [H, W, C] (rank 3), a signal [N, C] (rank 2) or ...' for `ranks`."""
    kinds = [f"{what} (rank {r})" for r, what in _SHAPES.items() if r in ranks]
    return kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]


def _rank(a, name: str, ranks) -> None:
    if a.ndim not in ranks:
        raise ValueError(f"{name} must be {_kinds(ranks)}, got shape {tuple(a.shape)}")


def image(x, name: str = "x", ranks=(3,)) -> jax.Array:
    """x must be a float array [*spatial, C] of a rank in `ranks` (default 3: an image [H, W, C];
    `INPUT_RANKS`: also signals [N, C] and volumes [D, H, W, C]), every spatial side >= 2 (the
    model's input space)."""
    a = np.asarray(x) if not isinstance(x, jax.Array) else x
    _rank(a, name, ranks)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise ValueError(f"{name} must be floating point (model input space), got {a.dtype}")
    if min(a.shape[:-1]) < 2:
        if tuple(ranks) == (3,):
            raise ValueError(f"{name} must be at least 2x2 pixels, got shape {tuple(a.shape)}")
        raise ValueError(f"{name} must be {_kinds(ranks)} with every spatial side >= 2, got shape {tuple(a.shape)}")
    return jnp.asarray(a)


def finite_image(x, name: str = "image", ranks=INPUT_RANKS) -> jax.Array:
    """A numeric, finite array of a rank in `ranks` (default: a signal [N, C], an image
    [H, W, C] or a volume [D, H, W, C]) -> f32[*spatial, C] (for user-supplied inputs)."""
    a = np.asarray(x)
    _rank(a, name, ranks)
    if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite or non-numeric values")
    return jnp.asarray(a, jnp.float32)


def target(t, num_classes: int, name: str = "target") -> int:
    """t must be an integer class index in [0, num_classes)."""
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
        if isinstance(t, (jax.Array, np.ndarray)) and np.ndim(t) == 0 and np.issubdtype(np.asarray(t).dtype, np.integer):
            t = int(t)
        else:
            raise ValueError(f"{name} must be an integer class index, got {t!r}")
    t = int(t)
    if not 0 <= t < num_classes:
        raise ValueError(f"{name} must be a class index in [0, {num_classes}), got {t}")
    return t


def positive_int(**kwargs) -> None:
    """Every keyword must be a positive integer (bools refused)."""
    for name, v in kwargs.items():
        if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def in_range(name: str, v, low: float, high: float) -> float:
    """v must be a finite number in [low, high]."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {v!r}")
    if not low <= v <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {v!r}")
    return float(v)


def key(k: Any, name: str = "key") -> jax.Array:
    """A typed `jax.random` key from a Python/numpy integer, a typed key or a raw uint32[2] key.

    `None` is an error: every stochastic function takes an explicit key, never a silent 0.
    """
    if k is None:
        raise ValueError(f"{name} is required: pass an integer seed or a jax.random.key(...)")
    if isinstance(k, bool):
        raise ValueError(f"{name} must be an integer seed or a jax.random key, got {k!r}")
    if isinstance(k, (int, np.integer)):
        return jax.random.key(int(k))
    if isinstance(k, (jax.Array, np.ndarray)):
        if jnp.issubdtype(k.dtype, jax.dtypes.prng_key):
            if k.shape != ():
                raise ValueError(f"{name} must be a single key, got a key array of shape {k.shape}")
            return k
        if k.dtype == np.uint32 and k.shape == (2,):
            return jax.random.wrap_key_data(jnp.asarray(k))
        if k.shape == () and np.issubdtype(k.dtype, np.integer):
            return jax.random.key(int(k))
    raise ValueError(f"{name} must be an integer seed or a jax.random key, got {type(k).__name__}")


def bool_mask(m, name: str, shape=None) -> np.ndarray:
    """A mask [H, W] (bool, or numbers with > 0.5 = set) -> bool[H, W]."""
    m = np.asarray(m)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a mask [H, W], got shape {m.shape}")
    if shape is not None and m.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {m.shape}")
    return m.astype(bool) if m.dtype == bool else m > 0.5


def saliency(s, hw, name: str = "saliency") -> jax.Array:
    """A map f32[H, W] matching the image's spatial shape `hw`."""
    s = jnp.asarray(s, jnp.float32)
    if s.shape != tuple(hw):
        raise ValueError(f"{name} must be [H, W] = {tuple(hw)}, got {tuple(s.shape)}")
    return s


def one_of(name: str, v, options) -> Any:
    """v must be one of `options`."""
    if v not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {v!r}")
    return v
