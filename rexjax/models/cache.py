"""On-disk cache of converted weights (orbax-checkpoint), safe to share and to lose.

Entries live under `$REXJAX_CACHE_DIR` (default `~/.cache/rexjax`), one directory per model
and source file, keyed by the SHA-256 of the file's *content*, the model name and
`CONVERTER_VERSION`: a changed source (even one copied over with `cp -p`, same size and
mtime) or converter is converted again. The source's structure is checked before it is
hashed (`check_structure`), so a file the reader refuses is never read whole.

* An unwritable cache directory is detected before any conversion (`writable`: a probe
  file is created and removed): one warning line, and the process runs uncached.
* `save` writes into a private temporary directory next to the entry and renames it into
  place, so concurrent cold loads never see a half-written entry and leave no temporary
  directories behind; the first finished writer wins, the others discard their copy.
* Each entry carries a manifest of its files' SHA-256, checked before orbax reads it.
* `restore` of an unreadable, mis-shaped or non-finite entry prints one warning line (no
  orbax/asyncio tracebacks), removes the entry (renamed aside first) and returns None; the
  caller converts again and saves a new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from rexjax.models.convert.pth import check_structure

CONVERTER_VERSION = 2  # bump when a conversion changes, to invalidate caches (2: content keys)
MANIFEST = "rexjax-manifest.json"  # {file: SHA-256} of an entry, written last
log = logging.getLogger(__name__)
_warned: set[str] = set()  # one warning per problem and process
_orbax_lock = threading.Lock()  # orbax checkpointers in one process interfere: one at a time


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def cache_dir() -> Path:
    return Path(os.environ.get("REXJAX_CACHE_DIR") or Path.home() / ".cache" / "rexjax").expanduser().resolve()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_path(name: str, weights: str | os.PathLike) -> Path:
    """The cache entry of model `name` converted from the file `weights` (content-keyed).
    The file's structure is checked first (`check_structure`: a ValueError naming the file
    for one the reader refuses without reading its storages), so a hostile file is refused
    before it is hashed whole."""
    check_structure(weights)
    ident = f"{file_digest(weights)}|{name}|v{CONVERTER_VERSION}"
    return cache_dir() / f"{name}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def writable(directory: Optional[Path] = None) -> bool:
    """True when entries can be written under `directory` (default `cache_dir()`): it is
    created if missing and a probe file is created and removed in it. False (one warning
    line per directory and process) otherwise."""
    directory = cache_dir() if directory is None else Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        os.close(fd)
        os.remove(probe)
        return True
    except OSError as e:
        _warn_once(f"weights cache {directory} is not writable ({e.strerror or e}); running without it")
        return False


@contextlib.contextmanager
def _quiet():
    """orbax logs INFO lines per save/restore (absl) and, on a corrupt entry, asyncio task
    tracebacks; silence both: failures are reported by one warning line instead."""
    from absl import logging as absl_logging

    loggers = [absl_logging.get_absl_logger(), logging.getLogger("asyncio"), logging.getLogger("orbax")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


def _discard(path: Path) -> None:
    """Removes a bad entry: renamed aside first (atomic), so no reader sees it half-deleted."""
    try:
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.bad-", dir=path.parent))
    except OSError:
        return  # a read-only cache: the entry stays, and is ignored again next time
    with contextlib.suppress(OSError):
        os.rename(path, aside / "entry")
    shutil.rmtree(aside, ignore_errors=True)


def _digests(entry: Path) -> dict[str, str]:
    """{path relative to `entry`: SHA-256} of every file of an entry but the manifest."""
    files = sorted(p for p in entry.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {str(p.relative_to(entry)): file_digest(p) for p in files}


def restore(path: Path, template: dict) -> Optional[dict]:
    """The variables cached at `path`, or None when absent, or (one warning line) when its
    files do not match its manifest, or it is unreadable, not shaped like `template` (a tree
    of shape/dtype structs) or not finite. Files are checked against the manifest before
    orbax reads anything (a corrupt file makes tensorstore print tracebacks from its threads)."""
    if not path.is_dir():
        return None
    import orbax.checkpoint as ocp

    try:
        if json.loads((path / MANIFEST).read_text()) != _digests(path):
            raise ValueError("files differ from the manifest")
        with _orbax_lock, _quiet(), ocp.StandardCheckpointer() as ckpt:
            restored = ckpt.restore(path.resolve(), jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template))
    except Exception as e:  # a corrupt cache entry is rebuilt, never trusted
        _warn_once(f"ignoring unreadable weights cache entry {path} ({_one_line(e)}); converting again")
        _discard(path)
        return None
    leaves, want = jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(template)
    same = jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(template) and all(
        a.shape == b.shape for a, b in zip(leaves, want)
    )
    if not same or not all(np.isfinite(np.asarray(a)).all() for a in leaves):
        _warn_once(f"ignoring weights cache entry {path} (wrong shapes or non-finite values); converting again")
        _discard(path)
        return None
    return restored


def save(path: Path, variables: dict) -> None:
    """Writes `variables` as the entry `path`: into a private temporary directory, then one
    atomic rename. An existing entry (another process was faster) is kept. Failures only
    warn (caching is an optimisation)."""
    import orbax.checkpoint as ocp

    if not writable(path.parent):
        return
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        with _orbax_lock, _quiet(), ocp.StandardCheckpointer() as ckpt:
            ckpt.save(tmp / "entry", variables)
            ckpt.wait_until_finished()
        (tmp / "entry" / MANIFEST).write_text(json.dumps(_digests(tmp / "entry")))
        with contextlib.suppress(OSError):
            os.rename(tmp / "entry", path)  # fails if another process renamed its entry first
    except Exception as e:
        _warn_once(f"could not cache converted weights at {path} ({_one_line(e)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
