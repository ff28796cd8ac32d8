"""Timing the bare model the way the engine runs it (`rexjax bench`'s raw column, the
benchmark tools): batches inside one compiled loop, as `batching.push` runs them. One jitted
call per batch is the wrong baseline on XLA:CPU: 20-30 % slower (BUILD_NOTES, issue 13)."""

from __future__ import annotations

import time


def raw_rate_fn(fn, batch: int, batches: int):
    """Returns `rate(x[H, W, C]) -> images/s` of the batched model `fn` on `batches` batches of
    `batch` copies of x inside one jitted `lax.fori_loop`: how the engine runs the model
    (`batching.push` loops over chunks inside one compiled program). Compiled on first use;
    each batch is scaled by (1 + 1e-6 i) so XLA cannot hoist the model out of the loop."""
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
