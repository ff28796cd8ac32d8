"""Pure-python (no torch) reader of torch `.pth` state_dict files, both formats.

* **zip** (what `torch.save` writes since torch 1.6): `<archive>/data.pkl` holds the object
  pickle; tensors reference storages by persistent id `('storage', StorageType, key,
  location, numel)`; storage `key` is the raw little-endian file `<archive>/data/<key>`.
* **legacy** (`_use_new_zipfile_serialization=False`, torch < 1.6): a stream of pickles:
  magic number, protocol version (1001), sys-info dict, the object pickle (persistent ids
  `('storage', StorageType, root_key, location, numel, view_metadata)`), the list of
  storage keys; then, for each key in that order, an int64 element count followed by the
  raw storage bytes.

Threat model (files come from anywhere): reading a file never executes code, never
mutates anything outside the objects it creates, and never allocates much more than the
tensors it declares. Concretely:

* Unpickling runs on the pure-python unpickler with a closed vocabulary: `find_class`
  resolves only the torch tensor/parameter rebuild functions, the storage types, torch
  dtypes and `collections.OrderedDict`, and returns a *fresh* object (or a plain
  function) per call; `REDUCE` may call only those functions; `BUILD` is accepted only on
  a dict created by this load (torch's `OrderedDict._metadata`) and its state is dropped;
  `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, the `EXT` codes and protocol 5's buffers
  (`BYTEARRAY8` would allocate its declared length before reading it) are refused. Refusals
  raise `UnsafePickleError`.
* Nothing unbounded is hashed or walked: dict keys and set items must be strings or
  integers *before* they are hashed (a tuple key could be a DAG whose hash visits 2^100
  nodes, or a chain deep enough to overflow the C stack); every container the pickle
  builds is at most `MAX_NESTING` deep, and a list, dict or set may not grow once it sits
  inside another container (so the depth recorded when it was nested stays true); the
  flattened tree has at most `MAX_OPS` entries and names of at most `MAX_NAME_CHARS`.
* Limits: a pickle may execute at most `MAX_OPS` opcodes and no object may claim more
  bytes than the file still holds; the zip's `data.pkl` is at most `MAX_PICKLE_BYTES`;
  every storage member (or legacy storage record) must hold exactly the bytes its
  persistent id declares, checked *before* it is read; nested dicts deeper than
  `MAX_DEPTH` and tensors of more than `MAX_NDIM` dimensions are refused; the tensors
  together may materialise at most `MAX_COPIES` x the bytes of their storages (tied
  weights share a storage; one storage rebuilt thousands of times is refused).
* Zips are parsed by this module, not by `zipfile` (which reads a whole central directory
  and builds an object per record before any check, and whose `ZipFile.__del__` swallows a
  Ctrl-C landing in it): the end record may declare at most `MAX_MEMBERS` members in at
  most `MAX_DIRECTORY_BYTES`, the directory must hold exactly those and end where the end
  record begins. Members are stored or deflated only; a deflated member may declare at
  most `MAX_INFLATE_RATIO` x its compressed size and is inflated in `CHUNK`-byte steps,
  refused as soon as its output passes its declared size (the header's word is never
  trusted), and every member's CRC-32 is checked.
* Structure before content (`check_structure`): a zip's members account for its bytes (no
  more than a header's worth outside them, no overlap), members the pickle does not use
  are small records, and a legacy file is no longer than its storages; all without reading
  a storage. `read_checked` (the weights cache's one read) checks the structure from the
  descriptor it then reads the whole file from, so the bytes a caller hashes are the
  bytes it parses (`load_state_dict(path, data)`).
* Only regular files are read: a directory, FIFO, socket or device is refused on the open
  descriptor, never read. Large reads, inflation, CRCs and tensor copies run in
  `CHUNK`-byte steps, so Ctrl-C is handled within a step.
* Tensor views are validated before any `as_strided`: integer, non-negative offset, sizes
  and strides, as many strides as sizes, the last element inside the storage, and no view
  (zero strides included) with more elements than its storage holds.

Every failure is a `ValueError` (or its subclass `UnsafePickleError`) whose message names
the file and the problem.
"""

from __future__ import annotations

import collections
import errno
import io
import math
import os
import pickle
import reprlib
import stat
import struct
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Mapping

import ml_dtypes
import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

MAX_OPS = 500_000  # opcodes per pickle (~36 per tensor: Lite0's 296 tensors take 10 696)
MAX_PICKLE_BYTES = 64 << 20  # zip data.pkl
MAX_INFLATE_RATIO = 100  # uncompressed / compressed size of a deflated zip member
MAX_DEPTH = 16  # nesting of dicts in the object pickle
MAX_NESTING = 64  # nesting of any containers the pickle builds (a tensor's arguments: 3)
MAX_NDIM = 32  # dimensions of one tensor
MAX_NAME_CHARS = 4096  # a flattened state_dict name ('layer1.0.conv1.weight')
MAX_COPIES = 4  # bytes materialised by all tensors / bytes of their storages (+ 1 MiB)
MAX_RECORD_BYTES = 1 << 20  # a zip member that is no storage ('byteorder', 'version')
MAX_MEMBERS = 1 << 15  # zip members (a tensor takes >= 25 opcodes: MAX_OPS allows ~20 000 storages)
MAX_DIRECTORY_BYTES = 4 << 20  # a zip's central directory (torch's take 70-100 bytes per member)
ZIP_SLACK = 1024  # bytes of headers per zip member (local, central, descriptor)
CHUNK = 1 << 20  # bytes read or inflated per step
_KEY_TYPES = (str, int)  # dict keys / set items a state_dict file may hold

