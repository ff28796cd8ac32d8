"""Crafted `.pth` files (hostile or broken), built at test time: `build(folder)` writes every
case and returns `{name: (path, error_class_name, message_regex)}`.

Run as a script (`python -m tests.security.corpus OUT_DIR`) to write the corpus to a folder.
Each case is one attack from the threat model in `rexjax.models.convert.pth`.
"""

import os
import struct
import sys
import zipfile
import zlib

import numpy as np

from tests.helpers import torch_pickle as tp

F32 = np.arange(12, dtype=np.float32)


def _sd(*entries) -> bytes:
    return tp.state_dict_pickle(list(entries))


def _w(offset=0, size=(3, 4), stride=(4, 1), numel=12, **kw) -> bytes:
    return tp.tensor("FloatStorage", "0", numel, offset, size, stride, **kw)


def _code(payload: bytes) -> bytes:
    """A pickle that runs `payload` (opcodes leaving one object) as the state_dict value."""
    return b"\x80\x02}(" + tp.pstr("w") + payload + b"u."


def _build_on(global_op: bytes) -> bytes:
    """BUILD on an allowed global: tries to rewrite its state (e.g. a storage type's dtype)."""
    return _code(global_op + b"}" + tp.pstr("dtype") + tp.pglobal("torch", "HalfStorage") + b"sb")


def _nested(depth: int) -> bytes:
    """{'a': {'a': ... None}} nested `depth` deep."""
    return b"\x80\x02" + b"}X\x01\x00\x00\x00a" * depth + b"N" + b"s" * depth + b"."


def _shared_tree(fanout: int, levels: int) -> bytes:
    """Dicts `levels` deep, each holding `fanout` keys that all point to the (memoised) dict
    below: a few hundred bytes, fanout^levels paths from the root."""
    out = b"\x80\x02}q\x00" + tp.pstr("a") + b"Ns"
    for level in range(1, levels + 1):
        out += b"}q" + bytes([level]) + b"(" + b"".join(tp.pstr(f"k{j}") + b"h" + bytes([level - 1]) for j in range(fanout)) + b"u"
    return out + b"."


OS_SYSTEM = tp.pglobal("os", "system")
ECHO = tp.ptuple([tp.pstr("echo pwned")])

