"""The ONNX mode of benchmarks/compare.py (`--onnx`): the tool's worker switched to the ONNX
file with the tool's preprocessing flags before anything else, both tools given the array of
that preprocessing, rexjax running the same file through `rexjax.models.load`. The model is
the tiny ONNX classifier of `tests/security/onnx_corpus.py` (external data beside it); the
stand-in worker answers with onnxruntime, the real one (`tool_worker.py` in .venv-bench, when
present) runs the tool's own ONNX path."""

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from benchmarks import compare
from benchmarks.runs import ToolWorker
from rexjax.causal import RexConfig
from tests.security import onnx_corpus

ROOT = Path(__file__).resolve().parents[2]
SIZE = 16


def _tool_preprocess(path) -> np.ndarray:
    """The ReX tool's own pipeline (`Data.generic_image_preprocess` with --norm 255 --means
    0.498,.. --stds 0.502,..), re-stated: PIL resize (bicubic), float32, / 255, - mean, / std."""
    x = np.asarray(Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC), np.float32)
    x = x / np.float32(255.0)
    return (x - np.float32(0.498)) / np.float32(0.502)


def _logits(session, x_hwc: np.ndarray) -> np.ndarray:
    return session.run(None, {"x": np.ascontiguousarray(x_hwc.transpose(2, 0, 1)[None])})[0][0]


class OnnxFakeWorker:
    """The worker protocol answered with onnxruntime on the file the "onnx" request names."""

    def __init__(self, python, log):
        self.requests, self.session, self.explained = [], None, []

    def ask(self, request):
        self.requests.append(request)
        if request["op"] == "onnx":
            self.session = ort.InferenceSession(request["model"], providers=["CPUExecutionProvider"])
            return {"input_shape": ["N", 3, SIZE, SIZE]}
        if request["op"] == "info":
            return {"rex_xai": "0.4.1", "torch": "stand-in", "threads": 1, "onnxruntime": ort.__version__}
        x = np.load(request["x"])
        target = int(np.argmax(_logits(self.session, x)))
        if request["op"] == "check":
            masks = np.load(request["masks"])
            return {"top1": [int(np.argmax(_logits(self.session, np.where(m[..., None], x, 0)))) for m in masks]}
        self.explained.append(x)
        resp = np.arange(SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
        np.savez(request["out"], responsibility=resp, mask=resp >= resp.max() - 20)
        return {"target": target, "wall_s": 2.0, "map_s": 1.5, "extract_s": 0.5, "forward_images": 300,
                "forward_images_map": 250, "forward_images_extract": 50}

    def close(self):
        pass


def test_onnx_mode_runs_both_tools_on_the_file_with_the_tools_preprocessing(tmp_path, monkeypatch):
    # Catches the worker not switched to the file (or switched after the first explanation),
    # the tool's preprocessing not applied to rexjax's input (rexjax's default x / 255, means
    # and stds swapped), and rexjax running another model than the file.
    model = Path(onnx_corpus.valid(str(tmp_path / "model"), size=SIZE))
    image = tmp_path / "b.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (21, 27, 3), np.uint8)).save(image)
    workers = []
    monkeypatch.setattr(compare.tool_env, "ensure", lambda venv: "python")
    monkeypatch.setattr(compare, "ToolWorker",
                        lambda python, log: workers.append(OnnxFakeWorker(python, log)) or workers[-1])
    config = RexConfig().replace(iters=2, min_box_size=2, prune_grids=[])
    out = tmp_path / "out"
    runs, facts = compare.compare([image], [5], config, 4, {"iters": 3}, out, tmp_path / "venv", log=lambda s: None,
                                  onnx_file=model)

    requests = workers[0].requests
    assert requests[0] == {"op": "onnx", "model": str(model), "norm": 255.0, "means": [0.498] * 3, "stds": [0.502] * 3}
    want_x = _tool_preprocess(image)
    sent = workers[0].explained
    assert len(sent) == 1 and np.allclose(sent[0], want_x, rtol=0, atol=1e-6)
    target = int(np.argmax(_logits(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]), want_x)))
    assert sorted((r.tool, r.target) for r in runs) == [("rex-xai", target), ("rexjax", target)]
    assert model.name in facts["model"]
    assert "x / 255, (x - (0.498, 0.498, 0.498)) / (0.502, 0.502, 0.502)" in facts["model"]
    text = compare.write(runs, facts, out, resamples=20)
    assert text.splitlines()[1].startswith(f"Model: ONNX file {model.name}")
    assert f"(onnxruntime {ort.__version__}, torch stand-in" in text


