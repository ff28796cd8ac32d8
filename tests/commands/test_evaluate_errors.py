"""`rexjax evaluate` over a folder with an unreadable image: one line for it, the others evaluated."""

import csv
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.commands.test_cli_errors import ROOT
from tests.helpers import tiny_pth_model as tiny

_EVALUATE = r"""
import sys
from tests.helpers import tiny_pth_model
from rexjax import cli
tiny_pth_model.register()
cli.run(["rexjax", "evaluate", *sys.argv[1:]])
"""


def test_a_bad_image_is_one_line_and_the_run_goes_on(tmp_path):
    # Catches a run that stops at the first unreadable image (it did: the traceback ended the
    # command and summary.txt was never written), and a CSV holding rows of a failed image.
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(images / name)
    (images / "b.jpg").write_bytes(b"not a jpeg at all")
    tiny.write_weights(tmp_path / "w.pth", 0)
    args = [f"--config.model={tiny.NAME}", f"--config.weights={tmp_path / 'w.pth'}", f"--config.images={images}",
            "--config.methods=rise", "--config.rise.n_masks=8", "--config.rise.grid=2", "--config.step=16",
            "--config.warmup=False", f"--config.out={tmp_path / 'out'}"]
    env = {**os.environ, "PYTHONPATH": ROOT, "REXJAX_COMPILE_CACHE": "0", "REXJAX_CACHE_DIR": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-c", _EVALUATE, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=300)
    errors = [line for line in p.stderr.splitlines() if line.startswith("rexjax evaluate:")]
    assert p.returncode == 1, p.stderr[-2000:]
    assert len(errors) == 2 and errors[0].startswith("rexjax evaluate: b.jpg: ValueError: "), errors
    assert errors[1] == "rexjax evaluate: 1 of 3 images failed"
    assert "Traceback" not in p.stderr
    with open(tmp_path / "out" / "results.csv") as f:
        assert [r["image"] for r in csv.DictReader(f)] == ["a.png", "c.png"]
    summary = (tmp_path / "out" / "summary.txt").read_text().splitlines()[0]
    assert summary.startswith(f"model {tiny.NAME}, 2 images (1 failed: b.jpg),"), summary
