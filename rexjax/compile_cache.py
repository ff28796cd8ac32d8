"""Compile once per machine: JAX's persistent compilation cache under the rexjax cache directory.

`enable()` points JAX at `<cache_dir()>/xla` (`cache_dir()` is `$REXJAX_CACHE_DIR`, default
`~/.cache/rexjax`, shared with the converted weights) and caches every compiled executable
(no minimum compile time), so a second process with the same model, config and shapes loads
its executables from disk instead of compiling them (JAX keys an entry by the lowered
program, the compile options, the backend and the jax/jaxlib versions).

JAX runs whatever executable a `<key>-cache` file holds, follows symlinks, blocks on a FIFO
and never replaces an entry that fails to load. So before handing JAX the directory:

* it is refused (one warning line, the run compiles uncached) unless only the user can
  change it: every directory on its path, symlinks followed, must belong to the user or root
  and have no group/other write bit (a sticky one such as /tmp is allowed above the cache
  directory), and every symlink on the way must belong to the user or root. Missing
  directories are created mode 0700.
* its entries are scanned (`scan`): symlinks and non-regular files are dropped unopened, and
  a `-cache` entry that JAX's own decompressor cannot read (truncated, corrupt) is dropped,
  so it is compiled and written again once instead of warned about on every run. Content is
  checked once per entry: a stamp file records the scan's start, and only entries changed
  since (inode change time) are read again.

A valid entry put under another entry's name still runs: JAX's entries do not record their
key, and only someone with the user's rights can put one there (the README's threat model).

The `rexjax` CLI calls `enable()` before running a command; `REXJAX_COMPILE_CACHE=0` (or
`false`, `no`, `off`) switches it off, and so does a compilation cache directory the user set
for JAX already (`JAX_COMPILATION_CACHE_DIR`), which is left as it is, unchecked. Library
users opt in by calling `enable()` themselves.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Optional

import jax

from rexjax.models.cache import cache_dir

try:  # the decompressor JAX reads entries with (zstd or zlib, whichever JAX picked)
    from jax._src.compilation_cache import decompress_executable as _decompress
except ImportError:  # a JAX without it: entries are checked for their file type only
    _decompress = None

ENV_SWITCH = "REXJAX_COMPILE_CACHE"
_OFF = ("0", "false", "no", "off")
STAMP = ".rexjax-scanned"  # mtime: when the last complete scan started (filesystem clock)
_CLOCK_SLACK_NS = 2_000_000_000  # coarse filesystem timestamps: re-read entries this close
_ENTRY_SUFFIXES = ("-cache", "-atime")  # the names JAX's file cache reads
_MAX_SYMLINKS = 40


def compile_cache_dir() -> Path:
    """`<rexjax cache dir>/xla`: where `enable()` keeps compiled executables."""
    return cache_dir() / "xla"


def requested() -> bool:
    """False when `$REXJAX_COMPILE_CACHE` is one of 0/false/no/off (any case), else True."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in _OFF


def untrusted(path: os.PathLike) -> Optional[str]:
    """Why someone other than the user (or root) could change what JAX reads under `path`,
    or None. Walks the path as the kernel resolves it, following symlinks; the first missing
    component ends the walk (`enable` creates the rest, mode 0700)."""
    uid = os.geteuid()
    todo = [p for p in os.path.join(os.getcwd(), os.fspath(path)).split(os.sep) if p and p != "."]
    here, links = os.sep, 0
    while True:
        st = os.stat(here)
        if st.st_uid not in (uid, 0):
            return f"{here} belongs to another user (uid {st.st_uid})"
        sticky_ancestor = todo and st.st_mode & stat.S_ISVTX
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_ancestor:
            return f"{here} is writable by its group or other users (chmod go-w {here})"
        if not todo:
            return None
        name = todo.pop(0)
        if name == "..":
            here = os.path.dirname(here)
            continue
        step = os.path.join(here, name)
        try:
            st = os.lstat(step)
        except FileNotFoundError:
            return None
        if not stat.S_ISLNK(st.st_mode):
            here = step
            continue
        if st.st_uid not in (uid, 0):
            return f"{step} is a symlink belonging to another user (uid {st.st_uid})"
        links += 1
        if links > _MAX_SYMLINKS:
            return f"{path} has too many levels of symbolic links"
        target = os.readlink(step)
        todo = [p for p in target.split(os.sep) if p and p != "."] + todo
        if os.path.isabs(target):
            here = os.sep


