"""No baseline's number moves: every baseline through
`rexjax.methods.make(name, **cfg)(Classifier.of(lite0), x, target, key=1)` gives the map frozen
in tests/fixtures/golden/golden.npz (settings: tests/fixtures/golden/make_golden.py; LRP is
checked by its own tests).

Up to the CPU: `tests/helpers/golden.py` says what differs between CPUs and by how much."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rexjax import methods
from rexjax.classifier import Classifier
from tests.helpers.golden import assert_matches_golden

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = np.load(ROOT / "tests/fixtures/golden/golden.npz")
_spec = importlib.util.spec_from_file_location("make_golden", ROOT / "tests/fixtures/golden/make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

NAMES = [n for n in make_golden.BASELINES if n != "lrp"]
GRADIENT = {"integrated_gradients", "gradient_shap", "noise_tunnel"}
# rows the model saw with those settings (ladybird, 224 x 224; 34 = v(0), v(1) + 32 coalitions)
FORWARD = {"rise": 48, "shape": 49, "occlusion": 17, "kernel_shap": 34, "lime": 32, "integrated_gradients": 4,
           "gradient_shap": 4, "noise_tunnel": 8, "gradcam": 1, "gradcam_pp": 1}


@pytest.fixture(scope="module")
def lite0():
    clf = Classifier.of("efficientnet_lite0")
    x = make_golden.image(clf, make_golden.BASELINE_IMAGE)
    return clf, x, make_golden.top1(clf, x)


@pytest.mark.parametrize("name", NAMES)
def test_baseline_matches_golden(lite0, name):
    clf, x, target = lite0
    out = methods.make(name, **make_golden.BASELINES[name])(clf, x, target, key=make_golden.BASELINE_KEY)
    assert_matches_golden(out.map, GOLDEN[f"baseline/{name}"], gradient=name in GRADIENT, name=name)
    assert out.forward_images == FORWARD[name]

