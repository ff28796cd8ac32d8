"""Hostile weights files that must be refused in bounded time and memory, each crafted at
test time and read in a fresh process under a wall-time bound and an address-space bound:
a tuple nested 300,000 deep (hashing it overflowed the C stack), a 453-byte tuple DAG whose
hash visits 2^100 nodes (a hang that ignored Ctrl-C), one storage rebuilt for hundreds of
tensors (memory), a deflate stream that inflates far past its declared size, files the
weights cache must refuse before hashing them whole, sources that are no regular file (a
FIFO blocked forever), and zip directories too large to parse. Ctrl-C interrupts a read of
the DAG or of a valid 256 MiB file within a second, because every large read, CRC, hash and
copy runs in bounded steps (checked in-process with a small step).

The reader's child process loads `rexjax/models/convert/pth.py` from its file (numpy and
ml_dtypes only: no jax, so it starts fast and fits a tight memory bound); the cache's child
imports `rexjax.models.cache`. A refusal is the child's exit code 3 with exactly one line on
stderr; the child reports its peak RSS and whether the file was hashed as JSON on stdout."""

import io
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest

from tests.helpers import torch_pickle as tp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READER = os.path.join(ROOT, "rexjax", "models", "convert", "pth.py")
LIMIT_S = 30  # a hang guard: every refusal takes well under a second
MEMORY = 2 << 30  # address space of a reader child
CACHE_MEMORY = 16 << 30  # a child that imports jax reserves more address space
PEAK_MB = 100  # a refused file may not push the reader child's peak RSS past this
CACHE_PEAK_MB = 500  # the same for a child that imports jax (~210 MB), given a 1 GiB file
REFUSED = 3

_CHILD = r"""
import resource, sys
memory = int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
import importlib.util, json
mode, path = sys.argv[1], sys.argv[2]
hashed = []
if mode == "reader_after_a_look":  # the path passes a look (os.stat: a regular file), as when it is swapped after one
    import os
    real_stat, regular = os.stat, os.stat(sys.argv[3])
    os.stat = lambda p, *a, **k: regular if os.fspath(p) == path else real_stat(p, *a, **k)
if mode.startswith("reader"):
    spec = importlib.util.spec_from_file_location("pth_under_test", sys.argv[3])
    pth = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pth
    spec.loader.exec_module(pth)
    read = pth.load_state_dict
else:
    from rexjax.models import cache
    digest = cache.digest
    cache.digest = lambda data: hashed.append(len(data)) or digest(data)
    read = lambda p: cache.load("m", p, {}, lambda state_dict: {})
code = 0
try:
    read(path)
except ValueError as e:
    sys.stderr.write(f"{e}\n")
    code = 3
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
peak = int(status["VmHWM"].split()[0]) / 1024  # this image only (ru_maxrss keeps the forking parent's)
print(json.dumps({"peak_mb": peak, "hashed": hashed}))
sys.exit(code)
"""


def _refusal(path, regex: str, mode: str = "reader") -> dict:
    """Runs the child on `path`; asserts a refusal (exit 3, one stderr line naming the file
    and matching `regex`) within LIMIT_S; returns the child's report plus its wall time."""
    memory = MEMORY if mode.startswith("reader") else CACHE_MEMORY  # set by the child before any import
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path), READER, str(memory)],
                         capture_output=True, text=True, timeout=LIMIT_S, cwd=ROOT)
    wall = time.perf_counter() - start
    assert out.returncode == REFUSED, f"exit {out.returncode} (a signal if negative): {out.stderr[-1500:]}"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr[-1500:]
    assert os.path.basename(path) in lines[0], lines[0]
    assert re.search(regex, lines[0]), lines[0]
    return {**json.loads(out.stdout), "wall_s": wall}


def _zip(path, pkl: bytes, storages=None) -> str:
    tp.write_zip(path, None, storages or {}, pkl=pkl)
    return str(path)


def _legacy(path, pkl: bytes, keys_pkl: bytes) -> str:
    """A legacy file whose object pickle is `pkl` and storage-key list pickle `keys_pkl`."""
    tp.write_legacy(path, None, {}, pkl=pkl)
    data = open(path, "rb").read()
    empty_keys = b"\x80\x02]q\x00."  # pickle.dumps([], protocol=2), what write_legacy ends with
    assert data.endswith(empty_keys)
    with open(path, "wb") as f:
        f.write(data[: -len(empty_keys)] + keys_pkl)
    return str(path)


def test_tuple_nested_300k_deep_is_refused_not_a_stack_overflow(tmp_path):
    # SETITEM hashed the key, a tuple nested 300,000 deep: C recursion, SIGSEGV.
    path = _zip(tmp_path / "deep.pth", b"\x80\x02}N" + b"\x85" * 300_000 + b"Ns.")
    report = _refusal(path, r"containers nested more than 64 deep")
    assert report["peak_mb"] < PEAK_MB, report


