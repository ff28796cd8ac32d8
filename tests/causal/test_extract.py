"""Global extraction: the shortest passing prefix, checked against the model itself.

Independent checks: the ranking is recomputed with Python's sort (value desc, flat index
desc), every prefix is asked of the model directly, confidences are recomputed from the
model's logits.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax
from rexjax.causal import RexConfig
from rexjax.causal.extract import make_global_extractor, pixel_rank
from rexjax.causal.spatial import make_spatial_extractor
from rexjax.classifier import Classifier
from tests.helpers import oracles
from tests.helpers.rex_search import exact_rank_order

H, W = 30, 36
A = oracles.patch_mask(H, W, 3, 4, 7)
B = oracles.patch_mask(H, W, 18, 22, 7)
X = oracles.image(H, W, seed=3)
GRADED = oracles.graded_oracle([A, B])  # class 1 once 1.5 patches are visible, confidence graded
# A map that ranks most of both patches early, interleaved with other pixels.
RESP = (np.random.default_rng(0).integers(0, 4, (H, W)) + 3 * (A | B)).astype(np.float32)


def model_probs(model, x, mask):
    """Softmax of the model's logits with only `mask` visible (rest 0), without rexjax."""
    logits = np.asarray(model(jnp.asarray(x * mask[..., None])[None]), np.float64)[0]
    e = np.exp(logits - logits.max())
    return e / e.sum()


def prefix(order, n):
    m = np.zeros(H * W, bool)
    m[order[:n]] = True
    return m.reshape(H, W)


def test_pixel_rank_reference_example():
    """rex_reference_behavior.md 5.1: [[1,0,1],[0,2,0]] ranks (1,1),(0,2),(0,0),(1,2),(1,0),(0,1)."""
    rank = np.asarray(pixel_rank(jnp.array([[1.0, 0, 1], [0, 2, 0]])))
    order = [tuple(np.argwhere(rank == i)[0]) for i in range(6)]
    assert order == [(1, 1), (0, 2), (0, 0), (1, 2), (1, 0), (0, 1)]
    np.testing.assert_array_equal(np.argsort(rank.reshape(-1)), exact_rank_order(np.array([[1, 0, 1], [0, 2, 0]])))