# name -> (format, pickle bytes, storages, error class, message regex); format zip|legacy
CASES = {
    "negative_offset": ("zip", _sd(("w", _w(offset=-4, size=(4,), stride=(1,)))), {"0": F32}, "ValueError", "negative offset"),
    "negative_offset_legacy": ("legacy", _sd(("w", _w(offset=-(2**20), size=(4,), stride=(1,)))), {"0": F32}, "ValueError", "negative offset"),
    "negative_size": ("zip", _sd(("w", _w(size=(-1, 4)))), {"0": F32}, "ValueError", "negative"),
    "negative_stride": ("zip", _sd(("w", _w(size=(3, 4), stride=(-4, 1), offset=8))), {"0": F32}, "ValueError", "negative"),
    "zero_stride_broadcast": ("zip", _sd(("w", _w(size=(1 << 20, 1 << 20), stride=(0, 0)))), {"0": F32}, "ValueError", "needs"),
    "view_past_storage": ("zip", _sd(("w", _w(offset=5, size=(3, 4), stride=(4, 1)))), {"0": F32}, "ValueError", "needs 17 elements"),
    "strides_mismatch": ("zip", _sd(("w", _w(size=(3, 4), stride=(4,)))), {"0": F32}, "ValueError", "2 sizes but 1 strides"),
    "huge_declared_numel": ("zip", _sd(("w", _w(numel=2**40, size=(4,), stride=(1,)))), {"0": F32}, "ValueError", "declares 4398046511104"),
    "oversized_member": ("zip", _sd(("w", _w(numel=2, size=(2,), stride=(1,)))), {"0": np.zeros(1 << 20, np.float32)}, "ValueError", "holds 4194304 bytes but the pickle declares 8"),
    "none_numel": ("zip", _sd(("w", _w(numel_op=b"N"))), {"0": F32}, "ValueError", "element count is None"),
    "legacy_count_mismatch": ("legacy", _sd(("w", _w())), {"0": F32}, "ValueError", "holds 1099511627776 elements"),
    "binbytes8_2e60": ("zip", b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"x.", {}, "ValueError", "declares a 1152921504606846976-byte object"),
    "binbytes8_2e60_legacy_magic": ("legacy_raw", b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"x.", {}, "ValueError", "declares a"),
    "dicts_nested_20": ("zip", _nested(20), {}, "ValueError", "dicts nested more than 16 deep"),
    "deep_nesting": ("zip", _nested(1000), {}, "ValueError", "containers nested more than 64 deep"),
    "deep_nesting_100k": ("zip", _nested(100_000), {}, "ValueError", "containers nested more than 64 deep"),
    "tuple_dict_key": ("zip", b"\x80\x02}(N\x85Nu.", {}, "ValueError", "dict key of type tuple"),
    "tuple_dict_key_dict_opcode": ("zip", b"\x80\x02(N\x85Nd.", {}, "ValueError", "dict key of type tuple"),
    "tuple_set_item": ("zip", b"\x80\x04\x8f(N\x85\x90.", {}, "ValueError", "set item of type tuple"),
    "tuple_frozenset_item": ("zip", b"\x80\x04(N\x85\x91.", {}, "ValueError", "set item of type tuple"),
    "list_grown_after_nesting": ("zip", b"\x80\x02]q\x00\x85h\x00Na.", {}, "ValueError", "fills a container after nesting"),
    "shared_subdict_tree": ("zip", _shared_tree(3, 15), {}, "ValueError", "more than 500000 entries"),
    "long_name": ("zip", b"\x80\x02}" + tp.pstr("a" * 5000) + b"Ns.", {}, "ValueError", "longer than 4096 characters"),
    "unused_big_member": ("zip", _sd(("w", _w())), {"0": F32, "junk": np.zeros(1 << 19, np.float32)}, "ValueError", "no storage the pickle uses"),
    "too_many_opcodes": ("zip", b"\x80\x02(" + b"N" * 600_000 + b"l.", {}, "ValueError", "more than 500000 opcodes"),
    "build_on_storage_type": ("zip", _build_on(tp.pglobal("torch", "FloatStorage")), {}, "UnsafePickleError", "BUILD on _StorageType"),
    "build_on_dtype": ("zip", _build_on(tp.pglobal("torch", "float32")), {}, "UnsafePickleError", "BUILD on _TorchDType"),
    "build_on_function": ("zip", _build_on(tp.pglobal("torch._utils", "_rebuild_tensor_v2")), {}, "UnsafePickleError", "BUILD on function"),
    "setstate_on_storage": ("zip", _code(_w() + b"}" + tp.pstr("numel") + tp.pint(2**40) + b"sb"), {"0": F32}, "UnsafePickleError", "BUILD on _TensorRef"),
    "global_reduce": ("zip", _code(OS_SYSTEM + ECHO + b"R"), {}, "UnsafePickleError", "global os.system"),
    "stack_global": ("zip", b"\x80\x04" + b"\x8c\x02os\x8c\x06system\x93" + ECHO + b"R.", {}, "UnsafePickleError", "global os.system"),
    "inst": ("zip", b"\x80\x02(" + tp.pstr("echo pwned") + b"ios\nsystem\n.", {}, "UnsafePickleError", "opcode INST"),
    "obj": ("zip", b"\x80\x02(" + OS_SYSTEM + tp.pstr("echo") + b"o.", {}, "UnsafePickleError", "global os.system"),
    "obj_allowed_class": ("zip", b"\x80\x02(" + tp.pglobal("collections", "OrderedDict") + b"o.", {}, "UnsafePickleError", "opcode OBJ"),
    "newobj": ("zip", b"\x80\x02" + tp.pglobal("collections", "OrderedDict") + b")\x81.", {}, "UnsafePickleError", "opcode NEWOBJ"),
    "newobj_ex": ("zip", b"\x80\x04" + tp.pglobal("collections", "OrderedDict") + b")}\x92.", {}, "UnsafePickleError", "opcode NEWOBJ_EX"),
    "ext1": ("zip", b"\x80\x02\x82\x01.", {}, "UnsafePickleError", "opcode EXT1"),
    "ext4": ("zip", b"\x80\x02\x84\x01\x00\x00\x00.", {}, "UnsafePickleError", "opcode EXT4"),
    "getattr_chain": ("zip", _code(tp.pglobal("builtins", "getattr") + tp.ptuple([tp.pglobal("torch", "FloatStorage"), tp.pstr("__class__")]) + b"R"), {}, "UnsafePickleError", "global builtins.getattr"),
    "call_allowed_non_function": ("zip", _code(tp.pglobal("torch", "FloatStorage") + b")R"), {}, "UnsafePickleError", "refusing to call"),
    "nested_payload_in_tensor_args": ("zip", _sd(("w", tp.pglobal("torch._utils", "_rebuild_tensor_v2") + tp.ptuple([OS_SYSTEM + ECHO + b"R"]) + b"R")), {}, "UnsafePickleError", "global os.system"),
    "payload_legacy": ("legacy", _code(OS_SYSTEM + ECHO + b"R"), {}, "UnsafePickleError", "global os.system"),
    "payload_legacy_header": ("legacy_raw", b"\x80\x02" + OS_SYSTEM + ECHO + b"R.", {}, "UnsafePickleError", "global os.system"),
}


