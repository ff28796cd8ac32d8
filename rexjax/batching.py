"""Pushing N candidate masks through a model `batch_size` at a time: the one batching helper.

Every occlusion-style computation asks the model about many masks: ReX's search rounds
(mutants), the prefix search of the extraction, spatial circles, spotlights, contrastive
unions, every sampling baseline (RISE, SHAPE, occlusion, LIME, KernelSHAP), the
insertion/deletion curves and the gradient baselines' path points. `push` runs them all:

    push(evaluate, n, batch_size=b, read=..., fold=..., valid=..., stop=...)

* chunks of b = min(batch_size, n) candidates, one compiled chunk shape; the last chunk is
  padded with indices >= n, which `evaluate` receives clipped and whose outputs are dropped;
* compaction: with `valid` (bool[n]) only the valid candidates are evaluated, in index order,
  and the loop runs ceil(count / b) chunks;
* early exit: with `stop`, the loop ends after the first chunk holding a candidate for which
  `stop` is True;
* honest accounting: `forward_images` = chunks run x b x images per candidate, padding
  included (the rows the model really saw).

Call it inside `jax.jit`. The batch size policy is `resolve_batch_size` (one place).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np

CPU_BATCH = 8  # XLA:CPU: small batches are faster per image (BUILD_NOTES.md, decisions: "CPU batch size 8")
ACCELERATOR_BATCH = 128


def default_batch_size() -> int:
    """Images per model call when none is given: 8 on CPU, 128 on GPU/TPU."""
    return CPU_BATCH if jax.default_backend() == "cpu" else ACCELERATOR_BATCH


def resolve_batch_size(batch_size: Optional[int], name: str = "batch_size") -> int:
    """`None` -> `default_batch_size()`; otherwise a positive integer, checked."""
    if batch_size is None:
        return default_batch_size()
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {batch_size!r}")
    return int(batch_size)


def rows_per_call(n: int, batch_size: int) -> int:
    """Rows per model call (one chunk) for `n` candidates: min(batch_size, n), at least 1."""
    return max(1, min(int(batch_size), int(n)))


def padded_count(n: int, batch_size: int) -> int:
    """Rows pushed to evaluate all `n` candidates (the last chunk padded)."""
    b = rows_per_call(n, batch_size)
    return -(-n // b) * b


class Pushed(NamedTuple):
    """values: `read` outputs scattered to candidates, leaves [n, ...] (`init` where not
    evaluated); total: `fold` outputs summed over chunks (chunk order), or None;
    evaluated: bool[n]; forward_images: int32 rows pushed (padding included); chunks: int32."""

    values: Any
    total: Any
    evaluated: jax.Array
    forward_images: jax.Array
    chunks: jax.Array


def push(
    evaluate: Callable[[jax.Array], Any],
    n: int,
    *,
    batch_size: int,
    read: Optional[Callable[[Any, jax.Array], Any]] = None,
    init: Any = None,
    fold: Optional[Callable[[Any, jax.Array, jax.Array], Any]] = None,
    valid: Optional[jax.Array] = None,
    stop: Optional[Callable[[Any], jax.Array]] = None,
    images_per_candidate: int = 1,
    on_chunk: Optional[Callable[[Any, Any], None]] = None,
) -> Pushed:
    """Evaluates candidates 0..n-1 in chunks (see module doc).

    evaluate(idx i32[b]) -> out: the model's answer for candidates `idx` (clipped to [0, n));
        typically renders b masks and calls a MaskedClassifier on them.
    read(out, idx) -> pytree of leaves [b, ...]: per-candidate values kept in `values`.
    init: pytree of leaves [n, ...], the values of candidates never evaluated (default zeros).
    fold(out, idx, ok f32[b]) -> pytree: per-chunk partial sums (ok = 0 on padding rows),
        summed over chunks into `total`.
    valid: bool[n] candidates to evaluate (compaction); None = all.
    stop(values_of_chunk) -> bool[b]: end after the first chunk with a True (on real rows).
    images_per_candidate: model images per candidate (for `forward_images`).
    on_chunk(done, total): a host callback after each chunk (`jax.debug.callback`) with the
        candidates evaluated so far and the most there can be (for progress bars).
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"push needs at least one candidate, got n={n}")
    if stop is not None and read is None:
        raise ValueError("stop needs read (it looks at the per-candidate values)")
    b = rows_per_call(n, batch_size)
    n_chunks = -(-n // b)
    order, count = _evaluation_order(n, b, valid)
    values, partials = _empty_outputs(evaluate, n, b, read, init, fold)

    def cond(c):
        i, _, _, hit = c
        return (i * b < count) & ~hit

    def body(c):
        i, values, partials, _ = c
        idx = jax.lax.dynamic_slice(order, (i * b,), (b,))
        out = evaluate(jnp.minimum(idx, n - 1))
        hit = jnp.bool_(False)
        if read is not None:
            got = read(out, idx)
            values = jax.tree_util.tree_map(lambda v, g: v.at[idx].set(g, mode="drop"), values, got)
            if stop is not None:  # padding rows only ever fill the last chunk: no guard needed
                hit = jnp.any(stop(got))
        if fold is not None:
            part = fold(out, idx, (idx < n).astype(jnp.float32))
            partials = jax.tree_util.tree_map(lambda p, q: p.at[i].set(q), partials, part)
        if on_chunk is not None:
            jax.debug.callback(on_chunk, jnp.minimum((i + 1) * b, count), count)
        return i + 1, values, partials, hit

    chunks, values, partials, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), values, partials, jnp.bool_(False)))
    total = None if partials is None else jax.tree_util.tree_map(lambda p: p.sum(0), partials)
    evaluated = jnp.zeros((n,), bool).at[order].set(jnp.arange(n_chunks * b) < chunks * b, mode="drop")
    return Pushed(values, total, evaluated, chunks * b * images_per_candidate, chunks)