# torch storage class name / dtype name -> little-endian numpy dtype
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
TORCH_DTYPES: dict[str, np.dtype] = {
    "float32": STORAGE_DTYPES["FloatStorage"],
    "float": STORAGE_DTYPES["FloatStorage"],
    "float64": STORAGE_DTYPES["DoubleStorage"],
    "double": STORAGE_DTYPES["DoubleStorage"],
    "float16": STORAGE_DTYPES["HalfStorage"],
    "half": STORAGE_DTYPES["HalfStorage"],
    "bfloat16": STORAGE_DTYPES["BFloat16Storage"],
    "int64": STORAGE_DTYPES["LongStorage"],
    "long": STORAGE_DTYPES["LongStorage"],
    "int32": STORAGE_DTYPES["IntStorage"],
    "int": STORAGE_DTYPES["IntStorage"],
    "int16": STORAGE_DTYPES["ShortStorage"],
    "int8": STORAGE_DTYPES["CharStorage"],
    "uint8": STORAGE_DTYPES["ByteStorage"],
    "bool": STORAGE_DTYPES["BoolStorage"],
}
_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother = 3, 60, 60


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The file asks for something a state_dict never needs (possibly malicious): a global
    outside the allow-list, or an opcode that builds or mutates arbitrary objects."""


@dataclass(frozen=True)
class _StorageType:
    """`torch.<X>Storage`, as handed out by find_class (a fresh instance per lookup)."""

    name: str


@dataclass(frozen=True)
class _TorchDType:
    """`torch.<dtype>`, as handed out by find_class (a fresh instance per lookup)."""

    name: str


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    view: tuple[str, int, int] | None = None  # legacy views: (view_key, offset, size)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: np.dtype


def _int(value: Any, what: str) -> int:
    if type(value) is not int:  # bools, floats, None, huge objects: not a torch int
        raise ValueError(f"{what} is {_short.repr(value)}, not an integer")
    return value


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > MAX_NDIM:
        raise ValueError(f"{what} must be a tuple of at most {MAX_NDIM} integers, got {_short.repr(value)}")
    return tuple(_int(v, what) for v in value)


def _tensor_ref(storage, storage_offset, size, stride, dtype: np.dtype | None) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise ValueError(f"tensor storage is {type(storage).__name__}, not a storage")
    return _check_view(_TensorRef(storage, _int(storage_offset, "storage offset"), _ints(size, "tensor size"),
                                  _ints(stride, "tensor stride"), storage.dtype if dtype is None else dtype))


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    return _tensor_ref(storage, storage_offset, size, stride, None)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, hooks, dtype, *_):
    if not isinstance(dtype, _TorchDType):
        raise ValueError(f"tensor dtype {_short.repr(dtype)} is not a torch dtype")
    return _tensor_ref(storage, storage_offset, size, stride, TORCH_DTYPES[dtype.name])


def _rebuild_parameter(data, requires_grad=False, hooks=None, *_):
    return data


def _ordered_dict(*args) -> collections.OrderedDict:
    if args:
        raise ValueError("OrderedDict rebuilt with arguments")
    return collections.OrderedDict()


_FUNCTIONS: dict[tuple[str, str], Callable] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
}
_CALLABLE = frozenset(map(id, _FUNCTIONS.values()))


def _view_elements(st: _Storage, dtype: np.dtype) -> int:
    """Elements of `dtype` visible through storage `st` (its legacy view, if any)."""
    count = st.view[2] if st.view is not None else st.numel
    nbytes = count * st.dtype.itemsize
    if nbytes % dtype.itemsize:
        raise ValueError(f"storage {st.key!r} of {nbytes} bytes is not a whole number of {dtype} elements")
    return nbytes // dtype.itemsize


def _check_view(ref: _TensorRef) -> _TensorRef:
    """`ref` if its (offset, size, stride) stays inside its storage, else ValueError."""
    where = f"tensor view (offset {ref.offset}, size {ref.size}, stride {ref.stride})"
    if len(ref.size) != len(ref.stride):
        raise ValueError(f"{where}: {len(ref.size)} sizes but {len(ref.stride)} strides")
    if ref.offset < 0 or min(ref.size, default=0) < 0 or min(ref.stride, default=0) < 0:
        raise ValueError(f"{where}: negative offset, size or stride")
    available = _view_elements(ref.storage, ref.dtype)
    numel = math.prod(ref.size)
    if numel == 0:
        if max(ref.size, default=0) > 1 << 31:
            raise ValueError(f"{where}: a dimension over 2^31")
        return ref
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if numel > available or last >= available:
        raise ValueError(f"{where} needs {max(numel, last + 1)} elements, storage {ref.storage.key!r} has {available}")
    return ref


def _refuse(what: str) -> Callable[[Any], None]:
    def op(self) -> None:
        raise UnsafePickleError(f"refusing pickle opcode {what}: a state_dict file never needs it")

    return op


def _counted(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    def op(self) -> None:
        self.ops += 1
        if self.ops > MAX_OPS:
            raise ValueError(f"pickle runs more than {MAX_OPS} opcodes")
        fn(self)

    return op


class _Opcodes(dict):
    """The dispatch table; a byte that is no pickle opcode is a clear ValueError."""

    def __missing__(self, code: int):
        raise ValueError(f"byte 0x{code:02x} is not a pickle opcode (not a torch file?)")


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-python unpickler: per-opcode control
    def __init__(self, file: BinaryIO, persistent_load: Callable[[Any], Any] | None = None):
        super().__init__(file)
        self._persistent = persistent_load
        self.ops = 0
        self._own_dicts: dict[int, collections.OrderedDict] = {}  # id -> dict (kept alive: ids stay unique)
        self._depth: dict[int, int] = {}  # id(container) -> nesting depth, when over 1
        self._nested: set[int] = set()  # ids of containers that sit inside another one

    def _nest(self, container: Any, items, fresh: bool) -> Any:
        """Records that `items` now sit inside `container` (`fresh`: built just now, so a
        record left by a freed object with the same id is dropped) and returns `container`.
        ValueError beyond `MAX_NESTING`, or when a list/dict/set grows after it was nested
        (its parents' recorded depths would be stale; only cyclic pickles do that)."""
        cid = id(container)
        if fresh:
            self._depth.pop(cid, None)
            self._nested.discard(cid)
        elif cid in self._nested:
            raise ValueError("the pickle fills a container after nesting it in another (a cycle?): a state_dict never does")
        depth = self._depth.get(cid, 1)
        for item in items:
            if isinstance(item, (tuple, list, dict, set, frozenset)):
                self._nested.add(id(item))
                depth = max(depth, self._depth.get(id(item), 1) + 1)
        if depth > MAX_NESTING:
            raise ValueError(f"containers nested more than {MAX_NESTING} deep")
        if depth > 1:
            self._depth[cid] = depth
        return container

    def _keys(self, keys, what: str):
        """`keys`, once each is a string or an integer (checked before anything hashes them)."""
        for key in keys:
            if type(key) not in _KEY_TYPES:
                raise ValueError(f"{what} of type {type(key).__name__}: a state_dict's keys are strings or integers")
        return keys

    def load_tuple(self) -> None:
        items = self.pop_mark()
        self.append(self._nest(tuple(items), items, True))

    def load_tuple1(self) -> None:
        self.stack[-1] = self._nest((self.stack[-1],), self.stack[-1:], True)

    def load_tuple2(self) -> None:
        self.stack[-2:] = [self._nest(tuple(self.stack[-2:]), self.stack[-2:], True)]

    def load_tuple3(self) -> None:
        self.stack[-3:] = [self._nest(tuple(self.stack[-3:]), self.stack[-3:], True)]

    def load_empty_list(self) -> None:
        self.append(self._nest([], (), True))

    def load_list(self) -> None:
        items = self.pop_mark()
        self.append(self._nest(items, items, True))

    def load_empty_dictionary(self) -> None:
        self.append(self._nest({}, (), True))

    def load_dict(self) -> None:
        items = self.pop_mark()
        keys, values = self._keys(items[0::2], "dict key"), items[1::2]
        self.append(self._nest(dict(zip(keys, values, strict=True)), values, True))

    def load_empty_set(self) -> None:
        self.append(self._nest(set(), (), True))

    def load_frozenset(self) -> None:
        items = self._keys(self.pop_mark(), "set item")
        self.append(self._nest(frozenset(items), (), True))

    def load_append(self) -> None:
        value = self.stack.pop()
        self._nest(self.stack[-1], (value,), False).append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._nest(self.stack[-1], items, False).extend(items)

    def load_setitem(self) -> None:
        value, key = self.stack.pop(), self.stack.pop()
        self._keys((key,), "dict key")
        self._nest(self.stack[-1], (value,), False)[key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        keys, values = self._keys(items[0::2], "dict key"), items[1::2]
        self._nest(self.stack[-1], values, False).update(zip(keys, values, strict=True))

    def load_additems(self) -> None:
        items = self._keys(self.pop_mark(), "set item")
        self._nest(self.stack[-1], (), False).update(items)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _FUNCTIONS:
            return _FUNCTIONS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name in TORCH_DTYPES:
            return _TorchDType(name)
        raise UnsafePickleError(
            f"refusing to unpickle global {_short.repr(module)[1:-1]}.{_short.repr(name)[1:-1]}: a state_dict "
            "file may only contain tensors, storages and OrderedDicts"
        )

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise ValueError(f"unexpected persistent id {_short.repr(pid)}")
        return self._persistent(pid)

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if id(func) not in _CALLABLE or not isinstance(args, tuple):
            raise UnsafePickleError(f"refusing to call {_short.repr(func)}: only torch's tensor rebuild functions may be called")
        self.stack[-1] = func(*args)
        if func is _ordered_dict:
            self._nest(self.stack[-1], (), True)
        if isinstance(self.stack[-1], collections.OrderedDict):
            self._own_dicts[id(self.stack[-1])] = self.stack[-1]

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if id(inst) not in self._own_dicts:
            raise UnsafePickleError(f"refusing BUILD on {type(inst).__name__}: only a state_dict's own OrderedDict may carry state")
        # torch's OrderedDict `_metadata` (module versions) is not needed: dropped.

    dispatch = _Opcodes({code: _counted(fn) for code, fn in pickle._Unpickler.dispatch.items()})
    for _op, _fn in (
        ("REDUCE", load_reduce), ("BUILD", load_build), ("TUPLE", load_tuple), ("TUPLE1", load_tuple1),
        ("TUPLE2", load_tuple2), ("TUPLE3", load_tuple3), ("EMPTY_LIST", load_empty_list), ("LIST", load_list),
        ("EMPTY_DICT", load_empty_dictionary), ("DICT", load_dict), ("EMPTY_SET", load_empty_set),
        ("FROZENSET", load_frozenset), ("APPEND", load_append), ("APPENDS", load_appends),
        ("SETITEM", load_setitem), ("SETITEMS", load_setitems), ("ADDITEMS", load_additems),
    ):
        dispatch[getattr(pickle, _op)[0]] = _counted(_fn)
    # BYTEARRAY8 allocates its declared length before reading a byte of it (2^60 fits the
    # 8-byte field); protocol-5 buffers are never written by torch.
    for _op in ("INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "BYTEARRAY8", "NEXT_BUFFER",
                "READONLY_BUFFER"):
        dispatch[getattr(pickle, _op)[0]] = _refuse(_op)
    del _op, _fn


class _BoundedReader:
    """File-like view of `f` that refuses any read past `size` bytes (a pickle declaring a
    2^60-byte object fails here instead of allocating)."""

    def __init__(self, f: BinaryIO, size: int):
        self._f, self.left = f, size

    def _take(self, n: int) -> int:
        if n is None or n < 0 or n > self.left:
            raise ValueError(f"the file declares a {n}-byte object but holds only {self.left} more bytes")
        self.left -= n
        return n

    def read(self, n: int) -> bytes:
        return self._f.read(self._take(n))

    def readinto(self, buf) -> int:
        self._take(len(buf))
        return self._f.readinto(buf)

    def readline(self) -> bytes:
        line = self._f.readline(min(self.left, 1 << 20))
        self.left -= len(line)
        return line

    def take(self, n: int) -> bytes | bytearray | memoryview:
        """`n` bytes (fewer at the file's end), as `_read_exact` gives them."""
        return _read_exact(self._f, self._take(n))


class _Buffer:
    """A read-only file over bytes in memory, with what the parsers use (seek, tell, read,
    readinto, readline) and `view`, a slice without a copy: a file read into memory once
    (`read_checked`) is parsed without a second copy of its storages."""

    def __init__(self, data: bytes | bytearray | memoryview):
        self._data, self._pos = memoryview(data).toreadonly(), 0

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = offset + (0, self._pos, len(self._data))[whence]
        if pos < 0:
            raise OSError(errno.EINVAL, "seek before the start of the data")
        self._pos = pos
        return pos

    def tell(self) -> int:
        return self._pos

    def view(self, n: int = -1) -> memoryview:
        end = len(self._data) if n is None or n < 0 else min(self._pos + n, len(self._data))
        out = self._data[self._pos : end]
        self._pos += len(out)
        return out

    def read(self, n: int = -1) -> bytes:
        return bytes(self.view(n))

    def readinto(self, buf) -> int:
        part = self.view(len(buf))
        buf[: len(part)] = part
        return len(part)

    def readline(self, limit: int = -1) -> bytes:
        head = self._data[self._pos : len(self._data) if limit is None or limit < 0 else self._pos + limit]
        end = bytes(head).find(b"\n")
        return self.read(len(head) if end < 0 else end + 1)


def _read_exact(f: BinaryIO, n: int) -> bytes | bytearray | memoryview:
    """`n` bytes from `f` (fewer at its end; callers check the length): a view of a
    `_Buffer`'s memory, or read `CHUNK` bytes at a time into one buffer (Ctrl-C is handled
    between steps; one read of a whole storage would hold it off until it returns). Callers
    bound `n` by the file's size first."""
    if isinstance(f, _Buffer):
        return f.view(n)
    out, got = bytearray(n), 0
    with memoryview(out) as view:
        while got < n:
            step = f.readinto(view[got : got + CHUNK])
            if not step:
                break
            got += step
    del out[got:]
    return out


def _crc32(data: bytes | bytearray | memoryview) -> int:
    """The CRC-32 of `data`, `CHUNK` bytes per call (Ctrl-C is handled between calls)."""
    crc = 0
    with memoryview(data) as view:
        for at in range(0, len(view), CHUNK):
            crc = zlib.crc32(view[at : at + CHUNK], crc)
    return crc


def _storage_from_pid(pid: Any) -> _Storage:
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise ValueError(f"unsupported persistent id {_short.repr(pid)}")
    stype, key, numel = pid[1], pid[2], _int(pid[4], "storage element count")
    if not isinstance(stype, _StorageType):
        raise ValueError(f"unsupported storage type {_short.repr(stype)}")
    if not isinstance(key, str) or not 0 < len(key) <= 64 or numel < 0:
        raise ValueError(f"bad storage key or size in persistent id {_short.repr(pid)}")
    view = None
    if len(pid) >= 6 and pid[5] is not None:
        if not (isinstance(pid[5], tuple) and len(pid[5]) == 3 and isinstance(pid[5][0], str)):
            raise ValueError(f"bad storage view {_short.repr(pid[5])}")
        _, offset, size = pid[5]
        offset, size = _int(offset, "storage view offset"), _int(size, "storage view size")
        if offset < 0 or size < 0 or offset + size > numel:
            raise ValueError(f"storage view [{offset}, {offset + size}) outside storage {key!r} of {numel} elements")
        view = (pid[5][0], offset, size)
    return _Storage(key, STORAGE_DTYPES[stype.name], numel, view)


def _recording_persistent_load(storages: dict[str, _Storage]) -> Callable[[Any], _Storage]:
    """The unpickler's `persistent_load`: each persistent id parsed by `_storage_from_pid`
    and recorded in `storages` by key; ValueError if one key is declared with two sizes."""

    def persistent(pid: Any) -> _Storage:
        st = _storage_from_pid(pid)
        if storages.setdefault(st.key, st).nbytes != st.nbytes:
            raise ValueError(f"storage {st.key!r} declared with two sizes")
        return st

    return persistent


def _materialise(name: str, ref: _TensorRef, data: Mapping[str, bytes | bytearray | memoryview]) -> np.ndarray:
    """The tensor `ref` (validated by `_check_view`) as a C-contiguous native-order array."""
    st = ref.storage
    if st.key not in data:
        raise ValueError(f"tensor {name!r}: storage {st.key!r} missing from the file (truncated?)")
    buf = data[st.key]
    if len(buf) != st.nbytes:
        raise ValueError(f"tensor {name!r}: storage {st.key!r} has {len(buf)} bytes, expected {st.nbytes} (truncated file?)")
    flat = np.frombuffer(buf, dtype=st.dtype, count=st.numel)
    if st.view is not None:
        _, voff, vsize = st.view
        flat = flat[voff : voff + vsize]
    if ref.dtype != st.dtype:  # v3 untyped storage: reinterpret the bytes
        flat = flat.view(np.uint8).view(ref.dtype)
    if math.prod(ref.size) == 0:
        return np.zeros(ref.size, ref.dtype)
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.size, strides=tuple(s * flat.itemsize for s in ref.stride)
    )
    out = np.empty(ref.size, ref.dtype.newbyteorder("="))
    _copy_in_steps(out, view)
    return out


def _copy_in_steps(dst: np.ndarray, src: np.ndarray) -> None:
    """`dst[...] = src` (same shape), at most about `CHUNK` bytes per numpy call: one copy
    of a large tensor would hold off Ctrl-C until it returns."""
    if src.ndim == 0 or src.nbytes <= CHUNK:
        dst[...] = src
        return
    row = src.nbytes // src.shape[0]
    if row > CHUNK:
        for i in range(src.shape[0]):
            _copy_in_steps(dst[i], src[i])
    else:
        step = CHUNK // row
        for i in range(0, src.shape[0], step):
            dst[i : i + step] = src[i : i + step]


def _flatten(obj: Any, data: Mapping[str, bytes | bytearray | memoryview]) -> dict[str, np.ndarray]:
    """`{dotted name: array}` of every tensor in the tree of dicts `obj`, bounded: dicts at
    most `MAX_DEPTH` deep, at most `MAX_OPS` entries visited (a shared sub-dict counts each
    time it is reached), names of at most `MAX_NAME_CHARS`, and at most `MAX_COPIES` x the
    bytes of the storages `data` (+ 1 MiB) materialised by all tensors together."""
    out: dict[str, np.ndarray] = {}
    stored = sum(len(b) for b in data.values())
    budget = MAX_COPIES * stored + (1 << 20)
    visits = 0

    def walk(node: Any, prefix: str, depth: int) -> None:
        nonlocal budget, visits
        if isinstance(node, _TensorRef):
            nbytes = math.prod(node.size) * node.dtype.itemsize
            if nbytes > budget:
                raise ValueError(f"tensor {prefix!r}: the tensors materialise more than {MAX_COPIES}x the {stored} bytes "
                                 "of their storages (one storage rebuilt many times?)")
            budget -= nbytes
            out[prefix] = _materialise(prefix, node, data)
        elif isinstance(node, dict):
            if depth >= MAX_DEPTH:
                raise ValueError(f"dicts nested more than {MAX_DEPTH} deep (at {prefix[:60]!r})")
            for k, v in node.items():
                visits += 1
                if visits > MAX_OPS:
                    raise ValueError(f"the state_dict tree has more than {MAX_OPS} entries (shared sub-dicts?)")
                if type(k) not in _KEY_TYPES:
                    raise ValueError(f"key {_short.repr(k)} under {prefix[:60]!r} is not a string")
                name = f"{prefix}.{k}" if prefix else str(k)
                if len(name) > MAX_NAME_CHARS:
                    raise ValueError(f"a state_dict name under {prefix[:60]!r} is longer than {MAX_NAME_CHARS} characters")
                walk(v, name, depth + 1)
        # ints / strings / None (e.g. a checkpoint's epoch counter) are not tensors: skipped

    walk(obj, "", 0)
    return out


@dataclass(frozen=True)
class _Member:
    """One record of a zip's central directory."""

    name: str
    flags: int
    method: int  # 0 stored, 8 deflated
    crc: int
    compressed: int  # bytes in the file
    size: int  # bytes once inflated
    offset: int  # of its local header


_END = struct.Struct("<4s4H2LH")  # end of central directory: counts, directory size and offset
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end record, right before its locator
_END64_LOCATOR = struct.Struct("<4sLQL")
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # a central directory record, before its name, extra and comment
_LOCAL = struct.Struct("<4s5H3L2H")  # a local header, before its name and extra
_STORED, _DEFLATED = 0, 8


def _end_record(f: BinaryIO, size: int) -> tuple[int, int, int, int] | None:
    """(members, directory bytes, directory offset, end record offset) of the zip whose end
    record lies in the last 64 KiB of the file `f` of `size` bytes (the zip64 record's
    counts when there is one), or None: no zip."""
    tail = min(size, _END.size + 0xFFFF)  # the record and a comment of at most 64 KiB
    f.seek(size - tail)
    data = f.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or at + _END.size > len(data):
        return None
    members, length, offset = _END.unpack_from(data, at)[4:7]
    location = size - tail + at
    before = _END64.size + _END64_LOCATOR.size
    if location >= before:
        f.seek(location - before)
        raw = f.read(before)
        if raw[:4] == b"PK\x06\x06" and raw[_END64.size : _END64.size + 4] == b"PK\x06\x07":
            members, length, offset = _END64.unpack_from(raw)[7:10]
            location -= before
    return members, length, offset, location


def _zip64(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """(size, compressed, offset) of a central record, its 0xFFFFFFFF fields taken from
    its zip64 extra field (id 1: the 8-byte values of those fields, in that order)."""
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        if 4 + length > len(extra):
            raise ValueError("a zip record's extra field is corrupt")
        if kind == 1:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, 4))
            try:
                size = next(values) if size == 0xFFFFFFFF else size
                compressed = next(values) if compressed == 0xFFFFFFFF else compressed
                offset = next(values) if offset == 0xFFFFFFFF else offset
            except StopIteration:
                raise ValueError("a zip record's zip64 extra field is too short") from None
        extra = extra[4 + length :]
    return size, compressed, offset


