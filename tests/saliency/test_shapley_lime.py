import importlib
import itertools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from rexjax import methods
from rexjax.classifier import Classifier
from rexjax.saliency import gradient_shap, integrated_gradients, kernel_shap, lime, noise_tunnel
from rexjax.saliency.kernel_shap import ShapRecord, all_coalitions, coalition_values, sample_coalitions
from rexjax.saliency.lime import LimeRecord
from rexjax.saliency.superpixels import superpixels
from tests.helpers.saliency_models import small_cnn, visible_game

SEG = np.repeat(np.repeat(np.arange(6).reshape(2, 3), 4, 0), 3, 1)  # 8 x 9, 6 superpixels
# numbers from the real `lime` package and the Shapley kernel, computed once by
# tests/fixtures/lime_shapley/make_lime_shapley_fixtures.py (provenance inside the file)
lime_module = importlib.import_module("rexjax.saliency.lime")  # the package exports the function `lime`
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "lime_shapley" / "reference.json"
REFERENCE = json.loads(REFERENCE_FILE.read_text())


def game_classifier(value):
    """Class-1 score value(v), v_j = visible fraction of superpixel j of SEG (x = ones)."""
    return visible_game(SEG, value)


def nonlinear(v):
    pair = 0.3 * v[:, 0] * v[:, 1] - 0.05 * v[:, 5] * v[:, 0]
    return pair + 0.2 * v[:, 2] + 0.1 * jnp.maximum(v[:, 3], v[:, 4]) + 0.1


def exact_shapley(f, m):
    def v(s):
        z = np.zeros((1, m))
        z[0, list(s)] = 1
        return float(f(jnp.asarray(z))[0])

    phi = np.zeros(m)
    for i in range(m):
        rest = [j for j in range(m) if j != i]
        for r in range(m):
            for s in itertools.combinations(rest, r):
                wgt = math.factorial(r) * math.factorial(m - r - 1) / math.factorial(m)
                phi[i] += wgt * (v(s + (i,)) - v(s))
    return phi


def test_kernel_shap_exact_shapley_values():
    x = jnp.ones((8, 9, 3))
    ks = kernel_shap(n_samples=100, batch_size=16)  # 2^6 - 2 = 62 <= 100: enumeration
    sal = ks(game_classifier(nonlinear), x, 1, key=jax.random.key(0), segments=SEG)
    phi = exact_shapley(nonlinear, 6)
    np.testing.assert_allclose(np.asarray(sal.map), phi[SEG], atol=1e-5)
    assert sal.forward_images == 2 + 64  # v(0), v(1); 62 coalitions in 4 chunks of 16
    assert isinstance(sal.record, ShapRecord)
    np.testing.assert_array_equal(sal.record.segments, SEG)
    np.testing.assert_allclose(np.asarray(sal.record.shap_values), phi, atol=1e-5)
    # fixed segments as a config option, through the registry
    by_name = methods.make("kernel_shap", n_samples=100, batch_size=16, segments=SEG)
    by_name = by_name(game_classifier(nonlinear), x, 1, key=0)
    np.testing.assert_array_equal(by_name.map, sal.map)


def test_kernel_shap_sampling_is_keyed_and_efficient():
    x = jnp.ones((8, 9, 3))
    ks = kernel_shap(n_samples=40, batch_size=7)
    clf = game_classifier(nonlinear)
    a = ks(clf, x, 1, key=jax.random.key(1), segments=SEG).map
    np.testing.assert_array_equal(a, ks(clf, x, 1, key=jax.random.key(1), segments=SEG).map)
    b = kernel_shap(n_samples=40, batch_size=40)(clf, x, 1, key=jax.random.key(1), segments=SEG).map
    np.testing.assert_allclose(a, b, atol=1e-5)
    phi = np.asarray(a)[[0, 0, 0, 4, 4, 4], [0, 3, 6, 0, 3, 6]]
    # efficiency holds exactly by construction; values close to the exact ones
    assert phi.sum() == pytest.approx(float(nonlinear(jnp.ones((1, 6)))[0] - nonlinear(jnp.zeros((1, 6)))[0]), abs=1e-5)
    exact = exact_shapley(nonlinear, 6)
    # measured over 2000 keys (tests/saliency/measure_kernel_shap_error.py 40 2000 --pairwise): per
    # component sd 0.024-0.037, max_j |error| q99 0.096, q99.9 0.112; key 1: 0.054
    np.testing.assert_allclose(phi, exact, atol=0.1)
    assert np.corrcoef(phi, exact)[0, 1] > 0.9


