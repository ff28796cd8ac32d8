"""ReX on the real EfficientNet-Lite0 (bundled ImageNet weights)."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import models
from rexjax.causal import Explainer, RexConfig

IMAGES = os.path.join(os.path.dirname(__file__), "..", "..", "third_party", "images")
ALL = sorted(f for f in os.listdir(IMAGES) if f.lower().endswith((".jpg", ".jpeg")))


@pytest.fixture(scope="module")
def lite0():
    return models.load("efficientnet_lite0")


def check_sufficient(model, x, ex):
    """Independent check: the model on the explanation alone (rest = 0) predicts the target."""
    masked = jnp.asarray(x) * ex.mask[..., None]
    probs = np.asarray(jnp.exp(model(masked[None])[0]))
    assert int(np.argmax(probs)) == ex.target, "explanation is not sufficient"


@pytest.mark.parametrize("name,label", [("ladybird.jpg", 301), pytest.param("tennis.jpg", 752, marks=pytest.mark.slow)])
def test_lite0_explanations_are_sufficient(lite0, name, label):
    explainer = Explainer(lite0, RexConfig().replace(iters=3), batch_size=16)
    x = lite0.preprocess(os.path.join(IMAGES, name))
    ex = explainer(x, key=0)
    assert ex.target == label and ex.sufficient
    assert ex.target_label == lite0.labels[label]
    check_sufficient(lite0, x, ex)
    assert 0 < ex.area < 0.5


@pytest.mark.slow
def test_lite0_all_images_defaults(lite0):
    explainer = Explainer(lite0)
    areas = []
    for name in ALL:
        x = lite0.preprocess(os.path.join(IMAGES, name))
        ex = explainer(x, key=0)
        assert ex.sufficient, name
        check_sufficient(lite0, x, ex)
        areas.append(ex.area)
    print("mean area", float(np.mean(areas)), dict(zip(ALL, np.round(areas, 4))))
