"""On-disk cache of converted weights (orbax-checkpoint).

Entries live under `$REXJAX_CACHE_DIR` (default `~/.cache/rexjax`), one directory per model
and source file, keyed by the file's real path, size and mtime, the model name and
`CONVERTER_VERSION`: a changed source or converter is converted again. An unreadable or
mis-shaped entry is ignored (and rebuilt); a failed save only warns.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Optional

import jax
import numpy as np

CONVERTER_VERSION = 1  # bump when a conversion changes, to invalidate caches


def cache_dir() -> Path:
    return Path(os.environ.get("REXJAX_CACHE_DIR") or Path.home() / ".cache" / "rexjax").expanduser().resolve()


def cache_path(name: str, weights: str) -> Path:
    """The cache entry of model `name` converted from the file `weights`."""
    st = os.stat(weights)
    ident = f"{os.path.realpath(weights)}|{st.st_size}|{st.st_mtime_ns}|{name}|v{CONVERTER_VERSION}"
    return cache_dir() / f"{name}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


@contextlib.contextmanager
def _quiet_orbax():
    """orbax logs a dozen INFO lines per save/restore through absl; keep CLIs readable."""
    from absl import logging as absl_logging

    logger = absl_logging.get_absl_logger()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def restore(path: Path, template: dict) -> Optional[dict]:
    """The variables cached at `path`, or None when absent, unreadable or not shaped like
    `template` (a tree of shape/dtype structs)."""
    if not path.is_dir():
        return None
    import orbax.checkpoint as ocp

    try:
        with _quiet_orbax(), ocp.StandardCheckpointer() as ckpt:
            restored = ckpt.restore(path, jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template))
    except Exception as e:  # a corrupt cache entry is rebuilt, never trusted
        warnings.warn(f"ignoring unreadable weights cache {path} ({e})")
        return None
    ok = jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(template) and all(
        a.shape == b.shape for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(template))
    )
    return restored if ok else None


def save(path: Path, variables: dict) -> None:
    """Writes `variables` to `path` (replacing any entry); failures only warn."""
    import orbax.checkpoint as ocp

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_orbax(), ocp.StandardCheckpointer() as ckpt:
            ckpt.save(path, variables, force=True)
            ckpt.wait_until_finished()
    except Exception as e:  # caching is an optimisation; a read-only cache dir is not fatal
        warnings.warn(f"could not cache converted weights at {path} ({e})")
