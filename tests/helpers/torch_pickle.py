"""A tiny hand-written torch pickle encoder (protocol 2): builds `.pth` files of both formats,
legitimate or crafted, without torch."""

import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def pstr(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pint(i: int) -> bytes:
    return b"J" + struct.pack("<i", i) if -(2**31) <= i < 2**31 else b"\x8a\x09" + i.to_bytes(9, "little", signed=True)


def ptuple(items) -> bytes:
    return b"(" + b"".join(items) + b"t"


def pglobal(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def storage_pid(storage_type, key, numel, view=None, numel_op=None) -> bytes:
    items = [pstr("storage"), pglobal("torch", storage_type), pstr(key), pstr("cpu"), numel_op or pint(numel)]
    if view is not None:
        items.append(b"N" if view is False else ptuple([pstr(view[0]), pint(view[1]), pint(view[2])]))
    return ptuple(items) + b"Q"  # BINPERSID


def tensor(storage_type, key, numel, offset, size, stride, view=None, numel_op=None) -> bytes:
    args = ptuple([storage_pid(storage_type, key, numel, view, numel_op), pint(offset), ptuple(map(pint, size)),
                   ptuple(map(pint, stride)), b"\x89", pglobal("collections", "OrderedDict") + b")R"])
    return pglobal("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def state_dict_pickle(entries) -> bytes:
    body = b"".join(pstr(k) + t for k, t in entries)
    return b"\x80\x02" + pglobal("collections", "OrderedDict") + b")R(" + body + b"u."


def write_zip(path, entries, storages, pkl=None):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pkl if pkl is not None else state_dict_pickle(entries))
        zf.writestr("archive/byteorder", "little")
        for key, arr in storages.items():
            zf.writestr(f"archive/data/{key}", np.ascontiguousarray(arr).tobytes())


def write_legacy(path, entries, storages, pkl=None, counts=None):
    with open(path, "wb") as f:
        f.write(pickle.dumps(LEGACY_MAGIC, protocol=2))
        f.write(pickle.dumps(1001, protocol=2))
        f.write(pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2))
        f.write(pkl if pkl is not None else state_dict_pickle(entries))
        f.write(pickle.dumps(list(storages), protocol=2))
        for key, arr in storages.items():
            f.write(struct.pack("<q", arr.size if counts is None else counts[key]))
            f.write(np.ascontiguousarray(arr).tobytes())
