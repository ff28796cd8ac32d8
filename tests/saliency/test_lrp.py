from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.classifier import Classifier
from rexjax.saliency.lrp import lrp
from tests.helpers.golden import assert_matches_golden

REPO = Path(__file__).resolve().parents[2]
KEY = jax.random.key(0)


def bias_free_cnn():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    w1 = jax.random.normal(k1, (3, 3, 3, 6)) * 0.5
    w2 = jax.random.normal(k2, (3, 3, 6, 6)) * 0.3
    wd = jax.random.normal(k3, (6, 4))

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def logits(x):
        h = jax.nn.relu(conv(x, w1))
        h = jax.nn.relu(conv(h, w2))
        return h.reshape(h.shape[0], -1, 6).sum(1) @ wd

    return logits


X = jax.random.uniform(jax.random.key(1), (8, 8, 3))


def test_lrp0_equals_gradient_times_input():
    f = bias_free_cnn()
    r = lrp(eps=0.0)(Classifier(f), X, 1, key=KEY).record.attributions
    gxi = X * jax.grad(lambda z: f(z[None])[0, 1])(X)
    assert r.shape == X.shape and r.dtype == jnp.float32
    np.testing.assert_allclose(r, gxi, rtol=1e-4, atol=1e-6)


def test_lrp_eps_and_gamma_conserve_relevance():
    f = bias_free_cnn()
    clf = Classifier(f)
    logit = float(f(X[None])[0, 1])
    for kw in ({"eps": 1e-3}, {"eps": 1e-6, "gamma": 0.25}):
        s = lrp(**kw)(clf, X, 1, key=KEY)
        assert s.forward_images == 1 and s.map.shape == X.shape[:2]
        assert float(s.map.sum()) == pytest.approx(logit, rel=0.02), kw
    # the gamma rule changes the redistribution (favours positive weights) but not the total
    gamma, eps = lrp(eps=1e-6, gamma=0.25)(clf, X, 1, key=KEY).map, lrp(eps=1e-6)(clf, X, 1, key=KEY).map
    assert not np.allclose(gamma, eps, rtol=1e-3)
    # epsilon absorbs relevance: a large eps shrinks the total
    assert abs(float(lrp(eps=10.0)(clf, X, 1, key=KEY).map.sum())) < abs(logit)


def test_lrp_rules_reach_inside_jitted_layers():
    """A model whose layers are `jax.jit` functions gets the same relevance as the flat one."""
    f = bias_free_cnn()
    jitted = jax.jit(lambda xb: jax.jit(f)(xb))
    for kw in ({"eps": 1e-3}, {"eps": 1e-6, "gamma": 0.25}):
        np.testing.assert_allclose(
            lrp(**kw)(Classifier(jitted), X, 2, key=KEY).record.attributions,
            lrp(**kw)(Classifier(f), X, 2, key=KEY).record.attributions,
            rtol=1e-5, atol=1e-6,
        )


def test_bad_arguments():
    with pytest.raises(ValueError, match="eps"):
        lrp(eps=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        lrp(gamma=-0.5)
    method, clf = lrp(), Classifier(bias_free_cnn())
    with pytest.raises(ValueError, match="target"):
        method(clf, X, 4, key=KEY)
    with pytest.raises(ValueError, match="x must be"):
        method(clf, X[None], 1, key=KEY)


def test_golden_lite0_ladybird():
    """The map frozen before the API refactor (tests/fixtures/golden/make_golden.py), up to the CPU
    (tests/helpers/golden.py)."""
    from rexjax.models import load

    model = load("efficientnet_lite0")
    clf = Classifier.of(model)
    x = jnp.asarray(model.preprocess(str(REPO / "third_party/images/ladybird.jpg")))
    target = int(np.argmax(np.asarray(clf.full_probs(x))))
    a = lrp()(clf, x, target, key=jax.random.key(1))
    golden = np.load(REPO / "tests/fixtures/golden/golden.npz")["baseline/lrp"]
    assert a.forward_images == 1
    assert_matches_golden(a.map, golden, gradient=True, name="lrp")