def _zip_bomb(path) -> None:
    """A 64 MB storage of zeros deflated to ~64 KB, with a pickle that declares it."""
    n = 16 << 20
    pkl = _sd(("w", tp.tensor("FloatStorage", "0", n, 0, (n,), (1,))))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pkl)
        with zf.open("archive/data/0", "w") as f:
            chunk = bytes(1 << 22)
            for _ in range(n * 4 // len(chunk)):
                f.write(chunk)


def _zip_after_gap(path) -> None:
    """A valid small archive after 4 MiB of zeros (zipfile reads such a file)."""
    small = f"{path}.zip"
    tp.write_zip(small, [("w", _w())], {"0": F32})
    with open(path, "wb") as f, open(small, "rb") as g:
        f.write(bytes(4 << 20) + g.read())
    os.remove(small)


def _bzip2_member(path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("archive/data.pkl", _sd(("w", _w())))


def _legacy_padding(path) -> None:
    """A valid legacy file followed by 1 MiB that no storage accounts for."""
    tp.write_legacy(path, [("w", _w())], {"0": F32})
    with open(path, "ab") as f:
        f.write(bytes(1 << 20))


# name -> (writer of the whole file, message regex); every one a ValueError
BUILDERS = {
    "zip_bomb": (_zip_bomb, "a zip bomb"),
    "zip_after_gap": (_zip_after_gap, "data before the archive"),
    "bzip2_member": (_bzip2_member, "compression method 12"),
    "legacy_padding": (_legacy_padding, "its last storage ends at byte"),
}


def build(folder) -> dict:
    os.makedirs(folder, exist_ok=True)
    out = {}
    for name, (fmt, pkl, storages, err, regex) in CASES.items():
        path = os.path.join(folder, f"{name}.pth")
        if fmt == "zip":
            tp.write_zip(path, None, storages, pkl=pkl)
        elif fmt == "legacy":
            counts = {k: 2**40 for k in storages} if name == "legacy_count_mismatch" else None
            tp.write_legacy(path, None, storages, pkl=pkl, counts=counts)
        else:  # the raw bytes are the whole file
            with open(path, "wb") as f:
                f.write(pkl)
        out[name] = (path, err, regex)
    for name, (write, regex) in BUILDERS.items():
        path = os.path.join(folder, f"{name}.pth")
        write(path)
        out[name] = (path, "ValueError", regex)
    return out


if __name__ == "__main__":
    for name, (path, _, _) in build(sys.argv[1]).items():
        print(f"{os.path.getsize(path):>10}  {path}")
