"""The ONNX reader on seeded random mutations of the small valid model of
`tests/security/onnx_corpus.py` (its conv weight in external data beside it): bytes flipped,
inserted, deleted, a span duplicated elsewhere, the file cut, or a varint written over the
bytes at a random spot (an edge value: a huge length, a negative dim, a field number 0).
Several hundred cases run in one child process (this module run as a script) under an
address-space bound, a wall-time bound and a per-case alarm.

The property: every case is either refused with one line naming the file (an OnnxFileError,
not caused by MemoryError or RecursionError) or read as a model whose every tensor is in
memory and holds exactly the elements its dims declare (re-derived by onnx's numpy_helper),
and whose nodes each come after the values they consume;
no other exception, no hang, no memory growth past a few MB per case.

`python -m tests.security.test_onnx_property CASES SEED MEMORY` prints one JSON report."""

import json
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np

from tests.security.onnx_corpus import varint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = 400
SEED = 1
LIMIT_S = 120  # the 400 cases take ~2 s after the ~5 s import of rexjax
MEMORY = 2 << 30  # address space of the child
GROWTH_MB = 16  # one case's peak RSS over the RSS before it (the file is ~1 KB)
CASE_S = 5  # a case running longer than this is a hang
RAW = ("flip", "insert", "delete", "duplicate", "truncate", "varint")
SEMANTIC = ("dim", "dtype", "rename", "external", "node_copy", "node_swap")
EDGE = (0, 1, 2**31, 2**32 + 7, 2**63 - 1, 2**64 - 1, 2**40, 127, 128, 16383)
EDGE_DIMS = (-1, 0, 1, 2, 3, 5, 2**31, 2**62, -(2**63))
EDGE_TEXT = ("-1", "0", "1", "432", "448", "18446744073709551616", "1e3", " 16", "", "..", "/", "weights.bin\0x",
             "../weights.bin", "model.onnx", ".")


def mutate(data: bytes, seed: int, index: int) -> tuple[str, bytes]:
    """(kind, mutated bytes) of case `index` of the run seeded `seed`: a raw mutation of the
    bytes for odd indices, a semantic one (`_semantic`) for even ones."""
    rng = np.random.default_rng([seed, index])
    kinds = RAW if index % 2 else SEMANTIC
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind in SEMANTIC:
        return kind, _semantic(rng, kind, data)
    b = bytearray(data)
    at = int(rng.integers(len(b)))
    if kind == "flip":
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
    elif kind == "insert":
        b[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    elif kind == "delete":
        del b[at : at + int(rng.integers(1, 17))]
    elif kind == "duplicate":
        span = bytes(b[at : at + int(rng.integers(1, 65))])
        to = int(rng.integers(len(b) + 1))
        b[to:to] = span
    elif kind == "truncate":
        del b[at:]
    else:
        value = varint(EDGE[int(rng.integers(len(EDGE)))])
        b[at : at + len(value)] = value
    return kind, bytes(b)


def _semantic(rng, kind: str, data: bytes) -> bytes:
    """The model `data` (valid, parsed by onnx) with one field set to an edge value and
    re-serialised, so the reader's checks past the wire format meet it: a dim, a tensor's
    data type, a node input renamed to another value's name (or a new one), an external data
    entry's value, a node copied, two nodes swapped."""
    import onnx

    m = onnx.ModelProto.FromString(data)
    g = m.graph
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if kind == "dim":
        t = pick(g.initializer)
        if t.dims:
            t.dims[int(rng.integers(len(t.dims)))] = pick(EDGE_DIMS)
        else:
            t.dims.append(pick(EDGE_DIMS))
    elif kind == "dtype":
        pick(g.initializer).data_type = int(rng.integers(0, 27))
    elif kind == "rename":
        node = pick(g.node)
        names = [v for n in g.node for v in n.output] + [t.name for t in g.initializer] + ["x", "y", "nowhere"]
        node.input[int(rng.integers(len(node.input)))] = pick(names)
    elif kind == "external":
        entry = pick(next(t for t in g.initializer if t.external_data).external_data)
        entry.value = pick(EDGE_TEXT)
    elif kind == "node_copy":
        g.node.insert(int(rng.integers(len(g.node) + 1)), pick(g.node))
    else:
        i, j = rng.choice(len(g.node), 2, replace=False)
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[int(i)])
        b.CopyFrom(g.node[int(j)])
        g.node[int(i)].CopyFrom(b)
        g.node[int(j)].CopyFrom(a)
    return m.SerializeToString()


class _Hung(BaseException):
    """Raised by the per-case alarm (a BaseException: the reader's handlers do not catch it)."""


