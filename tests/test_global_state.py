"""No hidden process-wide state: progress listeners belong to their extractor, and drawing a
figure never switches matplotlib's backend."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from rexjax.causal import RexConfig
from rexjax.causal.extract import make_global_extractor
from rexjax.classifier import Classifier
from tests.helpers import oracles

H, W = 30, 36
X = oracles.image(H, W, seed=3)
PATCH = oracles.patch_mask(H, W, 3, 4, 7)
GRADED = oracles.graded_oracle([PATCH])
RESP = (np.random.default_rng(0).integers(0, 4, (H, W)) + 3 * PATCH).astype(np.float32)
ROOT = Path(__file__).resolve().parents[1]


def test_two_extractors_report_progress_to_their_own_listener():
    """Each extractor's linear search reports its blocks of prefixes to the listener it was
    built with, and only to it. Catches a progress sink shared by the process (one
    extractor's blocks reaching another's bar or callback), and a listener that is not
    called before `extract` returns."""
    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    cfg = RexConfig.from_dict(dict(prefix_step=2, prefix_growth=0.0, prune_grids=()))
    heard = {"a": [], "b": []}
    extract = {
        name: make_global_extractor(clf.masked(0.0), cfg, batch, on_progress=lambda d, t, n=name: heard[n].append((d, t)))
        for name, batch in (("a", 4), ("b", 8))
    }
    steps = H * W // 2
    got = extract["a"](jnp.asarray(X), RESP, 1, full)
    assert got.sufficient and got.forward_images >= 8  # at least two blocks of 4 prefixes
    assert heard["b"] == []
    assert heard["a"] == [(min(4 * i, steps), steps) for i in range(1, got.forward_images // 4 + 1)]
    before_a = list(heard["a"])
    got_b = extract["b"](jnp.asarray(X), RESP, 1, full, progress=True)  # a bar on b's own sink too
    assert heard["a"] == before_a
    assert heard["b"] == [(min(8 * i, steps), steps) for i in range(1, got_b.forward_images // 8 + 1)]
    np.testing.assert_array_equal(got_b.mask, got.mask)


def test_figures_leave_the_backend_alone(tmp_path):
    """Importing rexjax and its figure modules and writing every kind of figure keeps the
    backend the process chose (a sentinel, svg) and writes PNGs. Catches a
    `matplotlib.use(...)` at import or per plot, and pyplot figures that need a GUI backend."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        import matplotlib
        import numpy as np

        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        import rexjax
        from rexjax.report import plots
        from rexjax.types import ExplanationPart
        from rexjax.viz.explanation import save_explanation_figure
        from rexjax.viz.multiple import save_multiple_figure

        out = Path(sys.argv[1])
        image = np.random.default_rng(0).integers(0, 255, (20, 24, 3)).astype(np.uint8)
        resp = np.random.default_rng(1).random((20, 24)).astype(np.float32)
        mask = np.zeros((20, 24), bool)
        mask[4:10, 5:12] = True
        part = ExplanationPart(mask, float(mask.mean()), 0.9, True, "spotlight", 10, (7, 8), 5)
        plots.distributions(out / "box.png", {"a": [1.0, 2.0, 3.0], "b": [2.0, 2.5]})
        plots.lines(out / "lines.png", [1, 2, 3], {"a": [1.0, 2.0, 1.5]}, errors={"a": [0.1, 0.2, 0.1]})
        save_explanation_figure(out / "one.png", image, resp, mask, title="one")
        save_multiple_figure(out / "many.png", image, resp, [part, part], title="many", contrastive_mask=mask)
        print(matplotlib.get_backend())
        """
    )
    env = dict(os.environ, MPLBACKEND="svg", JAX_PLATFORMS="cpu")
    env.pop("DISPLAY", None)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "svg"
    for name in ("box", "lines", "one", "many"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