SEG10 = np.repeat(np.repeat(np.arange(10).reshape(2, 5), 3, 0), 2, 1)  # 6 x 10, 10 superpixels


def unanimity10(v):
    """A 5-way interaction (where the coalition-size law matters; on games of order <= 2 such
    as `nonlinear` every symmetric size law gives the Shapley values)."""
    return (0.6 * v[:, 0] * v[:, 1] * v[:, 2] * v[:, 3] * v[:, 4] + 0.2 * v[:, 5]
            + 0.2 * jnp.maximum(v[:, 6], v[:, 7]) - 0.1 * v[:, 8] * v[:, 9])


# Shapley values in closed form: unanimity of 5 -> 0.6/5 each; max of two binaries -> half each
UNANIMITY10_SHAPLEY = np.array([0.12] * 5 + [0.2, 0.1, 0.1, -0.05, -0.05])


def test_kernel_shap_sampling_error_is_the_measured_one():
    """Sampled KernelSHAP (500 coalitions < 2^10 - 2) measured over 1000
    keys (`tests/saliency/measure_kernel_shap_error.py 500 1000`): unbiased (every |bias| < 0.001, within
    its standard error), per-component sd 0.022-0.030, max_j |error| q99.9 0.108. So one key is
    within 0.11, and the mean of 200 keys within 5 standard errors, 5 * 0.030 / sqrt(200) =
    0.0106, of the exact values. Uniform coalition sizes are biased by 0.016-0.018 on every
    component (measured) and fail the second bound."""
    clf = visible_game(SEG10, unanimity10)
    x = jnp.ones((6, 10, 3))
    ks = kernel_shap(n_samples=500, batch_size=500)
    phis = np.array([np.asarray(ks(clf, x, 1, key=jax.random.key(k), segments=SEG10).record.shap_values)
                     for k in range(200)])
    assert np.abs(phis[0] - UNANIMITY10_SHAPLEY).max() < 0.11
    assert np.abs(phis.mean(0) - UNANIMITY10_SHAPLEY).max() < 5 * 0.030 / np.sqrt(200)


def test_lime_recovers_linear_weights_keyed_and_batch_invariant():
    w = jnp.array([0.3, -0.2, 0.1, 0.05, 0.0, 0.25])
    linear = game_classifier(lambda v: v @ w + 0.1)
    x = jnp.ones((8, 9, 3))
    l64 = lime(n_samples=300, alpha=1e-6, batch_size=64)
    l7 = lime(n_samples=300, alpha=1e-6, batch_size=7)
    exact = l64(linear, x, 1, key=jax.random.key(2), segments=SEG)
    np.testing.assert_allclose(np.asarray(exact.map), np.asarray(w)[SEG], atol=1e-4)
    assert exact.forward_images == 320  # 5 chunks of 64
    assert isinstance(exact.record, LimeRecord)
    np.testing.assert_allclose(np.asarray(exact.record.coefficients), w, atol=1e-4)
    assert float(exact.record.intercept) == pytest.approx(0.1, abs=1e-4)
    assert l7(linear, x, 1, key=jax.random.key(3), segments=SEG).forward_images == 301  # 43 chunks of 7
    clf = game_classifier(nonlinear)
    a = l7(clf, x, 1, key=jax.random.key(3), segments=SEG).map
    np.testing.assert_array_equal(a, l7(clf, x, 1, key=jax.random.key(3), segments=SEG).map)
    np.testing.assert_allclose(a, l64(clf, x, 1, key=jax.random.key(3), segments=SEG).map, atol=1e-5)
    assert not np.allclose(a, l7(clf, x, 1, key=jax.random.key(4), segments=SEG).map)


