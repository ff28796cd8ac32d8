"""Files in and out of the CLI, for careless inputs, interrupted runs and concurrent runs.

    display_name(name)        a file name as valid UTF-8 text (undecodable bytes as \\xNN)
    check_image_file(path)    ValueError unless `path` is a regular file (never opens it)
    open_image(path, mode)    RGB (or L, RGBA) PIL image: 16-bit and 32-bit integer images scaled
                              to 8 bits, decompression bombs, unreadable and non-regular files a ValueError
    unique_names(paths)       one output stem per input whose output files collide with no other's
    folder_lock(folder)       an exclusive lock on a folder between processes
    AtomicOutputs(folder)     a group of files that replaces the previous group as one unit
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _to_8bit(im: Image.Image) -> Image.Image:
    """Integer images with more than 8 bits per sample -> 'L' (x / 257, so 65535 -> 255)."""
    a = np.asarray(im)
    if im.mode == "I" and a.size and a.max() <= 255 and a.min() >= 0:
        return Image.fromarray(a.astype(np.uint8), "L")  # an 8-bit image stored as int32
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise ValueError(f"{im.mode} image values span [{a.min()}, {a.max()}], outside 16-bit [0, 65535]")
    return Image.fromarray(np.rint(a.astype(np.float64) / 257.0).astype(np.uint8), "L")


def display_name(name: str | os.PathLike) -> str:
    """`name` as valid UTF-8 text: a file name whose bytes are not UTF-8 (Python holds them as
    lone surrogates) gets each undecodable byte written as `\\xNN`, so b"caf\\xff.png" becomes
    the 11 characters `caf\\xff.png`. Valid names come back unchanged. JSON lines, messages,
    figure titles and output names use it: lone surrogates are not valid in any of them."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _not_regular(path, mode: int) -> None:
    for test, kind in _KINDS:
        if test(mode):
            raise ValueError(f"{display_name(path)!r} is {kind}, not an image file")


def check_image_file(path: str | os.PathLike) -> None:
    """ValueError naming `path` unless it is an existing regular file (after symlinks). Only
    stats the path: a FIFO is never opened, so the check cannot block."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ValueError(f"image file {display_name(path)!r} cannot be read ({e.strerror or e})") from e
    _not_regular(path, mode)


def open_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """The image file at `path` as a PIL image of `mode` (RGB, or L / RGBA for grey and RGBA
    models; loaded). Grey, palette, alpha and CMYK images are converted by PIL; 16-bit (and
    32-bit integer) grey images are scaled to 8 bits rather than clipped. ValueError naming the file for a missing or unreadable file, a
    directory, FIFO or device, a floating-point image, or a decompression bomb (more pixels
    than PIL's limit). The file is opened non-blocking and checked on its descriptor, so a
    FIFO put in a file's place is refused, never waited on."""
    path = os.fspath(path)
    shown = display_name(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueError(f"image file {shown!r} does not exist") from None
    except OSError as e:
        raise ValueError(f"{shown!r} is not a readable image file ({e.strerror or e})") from e
    try:
        _not_regular(path, os.fstat(fd).st_mode)
    except ValueError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        try:
            with Image.open(f) as im:
                im.load()
                if im.mode in _SIXTEEN_BIT or im.mode == "I":
                    return _to_8bit(im).convert(mode)
                if im.mode == "F":
                    raise ValueError("floating-point images are not supported")
                return im.convert(mode)
        except Image.DecompressionBombError as e:
            raise ValueError(f"{shown!r} is too large to open safely ({e})") from e
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{shown!r} is not a readable image file ({e})") from e


def unique_names(paths: Sequence[str | os.PathLike],
                 outputs: Callable[[str], Iterable[str]] = lambda name: (name,)) -> list[str]:
    """One output name per path such that the files `outputs(name)` of different paths never
    coincide: the file's stem (as `display_name`), or `stem-2`, `stem-3`, ... (in argument
    order) when an earlier path's files take one of its files. `outputs` lists every file a
    name produces, derived ones included (`rexjax explain --multiple` writes `p.png` and
    `p_multiple.png` for `p`, so a later `p_multiple.jpg` becomes `p_multiple-2`). A renamed
    path's files never take a file another path would get under its own stem."""
    stems = [Path(display_name(p)).stem for p in paths]
    own = {f for stem in stems for f in outputs(stem)}
    used: set[str] = set()
    names: list[str] = []
    for stem in stems:
        name, k = stem, 1
        while used.intersection(outputs(name)) or (name != stem and own.intersection(outputs(name))):
            k += 1
            name = f"{stem}-{k}"
        used.update(outputs(name))
        names.append(name)
    return names


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Defers Ctrl-C (SIGINT) until the block ends (main thread only; a no-op elsewhere).

    At the end a deferred Ctrl-C goes to the handler that was installed before: a Python
    handler is called, the default action (SIG_DFL: the process ends) is taken by raising the
    signal again, an ignored one (SIG_IGN) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []
    previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])
        elif caught and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)


