"""The central abstraction: `Classifier.masked(mask_mode)` for every mask mode.

A mask of 1 shows the pixel; 0 shows the mode's substrate (a value, the image's statistic, a
blurred copy) or, with "ad", removes the pixel inside the network (ConvAD)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import masking
from rexjax.classifier import Classifier

H, W, C = 6, 5, 3
X = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (H, W, C)), jnp.float32)
MASK = jnp.asarray(np.random.default_rng(1).uniform(size=(2, H, W)) > 0.5)


def echo():
    """A 'model' whose logits are its input image, flattened: painted mutants become visible."""
    return Classifier(lambda xb: xb.reshape(xb.shape[0], -1))


def painted_images(mode):
    """The mutants the model saw, recovered from the probabilities of `echo` (log-softmax)."""
    probs = echo().masked(mode)(X, MASK)
    logp = jnp.log(probs)
    return np.asarray(logp - logp.mean(-1, keepdims=True))


def expected(fill):
    m = np.asarray(MASK, np.float32)[..., None]
    img = np.asarray(X)[None] * m + np.asarray(fill)[None] * (1 - m)
    flat = img.reshape(2, -1)
    return flat - flat.mean(-1, keepdims=True)


@pytest.mark.parametrize(
    "mode,fill",
    [
        (0.0, np.zeros((1, 1, C))),
        ("0.5", np.full((1, 1, C), 0.5)),
        (-2, np.full((1, 1, C), -2.0)),
        ("zero", np.zeros((1, 1, C))),
        ("min", np.asarray(X).min((0, 1), keepdims=True)),
        ("max", np.asarray(X).max((0, 1), keepdims=True)),
        ("mean", np.asarray(X).mean((0, 1), keepdims=True)),
        ("blur:1.5", np.asarray(masking.gaussian_blur(X, 1.5))),
    ],
)
def test_painted_modes_show_their_substrate(mode, fill):
    """Catches a swapped mask polarity, a wrong statistic axis or a dropped fill."""
    np.testing.assert_allclose(painted_images(mode), expected(fill), atol=1e-4)


def test_gaussian_blur_preserves_constants_and_smooths():
    const = jnp.full((7, 7, 2), 3.0)
    np.testing.assert_allclose(masking.gaussian_blur(const, 2.0), const, rtol=1e-6)
    impulse = jnp.zeros((9, 9, 1)).at[4, 4, 0].set(1.0)
    b = np.asarray(masking.gaussian_blur(impulse, 1.0))[..., 0]
    assert b.sum() == pytest.approx(1.0, rel=1e-5) and b[4, 4] == b.max() and b[4, 5] == pytest.approx(b[5, 4])
    assert "blur" in masking.NAMED_VALUES  # "blur" = blur:10


@pytest.mark.parametrize("bad", ["purple", "blur:-1", "blur:x", float("nan"), float("inf"), True, None, [0]])
def test_bad_mask_modes_name_the_argument(bad):
    with pytest.raises(ValueError, match="mask_mode"):
        masking.parse_mask_mode(bad)


def test_masked_view_is_cached_and_probs_are_not_softmaxed_twice():
    """The same MaskedClassifier object per mode (jitted methods compile once); a model that
    returns probabilities is used as is."""
    clf = echo()
    assert clf.masked(0.0) is clf.masked("0") and clf.masked("mean") is not clf.masked(0.0)

    def softmax_model(xb):
        return jax.nn.softmax(xb.reshape(xb.shape[0], -1), axis=-1)

    p_clf = Classifier(softmax_model, outputs="probs")
    ones = jnp.ones((1, H, W))
    np.testing.assert_allclose(p_clf.masked(0.0)(X, ones)[0], softmax_model(X[None])[0], rtol=1e-6)
    np.testing.assert_allclose(p_clf.full_probs(X), softmax_model(X[None])[0], rtol=1e-6)
    np.testing.assert_allclose(jax.nn.softmax(p_clf.logits(X[None])), softmax_model(X[None]), rtol=1e-5)


def test_ad_needs_a_flax_model_and_hands_off_to_convad():
    with pytest.raises(ValueError, match="needs a Flax model"):
        echo().masked("ad")

    class Conv:
        """Minimal zoo-like model: apply_fn(variables, x) + variables."""

        variables = {"w": jnp.ones((3, 3, C, 2)) / 27.0}

        def apply_fn(self, variables, xb):
            dn = ("NHWC", "HWIO", "NHWC")
            y = jax.lax.conv_general_dilated(xb, variables["w"], (1, 1), "SAME", dimension_numbers=dn)
            return y.mean((1, 2))

        def __call__(self, xb):
            return self.apply_fn(self.variables, xb)

    clf = Classifier(Conv())
    ad = clf.masked("ad")
    ones = jnp.ones((1, H, W))
    # Theorem 1: the all-ones mask gives the plain model
    np.testing.assert_allclose(ad(X, ones)[0], clf.full_probs(X), rtol=1e-5)
    # masked pixels never matter: change them, the AD output does not move
    m = jnp.zeros((1, H, W)).at[:, 1:4, 1:3].set(1.0)
    other = X + 5.0 * (1 - m[0])[..., None]
    np.testing.assert_allclose(ad(X, m), ad(other, m), rtol=1e-6)
    with pytest.raises(ValueError, match="ConvAD options"):
        clf.masked(0.0, tau=0.5)


def test_ad_refuses_soft_masks_when_it_can_see_them():
    """ConvAD masks are binary (a pixel is on or off); a soft mask passed eagerly is an error,
    not silently binarised at > 0. Binary float and bool masks are fine."""

    class Mean:
        variables: dict = {}

        def apply_fn(self, variables, xb):
            return xb.mean((1, 2))

        def __call__(self, xb):
            return self.apply_fn(self.variables, xb)

    ad = Classifier(Mean()).masked("ad")
    with pytest.raises(ValueError, match="binary masks"):
        ad(X, jnp.full((1, H, W), 0.5))
    binary = ad(X, MASK.astype(jnp.float32))
    np.testing.assert_array_equal(binary, ad(X, MASK))
