"""Black-box baselines on signals x[N, C] and volumes x[D, H, W, C] against numpy answers.

The model is linear in what it sees: score f(x) = sum(c * x[..., 0]) + b over every spatial
element, declared as probabilities (never softmaxed). Shown x = ones through mask_mode 0 it
sees the mask itself, so each method's map has a closed form computed here in numpy.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import methods
from rexjax.classifier import Classifier
from rexjax.saliency import kernel_shap, lime, occlusion, rise, rise_masks, shape

SHAPES = [(20,), (6, 5, 7)]
B = 0.3


def linear(c):
    """Classifier with class-0 score sum(c * x[..., 0]) + B (c f32[*S]) and a class 1 at 0."""
    c = jnp.asarray(c)
    axes = tuple(range(1, c.ndim + 1))

    def scores(xb):
        f = (xb[..., 0] * c[None]).sum(axes) + B
        return jnp.stack([f, jnp.zeros_like(f)], -1)

    return Classifier(scores, outputs="probs", name="linear_nd")


def _coef(spatial, seed=0):
    return np.random.default_rng(seed).normal(size=spatial).astype(np.float32) * 0.02


def starts(n, window, stride):
    s = list(range(0, n - window + 1, stride))
    return s if s[-1] == n - window else s + [n - window]


@pytest.mark.parametrize("spatial", SHAPES)
def test_occlusion_closed_form(spatial):
    """Element e: mean over the windows covering it of f(all) - f(window hidden) = the sum of c
    over the window. Catches a window that ignores an axis, a missing last (flush) position,
    a wrong coverage count."""
    window, stride = 3, 2
    c = _coef(spatial)
    total, count = np.zeros(spatial), np.zeros(spatial)
    for corner in itertools.product(*[starts(n, window, stride) for n in spatial]):
        region = tuple(slice(a, a + window) for a in corner)
        total[region] += c[region].sum()
        count[region] += 1
    out = occlusion(window=window, stride=stride, batch_size=5)(linear(c), jnp.ones(spatial + (2,)), 0, key=0)
    np.testing.assert_allclose(np.asarray(out.map), total / count, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("spatial", SHAPES)
def test_rise_masks_are_the_resized_crop(spatial):
    """Each N-D mask is `resize(cells, (s+1) ceil(n/s) per axis)` cropped at its shifts (the
    definition, with jax.image.resize over all axes at once; the code applies one matrix per
    axis): catches axes swapped or a shift read from the wrong uniform."""
    grid, p, n = 3, 0.5, 6
    k = len(spatial)
    masks = np.asarray(rise_masks(jax.random.key(2), n, grid, p, spatial))
    u = np.asarray(jax.random.uniform(jax.random.key(2), (n, grid**k + k)))
    sizes = [-(-m // grid) for m in spatial]
    for i in range(n):
        cells = (u[i, : grid**k] < p).astype(np.float32).reshape((grid,) * k)
        big = np.asarray(jax.image.resize(jnp.asarray(cells), tuple((grid + 1) * c for c in sizes), "bilinear"))
        shifts = [min(int(u[i, grid**k + a] * c), c - 1) for a, c in enumerate(sizes)]
        want = big[tuple(slice(d, d + m) for d, m in zip(shifts, spatial))]
        np.testing.assert_allclose(masks[i], want, rtol=1e-5, atol=1e-6)
    assert abs(float(np.asarray(rise_masks(jax.random.key(3), 400, grid, p, spatial)).mean()) - p) < 0.03


@pytest.mark.parametrize("spatial", SHAPES)
def test_rise_and_shape_against_their_sums(spatial):
    """RISE = sum_i f(M_i) M_i / (N p) and SHAPE = sum_i (f(1) - f(M_i)) (1 - M_i) / ((1 - p) N)
    over the stream's masks, in float64; catches a map summed over the wrong axes and the
    normalisers."""
    n, grid, p = 40, 3, 0.4
    c = _coef(spatial, 1)
    m = np.asarray(rise_masks(jax.random.key(7), n, grid, p, spatial), np.float64)
    f = (m * c).reshape(n, -1).sum(1) + B
    want_rise = np.tensordot(f, m, axes=1) / (n * p)
    want_shape = np.tensordot((c.sum() + B) - f, 1 - m, axes=1) / ((1 - p) * n)
    x = jnp.ones(spatial + (1,))
    got_rise = rise(n_masks=n, grid=grid, p=p, batch_size=16)(linear(c), x, 0, key=jax.random.key(7)).map
    got_shape = shape(n_masks=n, grid=grid, p=p, batch_size=16)(linear(c), x, 0, key=jax.random.key(7)).map
    np.testing.assert_allclose(np.asarray(got_rise), want_rise, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_shape), want_shape, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spatial", SHAPES)
def test_kernel_shap_with_segments_is_exact_shapley(spatial):
    """With user segments and every coalition enumerated, an additive game's Shapley value of
    segment j is the sum of c over it; the map paints it on the segment. Without segments
    (no superpixels off images) one line."""
    c = _coef(spatial, 2)
    segments = np.random.default_rng(3).integers(0, 5, spatial)
    phi = np.array([c[segments == j].sum() for j in range(5)])
    out = kernel_shap(n_samples=64, segments=segments, batch_size=8)(linear(c), jnp.ones(spatial + (1,)), 0, key=0)
    np.testing.assert_allclose(np.asarray(out.map), phi[segments], rtol=1e-3, atol=1e-5)
    for method in (kernel_shap(), lime()):
        with pytest.raises(ValueError, match="superpixels segment images"):
            method(linear(c), jnp.ones(spatial + (1,)), 0, key=0)


def test_lime_with_segments_ranks_an_additive_game():
    """LIME's coefficients on an additive game over 4 segments of a signal follow the segment
    sums (the ridge shrinks them; the order is kept)."""
    c = np.zeros(16, np.float32)
    segments = np.repeat(np.arange(4), 4)
    for j, v in enumerate((0.4, -0.2, 0.1, 0.8)):
        c[segments == j] = v / 4
    out = lime(n_samples=300, segments=segments, alpha=0.01)(linear(c), jnp.ones((16, 1)), 0, key=jax.random.key(1))
    beta = np.asarray(out.record.coefficients)
    assert out.map.shape == (16,) and list(np.argsort(beta)) == [1, 2, 0, 3], beta


def test_registry_takes_nd_where_supported():
    """The registry passes N-D x to the black-box methods and the others refuse it with one line."""
    c = _coef((12,), 4)
    x = jnp.ones((12, 1))
    assert methods.make("occlusion", window=2, stride=2)(linear(c), x, key=0).map.shape == (12,)
    with pytest.raises(ValueError, match="must be an image \\[H, W, C\\] \\(rank 3\\)"):
        methods.make("integrated_gradients")(linear(c), x, key=0)
