"""The timers of the benchmarks.

The bare model is timed the way the engine runs it: batches inside one compiled loop, as the
batched model calls of an explanation run. One jitted call per batch is the wrong baseline on
XLA:CPU (20-30 % slower), so `raw_rate_fn` is the only raw-model timer.
"""

from __future__ import annotations

import statistics
import time


def raw_rate_fn(fn, batch: int, batches: int):
    """Returns `rate(x[H, W, C]) -> images/s` of the batched model `fn` (f32[B, H, W, C] ->
    f32[B, K]) on `batches` batches of `batch` copies of x inside one jitted `lax.fori_loop`.
    Compiled on first use (that call is not timed); each batch is scaled by (1 + 1e-6 i) so
    XLA cannot hoist the model out of the loop."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def loop(xb):
        body = lambda i, acc: acc + fn(xb * (1.0 + 1e-6 * i)).sum()
        return jax.lax.fori_loop(0, batches, body, jnp.float32(0.0))

    compiled: list = []

    def rate(x) -> float:
        xb = jnp.broadcast_to(jnp.asarray(x, jnp.float32)[None], (batch,) + tuple(x.shape))
        if not compiled:
            loop(xb).block_until_ready()
            compiled.append(True)
        t = time.perf_counter()
        loop(xb).block_until_ready()
        return batches * batch / (time.perf_counter() - t)

    return rate


def median_of(measure, rounds: int) -> float:
    """Median of `rounds` calls of `measure()` (a rate or a duration)."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    return statistics.median(measure() for _ in range(rounds))


def first_and_median(fn, *args, repeats: int) -> tuple[float, float]:
    """(seconds of the first call `fn(*args)`, compile included; median seconds of `repeats`
    further calls), each waited for with `jax.block_until_ready`."""
    import jax

    def once() -> float:
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        return time.perf_counter() - t

    first = once()
    return first, median_of(once, repeats)
