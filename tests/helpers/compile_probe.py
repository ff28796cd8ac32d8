"""A `rexjax` CLI command for tests: jits two small functions and prints JAX's persistent
compilation cache events as JSON (`{"hits": n, "misses": n, "cache_dir": str|null}`)."""

import json

import jax
import jax.numpy as jnp

_events = {"hits": 0, "misses": 0}
_NAMES = {"/jax/compilation_cache/cache_hits": "hits", "/jax/compilation_cache/cache_misses": "misses"}


def _listen(event: str, **kwargs) -> None:
    if event in _NAMES:
        _events[_NAMES[event]] += 1


jax.monitoring.register_event_listener(_listen)


def main(argv):
    x = jnp.arange(12.0).reshape(3, 4)
    jax.jit(lambda a: jnp.tanh(a @ a.T).sum())(x).block_until_ready()
    jax.jit(lambda a: jnp.cumsum(a, axis=1) * 2)(x).block_until_ready()
    print(json.dumps(dict(_events, cache_dir=jax.config.jax_compilation_cache_dir)))
    return 0
