"""Extremal perturbations on a model whose evidence is one known patch."""

import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import methods, metrics
from rexjax.classifier import Classifier
from rexjax.saliency import extremal as E

PATCH = (slice(4, 8), slice(8, 12))  # 16 of 256 pixels


def patch_model(xb):
    """Class 0 iff the patch is bright: logit0 = 20 mean(patch) + mean(all) - 10, logit1 = 0."""
    score = 20.0 * xb[:, PATCH[0], PATCH[1]].mean((1, 2, 3)) + xb.mean((1, 2, 3)) - 10.0
    return jnp.stack([score, jnp.zeros_like(score)], -1)


def test_extremal_finds_the_patch():
    x = np.full((16, 16, 3), 0.5, np.float32)
    x[PATCH] = 1.0
    clf = Classifier(patch_model)
    method = methods.make("extremal", area=16 / 256, n_steps=150, stride=4, mask_mode=0.0)
    out = method(clf, jnp.asarray(x), 0, key=0)
    truth = np.zeros((16, 16), bool)
    truth[PATCH] = True
    rec = out.record
    assert rec.mask.sum() == 16 and rec.area == pytest.approx(16 / 256)
    assert metrics.dice(rec.mask, truth) >= 0.75, rec.mask.astype(int)
    assert rec.confidence > 0.5  # the region alone keeps the class
    assert rec.loss[-1] < rec.loss[0]  # the optimisation made progress
    assert out.forward_images == 151 and out.map.shape == (16, 16)


def test_area_penalty_and_top_pixels():
    m = jnp.asarray([[0.0, 1.0], [0.2, 0.9]])
    assert float(E.area_penalty(m, 0.5)) == pytest.approx((0.0 + 0.2**2 + 0.1**2 + 0.0) / 4)
    np.testing.assert_array_equal(E.top_pixels(m, 0.5), [[False, True], [False, True]])


@pytest.mark.parametrize("bad, match", [(dict(area=1.0), "area must be in"), (dict(mask_mode="ad"), "not supported"),
                                        (dict(learning_rate=0), "learning_rate must be")])
def test_extremal_config_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        methods.make("extremal", **bad)
