"""Files in and out of the CLI, for careless inputs and interrupted runs.

    open_image(path)          RGB PIL image: 16-bit and 32-bit integer images scaled to 8 bits,
                              decompression bombs and unreadable files a ValueError
    unique_names(paths)       one output stem per input, unique even for equal stems
    AtomicOutputs(folder)     files written under temporary names, renamed together at the end
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Sequence

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


def open_image(path: str | os.PathLike) -> Image.Image:
    """The image file at `path` as an RGB PIL image (loaded). Grey, palette, alpha and CMYK
    images are converted by PIL; 16-bit (and 32-bit integer) grey images are scaled to 8 bits
    rather than clipped. ValueError naming the file for a missing or unreadable file, a
    floating-point image, or a decompression bomb (more pixels than PIL's limit)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"image file {path!r} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _SIXTEEN_BIT or im.mode == "I":
                return _to_8bit(im).convert("RGB")
            if im.mode == "F":
                raise ValueError("floating-point images are not supported")
            return im.convert("RGB")
    except Image.DecompressionBombError as e:
        raise ValueError(f"{path!r} is too large to open safely ({e})") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{path!r} is not a readable image file ({e})") from e


def unique_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """One output stem per path: the file's stem, or `stem-2`, `stem-3`, ... (in argument
    order) when an earlier path has the same stem; never equal to another path's stem."""
    stems = [Path(p).stem for p in paths]
    taken = set(stems)
    out: list[str] = []
    used: set[str] = set()
    for stem in stems:
        name, k = stem, 1
        while name in used or (name != stem and name in taken):
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        out.append(name)
    return out


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicOutputs:
    """Writes a group of files so that a reader sees all new files or all old ones:

        with AtomicOutputs(folder) as out:
            np.savez_compressed(out.path("x.npz"), ...)   # a temporary name in `folder`
            fig.savefig(out.path("x.png"))
        # here both are renamed into place, with Ctrl-C deferred during the renames

    On an exception (or Ctrl-C) inside the block no final file is touched and the temporary
    files are removed. `path(name)` keeps `name`'s suffix so writers infer the format.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._pending: dict[Path, Path] = {}  # final -> temporary

    def path(self, name: str) -> str:
        final = self.folder / name
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=self.folder)
        os.close(fd)
        self._pending[final] = Path(tmp)
        return tmp

    @property
    def finals(self) -> list[str]:
        return [str(p) for p in self._pending]

    def __enter__(self) -> "AtomicOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for final, tmp in self._pending.items():  # what would make a rename fail
                    if final.is_dir():
                        raise IsADirectoryError(f"cannot write {final}: it is a directory")
                    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() gives
                with _no_interrupt():
                    for final, tmp in self._pending.items():
                        os.replace(tmp, final)
        finally:
            for tmp in self._pending.values():
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)
