import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

from rexjax.masking import occlusion
from rexjax.metrics import REX, RISE, insertion_deletion, pixel_rank


def fraction_model(region=None):
    """MaskedClassifier: p(class 0) = visible fraction of `region` (whole image if None)."""

    def classify(x, masks):
        r = jnp.ones(masks.shape[1:]) if region is None else region
        f = (masks * r).sum((1, 2)) / r.sum()
        return jnp.stack([f, 1 - f], axis=-1)

    return classify


def test_pixel_rank_rex_tie_order():
    # reference section 5.1: [[1,0,1],[0,2,0]] ranks (1,1), (0,2), (0,0), (1,2), (1,0), (0,1)
    r = np.asarray(pixel_rank(jnp.array([[1.0, 0, 1], [0, 2, 0]])))
    order = [tuple(int(v) for v in np.argwhere(r == k)[0]) for k in range(6)]
    assert order == [(1, 1), (0, 2), (0, 0), (1, 2), (1, 0), (0, 1)]


def test_rex_convention_linear_curve_exact_auc():
    x = jnp.ones((20, 20, 3))
    sal = jnp.arange(400.0).reshape(20, 20)
    res = insertion_deletion(fraction_model(), x, sal, 0, REX, batch_size=3)
    np.testing.assert_allclose(res.insertion, [0.25, 0.5, 0.75, 1.0], atol=1e-6)
    np.testing.assert_allclose(res.deletion, [0.75, 0.5, 0.25, 0.0], atol=1e-6)
    # integral of a linear curve over [0, 300] (Simpson is exact), / (conf 1 * 4 * 100)
    assert res.insertion_auc == pytest.approx(300 * (0.25 + 1.0) / 2 / 400)
    assert res.deletion_auc == pytest.approx(300 * 0.75 / 2 / 400)
    assert res.full_confidence == pytest.approx(1.0)
    assert res.forward_images == 9 and res.convention.name == "rex"


def test_rex_normalisation_and_simpson_match_scipy():
    region = jnp.zeros((10, 10)).at[:3, :].set(1.0)  # 30 pixels matter
    sal = region * 5 + jnp.arange(100.0).reshape(10, 10) / 1000  # region ranked first
    res = insertion_deletion(fraction_model(region), jnp.ones((10, 10, 1)), sal, 0,
                             REX._replace(step=7))
    # after k*7 pixels (all from the region until 30) the visible fraction is min(7k, 30)/30
    k = np.arange(1, 16)
    expected = np.minimum(7 * k, 30) / 30
    np.testing.assert_allclose(res.insertion, expected, atol=1e-6)
    np.testing.assert_allclose(res.deletion, 1 - expected, atol=1e-6)
    want = scipy.integrate.simpson(expected, dx=7) / (1.0 * (100 // 7) * 7)
    assert res.insertion_auc == pytest.approx(want)


def test_rise_convention_trapezoid_and_blur_substrate():
    x = jnp.ones((16, 16, 1))
    sal = jnp.arange(256.0).reshape(16, 16)
    res = insertion_deletion(fraction_model(), x, sal, 0, RISE._replace(step=64))
    np.testing.assert_allclose(res.insertion, [0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)
    assert res.insertion_auc == pytest.approx(0.5)  # trapezoid on [0, 1] of y = t
    assert res.deletion_auc == pytest.approx(0.5)
    # a real occlusion classifier: deletion/insertion over different substrates
    logits = lambda xb: jnp.stack([xb.mean((1, 2, 3)), -xb.mean((1, 2, 3))], -1)
    ins = occlusion(logits, "blur:5")
    dele = occlusion(logits, 0.0)
    img = jnp.linspace(0, 1, 256).reshape(16, 16, 1)
    r = insertion_deletion(ins, img, sal, 0, RISE._replace(step=64), deletion_classify=dele)
    assert r.insertion[-1] == pytest.approx(r.deletion[0])  # both the full image
    assert r.insertion[0] != pytest.approx(r.deletion[-1])  # blur vs zeros


def test_batch_size_does_not_change_curves():
    region = jnp.zeros((12, 12)).at[2:6, 3:9].set(1.0)
    sal = jnp.sin(jnp.arange(144.0)).reshape(12, 12)
    a = insertion_deletion(fraction_model(region), jnp.ones((12, 12, 3)), sal, 0, REX._replace(step=5), batch_size=1)
    b = insertion_deletion(fraction_model(region), jnp.ones((12, 12, 3)), sal, 0, REX._replace(step=5), batch_size=64)
    np.testing.assert_array_equal(a.insertion, b.insertion)
    assert a.insertion_auc == b.insertion_auc


def test_bad_input():
    with pytest.raises(ValueError, match="saliency"):
        insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((4, 4)), 0)
    with pytest.raises(ValueError, match="target"):
        insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((8, 8)), 5)
    with pytest.raises(ValueError, match="convention"):
        insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((8, 8)), 0, "nope")