def _evaluation_order(n: int, b: int, valid: Optional[jax.Array]) -> tuple[jax.Array, jax.Array]:
    """The candidates in the order they are pushed, chunk after chunk of b.

    -> (order int32[ceil(n / b) * b], count int32): all of 0..n-1 then padding (indices >= n)
    when `valid` is None; else the valid candidates in index order, then n as padding, and
    count = how many are valid (the loop runs ceil(count / b) chunks).
    """
    size = -(-n // b) * b
    if valid is None:
        return jnp.arange(size, dtype=jnp.int32), jnp.int32(n)
    chex.assert_shape(valid, (n,))
    return jnp.nonzero(valid, size=size, fill_value=n)[0].astype(jnp.int32), valid.sum(dtype=jnp.int32)


def _empty_outputs(evaluate: Callable, n: int, b: int, read: Optional[Callable], init: Any,
                   fold: Optional[Callable]) -> tuple[Any, Any]:
    """The loop's initial outputs, shaped from one traced chunk of b candidates.

    -> (values: `init`, or zeros with leaves [n, ...] of `read`'s per-candidate shape; None
    without `read`; partials: zeros with leaves [ceil(n / b), ...] of `fold`'s shape, one row
    per chunk; None without `fold`).
    """
    idx0 = jnp.zeros((b,), jnp.int32)
    out_shape = jax.eval_shape(evaluate, idx0)
    values = None
    if read is not None:
        read_shape = jax.eval_shape(read, out_shape, idx0)
        if init is None:
            values = jax.tree_util.tree_map(lambda s: jnp.zeros((n,) + s.shape[1:], s.dtype), read_shape)
        else:
            values = init
    partials = None
    if fold is not None:
        fold_shape = jax.eval_shape(fold, out_shape, idx0, jnp.zeros((b,), jnp.float32))
        partials = jax.tree_util.tree_map(lambda s: jnp.zeros((-(-n // b),) + s.shape, s.dtype), fold_shape)
    return values, partials


def chunk_valid(idx: jax.Array, n: int) -> jax.Array:
    """f32[b]: 1 for real candidates (idx < n), 0 for the padding of the last chunk."""
    return (idx < n).astype(jnp.float32)
