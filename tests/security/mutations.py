"""Seeded random mutations of a small valid `.pth`, and the property the weights reader must
keep on every one of them (the test `test_reader_property.py` runs `main` in one bounded child
process).

Three valid files are built at run time from one state_dict (float32 tensors, one of them a
strided view, a float16 storage, an int64 scalar): zip with stored members, zip with deflated
members, legacy. Each case mutates one of them, either

* **raw**: bytes flipped, bytes inserted, a span deleted, the file truncated, or a numeric
  field of a zip header (local, central, end record) set to an edge value; or
* **semantic**: the object pickle's bytes flipped, a random opcode (with random argument
  bytes) inserted, an opcode deleted, an integer argument (a size, stride, offset, element
  count) set to an edge value, or one zip member truncated; the container is then rebuilt
  around it (valid CRCs, sizes and offsets), so the unpickler itself meets the mutation.

The property: no crash, no hang, no memory growth, and either a refusal (a ValueError whose
message is one line naming the file, not caused by MemoryError or RecursionError) or a
state_dict of fresh arrays; a zip after a raw mutation loads bit-identical weights (its CRCs
and sizes protect it); after a semantic mutation every element of a loaded array is an
element of a storage of its dtype (nothing is read from outside the storages). A legacy file
has no checksum: a raw mutation may load other values, so only the first part holds there. Reading the
path and reading the bytes `read_checked` returns agree.

`python -m tests.security.mutations READER CASES SEED` prints one JSON report."""

import contextlib
import io
import json
import os
import pickletools
import signal
import struct
import sys
import tempfile
import zipfile

import numpy as np

from tests.helpers import torch_pickle as tp

CASE_S = 5  # a case running longer than this is a hang
STORAGES = {
    "0": ("FloatStorage", (np.arange(24) * 0.25 + 1).astype(np.float32)),
    "1": ("HalfStorage", (np.arange(8) - 3.5).astype(np.float16)),
    "2": ("LongStorage", np.array([7], np.int64)),
    "3": ("FloatStorage", (np.arange(6) * -1.5 - 100).astype(np.float32)),
}
# name -> (storage key, offset, size, stride)
TENSORS = {
    "a.weight": ("0", 0, (4, 6), (6, 1)),
    "a.view": ("0", 2, (3, 2), (1, 6)),
    "b.bias": ("1", 0, (8,), (1,)),
    "b.num_batches_tracked": ("2", 0, (), ()),
    "c.weight": ("3", 0, (2, 3), (3, 1)),
}
FORMATS = ("zip", "zip_deflated", "legacy")
RAW = ("flip", "insert", "delete", "truncate", "zip_field")
SEMANTIC = ("pickle_flip", "pickle_insert", "pickle_delete", "pickle_int", "member_truncate")
OPCODES = list(pickletools.opcodes)
LENGTH_BYTES = {-2: 1, -3: 4, -4: 4, -5: 8}  # pickletools' codes for a length-prefixed argument
EDGE_INTS = (0, 1, -1, 2, 3, 5, 6, 23, 24, 25, 255, 65535, 2**31 - 1, -(2**31), 2**32 + 1, 2**40, 2**62)
# (signature, {field offset: width}) of the zip records whose numeric fields are mutated
ZIP_FIELDS = (
    (b"PK\x03\x04", {4: 2, 6: 2, 8: 2, 14: 4, 18: 4, 22: 4, 26: 2, 28: 2}),
    (b"PK\x01\x02", {6: 2, 8: 2, 10: 2, 16: 4, 20: 4, 24: 4, 28: 2, 30: 2, 32: 2, 34: 2, 42: 4}),
    (b"PK\x05\x06", {4: 2, 6: 2, 8: 2, 10: 2, 12: 4, 16: 4, 20: 2}),
)


def expected() -> dict[str, np.ndarray]:
    """The state_dict every valid file holds."""
    out = {}
    for name, (key, offset, size, stride) in TENSORS.items():
        flat = STORAGES[key][1]
        view = np.lib.stride_tricks.as_strided(flat[offset:], size, tuple(s * flat.itemsize for s in stride))
        out[name] = np.array(view)
    return out


def state_dict_pickle() -> bytes:
    return tp.state_dict_pickle([
        (name, tp.tensor(STORAGES[key][0], key, STORAGES[key][1].size, offset, size, stride))
        for name, (key, offset, size, stride) in TENSORS.items()
    ])


