"""benchmarks/compare.py's run, with a stand-in for the tool's torch worker (no .venv-bench) and
the tiny model for Lite0: both tools per (image, seed) in alternating order, the tool given
the seed and its args, rexjax keyed as `rexjax explain --seed` keys the image, one scorer."""

import json

import numpy as np
from PIL import Image

from benchmarks import compare
from rexjax import keys, models
from rexjax.causal import RexConfig
from rexjax.causal.explainer import explainer_for
from rexjax.classifier import Classifier
from tests.helpers.tiny import TinyModel


class FakeWorker:
    """The tool's worker protocol (`tool_worker.py`): a fixed map and mask per request."""

    def __init__(self, python, log):
        self.requests = []

    def ask(self, request):
        self.requests.append(request)
        if request["op"] == "info":
            return {"rex_xai": "0.4.1", "torch": "stand-in", "threads": 1}
        if request["op"] == "check":
            return {"top1": [int(self.target)] * len(np.load(request["masks"]))}
        x = np.load(request["x"])
        self.target = int(np.argmax(np.asarray(TinyModel()(x[None]))[0]))
        resp = np.arange(x.shape[0] * x.shape[1], dtype=np.float32).reshape(x.shape[:2])
        np.savez(request["out"], responsibility=resp, mask=resp >= resp.max() - 20)
        return {"target": self.target, "wall_s": 2.0, "map_s": 1.5, "extract_s": 0.5, "forward_images": 300,
                "forward_images_map": 250, "forward_images_extract": 50}

    def close(self):
        pass


def test_both_tools_alternate_and_share_one_scorer(tmp_path, monkeypatch):
    # Catches rexjax keyed by the bare seed (its maps would not be `rexjax explain --seed`'s),
    # the tool's args or seed not passed on, a fixed order (one tool always first sees the
    # other's load), and a run missing from pairs.csv.
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (16, 16, 3), np.uint8)).save(tmp_path / "b.png")
    workers = []
    monkeypatch.setattr(compare.tool_env, "ensure", lambda venv: "python")
    monkeypatch.setattr(compare, "ToolWorker", lambda python, log: workers.append(FakeWorker(python, log)) or workers[-1])
    classifier = Classifier.of(TinyModel())
    monkeypatch.setattr(models, "load", lambda name: classifier)
    config = RexConfig().replace(iters=2, min_box_size=2, prune_grids=[])
    out = tmp_path / "out"
    runs, facts = compare.compare([tmp_path / "b.png"], [5, 6], config, 4, {"iters": 3}, out, tmp_path / "venv",
                                  log=lambda s: None)

    assert [(r.tool, r.seed) for r in runs] == [("rex-xai", 5), ("rexjax", 5), ("rexjax", 6), ("rex-xai", 6)]
    explained = [r for r in workers[0].requests if r["op"] == "explain"]
    assert [(r["seed"], r["args"]) for r in explained] == [(5, {"iters": 3}), (6, {"iters": 3})]
    explainer = explainer_for(classifier, config, 0.0, 4)  # the one compare built (kept on the Classifier)
    for r in runs:
        if r.tool == "rexjax":
            want = explainer(classifier.prepare(tmp_path / r.image), key=keys.for_image(r.seed, r.image))
            assert np.array_equal(r.responsibility, want.responsibility)
        assert set(r.scores) >= {"area", "insertion", "deletion", "sufficient_torch", "sufficient_jax"}
    assert facts["rexjax_config"]["search"]["iters"] == 2 and facts["raw_batch"] == 4

    compare.write(runs, facts, out, resamples=20)
    assert len((out / "pairs.csv").read_text().splitlines()) == 1 + len(runs)
    assert "rex-xai / rexjax" in (out / "summary.md").read_text()
    assert (out / "summary.md").read_text().startswith("Images: other images (")  # the set is named
    assert json.loads((out / "facts.json").read_text())["tool_args"] == {"iters": 3}