def _directory(f: BinaryIO, size: int) -> list[_Member] | None:
    """The records of the central directory of the zip `f` of `size` bytes, or None when it
    is no zip (no end record). Parsed here, not by `zipfile` (which reads the whole
    directory the end record points at and builds an object per record before any check),
    once the end record declares at most `MAX_MEMBERS` members in at most
    `MAX_DIRECTORY_BYTES`, ending where the end record begins (no data before the archive)."""
    end = _end_record(f, size)
    if end is None:
        return None
    count, length, offset, location = end
    if count > MAX_MEMBERS:
        raise ValueError(f"the zip declares {count} members (limit {MAX_MEMBERS})")
    if length > min(size, MAX_DIRECTORY_BYTES):
        raise ValueError(f"the zip's central directory claims {length} bytes (limit {min(size, MAX_DIRECTORY_BYTES)})")
    if offset + length != location:
        raise ValueError(f"the zip's central directory is at byte {location - length}, its end record says {offset} "
                         "(data before the archive?)")
    f.seek(offset)
    directory = f.read(length)
    members, at = [], 0
    while at < len(directory):
        if len(members) == count:
            raise ValueError(f"the zip's central directory holds more than the {count} members its end record declares")
        if at + _CENTRAL.size > len(directory) or directory[at : at + 4] != b"PK\x01\x02":
            raise ValueError(f"the zip's central directory is corrupt at byte {offset + at}")
        (_, _, _, flags, method, _, _, crc, compressed, inflated, name_len, extra_len, comment_len, _, _, _,
         header) = _CENTRAL.unpack_from(directory, at)
        name_at = at + _CENTRAL.size
        at = name_at + name_len + extra_len + comment_len
        if at > len(directory):
            raise ValueError(f"the zip's central directory is truncated at byte {offset + len(directory)}")
        name = directory[name_at : name_at + name_len].decode("utf-8" if flags & 0x800 else "cp437")
        extra = directory[name_at + name_len : name_at + name_len + extra_len]
        inflated, compressed, header = _zip64(extra, inflated, compressed, header)
        members.append(_Member(name, flags, method, crc, compressed, inflated, header))
    if len(members) != count:
        raise ValueError(f"the zip's end record declares {count} members, its directory holds {len(members)}")
    return members


