import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import batching
from rexjax.saliency import occlusion, rise, rise_masks, shape
from tests.helpers.saliency_models import linear_model

H = W = 12
S = 3
P = 0.5


def interpolation_matrices(grid, hw):
    """A_s[HW, s*s] for every crop shift s: mask = A_s @ cells (bilinear is linear)."""
    ch, cw = -(-hw[0] // grid), -(-hw[1] // grid)
    basis = jnp.eye(grid * grid).reshape(-1, grid, grid)
    up = jax.vmap(lambda g: jax.image.resize(g, ((grid + 1) * ch, (grid + 1) * cw), "bilinear"))(basis)
    mats = [up[:, dy:dy + hw[0], dx:dx + hw[1]].reshape(grid * grid, -1).T for dy in range(ch) for dx in range(cw)]
    return np.stack(mats)


def test_rise_masks_are_keyed_and_have_mean_p():
    m = rise_masks(jax.random.key(3), 2000, S, P, (H, W))
    assert m.shape == (2000, H, W) and float(m.min()) >= 0 and float(m.max()) <= 1
    assert float(m.mean()) == pytest.approx(P, abs=0.01)
    np.testing.assert_array_equal(m, rise_masks(jax.random.key(3), 2000, S, P, (H, W)))
    # shifts cover [0, ceil(H/s)): masks are not all aligned to the grid
    assert len({tuple(np.asarray(r).round(4)) for r in m[:50, 0, :]}) > 10


def test_rise_linear_model_matches_closed_form():
    # f(x . M) = sum_mu c_mu M_mu + b  =>  E[RISE(l)] = (1-p) sum_mu c_mu E_s[A_s A_s^T]_{mu l} + p sum(c) + b
    c = jax.random.normal(jax.random.key(0), (H, W)) * 0.05
    b = 0.3
    A = interpolation_matrices(S, (H, W))
    second = np.mean([a @ a.T for a in A], axis=0)
    closed = (1 - P) * (second @ np.asarray(c).reshape(-1)) + P * float(c.sum()) + b
    n = 20000
    method = rise(n_masks=n, grid=S, p=P, batch_size=500)
    sal = method(linear_model(c, b), jnp.ones((H, W, 3)), 0, key=jax.random.key(1))
    assert sal.forward_images == n
    err = np.abs(np.asarray(sal.map).reshape(-1) - closed)
    # Monte-Carlo standard error of the estimate is about 0.005 here; allow 5 sigma
    assert err.max() < 0.025, err.max()
    assert np.corrcoef(np.asarray(sal.map).reshape(-1), closed)[0, 1] > 0.95


def test_rise_deterministic_and_batch_invariant():
    # SHAPE shares RISE's chunked core (`masked_scores_sum`); its key -> masks link is
    # checked against Eq. 6 below
    c = jax.random.normal(jax.random.key(0), (H, W))
    clf = linear_model(c, 1.0)
    x = jnp.ones((H, W, 3))
    f7 = rise(n_masks=100, grid=S, p=0.3, batch_size=7)
    f64 = rise(n_masks=100, grid=S, p=0.3, batch_size=64)
    out = f7(clf, x, 0, key=jax.random.key(5))
    a = out.map
    assert out.forward_images == 105  # 15 chunks of 7: the padding of the last chunk counts
    np.testing.assert_array_equal(a, f7(clf, x, 0, key=jax.random.key(5)).map)
    np.testing.assert_allclose(a, f64(clf, x, 0, key=jax.random.key(5)).map, rtol=1e-5, atol=1e-5)
    assert not np.allclose(a, f7(clf, x, 0, key=jax.random.key(6)).map)


def test_shape_is_eq6_on_the_rise_masks():
    c = jax.random.normal(jax.random.key(2), (H, W))
    clf = linear_model(c, 0.5)
    x = jnp.ones((H, W, 3))
    n, p = 300, 0.1
    key = jax.random.key(9)
    sal = shape(n_masks=n, grid=S, p=p, batch_size=32)(clf, x, 0, key=key)
    m = np.asarray(rise_masks(key, n, S, p, (H, W)), np.float64)
    f_full = float(c.sum()) + 0.5
    f_masked = (m * np.asarray(c)[None]).sum((1, 2)) + 0.5
    want = np.einsum("n,nhw->hw", f_full - f_masked, 1 - m) / ((1 - p) * n)
    np.testing.assert_allclose(sal.map, want, rtol=1e-4, atol=1e-4)
    assert sal.forward_images == batching.padded_count(n, 32) + 1 == 321
    # and RISE on the same key is Eq. 6 of RISE on the same masks
    r = rise(n_masks=n, grid=S, p=p, batch_size=32)(clf, x, 0, key=key)
    np.testing.assert_allclose(r.map, np.einsum("n,nhw->hw", f_masked, m) / (p * n), rtol=1e-4, atol=1e-4)


def test_occlusion_linear_model_by_hand():
    c = np.zeros((10, 9))
    c[4, 6] = 2.0
    c[0, 0] = -1.0
    window, stride = 4, 3
    occ = occlusion(window=window, stride=stride, batch_size=5)
    sal = occ(linear_model(c), jnp.ones((10, 9, 1)), 0, key=0)
    rows, cols = [0, 3, 6], [0, 3, 5]  # 6 = 10-4 reached; 5 = 9-4 added as last position
    total, count = np.zeros((10, 9)), np.zeros((10, 9))
    for r in rows:
        for q in cols:
            total[r:r + window, q:q + window] += c[r:r + window, q:q + window].sum()
            count[r:r + window, q:q + window] += 1
    np.testing.assert_allclose(sal.map, total / count, atol=1e-6)
    assert sal.forward_images == 11  # 9 windows in 2 chunks of 5, + the full image


def test_bad_arguments():
    clf = linear_model(jnp.ones((4, 4)))
    with pytest.raises(ValueError, match="p "):
        rise(p=0.0)
    with pytest.raises(ValueError, match="n_masks"):
        rise(n_masks=0)
    with pytest.raises(ValueError, match="batch_size"):
        shape(batch_size=0)
    with pytest.raises(ValueError, match="mask_mode"):
        occlusion(mask_mode="purple")
    with pytest.raises(ValueError, match="rank 3"):
        rise(n_masks=4)(clf, jnp.ones((4, 4)), 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="target"):
        rise(n_masks=4)(clf, jnp.ones((4, 4, 1)), 7, key=jax.random.key(0))
    with pytest.raises(ValueError, match="window"):
        occlusion(window=20)(linear_model(jnp.ones((8, 8))), jnp.ones((8, 8, 1)), 0, key=0)


def test_mask_mode_reaches_the_model():
    """The painted value is what hidden pixels show: x = 0 everywhere, painted 1 -> the
    linear model's score counts the hidden pixels, so occlusion's drop changes sign."""
    c = jnp.ones((6, 6))
    x = jnp.zeros((6, 6, 1))
    zero = occlusion(window=3, stride=3, batch_size=4)(linear_model(c), x, 0, key=0).map
    one = occlusion(window=3, stride=3, mask_mode=1.0, batch_size=4)(linear_model(c), x, 0, key=0).map
    np.testing.assert_allclose(zero, 0.0, atol=1e-6)
    np.testing.assert_allclose(one, -9.0, atol=1e-5)  # f(x) - f(window painted 1) = 0 - 9


# ------------------------------------------------------------- RISE / SHAPE under ConvAD


class PixelProbe:
    """A Flax-style model (apply_fn + variables, so `masked("ad")` takes it) whose
    'probabilities' are [x[r, c, 0], 1 - x[r, c, 0]]. On an all-ones image under ConvAD it
    says whether AD lets pixel (r, c) through: 1 visible, 0 masked (deactivated)."""

    variables: dict = {}

    def __init__(self, r, c):
        self.r, self.c = r, c

    def apply_fn(self, variables, xb):
        v = xb[:, self.r, self.c, 0]
        return jnp.stack([v, 1.0 - v], -1)

    def __call__(self, xb):
        return self.apply_fn(self.variables, xb)


@pytest.mark.parametrize("method,p", [("rise", 0.5), ("shape", 0.1)])
def test_ad_masks_hide_the_fraction_the_normalisation_assumes(method, p):
    """RISE divides by N p and SHAPE by N (1 - p): both assume a pixel is visible with
    probability p. Under mask_mode="ad" the network sees the mask binarised (ConvAD's
    indicator 1(M > 0)); bilinear soft masks would leave 92 % (p = 0.5) / 34 % (p = 0.1) of
    pixels visible. The probe model reports what AD lets through at one pixel (6, 6):
    RISE at a pixel of another grid cell (0, 0) estimates P[AD shows (6, 6)] (must be p),
    SHAPE at (6, 6) estimates P[AD hides (6, 6)] / (1 - p) (must be 1)."""
    from rexjax.classifier import Classifier

    clf = Classifier(PixelProbe(6, 6), outputs="probs")
    n = 2000
    x = jnp.ones((H, W, 3))
    if method == "rise":
        out = rise(n_masks=n, grid=S, p=p, mask_mode="ad", batch_size=500)(clf, x, 0, key=jax.random.key(4))
        got, want, sd = float(out.map[0, 0]), p, np.sqrt(p * p * (1 - p * p) / n) / p
    else:
        out = shape(n_masks=n, grid=S, p=p, mask_mode="ad", batch_size=500)(clf, x, 0, key=jax.random.key(4))
        got, want, sd = float(out.map[6, 6]), 1.0, np.sqrt(p * (1 - p) / n) / (1 - p)
    assert abs(got - want) < 5 * sd, f"{method} p={p}: {got:.3f}, want {want} +- {5 * sd:.3f}"


class VisibleFraction:
    """Flax-style model: 'probabilities' [mean of channel 0, 1 - that]; on an all-ones image
    under ConvAD (masked pixels switched off, then the model's own mean) class 0 is the
    fraction of pixels AD lets through."""

    variables: dict = {}

    def apply_fn(self, variables, xb):
        v = xb[..., 0].mean((1, 2))
        return jnp.stack([v, 1.0 - v], -1)

    def __call__(self, xb):
        return self.apply_fn(self.variables, xb)


def test_ad_masks_are_binary_with_mean_p_and_ad_shows_exactly_them():
    from rexjax.classifier import Classifier
    from rexjax.saliency.rise import resolve_upsample

    assert resolve_upsample("auto", "ad") == "nearest" and resolve_upsample("auto", 0.0) == "bilinear"
    p = 0.3
    m = np.asarray(rise_masks(jax.random.key(3), 400, S, p, (H, W), "nearest"))
    assert set(np.unique(m)) == {0.0, 1.0}
    assert float(m.mean()) == pytest.approx(p, abs=0.03)
    # same cells and shifts as the bilinear stream: nearest and bilinear agree on every
    # pixel where the bilinear mask is exactly 0 or 1 far from a cell border
    soft = np.asarray(rise_masks(jax.random.key(3), 400, S, p, (H, W)))
    assert ((soft == 1.0) <= (m == 1.0)).all() and ((soft == 0.0) <= (m == 0.0)).all()
    seen = Classifier(VisibleFraction(), outputs="probs").masked("ad")(jnp.ones((H, W, 3)), jnp.asarray(m[:64]))
    np.testing.assert_allclose(np.asarray(seen)[:, 0], m[:64].mean((1, 2)), rtol=1e-6)


def test_soft_masks_are_refused_under_ad():
    with pytest.raises(ValueError, match="upsample='bilinear'"):
        rise(mask_mode="ad", upsample="bilinear")
    with pytest.raises(ValueError, match="upsample='bilinear'"):
        shape(mask_mode="ad", upsample="bilinear")
    with pytest.raises(ValueError, match="upsample must be"):
        rise(upsample="cubic")
    rise(mask_mode="ad", upsample="nearest")  # explicit binary masks are fine
