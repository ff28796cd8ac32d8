"""benchmarks/throughput.py (`make bench`): one row per image, keyed by the image's identity,
against the bare model's rate; a bad flag is one line and exit status 2."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import throughput
from rexjax import keys
from rexjax.causal import RexConfig
from rexjax.causal.explainer import Explainer
from tests.helpers.tiny import TinyModel

ROOT = Path(__file__).resolve().parents[2]


def test_rows_are_the_explanations_keyed_by_file_name(tmp_path):
    # Catches images keyed by position or by the bare seed (not `keys.for_image`, so `make
    # bench` and `rexjax explain --seed` would explain different maps), a row per image lost,
    # and a ratio that is not rex / raw.
    rng = np.random.default_rng(0)
    paths = []
    for name in ("b.png", "a.png"):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(tmp_path / name)
        paths.append(tmp_path / name)
    model = TinyModel()
    explainer = Explainer(model, RexConfig().replace(iters=2, min_box_size=2, prune_grids=[]), batch_size=4)
    said = []
    rows = throughput.measure(explainer, model.preprocess, paths, 3, raw_calls=1, log=said.append)
    assert [r["image"] for r in rows] == ["b.png", "a.png"] and len(said) == 2 + 2 + 1
    for i, (path, row) in enumerate(zip(paths, rows)):
        want = explainer(model.preprocess(path), key=keys.for_image(3, path.name))
        assert np.array_equal(row["explanation"].responsibility, want.responsibility)
        assert row["rex_ips"] == row["explanation"].forward_images / row["explanation"].wall_time > 0
        assert said[2 + i].endswith(f"| {row['rex_ips'] / row['raw_ips']:.2f} |")
    other = explainer(model.preprocess(paths[0]), key=keys.root(3))
    assert not np.array_equal(other.responsibility, rows[0]["explanation"].responsibility)  # the key matters here

def test_bad_flags_are_one_line_exit_2(tmp_path):
    for args, text in ((["--images", str(tmp_path / "nope")], "--images"),
                       (["--images", "third_party/images/ladybird.jpg", "--rex.search.iters=0"], "--rex")):
        out = subprocess.run([sys.executable, "-m", "benchmarks.throughput", *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr[-2000:]
        assert lines[0].startswith("benchmarks.throughput: ") and text in lines[0], lines[0]