def _declared(members: Mapping[str, _Member], name: str, expected: int | None, what: str) -> _Member:
    """The record of member `name` once its declared size is plausible: == `expected` bytes,
    or at most MAX_PICKLE_BYTES when `expected` is None, and (deflated) at most
    MAX_INFLATE_RATIO x its compressed size."""
    info = members[name]
    if expected is not None and info.size != expected:
        raise ValueError(f"{what} {name!r} holds {info.size} bytes but the pickle declares {expected}")
    if expected is None and info.size > MAX_PICKLE_BYTES:
        raise ValueError(f"{what} {name!r} is {info.size} bytes (limit {MAX_PICKLE_BYTES})")
    if info.method != _STORED and info.size > MAX_INFLATE_RATIO * info.compressed + 4096:
        raise ValueError(f"{what} {name!r} inflates {info.compressed} to {info.size} bytes (a zip bomb?)")
    return info


def _zip_member(f: BinaryIO, members: Mapping[str, _Member], name: str, expected: int | None,
                what: str) -> bytes | bytearray | memoryview:
    """The bytes of member `name` (checked by `_declared`), read from the archive file `f`:
    stored, or deflated and inflated `CHUNK` bytes at a time, refused as soon as the output
    passes the declared size; then its CRC-32 is checked."""
    info = _declared(members, name, expected, what)
    if info.flags & 0x1:
        raise ValueError(f"{what} {name!r} is encrypted")
    if info.method not in (_STORED, _DEFLATED):
        raise ValueError(f"{what} {name!r} uses compression method {info.method} (only stored or deflated)")
    f.seek(info.offset)
    head = f.read(_LOCAL.size)
    if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
        raise ValueError(f"{what} {name!r} has no local header at offset {info.offset}")
    name_len, extra_len = _LOCAL.unpack(head)[-2:]
    f.seek(info.offset + _LOCAL.size + name_len + extra_len)
    left = info.compressed
    if info.method == _STORED:
        if left != info.size:
            raise ValueError(f"stored {what} {name!r} declares {info.size} bytes but occupies {left}")
        out = _read_exact(f, left)  # no more than the file holds: `_check_zip_layout` ran first
    else:
        inflate, out, pending = zlib.decompressobj(-zlib.MAX_WBITS), bytearray(), b""
        while not inflate.eof:
            if not pending:
                pending = f.read(min(CHUNK, left))
                left -= len(pending)
                if not pending:
                    break
            out += inflate.decompress(pending, min(CHUNK, info.size + 1 - len(out)))  # >= 1: 0 is "no limit"
            pending = inflate.unconsumed_tail
            if len(out) > info.size:
                raise ValueError(f"{what} {name!r} inflates past its declared {info.size} bytes (a zip bomb?)")
    if len(out) != info.size:
        raise ValueError(f"{what} {name!r} holds {len(out)} bytes, its header declares {info.size} (truncated file?)")
    if _crc32(out) != info.crc:
        raise ValueError(f"{what} {name!r} fails its CRC-32 check (corrupt file?)")
    return out


