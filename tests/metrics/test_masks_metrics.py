import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance

from rexjax.classifier import Classifier
from rexjax.metrics import (
    area_ratio,
    dice,
    hausdorff,
    in_out,
    iid_backgrounds,
    make_area,
    rho,
    rho_robustness,
    solid_backgrounds,
)


def test_area_inout_dice_by_hand():
    e = np.zeros((4, 5), bool)
    e[0, :4] = True  # 4 pixels
    s = np.zeros((4, 5), bool)
    s[0, 2:] = True
    s[1, :] = True  # 8 pixels, overlap with e: (0,2), (0,3)
    assert area_ratio(e) == pytest.approx(4 / 20)
    io = in_out(e, s)
    assert io.inside == pytest.approx(0.5) and io.outside == pytest.approx(0.5)
    assert dice(e, s) == pytest.approx(2 * 2 / (4 + 8))
    assert dice(e, e) == 1.0 and dice(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert np.isnan(in_out(np.zeros((4, 5)), s).inside)


def test_hausdorff_by_hand_and_vs_scipy():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0, 0] = True
    b[3, 4] = True
    b[0, 1] = True
    # from a: nearest b is (0,1) -> 1; from b: (3,4) is 5 from (0,0)
    assert hausdorff(a, b) == pytest.approx(5.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.random((2, 17, 13)) > 0.9
        want = max(scipy.spatial.distance.directed_hausdorff(np.argwhere(a), np.argwhere(b))[0],
                   scipy.spatial.distance.directed_hausdorff(np.argwhere(b), np.argwhere(a))[0])
        assert hausdorff(a, b) == pytest.approx(want)
    assert hausdorff(a, np.zeros_like(a)) == float("inf")


def test_mask_shape_errors():
    with pytest.raises(ValueError, match="segment"):
        in_out(np.zeros((3, 3)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="mask"):
        area_ratio(np.zeros(3))


def region_only_classifier(region, target=2, k=4):
    """A model that looks only at `region`: class `target` iff the region's mean is > 0.5."""

    def logits(xb):
        v = (xb * region[None, :, :, None]).sum((1, 2, 3)) / (region.sum() * xb.shape[-1])
        return jnp.zeros((xb.shape[0], k)).at[:, target].set(10 * (v - 0.5))

    return Classifier(logits)


def test_rho_is_one_for_model_looking_only_at_explanation():
    region = jnp.zeros((8, 8)).at[2:5, 3:7].set(1.0)
    x = jnp.ones((8, 8, 3))
    clf = region_only_classifier(region)
    r = rho_robustness(0, clf, x, region, 2, k_solid=8, k_iid=8, bounds=(-3.0, 3.0), batch_size=4)
    assert r.rho_solid == 1.0 and r.rho_iid == 1.0 and r.forward_images == 16
    # forward_images: backgrounds rounded up to whole chunks (5 -> 8)
    assert rho_robustness(0, clf, x, region, 2, k_solid=5, k_iid=8, batch_size=4).forward_images == 8 + 8
    # an explanation that misses the region is not robust on dark backgrounds
    miss = jnp.zeros((8, 8)).at[6:, :].set(1.0)
    dark = jnp.full((8, 8, 8, 3), -1.0)
    assert rho(clf, x, miss, 2, dark, batch_size=4) == 0.0
    # half the region pasted: the background decides (dark fails, bright passes), across a padded chunk
    half = jnp.zeros((8, 8)).at[2:5, 3:5].set(1.0)
    mixed = jnp.concatenate([jnp.full((3, 8, 8, 3), -1.0), jnp.full((2, 8, 8, 3), 1.0)])
    assert rho(clf, x, half, 2, mixed, batch_size=4) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="key"):
        rho_robustness(None, clf, x, region, 2)
    with pytest.raises(ValueError, match="mask"):
        rho(clf, x, jnp.ones((4, 4)), 2, dark)


def test_backgrounds_in_bounds_and_keyed():
    x = jnp.stack([jnp.full((6, 6), v) for v in (-1.0, 0.0, 2.0)], -1).at[0, 0].set(jnp.array([1.0, 1.0, 3.0]))
    s = solid_backgrounds(jax.random.key(1), 5, x)
    assert s.shape == (5, 6, 6, 3) and bool((s == s[:, :1, :1]).all())
    n = iid_backgrounds(jax.random.key(1), 5, x)
    lo, hi = x.min((0, 1)), x.max((0, 1))
    assert bool((n >= lo).all() and (n <= hi).all())
    np.testing.assert_array_equal(n, iid_backgrounds(jax.random.key(1), 5, x))


def test_make_area_uses_rex_extraction():
    # class 0 wins once more than 25 of the 40 region pixels are visible (all-ones image,
    # painted with 0: channel 0 is the mask)
    region = jnp.zeros((10, 10)).at[:4, :].set(1.0)

    def scores(xb):
        f = (xb[..., 0] * region).sum((1, 2)) / region.sum()
        return jnp.stack([f, jnp.full_like(f, 0.625)], -1)

    area = make_area(Classifier(scores, outputs="probs"), batch_size=4)
    sal = region * 2 + jnp.arange(100.0).reshape(10, 10) / 1000
    a, ex = area(jnp.ones((10, 10, 3)), sal, 0, 1.0)
    assert ex.sufficient and ex.pixels == 30 and a == pytest.approx(0.3)
    assert bool(ex.mask[1:4].all()) and not ex.mask[0].any()  # ties: larger index first
    with pytest.raises(ValueError, match="saliency"):
        area(jnp.ones((10, 10, 3)), sal[:5], 0, 1.0)
    # mask_mode reaches the extraction: hidden pixels painted 1 look visible on this image,
    # so the first prefix (10 pixels) already suffices
    a1, ex1 = make_area(Classifier(scores, outputs="probs"), mask_mode=1.0, batch_size=4)(
        jnp.ones((10, 10, 3)), sal, 0, 1.0)
    assert ex1.pixels == 10 and a1 == pytest.approx(0.1)
