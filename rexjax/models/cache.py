"""On-disk cache of converted weights (orbax-checkpoint), safe to share and to lose.

Entries live under `$REXJAX_CACHE_DIR` (default `~/.cache/rexjax`), one directory per model
and source content, keyed by the SHA-256 of the source file's *content*, the model name and
`CONVERTER_VERSION` (`Entry`): a changed source (even one copied over with `cp -p`, same
size and mtime) or converter is converted again.

* `load` reads the source once (`read_checked`: its structure is checked from the open
  descriptor first, so a file the reader refuses is never read whole, then that descriptor
  is read whole), hashes those bytes and, on a miss, converts those same bytes: a source
  replaced or rewritten between hashing and parsing cannot leave an entry keyed by one
  content that holds another's weights.
* Each entry's manifest, written last, holds the entry's key and the SHA-256 of its other
  files. `restore` checks it before orbax reads anything: an entry that is a symlink, holds
  a symlink or anything but directories and regular files (a FIFO would block the read),
  was made for another key (a link to or copy of another entry), or whose files differ
  from the manifest, is broken.
* A broken entry (also one orbax cannot read, mis-shaped or non-finite) prints one warning
  line (no orbax/asyncio tracebacks), is removed (renamed aside first; a symlink is removed,
  never followed) and is converted and saved again.
* `save` writes into a private temporary directory next to the entry and renames it into
  place, so concurrent cold loads never see a half-written entry and leave no temporary
  directories behind; the first finished writer wins, the others discard their copy.
* An unwritable cache directory is detected before any conversion (`writable`: a probe
  file is created and removed): one warning line, and the process runs uncached.

Trust: the cache detects accidents and planted links or copies at rest; it cannot tell a
forged entry (written with a valid manifest by someone who may write the cache directory)
from a real one, nor an entry swapped during the instant orbax reads it. A cache directory
must be writable by its user only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import jax
import numpy as np

from rexjax.models.convert.pth import load_state_dict, read_checked

CONVERTER_VERSION = 3  # bump when a conversion changes, to invalidate caches (2: content keys; 3: keys in manifests)
MANIFEST = "rexjax-manifest.json"  # {"key": the entry's key, "files": {file: SHA-256}}, written last
MAX_MANIFEST_BYTES = 1 << 20
MAX_ENTRY_FILES = 4096  # an orbax entry holds a few dozen
CHUNK = 1 << 20  # bytes hashed per step
log = logging.getLogger(__name__)
_warned: set[str] = set()  # one warning per problem and process
_orbax_lock = threading.Lock()  # orbax checkpointers in one process interfere: one at a time


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def cache_dir() -> Path:
    return Path(os.environ.get("REXJAX_CACHE_DIR") or Path.home() / ".cache" / "rexjax").expanduser().resolve()


def digest(data: bytes | bytearray | memoryview) -> str:
    """SHA-256 (hex) of `data`, `CHUNK` bytes per step (Ctrl-C is handled between steps)."""
    h = hashlib.sha256()
    with memoryview(data) as view:
        for at in range(0, len(view), CHUNK):
            h.update(view[at : at + CHUNK])
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """The cache entry of model `name` converted from source content of SHA-256 `digest`."""

    name: str
    digest: str

    @property
    def key(self) -> str:
        """What the entry is for; written into its manifest and checked on restore."""
        return f"{self.digest}|{self.name}|v{CONVERTER_VERSION}"

    @property
    def path(self) -> Path:
        return cache_dir() / f"{self.name}-{hashlib.sha256(self.key.encode()).hexdigest()[:16]}"


def load(name: str, weights: str | os.PathLike, template: dict, convert: Callable[[dict], dict]) -> dict:
    """The variables of model `name` from the torch weights file `weights`: restored from the
    entry of the file's content when a valid one exists (shaped like `template`), else
    `convert(state_dict)` of the file, saved as that entry. The file is read once
    (`read_checked`: a ValueError naming it for a file the reader refuses, found before it
    is read whole); the bytes hashed for the key are the bytes parsed. While it restores,
    a hit holds the file's bytes (peak: file + variables, as a miss)."""
    data = read_checked(weights)
    entry = Entry(name, digest(data))
    variables = restore(entry, template)
    if variables is None:
        state_dict = load_state_dict(weights, data)
        del data  # the state_dict holds copies: the file's bytes go before the conversion
        variables = convert(state_dict)
        save(entry, variables)
    return variables


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
    """Removes a bad entry: renamed aside first (atomic), so no reader sees it half-deleted;
    a symlink is moved and unlinked, never followed."""
    try:
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.bad-", dir=path.parent))
    except OSError:
        return  # a read-only cache: the entry stays, and is ignored again next time
    with contextlib.suppress(OSError):
        os.rename(path, aside / "entry")
    shutil.rmtree(aside, ignore_errors=True)