@pytest.mark.parametrize("case", ["dag_100_zip", "dag_60_dict_key", "dag_60_legacy_storage_key"])
def test_tuple_dag_key_is_refused_before_it_is_hashed(tmp_path, case):
    # DUP + TUPLE2 doubles the tuple: hashing it visits 2^levels nodes (a hang). 100 levels
    # (the 453-byte file) exceed the nesting bound; 60 stay under it and reach the key checks.
    dag = b"N" + b"2\x86" * (100 if case == "dag_100_zip" else 60)
    if case == "dag_60_legacy_storage_key":
        path, regex = _legacy(tmp_path / f"{case}.pth", b"\x80\x02}.", b"\x80\x02]" + dag + b"a."), "storage key list"
    else:
        path = _zip(tmp_path / f"{case}.pth", b"\x80\x02}" + dag + b"Ns.")
        regex = "nested more than 64 deep" if case == "dag_100_zip" else "dict key of type tuple"
    if case == "dag_100_zip":
        assert os.path.getsize(path) == 453
    report = _refusal(path, regex)
    assert report["peak_mb"] < PEAK_MB, report


def test_one_storage_rebuilt_for_many_tensors_is_capped(tmp_path):
    # One 1 MiB storage; the rebuild function and its argument tuple are memoised, so each
    # further tensor is 4 opcodes (key, BINGET, BINGET, REDUCE) and 1 MiB materialised.
    n = 1 << 18
    storage = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    args = tp.ptuple([tp.storage_pid("FloatStorage", "0", n), tp.pint(0), tp.ptuple([tp.pint(n)]),
                      tp.ptuple([tp.pint(1)]), b"\x89", tp.pglobal("collections", "OrderedDict") + b")R"])
    first = tp.pstr("t0") + tp.pglobal("torch._utils", "_rebuild_tensor_v2") + b"q\x01" + args + b"q\x02R"
    rest = b"".join(tp.pstr(f"t{i}") + b"h\x01h\x02R" for i in range(1, 600))  # 600 MiB unbounded
    pkl = b"\x80\x02" + tp.pglobal("collections", "OrderedDict") + b")R(" + first + rest + b"u."
    path = _zip(tmp_path / "rebuilt.pth", pkl, {"0": storage})
    assert os.path.getsize(path) < (n * 4) + 64 * 1024
    report = _refusal(path, r"tensor 't\d+': the tensors materialise more than 4x the 1048576 bytes")
    assert report["peak_mb"] < PEAK_MB, report