@pytest.mark.parametrize("onnx_runtime", [False, True])
def test_rexjax_side_computes_what_onnxruntime_computes(tmp_path, onnx_runtime):
    # The classifier compare builds for the file, compiled or under onnxruntime: its inputs
    # are the tool's array and its probabilities onnxruntime's (a wrong layout or weight
    # conversion would differ), and the description names the executor.
    model = Path(onnx_corpus.valid(str(tmp_path), size=SIZE))
    image = tmp_path / "b.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (SIZE, SIZE, 3), np.uint8)).save(image)
    classifier, described = compare.lite0_classifier(model, onnx_runtime)
    assert classifier.black_box == onnx_runtime and ("under onnxruntime (--onnx_runtime)" in described) == onnx_runtime
    x = np.asarray(classifier.prepare(image))
    assert np.allclose(x, _tool_preprocess(image), rtol=0, atol=1e-6)
    logits = _logits(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]), x)
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert np.allclose(np.asarray(classifier.probs(x[None]))[0], probs, rtol=1e-5, atol=1e-6)


def test_real_worker_runs_the_tools_onnx_path(tmp_path):
    """tool_worker.py in .venv-bench switched to the ONNX file: the tool's own prediction
    function explains (target onnxruntime's top-1, images counted) and the check is
    onnxruntime's top-1 on the masked array."""
    python = ROOT / ".venv-bench" / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-bench (python -m benchmarks.tool_env builds it)")
    model = onnx_corpus.valid(str(tmp_path / "model"), size=32)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).standard_normal((32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    masks = np.random.default_rng(4).random((3, 32, 32)) < 0.5
    np.save(tmp_path / "masks.npy", masks)
    worker = ToolWorker(python, tmp_path / "worker.log")
    try:
        assert worker.ask({"op": "onnx", "model": model, **compare.ONNX_PREPROCESS})["input_shape"] == ["N", 3, 32, 32]
        info = worker.ask({"op": "info"})
        assert info["model"] == "onnx" and info["onnx_model"] == os.path.basename(model)  # a name, never a machine path
        check = worker.ask({"op": "check", "x": str(tmp_path / "x.npy"), "masks": str(tmp_path / "masks.npy")})
        assert check["top1"] == [int(np.argmax(_logits(session, np.where(m[..., None], x, 0)))) for m in masks]
        a = worker.ask({"op": "explain", "x": str(tmp_path / "x.npy"), "out": str(tmp_path / "o.npz"), "seed": 1,
                        "args": {"iters": 2, "min_box_size": 4}})
        assert a["target"] == int(np.argmax(_logits(session, x))) and a["forward_images"] > 0
        assert np.load(tmp_path / "o.npz")["responsibility"].shape == (32, 32)
    finally:
        worker.close()


@pytest.mark.slow
def test_bench_compare_onnx_smoke(tmp_path):
    """`benchmarks.compare --onnx` end to end on one image (exports Lite0 on first use): one
    row per tool, the same class, sufficient, the model named. Needs .venv-bench and
    .venv-export (`python -m benchmarks.tool_env [--export]`)."""
    import csv
    import subprocess
    import sys

    for venv in (".venv-bench", ".venv-export"):
        if not (ROOT / venv / "bin" / "python").exists():
            pytest.skip(f"no {venv} (python -m benchmarks.tool_env builds it)")
    out = subprocess.run([sys.executable, "-m", "benchmarks.compare", "--onnx", "--limit=1", "--seeds=1",
                          "--rex.search.iters=2", "--tool_iters=2", f"--out={tmp_path}", "--bootstrap=50"], cwd=ROOT,
                         capture_output=True, text=True, timeout=3000, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "pairs.csv")))
    assert sorted(r["tool"] for r in rows) == ["rex-xai", "rexjax"]
    assert len({r["target"] for r in rows}) == 1
    assert all(r["sufficient_torch"] == "True" and 0 < float(r["area"]) < 1 for r in rows)
    assert "Model: ONNX file efficientnet_lite0-" in (tmp_path / "summary.md").read_text()
    assert "efficientnet_lite0-" in (tmp_path / "provenance.json").read_text()
