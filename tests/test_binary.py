"""Binary (one-output) classifiers: `binary_threshold=t` presents two classes whose argmax is
the decision p >= t (`rexjax.binary`), so the default target is the decided side and every
method's "classified as the target" is the thresholded decision.

The planted model: p = sigmoid(8 (m - 1/2)) with m the mean brightness of a 6 x 6 patch (a
NumPy function, wrapped as a black box). Patch brightness 0.5507 gives p = 0.6, 0.7747 gives
p = 0.9; a hidden patch (masked pixels show 0) gives p = 0.018.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax
from rexjax import methods
from rexjax.classifier import Classifier

H, W = 16, 16
PATCH = (slice(4, 10), slice(8, 14))


def p_of(x):
    """NumPy x f32[B, 16, 16, 3] -> p f32[B, 1] (the planted sigmoid)."""
    m = x[:, PATCH[0], PATCH[1], :].mean((1, 2, 3))
    return (1 / (1 + np.exp(-8 * (m - 0.5))))[:, None].astype(np.float32)


def image_with(p: float) -> np.ndarray:
    """An image whose planted p is `p` (the patch's brightness solves sigmoid(8 (m - 1/2)) = p)."""
    x = np.full((H, W, 3), 0.2, np.float32)
    x[PATCH] = 0.5 + np.log(p / (1 - p)) / 8
    return x


def first_pixel(xb):
    """A model whose one column is the first pixel's first channel: xb[B, 1, 1, 1] -> [B, 1]."""
    return xb[:, 0, 0, :1]


def grid_around(t: float) -> np.ndarray:
    """f32 values in [0, 1]: a coarse grid, t itself and its float32 neighbours (ties)."""
    t32 = np.float32(t)
    near = [t32]
    for direction in (0.0, 1.0):
        v = t32
        for _ in range(4):
            v = np.nextafter(v, np.float32(direction))
            near.append(v)
    return np.concatenate([np.linspace(0, 1, 1001, dtype=np.float32), np.array(near, np.float32)])


@pytest.mark.parametrize("t", [0.8, 0.5, 0.3])
def test_argmax_is_the_threshold_decision(t):
    """For every p (and at p == t, and a few ulps either side), argmax of the presented probs
    and logits is (p >= t), the NumPy rule; softmax(logits) = probs; class 1's probability is
    the odds ratio; at t = 0.5 the probs are [1 - p, p]. Catches the argmax of [1 - p, p] (t ignored: wrong for t != 0.5), a tie at
    p == t going to class 0 (no margin), swapped classes."""
    p = grid_around(t)
    clf = Classifier(first_pixel, outputs="probs", binary_threshold=t)
    xb = jnp.asarray(p).reshape(-1, 1, 1, 1)
    probs, logits = np.asarray(clf.probs(xb)), np.asarray(clf.logits(xb))
    decided = (p >= np.float32(t)).astype(int)
    np.testing.assert_array_equal(probs.argmax(1), decided)
    np.testing.assert_array_equal(logits.argmax(1), decided)
    np.testing.assert_allclose(jax.nn.softmax(logits), probs, atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    p64 = p.astype(np.float64)  # class 1's odds are p's odds over t's odds (float64 oracle)
    np.testing.assert_allclose(probs[:, 1], p64 * (1 - t) / (p64 * (1 - t) + (1 - p64) * t), rtol=1e-5, atol=1e-6)
    if t == 0.5:
        np.testing.assert_allclose(probs, np.stack([1 - p, p], 1), atol=1e-6)


@pytest.mark.parametrize("t", [0.8, 0.3])
def test_a_logit_model_decides_on_sigmoid(t):
    """outputs="logits": z is one logit, p = sigmoid(z); the oracle is float64 sigmoid(z) >= t
    (away from the tie, where float32 and float64 may round apart). Catches a logit treated
    as a probability (log(z) - log1p(-z)) or the threshold applied to z itself."""
    z = np.linspace(-8, 8, 1601).astype(np.float32)
    logit_t = np.log(t / (1 - t))
    z = z[np.abs(z - logit_t) > 1e-4]
    clf = Classifier(first_pixel, outputs="logits", binary_threshold=t)
    probs = np.asarray(clf.probs(jnp.asarray(z).reshape(-1, 1, 1, 1)))
    oracle = 1 / (1 + np.exp(-z.astype(np.float64))) >= t
    np.testing.assert_array_equal(probs.argmax(1), oracle.astype(int))
    # class 1's odds are p's odds over t's odds
    np.testing.assert_allclose(probs[:, 1], 1 / (1 + np.exp(-(z - logit_t))), rtol=1e-5, atol=1e-7)


T = 0.8


@pytest.fixture(scope="module")
def planted():
    """The planted model as a black box at t = 0.8 (one Classifier: ReX compiles once)."""
    return Classifier.from_callable(p_of, (H, W, 3), outputs="probs", binary_threshold=T)


@pytest.mark.parametrize("p, side", [(0.6, 0), (0.9, 1)])
def test_default_target_is_the_decided_side_and_rex_is_sufficient_for_it(p, side, planted):
    """The default target of rexjax.explain and of every Method is the thresholded side (at
    t = 0.8, p = 0.6 is class 0 although p > 1 - p), and ReX's explanation alone keeps that
    decision: the planted NumPy p of the image with only the explanation visible is on the
    same side of t. Catches argmax instead of the threshold, and an extraction that checks
    sufficiency at 1/2 (p = 0.9: an explanation with p >= 0.5 but < 0.8 would pass)."""
    x, clf, t = image_with(p), planted, T
    assert clf.num_classes == 2 and np.isclose(p_of(x[None])[0, 0], p, atol=1e-5)
    assert clf.predicted_class(clf.full_probs(x)) == side
    ex = rexjax.explain(clf, x, key=0, iters=4)
    assert ex.target == side and ex.sufficient
    alone = x * ex.mask[..., None]  # masked pixels show 0 (mask_mode=0)
    assert (p_of(alone[None])[0, 0] >= t) == bool(side)
    occlusion = methods.make("occlusion", window=4, stride=4)
    np.testing.assert_array_equal(occlusion(clf, x, key=0).map, occlusion(clf, x, side, key=0).map)
    assert not np.array_equal(occlusion(clf, x, 1 - side, key=0).map, occlusion(clf, x, side, key=0).map)


def test_one_column_needs_a_threshold_and_a_threshold_one_column():
    class OneOutput:
        """A zoo-like model (an ONNX model with one output) that declares num_classes."""

        num_classes = 1
        name = "one"

        def __call__(self, xb):
            return xb[:, 0, 0, :1]

    with pytest.raises(ValueError, match=r"one has one output column.*pass binary_threshold=t"):
        Classifier.of(OneOutput())
    clf = Classifier.of(OneOutput(), binary_threshold=0.7, labels=("no", "yes"))
    assert clf.num_classes == 2 and clf.num_classes_for(jnp.zeros((2, 2, 3))) == 2 and clf.label(1) == "yes"
    with pytest.raises(ValueError, match="one output column.*binary_threshold"):
        Classifier(first_pixel).num_classes_for(jnp.zeros((2, 2, 3)))  # found by shape inference
    with pytest.raises(ValueError, match=r"binary_threshold needs a model with one output column, .* has 3"):
        Classifier(lambda xb: xb[:, 0, 0, :3], binary_threshold=0.5).num_classes_for(jnp.zeros((2, 2, 3)))
    for bad in (0, 1, 1.5, -0.1, True, "0.5", float("nan")):
        with pytest.raises(ValueError, match=r"binary_threshold must be a number in \(0, 1\)"):
            Classifier(first_pixel, binary_threshold=bad)


def test_convad_presents_two_classes():
    """mask_mode="ad" on a one-output Flax-style model: ConvAD's outputs go through the same
    two-class presentation (all visible: the unmasked probabilities)."""

    class Dense:
        name = "dense"
        variables = {"w": jnp.linspace(-1, 1, 12).reshape(12, 1)}

        def apply_fn(self, variables, xb):
            return xb.reshape(xb.shape[0], -1) @ variables["w"]

        def __call__(self, xb):
            return self.apply_fn(self.variables, xb)

    clf = Classifier.of(Dense(), binary_threshold=0.6)
    x = jnp.asarray(np.random.default_rng(0).random((2, 2, 3)), jnp.float32)
    got = clf.masked("ad")(x, jnp.ones((1, 2, 2)))
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got, clf.probs(x[None]), rtol=1e-6)
