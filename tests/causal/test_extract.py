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


@pytest.mark.parametrize("min_confidence,chunk,batch", [(0.0, 10, 16), (0.9, 10, 4), (0.97, 7, 1)])
def test_shortest_passing_prefix(min_confidence, chunk, batch):
    """Prefix k passes, prefix k - 1 fails, the mask is exactly the first k chunks of the
    reference ranking, and explanation confidence is the model's confidence on the mask."""
    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    cfg = RexConfig(min_confidence=min_confidence, chunk_size=chunk, batch_size=batch)
    ex = make_global_extractor(clf.masked(0.0), cfg)(jnp.asarray(X), RESP, 1, full)
    order = exact_rank_order(RESP)

    def passes(n):
        p = model_probs(GRADED, X, prefix(order, n))
        return p.argmax() == 1 and p[1] >= np.float32(min_confidence * full)

    assert ex.sufficient and ex.pixels == ex.mask.sum()
    k = -(-ex.pixels // chunk)
    assert ex.pixels == min(k * chunk, H * W)
    np.testing.assert_array_equal(ex.mask, prefix(order, ex.pixels))
    assert passes(ex.pixels) and (k == 1 or not passes((k - 1) * chunk))
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
    """Item 5: one convention. No sufficient explanation -> mask all False, 0 pixels,
    sufficient False, confidence 0 (the reference's `final_mask = None` / NotFound)."""
    clf = Classifier(never_one).masked(0.0)
    cfg = RexConfig(batch_size=8)
    g = make_global_extractor(clf, cfg)(jnp.asarray(X), RESP, 1, 0.5)
    s = make_spatial_extractor(clf, cfg)(jnp.asarray(X), RESP, 1, 0.5)
    for ex in (g, s):
        assert not ex.sufficient and not ex.mask.any() and ex.pixels == 0 and ex.confidence == 0.0
    with pytest.warns(UserWarning, match="every iteration was discarded"):
        ex = rexjax.explain(never_one, X, key=0, iters=2, batch_size=8, target=1)
    assert not ex.sufficient and not ex.mask.any() and ex.area == 0.0
    assert ex.explanation_confidence == 0.0
