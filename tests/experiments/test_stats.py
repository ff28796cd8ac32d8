"""rexjax.studies.stats: the wrappers' own logic (guards, pairing, Bonferroni) against
scipy on the same data, and the optional packages on data with a known answer."""

import numpy as np
import pytest
from scipy import stats as sps

from rexjax.studies import stats


def test_kruskal_matches_scipy_and_guards():
    g = {"a": [0.1, 0.2, 0.3], "b": [0.5, 0.6, 0.7, 0.8], "c": []}
    t = stats.kruskal(g)
    ref = sps.kruskal(g["a"], g["b"])
    assert (t.statistic, t.p) == pytest.approx((ref.statistic, ref.pvalue))
    assert stats.kruskal({"a": [1.0, 2.0]}).statistic is None  # one group
    assert "equal" in stats.kruskal({"a": [1.0], "b": [1.0]}).note


def test_friedman_blocks_are_images_by_models():
    rng = np.random.default_rng(0)
    blocks = rng.random((8, 3)) + np.array([0.0, 0.3, 0.6])  # model 3 > model 2 > model 1 on every image
    t = stats.friedman(blocks)
    ref = sps.friedmanchisquare(blocks[:, 0], blocks[:, 1], blocks[:, 2])
    assert (t.statistic, t.p) == pytest.approx((ref.statistic, ref.pvalue))
    assert "needs >= 3 models" in stats.friedman(blocks[:, :2]).note


def test_pairwise_wilcoxon_is_paired_and_bonferroni_corrected():
    rng = np.random.default_rng(1)
    blocks = rng.random((10, 3))
    blocks[:, 2] = blocks[:, 0]  # identical columns: no test
    out = stats.pairwise_wilcoxon(blocks, ["x", "y", "z"])
    assert [(a, b) for a, b, _, _ in out] == [("x", "y"), ("x", "z"), ("y", "z")]
    ref = sps.wilcoxon(blocks[:, 0], blocks[:, 1])
    assert out[0][2:] == pytest.approx((ref.statistic, min(1.0, 3 * ref.pvalue)))
    assert out[1][2:] == (None, None)


def test_mixed_model_recovers_a_known_effect():
    pytest.importorskip("statsmodels", reason="statsmodels not installed (the [stats] extra)")
    rng = np.random.default_rng(2)
    images = np.repeat(np.arange(30), 4)
    correct = rng.random(images.size) < 0.5
    sizes = 0.1 + 0.05 * correct + 0.03 * rng.standard_normal(30)[images] + 0.005 * rng.standard_normal(images.size)
    t = stats.mixed_model(sizes, correct, [f"im{i}" for i in images])
    assert t.statistic == pytest.approx(0.05, abs=0.005) and t.p < 1e-6
    assert stats.mixed_model(sizes, np.ones_like(correct), images).statistic is None


def test_dunn_bonferroni():
    pytest.importorskip("scikit_posthocs", reason="scikit-posthocs not installed (the [stats] extra)")
    g = {"a": [0.1, 0.2, 0.3, 0.25], "b": [0.8, 0.9, 0.85, 0.95], "c": [0.5, 0.55, 0.45, 0.5]}
    p = stats.dunn(g)
    assert set(p) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert p[("a", "b")] < p[("a", "c")] and all(0 <= v <= 1 for v in p.values())


def test_architecture_families():
    import ml_collections

    from rexjax.studies.concentration import architecture

    config = ml_collections.ConfigDict({"architectures": None})
    got = [architecture(m, config) for m in ("efficientnet_lite0", "resnet50", "regnety_120", "efficientnet_v2_s", "vgg16")]
    assert got == ["efficientnet_lite", "resnet", "regnety", "efficientnet_v2", "vgg"]
    config.architectures = "resnet50=cnn,vgg16=cnn"
    assert [architecture(m, config) for m in ("resnet50", "vgg16", "resnet101")] == ["cnn", "cnn", "resnet"]
