import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

from rexjax.classifier import Classifier
from rexjax.masking import parse_mask_mode
from rexjax.metrics import REX, RISE, insertion_deletion, pixel_rank


def fraction_scores(region=None):
    """scores(xb): p(class 0) = the mean of channel 0 over `region` (whole image if None).
    On an all-ones image painted with 0 (mask_mode 0) that is the visible fraction of the region."""

    def scores(xb):
        r = jnp.ones(xb.shape[1:3]) if region is None else region
        f = (xb[..., 0] * r).sum((1, 2)) / r.sum()
        return jnp.stack([f, 1 - f], axis=-1)

    return scores


def fraction_model(region=None):
    return Classifier(fraction_scores(region), outputs="probs")


class AnySubstrate(Classifier):
    """Every masked view shows the mask itself (hidden = 0 whatever the substrate), and the
    mask modes asked for are recorded: the RISE convention's blur substrate would otherwise
    repaint an all-ones image with ones."""

    def __init__(self, region=None):
        super().__init__(fraction_scores(region), outputs="probs")
        self.asked = []

    def masked(self, mask_mode=0.0, **ad_options):
        self.asked.append(parse_mask_mode(mask_mode))
        return super().masked(0.0)


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
    # 4 points in 2 chunks of 3 (padded to 6), two curves, + the full image
    assert res.forward_images == 2 * 6 + 1 and res.convention.name == "rex"


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


def test_full_confidence_normalises_the_rex_auc():
    """The full-image confidence (classifier.full_probs) divides the ReX AUC: an image at 0.5
    halves every point and leaves the AUC unchanged."""
    x = jnp.full((20, 20, 3), 0.5)
    sal = jnp.arange(400.0).reshape(20, 20)
    res = insertion_deletion(fraction_model(), x, sal, 0, REX, batch_size=4)
    assert res.full_confidence == pytest.approx(0.5)
    np.testing.assert_allclose(res.insertion, [0.125, 0.25, 0.375, 0.5], atol=1e-6)
    assert res.insertion_auc == pytest.approx(300 * (0.25 + 1.0) / 2 / 400)


def test_rise_convention_trapezoid_and_substrates():
    x = jnp.ones((16, 16, 1))
    sal = jnp.arange(256.0).reshape(16, 16)
    clf = AnySubstrate()
    res = insertion_deletion(clf, x, sal, 0, RISE._replace(step=64), mask_mode="ad")
    assert clf.asked == ["blur:5", 0.0]  # the convention's substrates, not the caller's mask_mode
    np.testing.assert_allclose(res.insertion, [0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)
    assert res.insertion_auc == pytest.approx(0.5)  # trapezoid on [0, 1] of y = t
    assert res.deletion_auc == pytest.approx(0.5)
    clf = AnySubstrate()
    insertion_deletion(clf, x, sal, 0, REX, mask_mode=0.5)
    assert clf.asked == [0.5, 0.5]  # ReX: the caller's mask_mode for both curves
    # a real painted classifier: deletion/insertion over different substrates
    logits = Classifier(lambda xb: jnp.stack([xb.mean((1, 2, 3)), -xb.mean((1, 2, 3))], -1))
    img = jnp.linspace(0, 1, 256).reshape(16, 16, 1)
    r = insertion_deletion(logits, img, sal, 0, RISE._replace(step=64))
    assert r.insertion[-1] == pytest.approx(r.deletion[0])  # both the full image
    assert r.insertion[0] != pytest.approx(r.deletion[-1])  # blur vs zeros


def test_matches_a_reference_loop_with_padding():
    """Curves equal one model call per point (no batching) at 1e-6, whatever the chunking."""
    region = jnp.zeros((12, 12)).at[2:6, 3:9].set(1.0)
    sal = jnp.sin(jnp.arange(144.0)).reshape(12, 12)
    x = jnp.ones((12, 12, 3))
    clf = fraction_model(region)
    rank = np.asarray(pixel_rank(sal))
    counts = np.minimum(np.arange(1, -(-144 // 5) + 1) * 5, 144)
    classify = clf.masked(0.0)
    ins = [float(classify(x, jnp.asarray(rank < c, jnp.float32)[None])[0, 0]) for c in counts]
    dele = [float(classify(x, jnp.asarray(rank >= c, jnp.float32)[None])[0, 0]) for c in counts]
    results = {b: insertion_deletion(clf, x, sal, 0, REX._replace(step=5), batch_size=b) for b in (1, 7, 64)}
    for b, res in results.items():  # 29 points: 7 leaves a padded last chunk
        np.testing.assert_allclose(res.insertion, ins, atol=1e-6)
        np.testing.assert_allclose(res.deletion, dele, atol=1e-6)
        np.testing.assert_array_equal(res.insertion, results[1].insertion)
        assert res.insertion_auc == results[1].insertion_auc
    assert [r.forward_images for r in results.values()] == [2 * 29 + 1, 2 * 35 + 1, 2 * 29 + 1]


def test_bad_input():
    with pytest.raises(ValueError, match="saliency"):
        insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((4, 4)), 0)
    with pytest.raises(ValueError, match="target"):
        insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((8, 8)), 5)
    with pytest.raises(ValueError, match="convention"):
        insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((8, 8)), 0, "nope")
    with pytest.raises(ValueError, match="batch_size"):
        insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((8, 8)), 0, batch_size=0)


def test_rex_auc_is_divided_by_the_full_confidence_0_3():
    """A model whose full-image confidence for the target is 0.3 (and not
    its top class: class 1 has 0.7), with a curve that rises to 0.9 halfway. The ReX AUC is
    Simpson / (full_probs[target] * floor(N/step) * step) = 0.5984 / 0.3: dropping the
    normaliser (0.5984), normalising by the curve's maximum (0.665) or by the top-1
    probability (0.855) all fail."""

    def scores(xb):  # t = visible fraction (all-ones image, mask_mode 0); p0 = 0.3 + 2.4 t (1 - t)
        t = xb[..., 0].mean((1, 2))
        p0 = 0.3 + 2.4 * t * (1 - t)
        return jnp.stack([p0, 1 - p0], -1)

    clf = Classifier(scores, outputs="probs")
    x = jnp.ones((20, 20, 3))
    sal = jnp.arange(400.0).reshape(20, 20)
    res = insertion_deletion(clf, x, sal, 0, REX._replace(step=80), batch_size=8)
    assert res.full_confidence == pytest.approx(0.3, abs=1e-6)
    t = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(res.insertion, 0.3 + 2.4 * t * (1 - t), atol=1e-6)
    # Simpson is exact on a quadratic: 400 * int_0.2^1 p0(t) dt = 400 * 0.5984 (deletion: the
    # same integral, mirrored), over 0.3 * 5 * 80
    assert res.insertion_auc == pytest.approx(0.5984 / 0.3, rel=1e-5)
    assert res.deletion_auc == pytest.approx(0.5984 / 0.3, rel=1e-5)


def test_step_larger_than_the_image_is_a_clear_error():
    """An 8 x 8 image has fewer pixels than step 100: a ValueError, not a
    ZeroDivisionError in the normalisation (both conventions)."""
    for conv in (REX, RISE):
        with pytest.raises(ValueError, match=r"step 100 .*64 pixels"):
            insertion_deletion(fraction_model(), jnp.ones((8, 8, 3)), jnp.ones((8, 8)), 0, conv._replace(step=100))
