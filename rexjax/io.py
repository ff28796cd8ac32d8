"""Files in and out of the CLI, for careless inputs, interrupted runs and concurrent runs.

    display_name(name)        a file name as valid UTF-8 text (undecodable bytes as \\xNN)
    check_image_file(path)    ValueError unless `path` is a regular file (never opens it)
    open_image(path, mode)    RGB (or L, RGBA) PIL image: 16-bit and 32-bit integer images scaled
                              to 8 bits, decompression bombs, unreadable and non-regular files a ValueError
    read_npy(path)            the array of a .npy file as finite f32, its header checked before any data is
                              read (numeric dtypes only, no pickles, a size cap, the file's length)
    read_nifti(path)          the same for a NIfTI volume (.nii, .nii.gz), through nibabel if it is installed
    unique_names(paths)       one output stem per input whose output files collide with no other's
    folder_lock(folder)       an exclusive lock on a folder between processes
    AtomicOutputs(folder)     a group of files that replaces the previous group as one unit
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import hashlib
import math
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


def file_kind(mode: int) -> str:
    """What a file of `os.stat` mode `mode` is, for messages: 'a directory', 'a FIFO (named
    pipe)', ...; 'a regular file' for one."""
    return next((kind for test, kind in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else "not a file")


class NotRegularFile(Exception):
    """`open_regular`'s refusal of a file that is not regular; `kind` says what it is."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def open_regular(path: str | os.PathLike, flags: int = 0) -> int:
    """A read-only, non-blocking descriptor of `path` once it is a regular file, for every reader
    of untrusted files (images, arrays, weights, ONNX models and their external data). A
    device is refused before it is opened (opening one can act); the rest is checked on the
    open descriptor itself, so a file swapped for a FIFO after a look at the path is refused,
    never waited on. A symlink is followed unless `flags` has `os.O_NOFOLLOW`. Raises
    FileNotFoundError, OSError, or NotRegularFile (with what the file is)."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | flags)
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            return fd
        os.close(fd)
    raise NotRegularFile(file_kind(mode))


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a regular file's content, read in 1 MiB steps from an
    `open_regular` descriptor (a FIFO is refused, never waited on). Raises as `open_regular`
    does (FileNotFoundError, OSError, NotRegularFile)."""
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _not_regular(path, mode: int, what: str = "an image file") -> None:
    if not stat.S_ISREG(mode):
        raise ValueError(f"{display_name(path)!r} is {file_kind(mode)}, not {what}")


def check_image_file(path: str | os.PathLike) -> None:
    """ValueError naming `path` unless it is an existing regular file (after symlinks). Only
    stats the path: a FIFO is never opened, so the check cannot block."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise ValueError(f"image file {display_name(path)!r} cannot be read ({e.strerror or e})") from e
    _not_regular(path, mode)


def _open_regular(path: str, what: str) -> int:
    """`open_regular`'s descriptor of `path`; ValueError naming the file and `what` it should be."""
    shown = display_name(path)
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise ValueError(f"{what} {shown!r} does not exist") from None
    except NotRegularFile as e:
        raise ValueError(f"{shown!r} is {e.kind}, not {'an' if what[0] in 'aeiou' else 'a'} {what}") from None
    except OSError as e:
        raise ValueError(f"{shown!r} is not a readable {what} ({e.strerror or e})") from e


def open_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """The image file at `path` as a PIL image of `mode` (RGB, or L / RGBA for grey and RGBA
    models; loaded). Grey, palette, alpha and CMYK images are converted by PIL; 16-bit (and
    32-bit integer) grey images are scaled to 8 bits rather than clipped. ValueError naming the file for a missing or unreadable file, a
    directory, FIFO or device, a floating-point image, or a decompression bomb (more pixels
    than PIL's limit). The file is opened non-blocking and checked on its descriptor, so a
    FIFO put in a file's place is refused, never waited on."""
    path = os.fspath(path)
    shown = display_name(path)
    with os.fdopen(_open_regular(path, "image file"), "rb") as f:
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


MAX_ARRAY_ELEMENTS = 2**28  # elements of one array file (1 GiB as float32)
# The dtypes an array file may hold (kind, item sizes): bool, signed and unsigned integers,
# float16/32/64. Objects (pickles), strings, structured, complex and long double are refused.
_NUMERIC = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
MAX_NPY_HEADER = 10000  # bytes, numpy's own default limit


def _check_declared(shown: str, shape, dtype, max_elements: int) -> int:
    """The element count of an array file's declared `shape` and `dtype`, before any data is
    read; ValueError naming the file for a dtype that is not a real number, an empty array,
    or more than `max_elements` elements."""
    if dtype.names is not None or dtype.subdtype is not None or dtype.itemsize not in _NUMERIC.get(dtype.kind, ()):
        raise ValueError(f"{shown!r} holds {dtype} values; only real numbers are read (bool, int8-64, uint8-64, "
                         "float16/32/64)")
    if any(n < 0 for n in shape):
        raise ValueError(f"{shown!r} declares an invalid shape {tuple(shape)}")
    count = math.prod(shape)
    if count == 0:
        raise ValueError(f"{shown!r} holds an empty array of shape {tuple(shape)}")
    if count > max_elements:
        raise ValueError(f"{shown!r} declares shape {tuple(shape)} ({count} elements), more than the "
                         f"{max_elements} an array file may hold")
    return count


def _finite_f32(shown: str, a: np.ndarray) -> np.ndarray:
    """`a` as C-contiguous float32; ValueError naming the file if any value is NaN or infinite
    (values beyond float32's range become infinite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.ascontiguousarray(a, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise ValueError(f"{shown!r} holds {bad} NaN or infinite value(s) among {x.size} (values beyond float32's "
                         "range count as infinite)")
    return x


def read_npy(path: str | os.PathLike, max_elements: int = MAX_ARRAY_ELEMENTS) -> np.ndarray:
    """The array of the .npy file at `path` -> f32[*shape] (C order, finite), for untrusted files.

    The file is opened non-blocking and checked on its descriptor (a directory or FIFO is
    refused, never waited on); its header (format 1.0 or 2.0, at most MAX_NPY_HEADER bytes) is
    parsed first, and the declared shape and dtype are checked before any data is read: a real
    numeric dtype (bool, int8-64, uint8-64, float16/32/64; never an object array, so no
    pickle is ever loaded), at least one and at most `max_elements` elements, and exactly
    shape x itemsize bytes of data in the file (a truncated file or trailing bytes are
    refused). Fortran order is read as such. The data is then read by
    `np.load(allow_pickle=False)` from the same descriptor. A `.npz` archive is refused (save
    the one array with numpy.save). Every refusal is one ValueError naming the file.
    """
    path = os.fspath(path)
    shown = display_name(path)
    with os.fdopen(_open_regular(path, "array file"), "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ValueError(f"{shown!r} is a .npz archive (a zip of arrays); save the one array to explain with "
                             "numpy.save")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            if version not in _NPY_HEADERS:
                raise ValueError(f"format version {version[0]}.{version[1]} (1.0 and 2.0 are read)")
            shape, fortran, dtype = _NPY_HEADERS[version](f, max_header_size=MAX_NPY_HEADER)
        except (ValueError, TypeError, SyntaxError, OverflowError, EOFError) as e:
            problem = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise ValueError(f"{shown!r} is not a readable .npy file ({problem})") from None
        count = _check_declared(shown, shape, dtype, max_elements)
        data, want = os.fstat(f.fileno()).st_size - f.tell(), count * dtype.itemsize
        if data != want:
            kind = "is truncated" if data < want else "has trailing bytes"
            raise ValueError(f"{shown!r} {kind}: its header declares {dtype} {tuple(shape)} ({want} bytes of data), "
                             f"the file holds {data}")
        f.seek(0)
        try:
            a = np.load(f, allow_pickle=False, max_header_size=MAX_NPY_HEADER)
        except (ValueError, OSError, EOFError) as e:  # the file changed after the checks
            raise ValueError(f"{shown!r} cannot be read ({str(e).splitlines()[0][:200]})") from None
    return _finite_f32(shown, a)


def read_nifti(path: str | os.PathLike, max_elements: int = MAX_ARRAY_ELEMENTS) -> np.ndarray:
    """The volume of the NIfTI-1 file at `path` (`.nii`, or gzipped `.nii.gz`) -> f32[*shape]
    (nibabel's axis order, the header's scaling applied; finite), for untrusted files.

    Needs nibabel (not a dependency of rexjax: `pip install nibabel`). The file is checked on
    its descriptor as `read_npy` does; the header's shape and dtype are checked (real
    numbers, at most `max_elements`) before the data is read, so a gzipped file inflates to
    at most the declared size. Every refusal, nibabel's included, is one ValueError naming
    the file."""
    path = os.fspath(path)
    shown = display_name(path)
    try:
        import nibabel
    except ImportError:
        raise ValueError(f"{shown!r}: reading NIfTI files needs nibabel (pip install nibabel)") from None

    def unreadable(e: Exception) -> ValueError:  # nibabel's and gzip's errors, whatever their class
        why = str(e).splitlines()[0][:200] if str(e) else ""
        return ValueError(f"{shown!r} is not a readable NIfTI file ({type(e).__name__}: {why})")

    with os.fdopen(_open_regular(path, "NIfTI file"), "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.lower().endswith(".gz") else raw
        try:
            holder = nibabel.FileHolder(fileobj=stream)
            image = nibabel.Nifti1Image.from_file_map({"header": holder, "image": holder})
            shape, dtype = image.shape, image.get_data_dtype()
        except Exception as e:
            raise unreadable(e) from None
        _check_declared(shown, shape, dtype, max_elements)
        try:
            a = np.asarray(image.dataobj)
        except Exception as e:
            raise unreadable(e) from None
    return _finite_f32(shown, a)


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