def _check_zip_layout(members: list[_Member], size: int) -> None:
    """ValueError unless the members account for the archive's `size` bytes: their data
    fits in the file (no overlapping members) and at most `ZIP_SLACK` bytes per member
    (+ 128 KiB for the directory's end record and comment) lie outside it."""
    inside = sum(m.compressed for m in members)
    if inside > size:
        raise ValueError(f"the zip's members claim {inside} bytes, more than the file's {size} (overlapping members?)")
    if size - inside > ZIP_SLACK * len(members) + (1 << 17):
        raise ValueError(f"the zip holds {size - inside} bytes outside its members (padding?)")


def _load_zip(directory: list[_Member], f: BinaryIO, size: int, tensors: bool) -> dict[str, np.ndarray]:
    """The flattened state_dict of the archive over the file `f` of `size` bytes whose
    central directory is `directory`; with `tensors` False, {} once everything but the
    storages' bytes is checked."""
    _check_zip_layout(directory, size)
    members = {m.name: m for m in directory}  # a repeated name: its last record (as zipfile)
    pkl = sorted(n for n in members if n.endswith("/data.pkl") or n == "data.pkl")
    if not pkl:
        raise ValueError("zip .pth has no data.pkl record")
    root = pkl[0][: -len("data.pkl")]
    byteorder = root + "byteorder"
    if byteorder in members and bytes(_zip_member(f, members, byteorder, None, "record")).strip() != b"little":
        raise ValueError("big-endian .pth files are not supported")
    storages: dict[str, _Storage] = {}
    persistent = _recording_persistent_load(storages)
    raw = _zip_member(f, members, pkl[0], None, "pickle")
    obj = _RestrictedUnpickler(_BoundedReader(io.BytesIO(raw), len(raw)), persistent).load()
    records = {f"{root}data/{key}": st for key, st in storages.items()}
    for rec, st in records.items():
        if rec not in members:
            raise ValueError(f"storage record {rec!r} missing from the zip (truncated file?)")
        _declared(members, rec, st.nbytes, "storage record")
    for m in directory:
        if m.name not in records and m.name != pkl[0] and m.size > MAX_RECORD_BYTES:
            raise ValueError(f"zip member {m.name!r} of {m.size} bytes is no storage the pickle uses")
    if not tensors:
        return {}
    data = {key: _zip_member(f, members, f"{root}data/{key}", st.nbytes, "storage record")
            for key, st in storages.items()}
    return _flatten(obj, data)