LOCK_FILE = ".rexjax.lock"


def _lock_descriptor(path: str, flags: int) -> int:
    """A descriptor of `path` holding an exclusive flock (waits; Ctrl-C interrupts the wait)."""
    fd = os.open(path, flags | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Holds an exclusive lock on `folder` for the block, so that writers of one folder in
    different processes (or threads) take turns. The lock is a flock on the folder's own
    descriptor: nothing is left in the folder, and the kernel releases it when the process
    dies (no stale locks). Where the file system refuses flock on a directory (NFS), the lock
    file `folder/.rexjax.lock` is locked instead."""
    try:
        fd = _lock_descriptor(os.fspath(folder), os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        fd = _lock_descriptor(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def _set_aside(final: Path, kept: Path) -> None:
    """Keeps the current `final` as `kept`: a hard link (`final` stays in place), or, where
    links are refused, a rename."""
    try:
        os.link(final, kept, follow_symlinks=False)
    except OSError:
        os.rename(final, kept)


class AtomicOutputs:
    """A group of files (one image's results) that replaces the previous group as one unit:

        with AtomicOutputs(folder) as out:
            np.savez_compressed(out.path("x.npz"), ...)   # written in a staging folder
            fig.savefig(out.path("x.png"))
        # here both are moved into `folder`, under `folder_lock`, with Ctrl-C deferred

    Either every file of the group is the new one, or (on any failure) every file is as it
    was: an exception or Ctrl-C inside the block touches no final file; a move that fails
    half-way (a file that cannot be replaced) puts back the files already moved and raises an
    OSError naming the file. Processes writing groups to one folder take turns (the lock), so
    two runs with the same names never leave one run's `x.npz` beside the other's `x.png`.

    The staging folder is a hidden `.rexjax-stage-*` folder inside `folder` (same file system:
    the moves are renames), removed at the end; `path(name)` keeps `name` (a plain file name)
    so writers infer the format from its suffix, and files get the permissions `open` gives.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._stage: Path | None = None
        self._names: list[str] = []
        self._keep_stage = False

    def path(self, name: str) -> str:
        """Where to write the file that becomes `folder/name`."""
        if name in ("", ".", "..") or os.path.basename(name) != name or name in self._names:
            raise ValueError(f"output name {name!r} must be a new plain file name")
        if self._stage is None:
            self._stage = Path(tempfile.mkdtemp(prefix=".rexjax-stage-", dir=self.folder))
        self._names.append(name)
        return str(self._stage / name)

    @property
    def finals(self) -> list[str]:
        return [str(self.folder / name) for name in self._names]

    def __enter__(self) -> "AtomicOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self._names:
                for final in map(Path, self.finals):  # the common failure, before anything moves
                    if final.is_dir():
                        raise IsADirectoryError(f"cannot write {final}: it is a directory")
                with folder_lock(self.folder), _no_interrupt():
                    self._move_all()
        finally:
            if self._stage is not None and not self._keep_stage:
                shutil.rmtree(self._stage, ignore_errors=True)

    def _move_all(self) -> None:
        kept_dir = Path(tempfile.mkdtemp(prefix="previous-", dir=self._stage))
        moved: list[tuple[Path, Path | None]] = []  # (final, its previous file set aside, or None)
        for i, name in enumerate(self._names):
            final, kept = self.folder / name, kept_dir / str(i)
            try:
                if os.path.lexists(final):
                    _set_aside(final, kept)
                    moved.append((final, kept))
                else:
                    moved.append((final, None))
                os.replace(self._stage / name, final)
            except OSError as err:
                self._put_back(moved)
                raise type(err)(err.errno, f"cannot write {final} ({err.strerror or err}); "
                                           "the previous files of the group are unchanged") from err

    def _put_back(self, moved: list[tuple[Path, Path | None]]) -> None:
        """Undoes `_move_all`'s moves, last first; OSError naming any file it cannot restore
        (its previous version is then left in the staging folder, which is kept)."""
        lost = []
        for final, kept in reversed(moved):
            try:
                if kept is None:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(final)
                else:
                    os.replace(kept, final)
            except OSError as e:
                lost.append(f"{final} (previous version kept as {kept}: {e.strerror or e})")
        if lost:
            self._keep_stage = True
            raise OSError(errno.EIO, "could not restore " + "; ".join(lost))
