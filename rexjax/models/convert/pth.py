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
  `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX` and the `EXT` codes are refused. Refusals raise
  `UnsafePickleError`.
* Limits: a pickle may execute at most `MAX_OPS` opcodes and no object may claim more
  bytes than the file still holds; the zip's `data.pkl` is at most `MAX_PICKLE_BYTES`;
  a compressed member may not inflate more than `MAX_INFLATE_RATIO` x; every storage
  member (or legacy storage record) must hold exactly the bytes its persistent id
  declares, checked *before* it is read; nested dicts deeper than `MAX_DEPTH` and tensors
  of more than `MAX_NDIM` dimensions are refused.
* Tensor views are validated before any `as_strided`: integer, non-negative offset, sizes
  and strides, as many strides as sizes, the last element inside the storage, and no view
  (zero strides included) with more elements than its storage holds.

Every failure is a `ValueError` (or its subclass `UnsafePickleError`) whose message names
the file and the problem.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import reprlib
import struct
import zipfile
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
MAX_NDIM = 32  # dimensions of one tensor

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
        if isinstance(self.stack[-1], collections.OrderedDict):
            self._own_dicts[id(self.stack[-1])] = self.stack[-1]

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if id(inst) not in self._own_dicts:
            raise UnsafePickleError(f"refusing BUILD on {type(inst).__name__}: only a state_dict's own OrderedDict may carry state")
        # torch's OrderedDict `_metadata` (module versions) is not needed: dropped.

    dispatch = _Opcodes({code: _counted(fn) for code, fn in pickle._Unpickler.dispatch.items()})
    dispatch[pickle.REDUCE[0]] = _counted(load_reduce)
    dispatch[pickle.BUILD[0]] = _counted(load_build)
    for _op in ("INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"):
        dispatch[getattr(pickle, _op)[0]] = _refuse(_op)
    del _op


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


def _materialise(name: str, ref: _TensorRef, data: Mapping[str, bytes]) -> np.ndarray:
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
    return np.array(view, dtype=ref.dtype.newbyteorder("="), copy=True, order="C")


def _flatten(obj: Any, data: Mapping[str, bytes], prefix: str = "", depth: int = 0) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, _TensorRef):
        out[prefix] = _materialise(prefix, obj, data)
    elif isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise ValueError(f"dicts nested more than {MAX_DEPTH} deep (at {prefix!r})")
        for k, v in obj.items():
            if type(k) not in (str, int):
                raise ValueError(f"key {_short.repr(k)} under {prefix!r} is not a string")
            out.update(_flatten(v, data, f"{prefix}.{k}" if prefix else str(k), depth + 1))
    # ints / strings / None (e.g. a checkpoint's epoch counter) are not tensors: skipped
    return out


def _zip_member(zf: zipfile.ZipFile, name: str, expected: int | None, what: str) -> bytes:
    """Reads member `name` after checking its declared size: == `expected` bytes, or at
    most MAX_PICKLE_BYTES when `expected` is None; never a deflate bomb."""
    info = zf.getinfo(name)
    if expected is not None and info.file_size != expected:
        raise ValueError(f"{what} {name!r} holds {info.file_size} bytes but the pickle declares {expected}")
    if expected is None and info.file_size > MAX_PICKLE_BYTES:
        raise ValueError(f"{what} {name!r} is {info.file_size} bytes (limit {MAX_PICKLE_BYTES})")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_INFLATE_RATIO * info.compress_size + 4096:
        raise ValueError(f"{what} {name!r} inflates {info.compress_size} to {info.file_size} bytes (a zip bomb?)")
    return zf.read(name)


def _load_zip(zf: zipfile.ZipFile) -> dict[str, np.ndarray]:
    names = set(zf.namelist())
    pkl = sorted(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
    if not pkl:
        raise ValueError("zip .pth has no data.pkl record")
    root = pkl[0][: -len("data.pkl")]
    byteorder = root + "byteorder"
    if byteorder in names and _zip_member(zf, byteorder, None, "record").strip() != b"little":
        raise ValueError("big-endian .pth files are not supported")
    storages: dict[str, _Storage] = {}
    persistent = _recording_persistent_load(storages)
    raw = _zip_member(zf, pkl[0], None, "pickle")
    obj = _RestrictedUnpickler(_BoundedReader(io.BytesIO(raw), len(raw)), persistent).load()
    data = {}
    for key, st in storages.items():
        rec = f"{root}data/{key}"
        if rec not in names:
            raise ValueError(f"storage record {rec!r} missing from the zip (truncated file?)")
        data[key] = _zip_member(zf, rec, st.nbytes, "storage record")
    return _flatten(obj, data)


def _load_legacy(f: BinaryIO, size: int) -> dict[str, np.ndarray]:
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
    if not isinstance(keys, list) or any(k not in storages for k in keys):
        raise ValueError("the storage key list does not match the storages the pickle uses")
    data: dict[str, bytes] = {}
    for key in keys:
        if f.left < 8:
            break  # truncated: tensors of missing storages are reported by name later
        (numel,) = struct.unpack("<q", f.read(8))
        st = storages[key]
        if numel != st.numel:
            raise ValueError(f"storage {key!r} holds {numel} elements but the pickle declares {st.numel}")
        if st.nbytes > f.left:
            break  # truncated
        data[key] = f.read(st.nbytes)
    return _flatten(obj, data)


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a torch `.pth` file (zip or legacy format) -> `{key: np.ndarray}` without torch.

    Nested dicts are flattened with '.'; if the file holds a checkpoint dict with a
    `state_dict` (or `model`) entry, that entry is returned. Non-tensor leaves are skipped.
    Raises ValueError naming the file for files that are not torch pickles, are truncated,
    inconsistent or over the limits (module docstring), and UnsafePickleError (a ValueError
    and pickle.UnpicklingError) for globals or opcodes outside the allow-list.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                out = _load_zip(zf)
        else:
            with open(path, "rb") as f:
                out = _load_legacy(f, os.fstat(f.fileno()).st_size)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path!r}: {e}") from e
    except Exception as e:  # anything a crafted file provokes is reported as one clear error
        raise ValueError(f"{path!r} is not a readable torch .pth file ({type(e).__name__}: {e})") from e
    for nested in ("state_dict", "model"):
        sub = {k[len(nested) + 1 :]: v for k, v in out.items() if k.startswith(nested + ".")}
        if sub and len(sub) == len(out):
            return sub
    return out
