"""`benchmarks.side_by_side_nd`: the tool's worker on 1-D and 3-D ONNX files (the
"explain_array" request), the onnxruntime sufficiency check, the planted inputs, and (slow)
the script end to end. Skipped without the tool's environment (.venv-bench).

Oracles: onnxruntime's top-1 on the input and on the masked input computed here in numpy;
the tool's documented refusal of a volume model with a channel axis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import onnx
from onnx import TensorProto, helper, numpy_helper

from benchmarks import side_by_side_nd as sbs
from benchmarks.runs import ToolWorker
from tests.models.onnx.conftest import FIXTURES, save

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-bench" / "bin" / "python"


def _top1(path, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return int(sess.run(None, {sess.get_inputs()[0].name: x})[0].argmax(-1)[0])


def test_planted_inputs_hold_their_signal():
    """Class 1 signals carry a bump of height 3 over noise of sd 0.5, class 0 ones do not;
    the cube adds 2 to 27 voxels. Bug caught: the bump or the cube not planted."""
    x1, y1 = sbs.signals(np.random.default_rng(0), 20, planted=1)
    x0, _ = sbs.signals(np.random.default_rng(0), 20, planted=0)
    assert (y1 == 1).all() and x1.shape == (20, 1, sbs.LENGTH)
    assert (x1.max(axis=(1, 2)) > 2.0).all() and (x0.max(axis=(1, 2)) < 2.4).all()
    v1, _ = sbs.volumes(np.random.default_rng(0), 3, planted=1)
    v0, _ = sbs.volumes(np.random.default_rng(0), 3, planted=0)
    np.testing.assert_allclose((v1 - v0).sum(axis=(1, 2, 3, 4)), 27 * 2.0, rtol=1e-5)


def test_sufficiency_is_onnxruntime_on_the_masked_input(tmp_path):
    """The check occludes outside the mask with 0 in the file's layout, on a graph whose
    logits are x[0] and x[1] of a [batch, 1, 4] signal. Bug caught: the mask inverted or
    applied to the wrong axis."""
    nodes = [helper.make_node("Flatten", ["X"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w"], ["Y"], name="fc", transB=1)]
    path = save(tmp_path, nodes, {"w": np.eye(2, 4, dtype=np.float32)}, in_shape=("N", 1, 4))
    x = np.float32([[1.0, 2.0, 0.0, 0.0]])
    assert sbs.sufficient(path, x, np.array([True, False, False, False]), 0)
    assert not sbs.sufficient(path, x, np.array([True, False, False, False]), 1)
    assert sbs.sufficient(path, x, np.array([False, True, False, False]), 1)
    assert not sbs.sufficient(path, x, np.zeros(4, bool), 0)  # an empty mask is never sufficient


def test_tool_worker_explains_signals_and_records_its_volume_error(tmp_path):
    """The tool in spectral mode on a [batch, 1, 64] file: onnxruntime's top-1 as target, a
    mask and map of the signal's shape, its forward passes counted; in voxel mode on a
    [batch, 1, D, H, W] file: its own error line (it reads 4-axis model shapes as
    [batch, D, H, W])."""
    if not PYTHON.exists():
        pytest.skip("no .venv-bench (python -m benchmarks.tool_env builds it)")
    worker = ToolWorker(PYTHON, tmp_path / "worker.log")
    try:
        signal = FIXTURES / "signal_cnn_dynamo18.onnx"
        assert worker.ask({"op": "onnx", "model": str(signal), "norm": None, "means": None,
                           "stds": None})["input_shape"] == ["batch", 1, 64]
        x = np.random.default_rng(1).standard_normal(64).astype(np.float32)
        r = sbs.run_tool(worker, "spectral", x, 1, {"iters": 2}, tmp_path)
        assert r["target"] == _top1(signal, x[None, None]) and r["mask"].shape == (64,)
        assert r["forward_images"] == r["forward_images_map"] + r["forward_images_extract"] > 0
        volume = FIXTURES / "volume_cnn_dynamo18.onnx"
        worker.ask({"op": "onnx", "model": str(volume), "norm": None, "means": None, "stds": None})
        r = sbs.run_tool(worker, "voxel", np.zeros((8, 10, 12), np.float32), 1, {"iters": 1}, tmp_path)
        assert r == {"error": "the tool's worker: ValueError: too many values to unpack (expected 3)"}
    finally:
        worker.close()


def _volume_without_channel(tmp_path) -> Path:
    """The volume fixture with input [batch, 8, 10, 12] and an Unsqueeze to its channel axis
    in front: the layout the tool's voxel mode reads."""
    proto = onnx.load(str(FIXTURES / "volume_cnn_dynamo18.onnx"))
    old = proto.graph.input[0]
    proto.graph.node.insert(0, helper.make_node("Unsqueeze", ["X", "one"], [old.name], name="channel"))
    proto.graph.initializer.append(numpy_helper.from_array(np.int64([1]), "one"))
    del proto.graph.input[:]
    proto.graph.input.append(helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 8, 10, 12]))
    path = tmp_path / "volume_dhw.onnx"
    onnx.save(proto, str(path))
    return path


def test_tool_worker_counts_every_volume_of_a_batch(tmp_path):
    """The tool's voxel mode stacks its mutants in batches of 64; counted one by one (batch
    1, each call one volume) the map's forward passes are the same (the extraction differs:
    batched, it evaluates 64 prefixes at once). Bug caught: a stacked batch counted as one
    input."""
    if not PYTHON.exists():
        pytest.skip("no .venv-bench (python -m benchmarks.tool_env builds it)")
    path = _volume_without_channel(tmp_path)
    worker = ToolWorker(PYTHON, tmp_path / "worker.log")
    try:
        worker.ask({"op": "onnx", "model": str(path), "norm": None, "means": None, "stds": None})
        x = np.random.default_rng(2).standard_normal((8, 10, 12)).astype(np.float32)
        runs = [sbs.run_tool(worker, "voxel", x, 1, {"iters": 1, "batch_size": b}, tmp_path) for b in (1, 64)]
    finally:
        worker.close()
    assert runs[0]["target"] == runs[1]["target"] == _top1(path, x[None])
    assert runs[0]["forward_images_map"] == runs[1]["forward_images_map"] > 14
    assert runs[1]["forward_images"] - runs[1]["forward_images_map"] == 64  # one batch of prefixes
    assert (runs[0]["mask"] == runs[1]["mask"]).all()


@pytest.mark.slow
def test_side_by_side_smoke(tmp_path):
    """The script end to end on one signal and one volume (trains and exports the models in
    .venv-export): one row per tool and input, the same class as onnxruntime, a table and
    provenance."""
    for venv in (".venv-bench", ".venv-export"):
        if not (ROOT / venv / "bin" / "python").exists():
            pytest.skip(f"no {venv} (python -m benchmarks.tool_env builds it)")
    out = subprocess.run([sys.executable, "-m", "benchmarks.side_by_side_nd", "--signals=1", "--volumes=1",
                          "--tool_iters=1", "--rex_iters=1", f"--out={tmp_path}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=1200, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads((tmp_path / "results.json").read_text())
    assert sorted((r["input"], r["tool"]) for r in facts["rows"]) == [
        ("signal0", "rexjax"), ("signal0", "tool"), ("volume0", "rexjax"), ("volume0", "tool")]
    assert all(r["target"] == r["onnxruntime_top1"] == 1 for r in facts["rows"])
    assert "| signal0 | spectral |" in (tmp_path / "README.md").read_text()
    assert (tmp_path / "provenance.json").exists()
