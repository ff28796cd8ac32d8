"""Pure-python (no torch) reader of torch `.pth` state_dict files, both formats.

* **zip** (what `torch.save` writes since torch 1.6): `<archive>/data.pkl` holds the object
  pickle; tensors reference storages by persistent id `('storage', StorageType, key,
  location, numel)`; storage `key` is the raw little-endian file `<archive>/data/<key>`.
* **legacy** (`_use_new_zipfile_serialization=False`, torch < 1.6): a stream of pickles:
  magic number, protocol version (1001), sys-info dict, the object pickle (persistent ids
  `('storage', StorageType, root_key, location, numel, view_metadata)`), the list of
  storage keys; then, for each key in that order, an int64 element count followed by the
  raw storage bytes.

Unpickling is restricted: `find_class` only resolves the torch tensor/parameter rebuild
functions, the storage types, torch dtypes and `collections.OrderedDict`; anything else
(arbitrary code in a malicious pickle) raises `UnpicklingError`.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Mapping

import ml_dtypes
import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

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


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    view: tuple[str, int, int] | None = None  # legacy views: (view_key, offset, size)


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: np.dtype


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"tensor storage is {type(storage).__name__}, not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)), storage.dtype)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, hooks, dtype, *_):
    ref = _rebuild_tensor(storage, storage_offset, size, stride)
    if not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError(f"tensor dtype {dtype!r} is not a torch dtype")
    return _TensorRef(ref.storage, ref.offset, ref.size, ref.stride, dtype)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *_):
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}
_ALLOWED.update({("torch", name): _StorageType(dt) for name, dt in STORAGE_DTYPES.items()})
_ALLOWED.update({("torch", name): dt for name, dt in TORCH_DTYPES.items()})


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for a global outside the allow-list (possibly malicious)."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, persistent_load: Callable[[Any], Any] | None = None):
        super().__init__(file)
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle global {module}.{name}: a state_dict file may only contain "
                "tensors, storages and OrderedDicts"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self._persistent(pid)


def _storage_from_pid(pid: Any) -> _Storage:
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
    stype, key, numel = pid[1], str(pid[2]), int(pid[4])
    if isinstance(stype, _StorageType):
        dtype = stype.dtype
    elif isinstance(stype, np.dtype):
        dtype = stype
    else:
        raise pickle.UnpicklingError(f"unsupported storage type {stype!r} in {pid!r}")
    view = None
    if len(pid) >= 6 and pid[5] is not None:
        view_key, offset, view_size = pid[5]
        view = (str(view_key), int(offset), int(view_size))
    return _Storage(key, dtype, numel, view)


def _materialise(name: str, ref: _TensorRef, data: Mapping[str, bytes]) -> np.ndarray:
    st = ref.storage
    if st.key not in data:
        raise ValueError(f"tensor {name!r}: storage {st.key!r} missing from the file (truncated?)")
    buf = data[st.key]
    base_dtype = st.dtype
    if len(buf) < st.numel * base_dtype.itemsize:
        raise ValueError(
            f"tensor {name!r}: storage {st.key!r} has {len(buf)} bytes, expected "
            f"{st.numel * base_dtype.itemsize} (truncated file?)"
        )
    flat = np.frombuffer(buf, dtype=base_dtype, count=st.numel)
    if st.view is not None:
        _, voff, vsize = st.view
        flat = flat[voff : voff + vsize]
    if ref.dtype != base_dtype:  # v3 untyped storage: reinterpret the bytes
        flat = flat.view(np.uint8).view(ref.dtype)
    if any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride):
        raise ValueError(f"tensor {name!r}: negative size or stride {ref.size}/{ref.stride}")
    if 0 in ref.size:
        return np.zeros(ref.size, ref.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= flat.shape[0]:
        raise ValueError(
            f"tensor {name!r}: size {ref.size} stride {ref.stride} offset {ref.offset} needs "
            f"{last + 1} elements, storage has {flat.shape[0]}"
        )
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.size, strides=tuple(s * item for s in ref.stride)
    )
    return np.array(view, dtype=ref.dtype.newbyteorder("="), copy=True, order="C")


def _flatten(obj: Any, data: Mapping[str, bytes], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, _TensorRef):
        out[prefix] = _materialise(prefix, obj, data)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(_flatten(v, data, f"{prefix}.{k}" if prefix else str(k)))
    # ints / strings / None (e.g. a checkpoint's epoch counter) are not tensors: skipped
    return out


def _load_zip(zf: zipfile.ZipFile) -> dict[str, np.ndarray]:
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pkl:
        raise ValueError("zip .pth has no data.pkl record")
    root = pkl[0][: -len("data.pkl")]
    byteorder = root + "byteorder"
    if byteorder in names and zf.read(byteorder).strip() != b"little":
        raise ValueError("big-endian .pth files are not supported")
    storages: dict[str, _Storage] = {}

    def persistent(pid):
        st = _storage_from_pid(pid)
        storages[st.key] = st
        return st

    obj = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), persistent).load()
    data = {}
    for key in storages:
        rec = f"{root}data/{key}"
        if rec not in names:
            raise ValueError(f"storage record {rec!r} missing from the zip (truncated file?)")
        data[key] = zf.read(rec)
    return _flatten(obj, data)


def _load_legacy(f: BinaryIO) -> dict[str, np.ndarray]:
    magic = _RestrictedUnpickler(f).load()
    if magic != LEGACY_MAGIC:
        raise ValueError("not a torch .pth file (bad magic number)")
    protocol = _RestrictedUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL:
        raise ValueError(f"unsupported legacy .pth protocol version {protocol}")
    sys_info = _RestrictedUnpickler(f).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ValueError("big-endian .pth files are not supported")
    storages: dict[str, _Storage] = {}

    def persistent(pid):
        st = _storage_from_pid(pid)
        storages.setdefault(st.key, st)
        return st

    obj = _RestrictedUnpickler(f, persistent).load()
    keys = _RestrictedUnpickler(f).load()
    data: dict[str, bytes] = {}
    for key in keys:
        head = f.read(8)
        if len(head) < 8:
            break  # truncated: tensors of missing storages are reported by name later
        (numel,) = struct.unpack("<q", head)
        st = storages.get(str(key))
        itemsize = st.dtype.itemsize if st is not None else 1
        data[str(key)] = f.read(numel * itemsize)
    return _flatten(obj, data)


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a torch `.pth` file (zip or legacy format) -> `{key: np.ndarray}` without torch.

    Nested dicts are flattened with '.'; if the file holds a checkpoint dict with a
    `state_dict` (or `model`) entry, that entry is returned. Non-tensor leaves are skipped.
    Raises ValueError (naming the file) for files that are not torch pickles or are
    truncated, and UnsafePickleError (a pickle.UnpicklingError) for globals outside the
    allow-list.
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
                out = _load_legacy(f)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path!r}: {e}") from e
    except (EOFError, struct.error, zipfile.BadZipFile, pickle.UnpicklingError, ValueError) as e:
        raise ValueError(f"{path!r} is not a readable torch .pth file ({e})") from e
    for nested in ("state_dict", "model"):
        sub = {k[len(nested) + 1 :]: v for k, v in out.items() if k.startswith(nested + ".")}
        if sub and len(sub) == len(out):
            return sub
    return out
