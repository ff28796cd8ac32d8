import jax
import numpy as np
import pytest

from rexjax.saliency.lrp import lrp


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
    r = lrp(eps=0.0).attribute(None, f, X, 1)
    gxi = X * jax.grad(lambda z: f(z[None])[0, 1])(X)
    np.testing.assert_allclose(r, gxi, rtol=1e-4, atol=1e-6)


def test_lrp_eps_and_gamma_conserve_relevance():
    f = bias_free_cnn()
    logit = float(f(X[None])[0, 1])
    for kw in ({"eps": 1e-3}, {"eps": 1e-6, "gamma": 0.25}):
        s = lrp(**kw)(None, f, X, 1)
        assert float(s.map.sum()) == pytest.approx(logit, rel=0.02), kw
    # the gamma rule changes the redistribution (favours positive weights) but not the total
    assert not np.allclose(lrp(eps=1e-6, gamma=0.25)(None, f, X, 1).map, lrp(eps=1e-6)(None, f, X, 1).map, rtol=1e-3)
    # epsilon absorbs relevance: a large eps shrinks the total
    assert abs(float(lrp(eps=10.0)(None, f, X, 1).map.sum())) < abs(logit)
