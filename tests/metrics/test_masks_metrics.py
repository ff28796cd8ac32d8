import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance

from rexjax.classifier import Classifier
from rexjax.metrics import (
    area_ratio, colour_bounds, dice, hausdorff, in_out, make_area, noise_backgrounds, other_class_backgrounds, rho,
    rho_noise, rho_robustness, solid_backgrounds,
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


REGION = jnp.zeros((8, 8)).at[2:5, 3:7].set(1.0)


def region_images(brightness):
    """[N, 8, 8, 3] images whose REGION has the given brightnesses (elsewhere 0.3):
    `region_only_classifier` puts them in class 2 when > 0.5, else class 0."""
    b = jnp.asarray(brightness, jnp.float32)[:, None, None, None]
    return jnp.where(REGION[None, :, :, None] > 0, b, 0.3) * jnp.ones((1, 8, 8, 3))


def test_rho_is_one_for_model_looking_only_at_explanation():
    x = jnp.ones((8, 8, 3))
    clf = region_only_classifier(REGION)
    others = region_images([0.0, 0.1, 0.9, 0.2])  # classes 0, 0, 2, 0
    r = rho_robustness(0, clf, x, REGION, 2, others, k_solid=8, k_other=3, bounds=(-3.0, 3.0), batch_size=4)
    # 8 solid (2 chunks of 4) + 3 others (one chunk of 3) + the top-1 pass over the 4 others
    assert r.rho_solid == 1.0 and r.rho_other == 1.0 and r.forward_images == 8 + 3 + 4
    # forward_images: backgrounds rounded up to whole chunks (5 -> 8); with labels, no top-1 pass
    r = rho_robustness(0, clf, x, REGION, 2, others, labels=[0, 0, 2, 0], k_solid=5, k_other=3,
                       bounds=(-3.0, 3.0), batch_size=4)
    assert r.forward_images == 8 + 3
    # an explanation that misses the region is not robust on dark backgrounds
    miss = jnp.zeros((8, 8)).at[6:, :].set(1.0)
    dark = jnp.full((8, 8, 8, 3), -1.0)
    assert rho(clf, x, miss, 2, dark, batch_size=4) == 0.0
    # half the region pasted: the background decides (dark fails, bright passes), across a padded chunk
    half = jnp.zeros((8, 8)).at[2:5, 3:5].set(1.0)
    mixed = jnp.concatenate([jnp.full((3, 8, 8, 3), -1.0), jnp.full((2, 8, 8, 3), 1.0)])
    assert rho(clf, x, half, 2, mixed, batch_size=4) == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="key"):
        rho_robustness(None, clf, x, REGION, 2, others, bounds=(0, 1))
    with pytest.raises(ValueError, match="mask"):
        rho(clf, x, jnp.ones((4, 4)), 2, dark)


def test_k2_is_images_of_other_classes():
    """The paper's K2 = images of classes other than the target (by the
    given labels, else the model's top-1), not noise. The explanation that misses the region
    is pasted on them: every other-class image keeps its own (dark-region) class, so rho_other
    is 0; had the target-class image (0.9) stayed in K2 it would be 1/4."""
    clf = region_only_classifier(REGION)
    others = region_images([0.0, 0.1, 0.9, 0.2])
    kept = other_class_backgrounds(clf, others, 2)
    np.testing.assert_array_equal(kept, others[np.array([0, 1, 3])])
    by_label = other_class_backgrounds(clf, others, 2, labels=[2, 0, 0, 2])  # the data set's labels win
    np.testing.assert_array_equal(by_label, others[np.array([1, 2])])
    two = other_class_backgrounds(clf, others, 2, k=2, key=3)
    assert two.shape == (2, 8, 8, 3) and all(any((t == o).all() for o in kept) for t in two)
    np.testing.assert_array_equal(two, other_class_backgrounds(clf, others, 2, k=2, key=3))
    with pytest.raises(ValueError, match="only 3 of 4"):
        other_class_backgrounds(clf, others, 2, k=4, key=0)
    miss = jnp.zeros((8, 8), bool).at[6:, :].set(True)
    r = rho_robustness(1, clf, jnp.ones((8, 8, 3)), miss, 2, others, k_solid=4, k_other=None, bounds=(0.0, 0.4))
    assert r.rho_other == 0.0 and r.rho_solid == 0.0
    # images as files, prepared by the classifier
    assert other_class_backgrounds(clf, list(others), 2).shape == (3, 8, 8, 3)