def _deflate_bomb(nbytes: int) -> bytes:
    """A raw deflate stream of `nbytes` zeros (a multiple of 64 MiB), built from one 64 MiB
    block repeated: a full flush makes each block byte-aligned and independent."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = c.compress(bytes(64 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * (nbytes // (64 << 20)) + c.flush()


def _one_member_zip(name: str, stream: bytes, declared: int, crc: int) -> bytes:
    """A zip holding one deflated member `name` whose data is `stream` and whose headers
    declare `declared` bytes with CRC-32 `crc` (local header, data, central directory, end)."""
    n, date = name.encode(), 33  # 1980-01-01
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, date, crc, len(stream), declared, len(n), 0) + n
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, date, crc, len(stream), declared,
                          len(n), 0, 0, 0, 0, 0, 0) + n
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(stream), 0)
    return local + stream + central + end


def test_deflate_stream_past_its_declared_size_is_refused_early(tmp_path):
    # data.pkl declares 1,000 bytes (with the CRC-32 of its first 1,000 bytes, so a reader
    # that inflates everything and truncates passes the CRC check) but its 256 KB deflate
    # stream holds 256 MiB of zeros.
    stream = _deflate_bomb(256 << 20)
    assert len(stream) < 1 << 20
    path = tmp_path / "bomb.pth"
    path.write_bytes(_one_member_zip("archive/data.pkl", stream, 1000, zlib.crc32(bytes(1000))))
    with zipfile.ZipFile(path) as zf:  # a well-formed zip, as far as its headers go
        assert zf.getinfo("archive/data.pkl").file_size == 1000
    report = _refusal(path, r"'archive/data.pkl' inflates past its declared 1000 bytes")
    assert report["peak_mb"] < PEAK_MB, report


@pytest.mark.parametrize("case", ["sparse_zeros", "zip_after_a_gap"])
def test_weights_cache_checks_the_structure_before_hashing(tmp_path, case):
    # The cache keyed the file by its SHA-256 before the reader looked at it: a 16 GB sparse
    # file was hashed whole (69 s) before it was refused. Here 1 GiB, sparse.
    path = tmp_path / f"{case}.pth"
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    if case == "zip_after_a_gap":  # a valid small archive after 1 GiB of zeros (zipfile reads it)
        small = tmp_path / "small.pth"
        tp.write_zip(small, [("w", tp.tensor("FloatStorage", "0", 4, 0, (4,), (1,)))], {"0": np.ones(4, np.float32)})
        with open(path, "ab") as f:
            f.write(small.read_bytes())
    regex = "not a pickle opcode" if case == "sparse_zeros" else "data before the archive"
    report = _refusal(path, regex, mode="cache")
    assert report["hashed"] == [] and report["peak_mb"] < CACHE_PEAK_MB, report  # neither hashed nor read whole


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "fifo_after_a_look"])
def test_a_source_that_is_no_regular_file_is_refused_unread(tmp_path, kind):
    # A FIFO blocked the reader forever once the path passed a look (it was opened
    # blocking); a device never ends. Refused on the open descriptor, never read.
    path, what = tmp_path / f"{kind}.pth", "a FIFO"
    if kind == "directory":
        path.mkdir()
        what = "a directory"
    elif kind == "device":
        path, what = "/dev/zero", "a device"
    else:
        os.mkfifo(path)
    mode = "reader_after_a_look" if kind == "fifo_after_a_look" else "reader"
    report = _refusal(path, f"is {what}, not a regular file", mode=mode)
    assert report["peak_mb"] < PEAK_MB, report


def _central_record(name: bytes) -> bytes:
    """A central-directory record of an empty stored member `name` at offset 0."""
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 33, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0) + name


def _end_record(members: int, directory: int, offset: int) -> bytes:
    return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, members, members, directory, offset, 0)


@pytest.mark.parametrize("case", ["directory_claims_1gib", "directory_of_200k_records", "declares_65535_members",
                                  "more_records_than_declared"])
def test_zip_directory_is_bounded_before_it_is_parsed(tmp_path, case):
    # zipfile.ZipFile read the whole central directory the end record points at, then built
    # one ZipInfo (~500 bytes) per record, before the reader's own checks: a sparse file whose
    # end record claims a 1 GiB directory was read into memory (1 GB peak); 200k 47-byte
    # records (the end record's count says 1: zipfile ignored it) made 100 MB of ZipInfos.
    path = tmp_path / f"{case}.pth"
    if case == "directory_claims_1gib":
        with open(path, "wb") as f:
            f.truncate(1 << 30)
            f.seek(1 << 30)
            f.write(_end_record(1, 1 << 30, 0))
        regex = r"central directory claims 1073741824 bytes \(limit 4194304\)"
    elif case == "declares_65535_members":  # a valid small file but for the count
        tp.write_zip(path, [("w", tp.tensor("FloatStorage", "0", 4, 0, (4,), (1,)))], {"0": np.ones(4, np.float32)})
        data = path.read_bytes()
        path.write_bytes(data[:-22] + _end_record(0xFFFF, *struct.unpack("<2L", data[-10:-2])))
        regex = r"the zip declares 65535 members \(limit 32768\)"
    else:
        n = 200_000 if case == "directory_of_200k_records" else 1000
        directory = b"".join(_central_record(b"%d" % (i % 10)) for i in range(n))
        path.write_bytes(directory + _end_record(1, len(directory), 0))
        regex = (r"central directory claims \d+ bytes \(limit 4194304\)" if n == 200_000
                 else r"holds more than the 1 members its end record declares")
    report = _refusal(path, regex)
    assert report["peak_mb"] < PEAK_MB, report


_READ_FOREVER = r"""
import resource, signal, sys
# a worker that ignores SIGINT (pytest-xdist's) hands SIG_IGN down, and Python then installs no
# KeyboardInterrupt handler: install it, as an interactive process has it
signal.signal(signal.SIGINT, signal.default_int_handler)
path, reader, memory, hashed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "hashed"
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
import importlib.util
spec = importlib.util.spec_from_file_location("pth_under_test", reader)
pth = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pth
spec.loader.exec_module(pth)
if hashed:
    from rexjax.models.cache import digest
print("reading", flush=True)
try:
    while True:  # until interrupted; a refused file is read again
        try:
            if hashed:  # the weights cache's steps: one checked read, its hash, its parse
                data = pth.read_checked(path)
                digest(data)
                pth.load_state_dict(path, data)
                del data
            pth.load_state_dict(path)
        except ValueError:
            pass
except KeyboardInterrupt:
    print("interrupted", flush=True)
    import os
    os._exit(130)  # no interpreter teardown (jax's takes ~0.6 s): the test times the interrupt itself
