"""The one key scheme: every `jax.random` key rexjax derives, by name.

A run is reproducible from (seed, image identity, config) alone, whatever the entry point:

    key = keys.for_image(seed, "ladybird.jpg")     # what `rexjax explain --seed`, `rexjax
                                                   # evaluate` and `experiments/run.py` pass
    rexjax.explain(model, image, key=key)          # == methods.make("rex")(clf, x, key=key)

Streams, from the top down (`fold_in` data in brackets):

    root(seed)                      jax.random.key(seed)
    for_image(seed, image_id)       fold_in(fold_in(root, IMAGE), crc32(image_id)): the key of
                                    one image in a data-set run, by *identity* (its file name),
                                    never by position, so adding an image changes no other's
    stream(key, name)               fold_in(key, STREAM_IDS[name]): a named side stream of a
                                    key; the ids are >= 2**31, so they never equal an index
    iteration(key, p)               fold_in(key, p), p = 1..iters: ReX's iteration p (the
                                    reference tool's `seed + p`)
    spotlight(key)                  fold_in(key, 0): ReX's spotlight search (iterations use 1..)
    attempt(key, a) / slot(key, j)  fold_in(key, a) / fold_in(key, j): inside the spotlight search

Index streams (iteration, spotlight, attempt, slot, a method's own sample index) use small
integers; named streams (`study_context`, ...) use ids with the top bit set, so a named stream
of a key is never one of its index streams.
"""

from __future__ import annotations

import zlib
from typing import Any

import jax

from rexjax import checks

TOP_BIT = 1 << 31
IMAGE = TOP_BIT | 1  # for_image's first fold: image keys are a stream of the root


def _named_id(name: str) -> int:
    """A 32-bit id for `name` with the top bit set (crc32 of its UTF-8 bytes)."""
    return TOP_BIT | (zlib.crc32(name.encode("utf-8")) & (TOP_BIT - 1))


STREAM_NAMES = ("study_context",)
STREAM_IDS = {name: _named_id(name) for name in STREAM_NAMES}


def root(seed: Any) -> jax.Array:
    """The run's root key: `jax.random.key(seed)` (an int seed in [0, 2**32), or a key as is)."""
    return checks.key(seed, "seed")


def image_id_of(image: Any) -> str:
    """The identity of an image for `for_image`: a path's file name (`a/b/ladybird.jpg` ->
    `ladybird.jpg`), a string as is, or a `data.Sample`'s name."""
    name = getattr(image, "name", image)
    if not isinstance(name, str):
        name = str(name)
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def for_image(seed: Any, image_id: Any) -> jax.Array:
    """The key of image `image_id` (a file name, or a path: its file name) in a run seeded `seed`.
    The name's bytes are hashed: a name that is not valid UTF-8 (held by Python as lone
    surrogates) is hashed as the bytes it has on disk."""
    name = image_id_of(image_id)
    if not name:
        raise ValueError("image_id must name the image (its file name), got an empty name")
    digest = zlib.crc32(name.encode("utf-8", "surrogateescape"))
    return jax.random.fold_in(jax.random.fold_in(root(seed), IMAGE), digest)


def stream(key: Any, name: str) -> jax.Array:
    """The named side stream `name` (one of STREAM_NAMES) of `key`."""
    if name not in STREAM_IDS:
        raise ValueError(f"unknown key stream {name!r}; known: {STREAM_NAMES}")
    return jax.random.fold_in(checks.key(key), STREAM_IDS[name])


def iteration(key: jax.Array, p: Any) -> jax.Array:
    """ReX's iteration p (1-based; p may be traced)."""
    return jax.random.fold_in(key, p)


def spotlight(key: jax.Array) -> jax.Array:
    """ReX's spotlight search (index 0, below the iterations' 1..iters)."""
    return jax.random.fold_in(key, 0)


def index(key: jax.Array, i: Any) -> jax.Array:
    """Sample / attempt / slot `i` of a method's own loop (i may be traced)."""
    return jax.random.fold_in(key, i)