def container(fmt: str, pkl: bytes, truncate: tuple[str, int] | None = None) -> bytes:
    """The file of format `fmt` around the object pickle `pkl` (and the storages); with
    `truncate` (member name, length) that zip member's content cut to that length."""
    if fmt == "legacy":
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.pth")
            tp.write_legacy(path, None, {k: a for k, (_, a) in STORAGES.items()}, pkl=pkl)
            return open(path, "rb").read()
    members = {"archive/data.pkl": pkl, "archive/byteorder": b"little"}
    members.update({f"archive/data/{k}": a.tobytes() for k, (_, a) in STORAGES.items()})
    if truncate is not None:
        members[truncate[0]] = members[truncate[0]][: truncate[1]]
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if fmt == "zip_deflated" else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _edge(rng, original: int, width_bits: int | None = None) -> int:
    pool = list(EDGE_INTS) + [original - 1, original + 1, original * 2, int(rng.integers(0, 1 << 16))]
    value = pool[int(rng.integers(len(pool)))]
    return value % (1 << width_bits) if width_bits else value


def _raw(rng, kind: str, data: bytes) -> bytes:
    b = bytearray(data)
    if kind == "flip":
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
    elif kind == "insert":
        at = int(rng.integers(len(b) + 1))
        b[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    elif kind == "delete":
        at = int(rng.integers(len(b)))
        del b[at : at + int(rng.integers(1, 17))]
    elif kind == "truncate":
        del b[int(rng.integers(len(b))) :]
    else:  # zip_field
        spots = [(at + off, width) for sig, fields in ZIP_FIELDS for at in _find_all(data, sig)
                 for off, width in fields.items()]
        at, width = spots[int(rng.integers(len(spots)))]
        fmt = "<H" if width == 2 else "<I"
        (original,) = struct.unpack_from(fmt, b, at)
        struct.pack_into(fmt, b, at, _edge(rng, original, 8 * width))
    return bytes(b)


def _find_all(data: bytes, sig: bytes) -> list[int]:
    out, at = [], data.find(sig)
    while at >= 0:
        out.append(at)
        at = data.find(sig, at + 1)
    return out


def _semantic(rng, kind: str, fmt: str) -> bytes:
    pkl = bytearray(state_dict_pickle())
    ops = list(pickletools.genops(bytes(pkl)))
    if kind == "member_truncate":
        if fmt == "legacy":
            return _raw(rng, "truncate", container(fmt, bytes(pkl)))
        names = ["archive/data.pkl", "archive/byteorder", *(f"archive/data/{k}" for k in STORAGES)]
        name = names[int(rng.integers(len(names)))]
        full = {"archive/data.pkl": len(pkl), "archive/byteorder": 6}.get(name) or STORAGES[name[-1]][1].nbytes
        return container(fmt, bytes(pkl), (name, int(rng.integers(full))))
    if kind == "pickle_flip":
        for _ in range(int(rng.integers(1, 4))):
            pkl[int(rng.integers(len(pkl)))] ^= int(rng.integers(1, 256))
    elif kind == "pickle_insert":
        at = int(rng.integers(len(pkl) + 1))
        pkl[at:at] = _opcode(rng)
    elif kind == "pickle_delete":
        i = int(rng.integers(len(ops)))
        end = ops[i + 1][2] if i + 1 < len(ops) else len(pkl)
        del pkl[ops[i][2] : end]
    else:  # pickle_int: an integer argument set to an edge value
        ints = [(op, arg, pos) for op, arg, pos in ops if op.name in ("BININT", "BININT1", "BININT2", "LONG1")]
        op, arg, pos = ints[int(rng.integers(len(ints)))]
        end = next(p for _, _, p in ops if p > pos)
        value = _edge(rng, arg)
        enc = (b"J" + struct.pack("<i", value) if -(2**31) <= value < 2**31
               else b"\x8a\x09" + value.to_bytes(9, "little", signed=True))
        pkl[pos:end] = enc
    return container(fmt, bytes(pkl))


def _opcode(rng) -> bytes:
    """A random opcode with an argument: random bytes, or for a length-prefixed one (bytes,
    strings, longs) an edge-value length and a few bytes of content."""
    op = OPCODES[int(rng.integers(len(OPCODES)))]
    tail = rng.integers(0, 256, int(rng.integers(0, 10)), dtype=np.uint8).tobytes()
    width = LENGTH_BYTES.get(op.arg.n if op.arg else None)
    if width is None:
        return op.code.encode("latin-1") + tail
    length = _edge(rng, len(tail), 8 * width)
    return op.code.encode("latin-1") + length.to_bytes(width, "little") + tail


def case(seed: int, index: int) -> tuple[str, str, bytes]:
    """(format, kind, file bytes) of case `index` of the run seeded `seed`."""
    rng = np.random.default_rng([seed, index])
    fmt = FORMATS[int(rng.integers(len(FORMATS)))]
    kinds = RAW if index % 2 else SEMANTIC
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "zip_field" and fmt == "legacy":
        kind = "flip"
    if kind in RAW:
        return fmt, kind, _raw(rng, kind, container(fmt, state_dict_pickle()))
    return fmt, kind, _semantic(rng, kind, fmt)


class _Hung(BaseException):
    """Raised by the per-case alarm (a BaseException: the reader's handlers do not catch it)."""


def _outcome(read, path: str):
    """('loaded', state_dict) or ('refused', message); anything else propagates."""
    try:
        return "loaded", read(path)
    except ValueError as e:
        return "refused", e


def _problem(fmt: str, kind: str, path: str, outcome, want: dict) -> str | None:
    """What is wrong with `outcome` (None when the property holds)."""
    status, value = outcome
    if status == "refused":
        message, cause = str(value), type(value.__cause__).__name__
        if "\n" in message or os.path.basename(path) not in message or len(message) > 1000:
            return f"refusal is not one short line naming the file: {message[:300]!r}"
        if cause in ("MemoryError", "RecursionError"):
            return f"refused only after {cause}: {message[:300]}"
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray)
                                              for k, v in value.items()):
        return f"loaded something that is no state_dict: {type(value).__name__}"
    if fmt.startswith("zip") and kind in RAW:
        same = _same(("loaded", value), ("loaded", want))
        return None if same else f"a raw mutation of a zip loaded other weights: {sorted(value)}"
    raw_legacy = kind in RAW  # a legacy file has no checksum: a flipped storage byte is a valid file
    pools = {}
    for _, arr in STORAGES.values():
        pools.setdefault(arr.dtype, set()).update(arr.view(f"u{arr.itemsize}").tolist())
    for name, arr in value.items():
        if not arr.flags.owndata or not arr.flags.c_contiguous:
            return f"tensor {name!r} is a view, not a fresh array"
        pool = pools.get(arr.dtype, set())
        if not raw_legacy and arr.size and not set(arr.view(f"u{arr.itemsize}").ravel().tolist()) <= pool:
            return f"tensor {name!r} ({arr.dtype}, {arr.shape}) holds values from outside its storages"
    return None


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "refused":
        return True
    return list(a[1]) == list(b[1]) and all(
        a[1][k].dtype == b[1][k].dtype and a[1][k].shape == b[1][k].shape and a[1][k].tobytes() == b[1][k].tobytes()
        for k in a[1])