def test_weighted_ridge_closed_form():
    from rexjax.saliency.lime import weighted_ridge

    rng = np.random.default_rng(0)
    z, y, w = rng.random((40, 5)), rng.random(40), rng.random(40)
    beta, b = weighted_ridge(jnp.asarray(z), jnp.asarray(y), jnp.asarray(w), 0.7)
    # normal equations of min sum w (y - b - z beta)^2 + 0.7 |beta|^2 with the intercept free
    za = np.concatenate([z, np.ones((40, 1))], 1)
    reg = np.diag([0.7] * 5 + [0.0])
    want = np.linalg.solve(za.T @ (w[:, None] * za) + reg, za.T @ (w * y))
    np.testing.assert_allclose(np.append(beta, b), want, rtol=1e-4, atol=1e-5)


def test_superpixels_host():
    # four colour quadrants (+ a little noise): no superpixel straddles a colour edge
    x = np.zeros((64, 64, 3), np.float32)
    x[:32, 32:] = [1, 0, 0]
    x[32:, :32] = [0, 1, 0]
    x[32:, 32:] = [0, 0, 1]
    x += np.random.default_rng(0).random(x.shape).astype(np.float32) * 0.05
    quadrant = (np.arange(64)[:, None] // 32) * 2 + np.arange(64)[None, :] // 32
    for method in ("slic", "quickshift", "grid"):
        seg, m = superpixels(x, method)
        assert seg.shape == (64, 64) and seg.min() == 0 and seg.max() == m - 1 and m >= 4
        assert len(np.unique(seg)) == m
        assert all(len(np.unique(quadrant[seg == k])) == 1 for k in range(m)), method
    with pytest.raises(ValueError, match="superpixel method"):
        superpixels(x, "watershed")
    # options are checked when the method is built (a typo is not silently ignored)
    with pytest.raises(ValueError, match="n_segment"):
        lime(superpixel="slic", n_segment=10)
    with pytest.raises(ValueError, match="superpixel method"):
        kernel_shap(superpixel="watershed")
    with pytest.raises(ValueError, match="segments"):
        lime(segments=np.zeros((2, 2, 2, 2)))  # rank 4: no input has 4 spatial axes


LIN_W = jax.random.normal(jax.random.key(5), (6, 6, 2, 3))
LINEAR = Classifier(lambda xb: jnp.einsum("bhwc,hwck->bk", xb, LIN_W), name="linear")


def test_gradient_shap_linear_model_exact_and_cnn_completeness():
    x = jax.random.normal(jax.random.key(6), (6, 6, 2))
    gs = gradient_shap(n_samples=8, batch_size=3)
    sal = gs(LINEAR, x, 1, key=jax.random.key(0))
    np.testing.assert_allclose(sal.map, (x * LIN_W[..., 1]).sum(-1), rtol=1e-5, atol=1e-5)
    assert sal.forward_images == 9  # 3 chunks of 3
    # on a CNN its expectation is IG: completeness in expectation (32 keys x 8 samples)
    logits = small_cnn(jax.random.key(0), channels=2)
    cnn = Classifier(logits)
    total = np.mean([float(gs(cnn, x, 2, key=jax.random.key(100 + i)).map.sum()) for i in range(32)])
    want = float(logits(x[None])[0, 2] - logits(jnp.zeros_like(x)[None])[0, 2])
    assert total == pytest.approx(want, rel=0.05)
    a = gs(cnn, x, 2, key=jax.random.key(3)).map
    np.testing.assert_array_equal(a, gs(cnn, x, 2, key=jax.random.key(3)).map)
    b = gradient_shap(n_samples=8, batch_size=8)(cnn, x, 2, key=jax.random.key(3)).map
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert gs(cnn, x, 2, key=jax.random.key(3)).record.attributions.shape == x.shape


def test_noise_tunnel():
    x = jax.random.normal(jax.random.key(6), (6, 6, 2))
    ig = integrated_gradients(n_steps=8)
    base = ig(LINEAR, x, 0, key=0).map
    still = noise_tunnel(ig, n_samples=3, stdev=0.0)(LINEAR, x, 0, key=jax.random.key(0)).map
    np.testing.assert_allclose(still, base, rtol=1e-6)
    nt = noise_tunnel(ig, n_samples=4, stdev=0.2)
    s = nt(LINEAR, x, 0, key=jax.random.key(1))
    assert s.forward_images == 4 * 8
    np.testing.assert_array_equal(s.map, nt(LINEAR, x, 0, key=jax.random.key(1)).map)
    assert not np.allclose(s.map, base)
    # linear model: E[(x + eps) . w] = x . w; the mean of 4 samples is within noise of it
    assert np.abs(np.asarray(s.map - base)).max() < 4 * 0.2 * float(x.max() - x.min()) * float(jnp.abs(LIN_W).max()) * 2
    v = noise_tunnel(ig, n_samples=4, stdev=0.2, nt_type="vargrad")(LINEAR, x, 0, key=jax.random.key(1)).map
    assert float(v.min()) >= -1e-6
    with pytest.raises(ValueError, match="nt_type"):
        noise_tunnel(ig, nt_type="mean")


def test_noise_tunnel_base_by_name():
    """A registered name + base_config builds the same base as the factory; forward_images
    is the sum of the base's (here with a padded last chunk: 3 steps in chunks of 2 -> 4)."""
    x = jax.random.normal(jax.random.key(6), (6, 6, 2))
    by_name = methods.make("noise_tunnel", n_samples=3, base_config=dict(n_steps=3, batch_size=2))(LINEAR, x, 0, key=7)
    by_object = noise_tunnel(integrated_gradients(n_steps=3, batch_size=2), n_samples=3)
    by_object = by_object(LINEAR, x, 0, key=jax.random.key(7))
    np.testing.assert_array_equal(by_name.map, by_object.map)
    assert by_name.forward_images == 3 * 4
    default = noise_tunnel(n_samples=1, base_config=dict(n_steps=3))(LINEAR, x, 0, key=jax.random.key(7))
    assert default.forward_images == 3  # the default base is integrated_gradients
    with pytest.raises(ValueError, match="n_steps"):
        noise_tunnel(base_config=dict(n_steps=0))
    with pytest.raises(ValueError, match="base_config"):
        noise_tunnel(integrated_gradients(), base_config=dict(n_steps=3))
    with pytest.raises(ValueError, match="unknown method"):
        noise_tunnel(base="deeplift")


@pytest.mark.parametrize("case", sorted(REFERENCE["lime"]))
def test_lime_matches_the_lime_package(case, monkeypatch):
    """Given lime's own samples (lime 0.2.0.1 `LimeImageExplainer`,
    hide_color=0 = our mask_mode 0), our LIME reproduces what lime fitted: the model values,
    the cosine distances to the all-ones row, the kernel sqrt(exp(-d^2 / width^2)) and the
    weighted ridge (coefficients and intercept). A wrong distance, kernel, width or alpha fails."""
    ref = REFERENCE["lime"][case]
    np.testing.assert_array_equal(REFERENCE["segments"], SEG)
    z = np.asarray(ref["z"], np.float32)
    width, alpha = ref["kernel_width"], ref["alpha"]
    np.testing.assert_allclose(lime_module.cosine_distance(jnp.asarray(z)), ref["distances"], atol=1e-6)
    np.testing.assert_allclose(lime_module.kernel_weights(jnp.asarray(z), width), ref["weights"], atol=1e-6)
    clf = game_classifier(nonlinear)
    x = jnp.ones((8, 9, 3))
    y = coalition_values(clf.masked(0.0), x, 1, jnp.asarray(SEG), jnp.asarray(z), 32)
    np.testing.assert_allclose(y, ref["labels"], atol=1e-6)
    # the whole method, fed lime's samples instead of its own draw
    monkeypatch.setattr(lime_module, "lime_samples", lambda key, n, m: jnp.asarray(z))
    out = lime(n_samples=len(z), kernel_width=width, alpha=alpha, batch_size=32)(clf, x, 1, key=0, segments=SEG)
    np.testing.assert_allclose(out.record.coefficients, ref["coefficients"], rtol=1e-4, atol=2e-6)
    assert float(out.record.intercept) == pytest.approx(ref["intercept"], rel=1e-4, abs=2e-6)


def test_lime_draws_like_lime():
    """lime's sampling: row 0 all ones, the rest uniform over {0, 1}^M (P(z_j = 1) = 1/2,
    independent): the mean of 4000 x 6 draws within 5 sigma of 1/2 everywhere."""
    z = np.asarray(lime_module.lime_samples(jax.random.key(0), 4001, 6))
    assert set(np.unique(z)) <= {0.0, 1.0} and (z[0] == 1).all()
    assert np.abs(z[1:].mean(0) - 0.5).max() < 5 * 0.5 / np.sqrt(4000)
    corr = np.corrcoef(z[1:].T)[np.triu_indices(6, 1)]
    assert np.abs(corr).max() < 5 / np.sqrt(4000)


@pytest.mark.parametrize("m", [6, 10])
def test_kernel_shap_coalition_sizes_follow_the_shapley_kernel(m):
    """Sampled coalitions have |z| distributed as the Shapley kernel's size
    marginal (reference: brute-force sum of pi(z) per size, exact fractions in the fixture),
    members uniform given the size; the enumeration's weights are pi(z). Uniform sizes give
    chi2 in the thousands here."""
    law = REFERENCE["shapley_size_law"][str(m)]
    n = 20000
    z = np.asarray(sample_coalitions(jax.random.key(0), n, m))
    sizes = z.sum(1).astype(int)
    counts = np.bincount(sizes, minlength=m + 1)
    assert counts[0] == counts[m] == 0
    expected = n * np.asarray(law["probability"])
    chi2 = float(((counts[1:m] - expected) ** 2 / expected).sum())
    assert chi2 < scipy.stats.chi2.isf(1e-6, m - 2), (chi2, counts[1:m], expected)
    # members: every superpixel is in a size-s coalition with probability s / M
    for s in (1, m // 2, m - 1):
        rows = z[sizes == s]
        sd = np.sqrt(s / m * (1 - s / m) / len(rows))
        assert np.abs(rows.mean(0) - s / m).max() < 5 * sd, s
    _, w = all_coalitions(m)
    zs = all_coalitions(m)[0].sum(1).astype(int)
    np.testing.assert_allclose(w, np.asarray(law["kernel_weight"])[zs - 1], rtol=1e-6)


def test_resolved_config_holds_every_default_and_the_superpixel_options():
    """`methods.settings` (evaluate's `method_config` column) lists the factory's defaults and
    the chosen superpixel method's options, with given values winning: catches a resolver that
    drops the superpixel options or reads another factory's signature."""
    got = methods.settings("lime", {"n_samples": 5})
    assert got["n_samples"] == 5 and got["kernel_width"] == 0.25 and got["superpixel"] == "quickshift"
    assert {"kernel_size", "max_dist", "ratio"} <= set(got) and "compactness" not in got
    got = methods.settings("kernel_shap", {"superpixel": "slic", "n_segments": 7})
    assert got["n_samples"] == 256 and got["n_segments"] == 7 and "compactness" in got
    assert "kernel_width" not in got
