"""torch state_dict -> Flax variables, with every key and shape checked.

The converter is driven by the Flax side: for every leaf of the model's variable tree
(from `jax.eval_shape(module.init, ...)`), a per-architecture `key_fn(path) -> torch key`
names the torch tensor it comes from. Layouts are derived from the leaf:

* conv kernel (4-D): torch OIHW -> HWIO, `w.transpose(2, 3, 1, 0)` (grouped/depthwise too:
  (O, I/g, kh, kw) -> (kh, kw, I/g, O));
* dense kernel (2-D): torch (out, in) -> (in, out), `w.T`;
* everything else (BN scale/bias/mean/var, biases): unchanged.

Missing, unexpected (minus `ignore`d keys such as `num_batches_tracked`) and mismatched keys
are all collected and reported by name, in checkpoint order (missing keys last); the
error's first line names the first bad key and its expected torch shape. Nothing is ever
partially loaded.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import jax
import ml_dtypes
import numpy as np
from flax import traverse_util

KeyFn = Callable[[tuple[str, ...]], str]

DEFAULT_IGNORE = re.compile(r"(^|\.)num_batches_tracked$")
MAX_SHOWN = 25


def _natural(key: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


class CheckpointMismatchError(ValueError):
    """A state_dict does not fit the model; `.problems` lists every bad key."""

    def __init__(self, problems: list[str], source: str = "checkpoint"):
        self.problems = problems
        head = f"{source} does not match the model: {problems[0]}"
        shown = problems[:MAX_SHOWN]
        more = "" if len(problems) == 1 else f"\n({len(problems)} problems in all)\n  " + "\n  ".join(shown)
        if len(problems) > len(shown):
            more += f"\n  ... and {len(problems) - len(shown)} more (see .problems)"
        super().__init__(head + more)


def _layout(shape: tuple[int, ...], leaf: str) -> str:
    if leaf == "kernel" and len(shape) == 4:
        return "conv"
    if leaf == "kernel" and len(shape) == 2:
        return "dense"
    return "same"


def torch_shape(flax_shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The torch tensor shape that converts to `flax_shape` under `layout`."""
    if layout == "conv":
        h, w, i, o = flax_shape
        return (o, i, h, w)
    if layout == "dense":
        return tuple(reversed(flax_shape))
    return tuple(flax_shape)


def to_flax(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    if layout == "dense":
        return np.ascontiguousarray(array.T)
    return array


def check_finite(variables: Any, source: str = "checkpoint") -> None:
    """ValueError naming the first leaf of `variables` (a pytree of arrays) holding NaN or
    inf, and how many values are bad: garbage weights are never used or cached."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(variables):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) or arr.dtype == ml_dtypes.bfloat16:
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr.astype(np.float32))))
            if bad:
                name = "/".join(str(getattr(k, "key", k)) for k in path)
                raise ValueError(f"{source} holds {bad} non-finite values (NaN/inf) in {name!r}")


def convert_state_dict(
    state_dict: Mapping[str, np.ndarray],
    template: Any,
    key_fn: KeyFn,
    *,
    ignore: Callable[[str], bool] = lambda k: DEFAULT_IGNORE.search(k) is not None,
    source: str = "checkpoint",
) -> dict:
    """Converts `state_dict` to a variables dict shaped like `template` (a pytree of
    `jax.ShapeDtypeStruct`/arrays keyed 'params'/'batch_stats'/...).

    Raises CheckpointMismatchError listing every missing, unexpected and mismatched key.
    """
    flat = traverse_util.flatten_dict(jax.tree_util.tree_map(lambda a: a, template))
    order = {k: i for i, k in enumerate(state_dict)}
    problems: list[tuple[tuple, str]] = []  # (sort key: checkpoint order, missing keys last)
    used: set[str] = set()
    out = {}
    for path, leaf in flat.items():
        key = key_fn(path)
        layout = _layout(tuple(leaf.shape), path[-1])
        want = torch_shape(tuple(leaf.shape), layout)
        if key not in state_dict:
            problems.append(((1, _natural(key)), f"missing key {key!r} (expected shape {want})"))
            continue
        used.add(key)
        arr = np.asarray(state_dict[key])
        where = (0, order[key])
        if tuple(arr.shape) != want:
            problems.append((where, f"shape mismatch for {key!r}: checkpoint {tuple(arr.shape)}, expected shape {want}"))
            continue
        if not (np.issubdtype(arr.dtype, np.floating) or arr.dtype == ml_dtypes.bfloat16):
            problems.append((where, f"dtype of {key!r} is {arr.dtype}, expected a floating type"))
            continue
        out[path] = to_flax(arr, layout).astype(leaf.dtype)
    for key in state_dict:
        if key not in used and not ignore(key):
            problems.append(((0, order[key]), f"unexpected key {key!r} (shape {tuple(np.shape(state_dict[key]))})"))
    if problems:
        problems.sort(key=lambda p: p[0])
        raise CheckpointMismatchError([msg for _, msg in problems], source)
    return traverse_util.unflatten_dict(out)
