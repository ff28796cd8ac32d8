"""ReX through the Method API and through `rexjax.explain` gives the arrays frozen in
tests/fixtures/golden/golden.npz (`tests/fixtures/golden/make_golden.py`: Lite0, the paper's budget
`PAPER_BUDGET` at iters 4, key 0, batch 16, named explicitly so that the defaults (the fast
budget) cannot move them).

No refactor may change these numbers. The rex/* keys are regenerated only on purpose
(`tests/fixtures/golden/make_golden.py --rex`, for the rule "alg1" with refine_static and exact
integer accumulation), leaving the baselines' keys untouched."""

from pathlib import Path

import numpy as np
import pytest

import rexjax
from rexjax import methods
from rexjax.causal import PAPER_BUDGET
from rexjax.classifier import Classifier

REX = {**PAPER_BUDGET, "iters": 4, "batch_size": 16}  # tests/fixtures/golden/make_golden.py's

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = np.load(ROOT / "tests/fixtures/golden/golden.npz")


@pytest.fixture(scope="module")
def lite0():
    return Classifier.of("efficientnet_lite0")


@pytest.mark.parametrize("name", ["peacock.jpg", pytest.param("starfish.jpg", marks=pytest.mark.slow)])
def test_rex_method_matches_golden(lite0, name):
    """Catches any change in the search, the extraction or the batching (order, chunking,
    compaction) of ReX: map and mask bit for bit on two of the three golden images (the
    third, ladybird, is checked through `rexjax.explain` below: the same engine; starfish
    re-checks the same path, in the slow suite)."""
    rex = methods.make("rex", **REX)
    x = lite0.prepare(str(ROOT / "third_party/images" / name))
    target = int(GOLDEN[f"rex/{name}/target"])
    out = rex(lite0, x, target, key=0)
    np.testing.assert_array_equal(out.map, GOLDEN[f"rex/{name}/responsibility"], err_msg=name)
    np.testing.assert_array_equal(out.record.mask, GOLDEN[f"rex/{name}/mask"], err_msg=name)
    assert out.forward_images == out.record.forward_images > 0


def test_explain_convenience_matches_golden(lite0):
    """`rexjax.explain` is the same computation, and its cache reuses the compiled explainer."""
    name = "ladybird.jpg"
    path = str(ROOT / "third_party/images" / name)
    ex = rexjax.explain(lite0, path, key=0, **REX)
    np.testing.assert_array_equal(ex.responsibility, GOLDEN[f"rex/{name}/responsibility"])
    np.testing.assert_array_equal(ex.mask, GOLDEN[f"rex/{name}/mask"])
    from rexjax.causal.explainer import explainer_for

    config = rexjax.RexConfig.from_dict(PAPER_BUDGET).replace(iters=4)
    first = explainer_for(lite0, config, batch_size=16)
    assert explainer_for(lite0, config, batch_size=16) is first