def _open_regular(path: Path) -> int:
    """A read-only descriptor of `path`, once it is a regular file reached without a symlink
    (opened non-blocking and checked on the descriptor: a FIFO swapped in never blocks)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{path.name} is not a regular file")
    return fd


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with os.fdopen(_open_regular(path), "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _files(entry: Path) -> list[Path]:
    """Every file under `entry` (a directory reached without a symlink), once it holds only
    directories and regular files, at most `MAX_ENTRY_FILES`: ValueError naming the first
    symlink, FIFO, socket or device otherwise."""
    if not stat.S_ISDIR(os.lstat(entry).st_mode):
        raise ValueError("the entry is a symlink" if entry.is_symlink() else "the entry is not a directory")
    files, todo = [], [entry]
    while todo:
        with os.scandir(todo.pop()) as items:
            for item in items:
                if item.is_symlink():
                    raise ValueError(f"{Path(item.path).relative_to(entry)} is a symlink")
                if item.is_dir(follow_symlinks=False):
                    todo.append(Path(item.path))
                elif item.is_file(follow_symlinks=False):
                    files.append(Path(item.path))
                else:
                    raise ValueError(f"{Path(item.path).relative_to(entry)} is not a regular file")
                if len(files) > MAX_ENTRY_FILES:
                    raise ValueError(f"the entry holds more than {MAX_ENTRY_FILES} files")
    return sorted(files)


def _digests(entry: Path) -> dict[str, str]:
    """{path relative to `entry`: SHA-256} of every file of an entry but the manifest."""
    return {str(p.relative_to(entry)): _file_digest(p) for p in _files(entry) if p.name != MANIFEST}


def _check(entry: Path, key: str) -> None:
    """ValueError unless `entry` is a plain directory of directories and regular files whose
    manifest names `key` and the SHA-256 of every other file."""
    digests = _digests(entry)
    with os.fdopen(_open_regular(entry / MANIFEST), "rb") as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ValueError(f"the manifest is over {MAX_MANIFEST_BYTES} bytes")
    manifest = json.loads(raw)
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        found = manifest.get("key") if isinstance(manifest, dict) else None
        raise ValueError(f"the entry was made for another key ({str(found)[:24]}...): "
                         "a link to or copy of another entry?")
    if manifest.get("files") != digests:
        raise ValueError("files differ from the manifest")


def restore(entry: Entry, template: dict) -> Optional[dict]:
    """The variables cached as `entry`, or None when absent, or (one warning line, entry
    removed) when it is broken: not a plain directory of regular files, made for another
    key, its files differ from its manifest, unreadable, not shaped like `template` (a tree
    of shape/dtype structs) or not finite. The checks run before orbax reads anything (a
    corrupt file makes tensorstore print tracebacks from its threads)."""
    path = entry.path
    if not os.path.lexists(path):
        return None
    import orbax.checkpoint as ocp

    try:
        _check(path, entry.key)
        with _orbax_lock, _quiet(), ocp.StandardCheckpointer() as ckpt:
            restored = ckpt.restore(path, jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template))
    except Exception as e:  # a broken cache entry is rebuilt, never trusted
        _warn_once(f"ignoring broken weights cache entry {path} ({_one_line(e)}); converting again")
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


def save(entry: Entry, variables: dict) -> None:
    """Writes `variables` as `entry`: into a private temporary directory, the manifest (key
    and file hashes) last, then one atomic rename. An existing entry (another process was
    faster) is kept. Failures only warn (caching is an optimisation)."""
    import orbax.checkpoint as ocp

    path = entry.path
    if not writable(path.parent):
        return
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        with _orbax_lock, _quiet(), ocp.StandardCheckpointer() as ckpt:
            ckpt.save(tmp / "entry", variables)
            ckpt.wait_until_finished()
        manifest = {"key": entry.key, "files": _digests(tmp / "entry")}
        (tmp / "entry" / MANIFEST).write_text(json.dumps(manifest))
        with contextlib.suppress(OSError):
            os.rename(tmp / "entry", path)  # fails if another process renamed its entry first
    except Exception as e:
        _warn_once(f"could not cache converted weights at {path} ({_one_line(e)})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