def _make_private_dirs(path: Path) -> None:
    """Creates `path` and its missing parents, each mode 0700 (not the umask's default)."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        path = path.parent
    for p in reversed(missing):
        os.mkdir(p, 0o700)


def _fs_now(directory: Path) -> int:
    """The filesystem's clock (ns), read from a probe file, which also proves `directory`
    takes new files (an existing read-only directory is refused too)."""
    fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        os.remove(probe)


def _readable(entry: os.DirEntry, decompress: Callable[[bytes], bytes]) -> bool:
    """True when JAX's decompressor reads the whole entry: a compile time and a program."""
    try:
        with open(entry.path, "rb") as f:
            return len(decompress(f.read())) > 4
    except Exception:  # noqa: BLE001 -- zlib.error, zstd errors, MemoryError: all mean unusable
        return False


def _drop(entry: os.DirEntry) -> None:
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path)
    else:
        os.unlink(entry.path)


def scan(directory: Path, started_ns: int, decompress: Optional[Callable[[bytes], bytes]] = None) -> list[str]:
    """Drops what JAX must not open in `directory` and returns one word per dropped entry.

    Symlinks and non-regular files go unopened (a symlink could point anywhere, a FIFO blocks
    the reader); directories are dropped where JAX expects an entry; a `-cache` entry that
    `decompress` (default: JAX's) cannot read goes. Only entries whose inode changed since
    the last complete scan are read; `started_ns` (filesystem clock) becomes the new stamp.
    Raises OSError when an entry cannot be dropped.
    """
    decompress = decompress or _decompress
    try:
        st = os.lstat(directory / STAMP)
        last = st.st_mtime_ns if stat.S_ISREG(st.st_mode) else None
    except FileNotFoundError:
        last = None
    dropped = []
    with os.scandir(directory) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            is_entry = entry.name.endswith(_ENTRY_SUFFIXES) or entry.name == STAMP
            if stat.S_ISLNK(st.st_mode):
                why = "symlink"
            elif stat.S_ISDIR(st.st_mode):
                why = "directory" if is_entry else None
            elif not stat.S_ISREG(st.st_mode):
                why = "not a regular file"
            elif (
                entry.name.endswith("-cache")
                and decompress is not None
                and (last is None or st.st_ctime_ns >= last - _CLOCK_SLACK_NS)
                and not _readable(entry, decompress)
            ):
                why = "unreadable"
            else:
                why = None
            if why:
                _drop(entry)
                dropped.append(why)
    fd = os.open(directory / STAMP, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    os.close(fd)
    os.utime(directory / STAMP, ns=(started_ns, started_ns), follow_symlinks=False)
    return dropped


def enable(path: Optional[os.PathLike] = None) -> Optional[Path]:
    """Turns on JAX's persistent compilation cache at `path` (default `compile_cache_dir()`).

    Returns the directory in use: None when switched off by `$REXJAX_COMPILE_CACHE`, or when
    the directory is refused (others could change it, it cannot be written, an unusable
    entry cannot be removed: one warning line; compiling still works); JAX's own when one
    was set already (kept with its settings, not checked). Dropped entries are named in one
    warning line. Call it before the first compilation: JAX decides once per process whether
    the cache is used.
    """
    if not requested():
        return None
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    target = Path(path) if path is not None else compile_cache_dir()
    step = "check"
    try:  # caching is an optimisation: an unusable cache dir is one warning, not an error
        why = untrusted(target)
        if why:
            warnings.warn(f"compilation cache disabled: {why}")
            return None
        step = "write to"
        _make_private_dirs(target)
        started = _fs_now(target)
        step = "clean"
        dropped = scan(target, started)
    except OSError as e:
        warnings.warn(f"compilation cache disabled: cannot {step} {target} ({e.strerror or e})")
        return None
    if dropped:
        n, kinds = len(dropped), ", ".join(sorted(set(dropped)))
        warnings.warn(f"compilation cache: dropped {n} unusable {'entry' if n == 1 else 'entries'} from {target} ({kinds})")
    jax.config.update("jax_compilation_cache_dir", str(target))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return target