def _load_legacy(f: BinaryIO, size: int, tensors: bool) -> dict[str, np.ndarray]:
    """The flattened state_dict of the legacy file `f` of `size` bytes; with `tensors`
    False, {} once everything but the storages' bytes is checked."""
    f = _BoundedReader(f, size)
    magic = _RestrictedUnpickler(f).load()
    if magic != LEGACY_MAGIC:
        raise ValueError("not a torch .pth file (bad magic number)")
    protocol = _RestrictedUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL:
        raise ValueError(f"unsupported legacy .pth protocol version {_short.repr(protocol)}")
    sys_info = _RestrictedUnpickler(f).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ValueError("big-endian .pth files are not supported")
    storages: dict[str, _Storage] = {}
    persistent = _recording_persistent_load(storages)
    obj = _RestrictedUnpickler(f, persistent).load()
    keys = _RestrictedUnpickler(f).load()
    if not isinstance(keys, list) or any(type(k) is not str or k not in storages for k in keys):
        raise ValueError("the storage key list does not match the storages the pickle uses")
    end = size - f.left + sum(8 + storages[k].nbytes for k in keys)
    if size > end:
        raise ValueError(f"the file holds {size} bytes but its last storage ends at byte {end} (padding?)")
    if not tensors:
        return {}
    data: dict[str, bytes | bytearray | memoryview] = {}
    for key in keys:
        if f.left < 8:
            break  # truncated: tensors of missing storages are reported by name later
        (numel,) = struct.unpack("<q", f.read(8))
        st = storages[key]
        if numel != st.numel:
            raise ValueError(f"storage {key!r} holds {numel} elements but the pickle declares {st.numel}")
        if st.nbytes > f.left:
            break  # truncated
        data[key] = f.take(st.nbytes)
    return _flatten(obj, data)


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return "no regular file"