def main(reader_path: str, cases: int, seed: int) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("pth_under_test", reader_path)
    pth = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pth
    spec.loader.exec_module(pth)
    want = expected()
    failures, counts = [], {}

    def on_alarm(*_):
        raise _Hung()

    signal.signal(signal.SIGALRM, on_alarm)
    with tempfile.TemporaryDirectory() as folder:
        for fmt in FORMATS:  # the unmutated files load exactly
            path = os.path.join(folder, f"valid_{fmt}.pth")
            open(path, "wb").write(container(fmt, state_dict_pickle()))
            got = _outcome(pth.load_state_dict, path)
            if _problem(fmt, "flip", path, got, want) or got[0] != "loaded" or not _same(got, ("loaded", want)):
                failures.append({"case": f"valid_{fmt}", "problem": str(got[1])[:300]})
        for index in range(cases):
            fmt, kind, data = case(seed, index)
            path = os.path.join(folder, f"case{index}_{fmt}_{kind}.pth")
            open(path, "wb").write(data)
            by_path = ("no answer", None)
            signal.setitimer(signal.ITIMER_REAL, CASE_S)
            try:
                by_path = _outcome(pth.load_state_dict, path)
                by_bytes = _outcome(lambda p: pth.load_state_dict(p, pth.read_checked(p)), path)
                problem = _problem(fmt, kind, path, by_path, want) or (
                    None if _same(by_path, by_bytes) else f"the path gives {by_path[0]}, its bytes {by_bytes[0]}")
            except _Hung:
                problem = f"no answer within {CASE_S} s"
            except Exception as e:  # noqa: BLE001 - anything but ValueError escaping the reader is a failure
                problem = f"raised {type(e).__name__}: {str(e)[:300]}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            identical = _same(by_path, ("loaded", want))
            outcome = "refused" if by_path[0] == "refused" else "identical" if identical else "other"
            counts[outcome] = counts.get(outcome, 0) + 1
            if problem:
                failures.append({"case": os.path.basename(path), "problem": problem})
            with contextlib.suppress(OSError):
                os.remove(path)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {"cases": cases, "counts": counts, "failures": failures, "peak_mb": int(status["VmHWM"].split()[0]) / 1024}


if __name__ == "__main__":
    reader, n, seed, memory = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    print(json.dumps(main(reader, n, seed)))
