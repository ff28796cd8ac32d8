"""The saliency baselines as registered Methods on a Classifier: a zoo-like model (Grad-CAM
through its feature points), ConvAD masking for the occlusion-style methods."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import methods, saliency
from rexjax.classifier import Classifier
from rexjax.types import Attribution
from tests.helpers.tiny import TinyModel

MINE = ("rise", "shape", "occlusion", "kernel_shap", "lime", "integrated_gradients", "gradient_shap",
        "noise_tunnel", "gradcam", "gradcam_pp")


X16 = jnp.asarray(np.random.default_rng(0).random((16, 16, 3)), jnp.float32)


def test_registry_points_at_these_factories():
    for name in MINE:
        assert methods.factory(name) is getattr(saliency, name), name
    assert methods.canonical("IG") == "integrated_gradients"
    with pytest.raises(ValueError, match="n_masks"):
        methods.make("rise", n_masks=-1)  # the factory validates at once
    with pytest.raises(ValueError, match="valid options"):
        methods.make("rise", window=3)


def test_gradcam_on_a_zoo_like_model():
    """Grad-CAM on the zoo adapter (`Classifier.features`): the gradient reaches the chosen
    feature point through the perturbation hook, so with a linear head the CAM is
    relu(feat @ wd[:, t]) / (h w), upsampled."""
    model = TinyModel()
    clf = Classifier.of(model)
    cam = methods.make("gradcam", layer="feat")(clf, X16, 1, key=0)
    assert isinstance(cam, Attribution) and cam.forward_images == 1
    feat = model.features_fn(None, X16[None])[1]["feat"][0]
    want = jax.image.resize(jax.nn.relu(feat @ model.wd[:, 1] / 64), (16, 16), "bilinear")
    np.testing.assert_allclose(cam.map, want, rtol=1e-5, atol=1e-6)
    # layer=None takes the last spatial feature point ("feat": "pooled" has no extent)
    np.testing.assert_array_equal(methods.make("gradcam")(clf, X16, 1, key=0).map, cam.map)
    with pytest.raises(ValueError, match="layer"):
        methods.make("gradcam_pp", layer="nope")(clf, X16, 1, key=0)


def test_mask_based_methods_run_on_convad():
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(4, (3, 3))(x))
            return nn.Dense(3)(x.mean((1, 2)))

    class FlaxModel:
        def __init__(self):
            self.module = Net()
            v = self.module.init(jax.random.key(0), jnp.zeros((1, 12, 12, 3)))
            # a conv bias makes zero-occlusion differ from ConvAD (relu(bias) vs deactivated)
            v["params"]["Conv_0"]["bias"] = jnp.full((4,), 0.5)
            self.variables = v

        def apply_fn(self, variables, x):
            return self.module.apply(variables, x)

        def __call__(self, x):
            return self.apply_fn(self.variables, x)

    clf = Classifier.of(FlaxModel())
    x = jax.random.uniform(jax.random.key(1), (12, 12, 3))
    ad = methods.make("occlusion", mask_mode="ad", window=4, stride=4)(clf, x, 0, key=0)
    zero = methods.make("occlusion", window=4, stride=4)(clf, x, 0, key=0)
    assert ad.map.shape == (12, 12) and bool(jnp.isfinite(ad.map).all())
    assert not np.allclose(ad.map, zero.map)
    # shared options reach only the factories that take them
    shared = dict(mask_mode=0.5, layer="feat", batch_size=5)
    rise_shared = methods.make("rise", shared=shared, n_masks=10)(clf, x, 0, key=3)
    rise_direct = saliency.rise(n_masks=10, mask_mode=0.5, batch_size=5)(clf, x, 0, key=jax.random.key(3))
    np.testing.assert_array_equal(rise_shared.map, rise_direct.map)
    rise_zero = saliency.rise(n_masks=10, batch_size=5)(clf, x, 0, key=jax.random.key(3))
    assert not np.allclose(rise_shared.map, rise_zero.map)
    assert rise_shared.forward_images == 10
