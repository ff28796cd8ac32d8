"""The ONNX reader (`rexjax.models.onnx.reader.read_model`) on the crafted corpus
(`tests/security/onnx_corpus.py`) and on valid models: every crafted file is refused with one
line naming the file and the problem, in bounded time and memory (a child process under an
address-space limit); valid models read with every tensor's bytes in memory, bit for bit the
arrays written, and onnxruntime computes the same outputs from the model read as from the
file."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from rexjax.models.onnx import reader
from tests.security import onnx_corpus as corpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEMORY = 2 << 30  # address space of the corpus child


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return corpus.build(str(tmp_path_factory.mktemp("onnx_corpus")))


@pytest.mark.parametrize("name", list(corpus.CASES))
def test_crafted_file_is_refused_in_one_line(files, name):
    path, regex = files[name]
    with pytest.raises(reader.OnnxFileError, match=regex) as e:
        reader.read_model(path)
    message = str(e.value)
    assert message.startswith(path + ": ") and "\n" not in message, message
    assert isinstance(e.value, ValueError) and e.value.__cause__ is None  # no exception chain to print


def _arrays(model) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _same_bits(got: dict, want: dict) -> bool:
    return sorted(got) == sorted(want) and all(
        got[k].dtype == want[k].dtype and got[k].shape == want[k].shape and got[k].tobytes() == want[k].tobytes()
        for k in want)


def _ort(model_or_path, x: np.ndarray) -> np.ndarray:
    source = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_valid_model_reads_bit_exact_and_runs_as_the_file(tmp_path):
    path = corpus.valid(str(tmp_path))
    model = reader.read_model(path)
    assert _same_bits(_arrays(model), corpus.WEIGHTS)
    assert all(t.data_location == TensorProto.DEFAULT and not t.external_data for t in model.graph.initializer)
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    assert np.array_equal(_ort(model, x), _ort(path, x))  # onnxruntime loads the external data itself


def _copy_weights(folder, name):
    os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
    with open(os.path.join(folder, "weights.bin"), "rb") as src, open(os.path.join(folder, name), "wb") as dst:
        dst.write(src.read())


_SHA1 = hashlib.sha1(corpus.WEIGHTS["conv.w"].tobytes()).hexdigest()


@pytest.mark.parametrize("entries, prepare", [
    ({"location": "sub/w.bin"}, lambda d: _copy_weights(d, "sub/w.bin")),
    ({"location": "./sub/../weights.bin"}, None),
    ({"location": "link.bin"}, lambda d: os.symlink("weights.bin", os.path.join(d, "link.bin"))),  # inside: allowed
    ({"length": None}, None),  # an absent length means what the dims need
    ({"checksum": _SHA1}, None),
    ({"checksum": _SHA1.upper()}, None),
], ids=["subfolder", "dotdot_inside", "symlink_inside", "no_length", "checksum", "checksum_upper"])
def test_legitimate_external_data_reads_bit_exact(tmp_path, entries, prepare):
    path = corpus._with_conv_w(str(tmp_path), **entries)
    if prepare:
        prepare(str(tmp_path))
    assert _same_bits(_arrays(reader.read_model(path)), corpus.WEIGHTS)


def test_every_dtype_reads_as_numpy_wrote_it(tmp_path):
    """Every supported type, both as raw_data and (where onnx has one) its typed field."""
    rng = np.random.default_rng(3)
    arrays = {f"t{i}": (rng.standard_normal(6) * 50).astype(d).reshape(2, 3)
              for i, d in enumerate(["f4", "f2", "f8", "i8", "i4", "i1", "u1", "?"])}
    tensors = [numpy_helper.from_array(a, k) for k, a in arrays.items()]
    tensors += [helper.make_tensor(f"{k}_typed", helper.np_dtype_to_tensor_dtype(a.dtype), a.shape, a.ravel().tolist())
                for k, a in arrays.items()]
    arrays.update({f"{k}_typed": a for k, a in list(arrays.items())})
    m = corpus.model()
    m.graph.initializer.extend(tensors)
    got = _arrays(reader.read_model(corpus._save(str(tmp_path), m)))
    assert _same_bits({k: got[k] for k in arrays}, arrays)


def test_too_large_model_file_is_refused_by_its_size(tmp_path):
    path = tmp_path / "big.onnx"
    with open(path, "wb") as f:
        f.truncate(reader.MAX_MODEL_BYTES + 1)  # sparse: no disk, and never read
    with pytest.raises(reader.OnnxFileError, match=rf"big\.onnx: the model file is {reader.MAX_MODEL_BYTES + 1} bytes"):
        reader.read_model(path)


def test_tensors_over_the_total_cap_are_refused_before_external_data_is_read(tmp_path):
    t = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[reader.MAX_DATA_BYTES // 4 + 1])
    corpus._ext(t, "absent.bin", offset=None)  # a read would fail with "does not exist"
    m = corpus.model()
    m.graph.initializer.append(t)
    with pytest.raises(reader.OnnxFileError, match=f"more than {reader.MAX_DATA_BYTES} bytes"):
        reader.read_model(corpus._save(str(tmp_path), m))


def test_device_is_refused_unopened():
    with pytest.raises(reader.OnnxFileError, match="/dev/zero: the model file is a character device, not a regular file"):
        reader.read_model("/dev/zero")


def test_non_utf8_file_name_is_shown_escaped(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xff")
    os.mkdir(folder)
    path = os.path.join(folder, b"m\xfe.onnx")
    open(path, "wb").write(b"\x08")
    with pytest.raises(reader.OnnxFileError) as e:
        reader.read_model(os.fsdecode(path))
    assert "caf\\xff/m\\xfe.onnx: not an ONNX model" in str(e.value)
    str(e.value).encode("utf-8")  # no lone surrogates


_PROBE = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]),) * 2)
from rexjax.models.onnx import reader
files = json.loads(sys.argv[1])  # built by the parent: building raises this process's peak RSS
reader.read_model(files.pop("valid"))

def kb(field):
    return int(next(line for line in open("/proc/self/status") if line.startswith(field)).split()[1])

rows = {}
for name, path in files.items():
    open("/proc/self/clear_refs", "w").write("5")  # peak RSS := current RSS (imports made the peak 200 MB)
    before, t = kb("VmRSS:"), time.perf_counter()
    try:
        reader.read_model(path)
        err = None
    except Exception as e:
        err = (type(e).__name__, "\n" in str(e))
    rows[name] = {"error": err, "s": time.perf_counter() - t, "rss_growth_mb": (kb("VmHWM:") - before) / 1024}
print(json.dumps(rows))
"""


