import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.saliency import gradcam, gradcam_pp, integrated_gradients
from rexjax.saliency.integrated_gradients import quadrature
from saliency_models import small_cnn

CNN = small_cnn(jax.random.key(0))
X = jax.random.uniform(jax.random.key(1), (10, 10, 3))


def test_quadrature_rules_integrate_polynomials():
    for rule in ("gausslegendre", "riemann_trapezoid", "riemann_middle"):
        a, w = quadrature(64, rule)
        assert (a >= 0).all() and (a <= 1).all()
        assert np.sum(w * a**2) == pytest.approx(1 / 3, abs=1e-3)


def test_ig_completeness_on_small_cnn():
    ig = integrated_gradients(n_steps=256, batch_size=64)
    t = int(jnp.argmax(CNN(X[None])[0]))
    sal = ig(None, CNN, X, t)
    want = float(CNN(X[None])[0, t] - CNN(jnp.zeros_like(X)[None])[0, t])
    assert float(sal.map.sum()) == pytest.approx(want, rel=0.01)
    assert sal.forward_images == 256 and sal.map.shape == (10, 10)


def test_ig_batch_size_and_baseline():
    a = integrated_gradients(n_steps=20, batch_size=3, output="prob")(None, CNN, X, 1).map
    b = integrated_gradients(n_steps=20, batch_size=20, output="prob")(None, CNN, X, 1).map
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # baseline = x gives zero attributions
    z = integrated_gradients(n_steps=4, baseline=X)(None, CNN, X, 1).map
    np.testing.assert_array_equal(z, 0.0)
    with pytest.raises(ValueError, match="rule"):
        integrated_gradients(rule="simpson")
    with pytest.raises(ValueError, match="output"):
        integrated_gradients(output="softmax")


def pooled_features_model(wd, square=False):
    """feat = 2x2 mean-pool of x (+ delta); logits = mean_hw(feat or feat^2) @ wd."""

    def features_and_logits(xb, delta):
        b, h, w, c = xb.shape
        feat = xb.reshape(b, h // 2, 2, w // 2, 2, c).mean((2, 4))
        if delta is not None:
            feat = feat + delta
        z = feat**2 if square else feat
        return feat, z.mean((1, 2)) @ wd

    return features_and_logits


def test_gradcam_known_features():
    wd = jnp.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]])
    x = jax.random.normal(jax.random.key(2), (8, 6, 3))
    feat = x.reshape(4, 2, 3, 2, 3).mean((1, 3))
    cam = gradcam()
    for t in (0, 1):
        # linear head: d y / d A_k = wd[k, t] / (h w) everywhere
        alpha = wd[:, t] / 12
        want = jax.image.resize(jax.nn.relu(feat @ alpha), (8, 6), "bilinear")
        sal = cam(None, pooled_features_model(wd), x, t)
        np.testing.assert_allclose(sal.map, want, rtol=1e-5, atol=1e-6)
        # quadratic head: d y / d A_k = 2 A_k wd[k, t] / (h w) -> alpha_k = 2 mean(A_k) wd[k, t] / (h w)
        alpha = 2 * feat.mean((0, 1)) * wd[:, t] / 12
        want = jax.image.resize(jax.nn.relu(feat @ alpha), (8, 6), "bilinear")
        np.testing.assert_allclose(cam(None, pooled_features_model(wd, True), x, t).map, want, rtol=1e-5, atol=1e-6)
    assert gradcam(relu=False)(None, pooled_features_model(wd), x, 0).map.min() < 0


def test_gradcam_pp_known_features():
    wd = jnp.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]])
    x = jax.random.uniform(jax.random.key(3), (8, 6, 3))
    feat = x.reshape(4, 2, 3, 2, 3).mean((1, 3))
    t = 0
    g = wd[:, t] / 12  # constant gradient per channel
    s = feat.sum((0, 1))
    a = g**2 / (2 * g**2 + s * g**3)
    w = 12 * a * jax.nn.relu(g)
    want = jax.image.resize(jax.nn.relu(feat @ w), (8, 6), "bilinear")
    sal = gradcam_pp()(None, pooled_features_model(wd), x, t)
    np.testing.assert_allclose(sal.map, want, rtol=1e-5, atol=1e-6)
    assert sal.forward_images == 1


def test_gradcam_bad_model():
    with pytest.raises(ValueError, match="features"):
        gradcam()(None, lambda xb, d: (xb.mean((1, 2)), xb.mean((1, 2))), X, 0)