def _open(path: str) -> BinaryIO:
    """The weights file `path` opened for reading, once it is a regular file; a directory,
    FIFO, socket or device is refused (ValueError naming it) and never read: a FIFO would
    block the process, a device never ends. The check runs on the open descriptor itself
    (opened non-blocking), so a file swapped for a FIFO after a look at the path is caught
    too. A symlink is followed: the path is the caller's choice."""
    try:
        mode = os.stat(path).st_mode  # a device is refused before it is opened (opening one can act)
        if stat.S_ISREG(mode):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                os.close(fd)
    except FileNotFoundError:
        raise ValueError(f"weights file {path!r} does not exist") from None
    except OSError as e:
        raise ValueError(f"weights file {path!r} cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"weights file {path!r} is {_kind(mode)}, not a regular file")
    return os.fdopen(fd, "rb")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:500]


def _parse(path: str, f: BinaryIO, size: int, tensors: bool) -> dict[str, np.ndarray]:
    """The flattened state_dict of the file `f` of `size` bytes (a zip or legacy .pth named
    `path`); every failure is one ValueError (or UnsafePickleError) naming `path`."""
    try:
        directory = _directory(f, size)
        if directory is not None:
            return _load_zip(directory, f, size, tensors)
        f.seek(0)
        return _load_legacy(f, size, tensors)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path!r}: {_one_line(e)}") from e
    except Exception as e:  # anything a crafted file provokes is reported as one clear error
        raise ValueError(f"{path!r} is not a readable torch .pth file ({type(e).__name__}: {_one_line(e)})") from e


