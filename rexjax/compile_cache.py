"""Compile once per machine: JAX's persistent compilation cache under the rexjax cache directory.

`enable()` points JAX at `<cache_dir()>/xla` (`cache_dir()` is `$REXJAX_CACHE_DIR`, default
`~/.cache/rexjax`, shared with the converted weights) and caches every compiled executable
(no minimum compile time), so a second process with the same model, config and shapes loads
its executables from disk instead of compiling them (JAX keys an entry by the lowered
program, the compile options, the backend and the jax/jaxlib versions).

The `rexjax` CLI calls `enable()` before running a command; `REXJAX_COMPILE_CACHE=0` (or
`false`, `no`, `off`) switches it off, and so does a compilation cache directory the user set
for JAX already (`JAX_COMPILATION_CACHE_DIR`), which is left as it is. Library users opt in
by calling `enable()` themselves.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import jax

from rexjax.models.cache import cache_dir

ENV_SWITCH = "REXJAX_COMPILE_CACHE"
_OFF = ("0", "false", "no", "off")


def compile_cache_dir() -> Path:
    """`<rexjax cache dir>/xla`: where `enable()` keeps compiled executables."""
    return cache_dir() / "xla"


def requested() -> bool:
    """False when `$REXJAX_COMPILE_CACHE` is one of 0/false/no/off (any case), else True."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in _OFF


def enable(path: Optional[os.PathLike] = None) -> Optional[Path]:
    """Turns on JAX's persistent compilation cache at `path` (default `compile_cache_dir()`).

    Returns the directory in use: None when switched off by `$REXJAX_COMPILE_CACHE` or when
    the directory cannot be created (a warning; compiling still works), JAX's own when one
    was set already (kept with its settings). Call it before the first compilation: JAX
    decides once per process whether the cache is used.
    """
    if not requested():
        return None
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    target = Path(path) if path is not None else compile_cache_dir()
    try:  # created and probe-written: an existing but read-only directory is refused too
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=target)
        os.close(fd)
        os.remove(probe)
    except OSError as e:  # caching is an optimisation; a read-only cache dir is not fatal
        warnings.warn(f"compilation cache disabled: cannot write to {target} ({e.strerror or e})")
        return None
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return target