def _problem(path: str, outcome) -> str | None:
    """What is wrong with ('read', model) or ('refused', error) (None when the property holds)."""
    from onnx import TensorProto, numpy_helper

    from rexjax.models.onnx import reader

    status, value = outcome
    if status == "refused":
        message = str(value)
        if not isinstance(value, reader.OnnxFileError):
            return f"refused with {type(value).__name__}, not OnnxFileError: {message[:300]}"
        if "\n" in message or os.path.basename(path) not in message or len(message) > 1000:
            return f"refusal is not one short line naming the file: {message[:300]!r}"
        if isinstance(value.__cause__, (MemoryError, RecursionError)):
            return f"refused only after {type(value.__cause__).__name__}: {message[:300]}"
        return None
    known = {t.name for t in value.graph.initializer} | {v.name for v in value.graph.input} | {""}
    for node in value.graph.node:
        if not set(node.input) <= known:
            missing = sorted(set(node.input) - known)
            return f"node {node.name or node.op_type!r} comes before what it consumes ({missing})"
        known.update(node.output)
    tensors = [*value.graph.initializer, *(a.t for n in value.graph.node for a in n.attribute if a.HasField("t"))]
    for t in tensors:
        if t.data_location != TensorProto.DEFAULT or t.external_data:
            return f"tensor {t.name!r} was read but its data is still external"
        if numpy_helper.to_array(t).size != int(np.prod(t.dims, dtype=object)):
            return f"tensor {t.name!r} holds other than the {list(t.dims)} elements it declares"
    return None


def _kb(field: str) -> int:
    return int(next(line for line in open("/proc/self/status") if line.startswith(field)).split()[1])


def main(cases: int, seed: int) -> dict:
    from rexjax.models.onnx import reader
    from tests.security import onnx_corpus

    def on_alarm(*_):
        raise _Hung()

    signal.signal(signal.SIGALRM, on_alarm)
    failures, counts, growth = [], {}, 0.0
    with tempfile.TemporaryDirectory() as folder:
        valid = onnx_corpus.valid(folder)
        want = reader.read_model(valid).SerializeToString()
        data = open(valid, "rb").read()
        for index in range(cases):
            kind, mutated = mutate(data, seed, index)
            path = os.path.join(folder, f"case{index}_{kind}.onnx")
            open(path, "wb").write(mutated)
            open("/proc/self/clear_refs", "w").write("5")  # peak RSS := current RSS
            before = _kb("VmRSS:")
            signal.setitimer(signal.ITIMER_REAL, CASE_S)
            outcome = ("no answer", None)
            try:
                try:
                    outcome = ("read", reader.read_model(path))
                except ValueError as e:
                    outcome = ("refused", e)
                problem = _problem(path, outcome)
            except _Hung:
                problem = f"no answer within {CASE_S} s"
            except Exception as e:  # noqa: BLE001 - anything but ValueError escaping the reader is a failure
                problem = f"raised {type(e).__name__}: {str(e)[:300]}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            growth = max(growth, (_kb("VmHWM:") - before) / 1024)
            same = outcome[0] == "read" and outcome[1].SerializeToString() == want
            label = "identical" if same else outcome[0] if outcome[0] != "read" else "other"
            counts[label] = counts.get(label, 0) + 1
            if problem:
                failures.append({"case": os.path.basename(path), "problem": problem})
            os.remove(path)
    return {"counts": counts, "failures": failures, "growth_mb": growth}


def test_mutated_models_are_read_or_refused_in_one_line():
    out = subprocess.run([sys.executable, "-m", "tests.security.test_onnx_property", str(CASES), str(SEED),
                          str(MEMORY)], capture_output=True, text=True, timeout=LIMIT_S, cwd=ROOT)
    assert out.returncode == 0, f"exit {out.returncode} (a signal if negative): {out.stderr[-2000:]}"
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["failures"] == [], json.dumps(report["failures"][:10], indent=1)
    counts = report["counts"]
    assert sum(counts.values()) == CASES, counts
    # not vacuous: some mutations leave the same model or another valid one, most are refused
    assert counts.get("identical", 0) >= 5 and counts.get("other", 0) >= 20, counts
    assert counts.get("refused", 0) >= CASES // 2, counts
    assert report["growth_mb"] < GROWTH_MB, report["growth_mb"]


def test_the_cases_are_seeded(tmp_path):
    from tests.security import onnx_corpus

    data = open(onnx_corpus.valid(str(tmp_path)), "rb").read()
    assert mutate(data, SEED, 7) == mutate(data, SEED, 7)
    assert [mutate(data, SEED, i) for i in range(5)] != [mutate(data, SEED + 1, i) for i in range(5)]


if __name__ == "__main__":
    import resource

    n, seed_, memory = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    print(json.dumps(main(n, seed_)))