def _read(path: str | os.PathLike, tensors: bool, data: bytes | bytearray | None = None) -> dict[str, np.ndarray]:
    path = os.fspath(path)
    if data is not None:
        return _parse(path, _Buffer(data), len(data), tensors)
    with _open(path) as f:
        return _parse(path, f, os.fstat(f.fileno()).st_size, tensors)


def check_structure(path: str | os.PathLike) -> None:
    """Checks everything about the torch `.pth` file at `path` that does not need its
    storages' bytes (the zip's layout and records, the pickles, every declared size, a
    legacy file's length), reading little more than its pickles: ValueError (as
    `load_state_dict`) for a file `load_state_dict` would refuse on those grounds. Run it
    before hashing or otherwise reading a whole file that may be hostile."""
    _read(path, tensors=False)


def read_checked(path: str | os.PathLike) -> bytearray:
    """The bytes of the torch `.pth` file at `path`, read once: the file is opened once
    (`_open`: a regular file), its structure checked from that descriptor (as
    `check_structure`, reading little), then read whole from it `CHUNK` bytes at a time, no
    further than the size checked. Whoever hashes these bytes and parses them
    (`load_state_dict(path, data)`) keys exactly what it parsed, whatever happens to the
    file meanwhile (replaced, rewritten in place): the weights cache does."""
    path = os.fspath(path)
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        _parse(path, f, size, tensors=False)
        f.seek(0)
        return _read_exact(f, size)


def load_state_dict(path: str | os.PathLike, data: bytes | bytearray | None = None) -> dict[str, np.ndarray]:
    """Reads a torch `.pth` file (zip or legacy format) -> `{key: np.ndarray}` without torch;
    with `data` (the file's bytes, e.g. from `read_checked`) those bytes are parsed and
    `path` only names the file in errors.

    Nested dicts are flattened with '.'; if the file holds a checkpoint dict with a
    `state_dict` (or `model`) entry, that entry is returned. Non-tensor leaves are skipped.
    Raises ValueError naming the file for files that are not torch pickles, are truncated,
    inconsistent or over the limits (module docstring), and UnsafePickleError (a ValueError
    and pickle.UnpicklingError) for globals or opcodes outside the allow-list.
    """
    out = _read(path, tensors=True, data=data)
    for nested in ("state_dict", "model"):
        sub = {k[len(nested) + 1 :]: v for k, v in out.items() if k.startswith(nested + ".")}
        if sub and len(sub) == len(out):
            return sub
    return out