@pytest.mark.parametrize("min_confidence,step,batch", [(0.0, 10, 16), (0.9, 10, 4), (0.97, 7, 1)])
def test_shortest_passing_prefix(min_confidence, step, batch):
    """Prefix k passes, prefix k - 1 fails, the mask is exactly the first k steps of the
    reference ranking, and explanation confidence is the model's confidence on the mask."""
    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    cfg = RexConfig.from_dict(dict(min_confidence=min_confidence, prefix_step=step, prefix_growth=0.0, prune_grids=()))
    ex = make_global_extractor(clf.masked(0.0), cfg, batch)(jnp.asarray(X), RESP, 1, full)
    order = exact_rank_order(RESP)

    def passes(n):
        p = model_probs(GRADED, X, prefix(order, n))
        return p.argmax() == 1 and p[1] >= np.float32(min_confidence * full)

    assert ex.sufficient and ex.pixels == ex.mask.sum()
    k = -(-ex.pixels // step)
    assert ex.pixels == min(k * step, H * W)
    np.testing.assert_array_equal(ex.mask, prefix(order, ex.pixels))
    assert passes(ex.pixels) and (k == 1 or not passes((k - 1) * step))
    assert ex.confidence == pytest.approx(model_probs(GRADED, X, ex.mask)[1], rel=1e-5)
    if min_confidence:
        assert ex.confidence >= min_confidence * full


def test_explanation_confidence_end_to_end():
    ex = rexjax.explain(GRADED, X, key=0, iters=3, batch_size=16, min_confidence=0.9)
    p = model_probs(GRADED, X, ex.mask)
    assert ex.sufficient and p.argmax() == ex.target == 1
    assert ex.explanation_confidence == pytest.approx(p[1], rel=1e-5)
    assert ex.explanation_confidence >= 0.9 * ex.full_confidence


def never_one(x):  # class 0 always wins: target 1 never passes, not even on the full image
    return jnp.tile(jnp.array([[1.0, 0.0]]), (x.shape[0], 1))


def test_not_found_is_an_empty_mask_for_both_strategies():
    """One convention. No sufficient explanation -> mask all False, 0 pixels,
    sufficient False, confidence 0 (the reference's `final_mask = None` / NotFound)."""
    clf = Classifier(never_one).masked(0.0)
    cfg = RexConfig()
    g = make_global_extractor(clf, cfg, 8)(jnp.asarray(X), RESP, 1, 0.5)
    s = make_spatial_extractor(clf, cfg, 8)(jnp.asarray(X), RESP, 1, 0.5)
    for ex in (g, s):
        assert not ex.sufficient and not ex.mask.any() and ex.pixels == 0 and ex.confidence == 0.0
    with pytest.warns(UserWarning, match="every iteration was discarded"):
        ex = rexjax.explain(never_one, X, key=0, iters=2, batch_size=8, target=1)
    assert not ex.sufficient and not ex.mask.any() and ex.area == 0.0
    assert ex.explanation_confidence == 0.0


@pytest.mark.parametrize("min_confidence,step,batch", [(0.0, 10, 16), (0.95, 7, 4), (0.95, 3, 1)])
def test_coarse_equals_linear_under_a_monotone_model(min_confidence, step, batch):
    """The coarse-to-fine prefix search returns the linear search's prefix (the shortest
    passing one) whenever passing is monotone in the prefix length: here the graded oracle
    (more of both patches visible never lowers its confidence), in at most
    1 + ceil(log_b(steps)) model calls of b prefixes."""
    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    got = {}
    for search in ("linear", "coarse"):
        cfg = RexConfig.from_dict(dict(min_confidence=min_confidence, prefix_step=step, prefix_search=search,
                                       prefix_growth=0.0, prune_grids=()))
        got[search] = make_global_extractor(clf.masked(0.0), cfg, batch)(jnp.asarray(X), RESP, 1, full)
    lin, coarse = got["linear"], got["coarse"]
    assert lin.sufficient and coarse.sufficient
    np.testing.assert_array_equal(coarse.mask, lin.mask)
    assert coarse.confidence == pytest.approx(lin.confidence, rel=1e-6)
    steps = -(-H * W // step)
    b = min(max(batch, 2), steps)  # batch 1 still asks two prefixes per call
    assert coarse.forward_images <= b * (1 + int(np.ceil(np.log(steps) / np.log(b))))


def count_classify(x, masks):
    """MaskedClassifier: class 1 wins iff x[..., 0] (flat) is 1 at the number of visible
    pixels, so the image carries the pass/fail table and one compile serves every table."""
    ok = x[..., 0].reshape(-1)[jnp.minimum(masks.reshape(masks.shape[0], -1).sum(-1), H * W - 1)] > 0
    return jnp.stack([jnp.where(ok, 0.2, 0.8), jnp.where(ok, 0.8, 0.2)], -1)


def test_coarse_on_a_non_monotone_model():
    """Passing not monotone in k (random pass/fail by visible-pixel count): coarse returns a
    passing prefix whose one-step-shorter prefix fails, never shorter than linear's (the
    shortest passing one) and equal to it when that is within the first call's linear head
    (k <= b/2 = 4); both find one in the same cases (also when the whole image fails)."""
    step = 10
    steps = -(-H * W // step)
    extract = {s: make_global_extractor(
        count_classify, RexConfig.from_dict(dict(prefix_step=step, prefix_search=s, prefix_growth=0.0, prune_grids=())), 8)
        for s in ("linear", "coarse")}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        passing_k = set(np.flatnonzero(rng.random(steps + 1) < 0.05).tolist()) - {0}
        if seed % 2:  # a short pass: the first call's linear head (1..b/2) must find it
            passing_k.add(int(rng.integers(1, 5)))
        table = np.zeros((H, W, 1), np.float32)
        table.reshape(-1)[[min(k * step, H * W) - 1 if k == steps else k * step for k in passing_k]] = 1.0
        got = {s: e(jnp.asarray(table), RESP, 1, 0.8) for s, e in extract.items()}
        k = {s: -(-e.pixels // step) for s, e in got.items()}
        assert got["coarse"].sufficient == got["linear"].sufficient == bool(passing_k), seed
        assert k["linear"] == min(passing_k, default=0)
        if passing_k:
            assert k["coarse"] in passing_k and (k["coarse"] == 1 or k["coarse"] - 1 not in passing_k), seed
            assert k["coarse"] >= k["linear"]
            assert k["linear"] > 4 or k["coarse"] == k["linear"]


def test_progress_bar_counts_the_prefixes_asked(capsys):
    """`progress=True` shows a bar over the prefixes the linear search asked (host callback per
    block) and changes nothing else. Catches: a bar that never advances, one that counts
    blocks instead of prefixes, or a callback that alters the result."""
    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    extract = make_global_extractor(clf.masked(0.0), RexConfig.from_dict(dict(prefix_step=10, prefix_growth=0.0, prune_grids=())), 4)
    quiet = extract(jnp.asarray(X), RESP, 1, full)
    capsys.readouterr()
    shown = extract(jnp.asarray(X), RESP, 1, full, progress=True)
    err = capsys.readouterr().err
    np.testing.assert_array_equal(shown.mask, quiet.mask)
    assert shown.forward_images == quiet.forward_images
    steps = -(-H * W // 10)
    asked = min(quiet.forward_images, steps)  # blocks of 4 prefixes, the last one clipped
    assert "extract" in err and f"{asked}/{steps}" in err, err


def test_prefix_lengths_grid():
    """growth 0 is the reference's k * step; growth g: ascending, starts at one step, ends at
    n, each step is max(one step, ceil(previous * g)), and far fewer lengths than n / step.
    Catches a grid that skips the last (whole-image) prefix or grows by the wrong factor."""
    from rexjax.causal.extract import prefix_lengths

    np.testing.assert_array_equal(prefix_lengths(95, 10), [10, 20, 30, 40, 50, 60, 70, 80, 90, 95])
    grid = prefix_lengths(224 * 224, 10, 0.05)
    assert grid[0] == 10 and grid[-1] == 224 * 224 and np.all(np.diff(grid) > 0)
    prev, step = grid[:-1], np.diff(grid)
    expect = np.maximum(10, np.ceil(prev * 1.05).astype(int) - prev)
    np.testing.assert_array_equal(step[:-1], expect[:-1])  # the last step is cut at n
    assert step[-1] <= expect[-1]
    assert len(grid) < 330  # vs 5018 steps of 10


@pytest.mark.parametrize("growth,batch", [(0.1, 4), (0.3, 1)])
def test_prefix_growth_returns_the_first_passing_length_on_its_grid(growth, batch):
    """With prefix_growth the explanation is the first passing prefix among the grid's
    lengths, checked by asking the model every grid length directly; it asks
    ceil(index / b) blocks of b images. Catches an off-by-one between grid index and length
    and a search that keeps the reference's k * step lengths."""
    from rexjax.causal.extract import prefix_lengths

    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    cfg = RexConfig.from_dict(dict(prefix_step=5, prefix_growth=growth, prune_grids=()))
    ex = make_global_extractor(clf.masked(0.0), cfg, batch)(jnp.asarray(X), RESP, 1, full)
    order = exact_rank_order(RESP)
    grid = prefix_lengths(H * W, 5, growth)
    passing = [model_probs(GRADED, X, prefix(order, int(n))).argmax() == 1 for n in grid]
    first = passing.index(True)
    assert first > 2  # the grid matters here: not the first few steps
    assert ex.sufficient and ex.pixels == grid[first]
    np.testing.assert_array_equal(ex.mask, prefix(order, int(grid[first])))
    assert ex.forward_images == -(-(first + 1) // batch) * batch
    linear = make_global_extractor(clf.masked(0.0), cfg.replace(prefix_growth=0.0), batch)(jnp.asarray(X), RESP, 1, full)
    assert linear.pixels <= ex.pixels <= max(linear.pixels * (1 + growth) + 5, linear.pixels)
    assert ex.forward_images <= linear.forward_images and (batch > 1 or ex.forward_images < linear.forward_images)