def test_corpus_in_a_child_has_bounded_time_and_memory(files, tmp_path):
    paths = {name: path for name, (path, _) in files.items()} | {"valid": corpus.valid(str(tmp_path))}
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(paths), str(MEMORY)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout.splitlines()[-1])
    assert sorted(rows) == sorted(corpus.CASES)
    for name, row in rows.items():
        assert row["error"] == ["OnnxFileError", False], (name, row)
        assert row["rss_growth_mb"] < 16, (name, row)  # the files are at most 4 MB; parsing 2 MB of them: 146 MB
        assert row["s"] < 10, (name, row)  # a hang guard, not a benchmark


def test_nodes_come_back_in_topological_order(tmp_path):
    """A file listing its nodes backwards reads with the nodes in order, computing what the
    ordered file computes; an ordered file keeps its order (ties broken by file position)."""
    ordered = corpus.model()
    backwards = corpus.model(nodes=list(reversed(ordered.graph.node)))
    got = reader.read_model(corpus._save(str(tmp_path / "b"), backwards))
    assert [n.SerializeToString() for n in got.graph.node] == [n.SerializeToString() for n in ordered.graph.node]
    x = np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)
    assert np.array_equal(_ort(got, x), _ort(corpus._save(str(tmp_path / "o"), ordered), x))
    parallel = corpus.model(nodes=[*ordered.graph.node, helper.make_node("Relu", ["x"], ["u"]),
                                   helper.make_node("Relu", ["x"], ["v"])])
    got = reader.read_model(corpus._save(str(tmp_path / "p"), parallel))
    assert [n.output[0] for n in got.graph.node] == ["c", "r", "p", "f", "y", "u", "v"]


CLI_CASES = ["external_parent_path", "nodes_200001", "if_subgraph", "fifo_model"]


def test_cli_refuses_hostile_onnx_in_one_line(files, tmp_path):
    """`rexjax explain IMAGE --model hostile.onnx`: exit status 2, the reader's one line on
    stderr, no traceback (the command lines run in one process, `tests/commands/cli_probe`)."""
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 12, 3), np.uint8)).save(image)
    cases = [["explain", str(image), "--model", files[name][0], "--out", str(tmp_path / "out")] for name in CLI_CASES]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = {**os.environ, "REXJAX_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": ROOT, "REXJAX_COMPILE_CACHE": "0"}
    out = subprocess.run([sys.executable, "-m", "tests.commands.cli_probe", str(tmp_path / "cases.json")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    for name, result in zip(CLI_CASES, json.loads(out.stdout.splitlines()[-1])):
        lines = result["stderr"].strip().splitlines()
        assert result["code"] == 2 and len(lines) == 1 and "Traceback" not in result["stderr"], (name, result)
        assert lines[0].startswith("rexjax explain: --model: ") and files[name][0] in lines[0], (name, lines)
    assert not any((tmp_path / "out").iterdir())  # the command made its output folder, nothing in it