"""


def _large_valid(path, nbytes: int) -> None:
    """A valid zip .pth holding one float32 tensor of `nbytes` zeros, written in 4 MiB steps."""
    n = nbytes // 4
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", tp.state_dict_pickle([("w", tp.tensor("FloatStorage", "0", n, 0, (n,), (1,)))]))
        with zf.open("archive/data/0", "w", force_zip64=True) as f:
            for _ in range(nbytes >> 22):
                f.write(bytes(4 << 20))


@pytest.mark.parametrize("case", ["tuple_dag_453_bytes", "valid_256mib_hashed"])
def test_ctrl_c_lands_within_a_second(tmp_path, case):
    # The 453-byte tuple DAG hung in one C call (the key's hash) and ignored SIGINT. A child
    # reads the file over and over; SIGINT a second in must interrupt it within a second (a
    # valid 256 MiB file: every read, hash, CRC and copy runs in bounded steps). Timed to the
    # child's KeyboardInterrupt, not to the end of its interpreter's teardown.
    path = tmp_path / f"{case}.pth"
    if case == "tuple_dag_453_bytes":
        _zip(path, b"\x80\x02}N" + b"2\x86" * 100 + b"Ns.")
    else:
        _large_valid(path, 256 << 20)
    mode, memory = ("hashed", CACHE_MEMORY) if case.endswith("hashed") else ("plain", MEMORY)
    child = subprocess.Popen([sys.executable, "-c", _READ_FOREVER, str(path), READER, str(memory), mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == "reading", child.stderr.read()[-2000:]
        time.sleep(1.0)
        assert child.poll() is None, child.stderr.read()[-2000:]  # still reading
        child.send_signal(signal.SIGINT)
        start = time.perf_counter()
        answered = select.select([child.stdout], [], [], LIMIT_S)[0]
        waited = time.perf_counter() - start
        line = child.stdout.readline().strip() if answered else f"(nothing within {LIMIT_S} s)"
        code = child.wait(timeout=LIMIT_S) if answered else None
    finally:
        child.kill()
        child.wait()
    assert line == "interrupted" and code == 130 and waited < 1.0, (line, code, waited, child.stderr.read()[-2000:])


class _Recording(np.ndarray):
    """An array that records the bytes of every assignment into it (and into its views)."""

    sizes: list = []

    def __setitem__(self, key, value):
        _Recording.sizes.append(np.asarray(value).nbytes)
        super().__setitem__(key, value)


@pytest.mark.parametrize("shape, transpose",
                         [((1000,), False), ((300, 7), True), ((3, 5, 200), False), ((2, 1, 3, 50), True)])
def test_tensor_copies_run_in_steps(monkeypatch, shape, transpose):
    # One numpy copy of a whole tensor is one C call: Ctrl-C waits for it (seconds for a
    # GB tensor). Every assignment stays within CHUNK bytes, and the copy is exact.
    from rexjax.models.convert import pth

    monkeypatch.setattr(pth, "CHUNK", 256)
    src = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    src = src.T if transpose else src  # a strided view, as a tensor's storage gives
    dst = np.empty(src.shape, np.float32)
    _Recording.sizes = []
    pth._copy_in_steps(dst.view(_Recording), src)
    assert np.array_equal(dst, src) and _Recording.sizes and max(_Recording.sizes) <= 256, _Recording.sizes


def test_reads_crcs_and_hashes_run_in_steps(monkeypatch, tmp_path):
    # The same for the other C calls over a whole storage or file: a read, a CRC-32, the
    # weights cache's SHA-256. Each step is at most CHUNK bytes; the results are exact.
    import hashlib

    from rexjax.models import cache
    from rexjax.models.convert import pth

    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    path = tmp_path / "blob"
    path.write_bytes(data)
    steps = []
    real_crc = zlib.crc32
    monkeypatch.setattr(pth, "CHUNK", 256)
    monkeypatch.setattr(cache, "CHUNK", 256)
    monkeypatch.setattr(zlib, "crc32", lambda b, *a: steps.append(("crc", len(b))) or real_crc(b, *a))
    assert pth._crc32(data) == real_crc(data)

    class File(io.FileIO):
        def readinto(self, buf):
            steps.append(("read", len(buf)))
            return super().readinto(buf)

    with File(path) as f:
        assert bytes(pth._read_exact(f, len(data))) == data
    real_sha = hashlib.sha256

    class Sha:
        def __init__(self):
            self.h = real_sha()

        def update(self, b):
            steps.append(("hash", len(b)))
            self.h.update(b)

        def hexdigest(self):
            return self.h.hexdigest()

    monkeypatch.setattr(hashlib, "sha256", Sha)
    assert cache.digest(data) == real_sha(data).hexdigest()
    assert {kind for kind, _ in steps} == {"crc", "read", "hash"} and max(n for _, n in steps) <= 256, steps