def brightness_classifier(preprocess=None):
    """Class 1 iff the mean of channel 0 over the image is > 0.5 (else class 0)."""

    def logits(xb):
        v = xb[..., 0].mean((1, 2))
        return jnp.stack([jnp.zeros_like(v), 10 * (v - 0.5), jnp.full_like(v, -9.0)], -1)

    return Classifier(logits, preprocess=preprocess)


def imagenet_like(image):
    """A zoo-like preprocessing: (v - 127) / 128 -> [-0.992, 1.0]."""
    return (np.asarray(image.convert("RGB").resize((8, 8)), np.float32) - 127.0) / 128.0


def test_k1_solid_colours_span_the_model_input_range():
    """K1's colours cover the whole input space (the preprocessing's image
    of [0, 255]), not the image's own range. The image is uniform 0.1 and the explanation
    empty, so a background wins class 1 iff its channel 0 > 0.5: with colours uniform on
    [-127/128, 1] that is P = 0.5 / (1 + 127/128) = 0.251 (400 colours: sd 0.022); with the
    image's own range (the old default) it was 0."""
    clf = brightness_classifier(imagenet_like)
    x = jnp.full((8, 8, 3), 0.1)
    low, high = colour_bounds(clf, x)
    np.testing.assert_allclose(low, [-127 / 128] * 3, atol=1e-6)
    np.testing.assert_allclose(high, [1.0] * 3, atol=1e-6)
    empty = jnp.zeros((8, 8), bool)
    others = jnp.full((2, 8, 8, 3), -0.5)  # class 0
    r = rho_robustness(0, clf, x, empty, 1, others, k_solid=400, k_other=None)
    assert abs(r.rho_solid - 0.5 / (1 + 127 / 128)) < 4 * 0.022
    assert rho_robustness(0, clf, x, empty, 1, others, k_solid=400, k_other=None, bounds="image").rho_solid == 0.0


def test_colour_bounds_without_preprocessing_must_be_given():
    x = jnp.stack([jnp.full((6, 6), v) for v in (-1.0, 0.0, 2.0)], -1).at[0, 0].set(jnp.array([1.0, 1.0, 3.0]))
    clf = brightness_classifier()
    with pytest.raises(ValueError, match="no preprocessing.*bounds"):
        colour_bounds(clf, x)
    lo, hi = colour_bounds(clf, x, "image")
    np.testing.assert_array_equal(lo, [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(hi, [1.0, 1.0, 3.0])
    np.testing.assert_array_equal(colour_bounds(clf, x, (0.0, [1.0, 2.0, 3.0]))[1], [1.0, 2.0, 3.0])
    for bad in ("full", (1.0, 0.0), (0.0,)):
        with pytest.raises(ValueError, match="bounds"):
            colour_bounds(clf, x, bad)


def test_backgrounds_in_bounds_and_keyed():
    x = jnp.zeros((6, 6, 3))
    bounds = (jnp.array([-1.0, 0.0, 2.0]), jnp.array([1.0, 1.0, 3.0]))
    s = solid_backgrounds(jax.random.key(1), 5, x, bounds)
    assert s.shape == (5, 6, 6, 3) and bool((s == s[:, :1, :1]).all())
    n = noise_backgrounds(jax.random.key(1), 5, x, bounds)
    assert bool((n >= bounds[0]).all() and (n <= bounds[1]).all()) and not bool((n == n[:, :1, :1]).all())
    np.testing.assert_array_equal(n, noise_backgrounds(jax.random.key(1), 5, x, bounds))


def test_rho_noise_is_its_own_metric():
    """The IID-noise context set, under its own name: on noise uniform in [0, 1] the mean of
    channel 0 is about 0.5, so about half the backgrounds win class 1 (empty explanation)."""
    clf = brightness_classifier()
    x = jnp.full((8, 8, 3), 0.1)
    r = rho_noise(0, clf, x, jnp.zeros((8, 8), bool), 1, k=200, bounds=(0.0, 1.0))
    assert 0.3 < r < 0.7
    assert rho_noise(0, clf, x, jnp.zeros((8, 8), bool), 1, k=50, bounds=(0.6, 1.0)) == 1.0


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
    # a target that is never the top-1 (class 2, constant 0.1): nothing is sufficient, so the
    # area is NaN, not 0 (which would read as the smallest possible explanation)
    def scores3(xb):
        s2 = scores(xb)
        return jnp.concatenate([s2, jnp.full_like(s2[:, :1], 0.1)], -1)

    a2, ex2 = make_area(Classifier(scores3, outputs="probs"), batch_size=4)(jnp.ones((10, 10, 3)), sal, 2, 0.1)
    assert not ex2.sufficient and math.isnan(a2)
