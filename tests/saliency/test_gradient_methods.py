import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.classifier import Classifier
from rexjax.saliency import gradcam, gradcam_pp, integrated_gradients
from rexjax.saliency.integrated_gradients import quadrature
from tests.helpers.saliency_models import small_cnn

LOGITS = small_cnn(jax.random.key(0))
CNN = Classifier(LOGITS)
X = jax.random.uniform(jax.random.key(1), (10, 10, 3))


def test_quadrature_rules_integrate_polynomials():
    for rule in ("gausslegendre", "riemann_trapezoid", "riemann_middle"):
        a, w = quadrature(64, rule)
        assert (a >= 0).all() and (a <= 1).all()
        assert np.sum(w * a**2) == pytest.approx(1 / 3, abs=1e-3)


def test_ig_completeness_on_small_cnn():
    ig = integrated_gradients(n_steps=256, batch_size=64)
    t = int(jnp.argmax(LOGITS(X[None])[0]))
    sal = ig(CNN, X, t, key=0)
    want = float(LOGITS(X[None])[0, t] - LOGITS(jnp.zeros_like(X)[None])[0, t])
    assert float(sal.map.sum()) == pytest.approx(want, rel=0.01)
    assert sal.forward_images == 256 and sal.map.shape == (10, 10)
    # per channel: the map is their sum, and completeness holds for them too
    per_channel = sal.record.attributions
    assert per_channel.shape == X.shape
    np.testing.assert_allclose(per_channel.sum(-1), sal.map, rtol=1e-6, atol=1e-6)


def test_ig_batch_size_and_baseline():
    ig3 = integrated_gradients(n_steps=20, batch_size=3, output="prob")(CNN, X, 1, key=0)
    a = ig3.map
    b = integrated_gradients(n_steps=20, batch_size=20, output="prob")(CNN, X, 1, key=0).map
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert ig3.forward_images == 21  # 7 chunks of 3
    # output="prob" differentiates the softmax: completeness in probabilities
    probs = jax.nn.softmax(LOGITS(jnp.stack([X, jnp.zeros_like(X)])), -1)[:, 1]
    assert float(a.sum()) == pytest.approx(float(probs[0] - probs[1]), rel=0.05, abs=1e-6)
    # baseline = x gives zero attributions
    z = integrated_gradients(n_steps=4, baseline=X)(CNN, X, 1, key=0).map
    np.testing.assert_array_equal(z, 0.0)
    with pytest.raises(ValueError, match="rule"):
        integrated_gradients(rule="simpson")
    with pytest.raises(ValueError, match="output"):
        integrated_gradients(output="softmax")
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(baseline=np.zeros(3))


def pooled_features_model(wd, square=False):
    """Classifier with features: feat = 2x2 mean-pool of x (+ delta); logits = mean_hw(feat or feat^2) @ wd."""

    def features_and_logits(xb, delta):
        b, h, w, c = xb.shape
        feat = xb.reshape(b, h // 2, 2, w // 2, 2, c).mean((2, 4))
        if delta is not None:
            feat = feat + delta
        z = feat**2 if square else feat
        return feat, z.mean((1, 2)) @ wd

    return Classifier(lambda xb: features_and_logits(xb, None)[1], features=features_and_logits)


def test_gradcam_known_features():
    wd = jnp.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]])
    x = jax.random.normal(jax.random.key(2), (8, 6, 3))
    feat = x.reshape(4, 2, 3, 2, 3).mean((1, 3))
    cam = gradcam()
    for t in (0, 1):
        # linear head: d y / d A_k = wd[k, t] / (h w) everywhere
        alpha = wd[:, t] / 12
        want = jax.image.resize(jax.nn.relu(feat @ alpha), (8, 6), "bilinear")
        sal = cam(pooled_features_model(wd), x, t, key=0)
        np.testing.assert_allclose(sal.map, want, rtol=1e-5, atol=1e-6)
        # quadratic head: d y / d A_k = 2 A_k wd[k, t] / (h w) -> alpha_k = 2 mean(A_k) wd[k, t] / (h w)
        alpha = 2 * feat.mean((0, 1)) * wd[:, t] / 12
        want = jax.image.resize(jax.nn.relu(feat @ alpha), (8, 6), "bilinear")
        np.testing.assert_allclose(cam(pooled_features_model(wd, True), x, t, key=0).map, want, rtol=1e-5, atol=1e-6)
    assert gradcam(relu=False)(pooled_features_model(wd), x, 0, key=0).map.min() < 0


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
    sal = gradcam_pp()(pooled_features_model(wd), x, t, key=0)
    np.testing.assert_allclose(sal.map, want, rtol=1e-5, atol=1e-6)
    assert sal.forward_images == 1


def test_gradcam_bad_model():
    flat = Classifier(lambda xb: xb.mean((1, 2)), features=lambda xb, d: (xb.mean((1, 2)), xb.mean((1, 2))))
    with pytest.raises(ValueError, match="features"):
        gradcam()(flat, X, 0, key=0)
    with pytest.raises(ValueError, match="feature maps"):
        gradcam()(CNN, X, 0, key=0)  # a plain callable exposes none
    with pytest.raises(ValueError, match="layer"):
        gradcam_pp(layer=3)
    with pytest.raises(ValueError, match="output"):
        gradcam(output="softmax")
