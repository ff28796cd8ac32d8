"""`ExtractConfig.prune_grids`: a passing explanation shrunk by dropping grid cells it does not need.

Independent checks: the expected result is re-derived in numpy from the module's statement
(candidates = touched cells by ascending mean responsibility, ties by cell index; removable =
passes alone; drop the longest passing run of the first j removable cells), asking the model
directly for every mask; the oracle test checks the sizes against the known answer.
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.causal import Explainer, ExtractConfig, RexConfig
from rexjax.causal.extract import grid_cells, make_global_extractor
from rexjax.classifier import Classifier
from tests.causal.test_extract import GRADED, H, W, X, A, B, model_probs
from tests.helpers import oracles

# Both patches rank above most pixels, but background is interleaved: the passing prefix
# carries several hundred pixels the model does not need (300 -> 103 at grid 6).
RESP = (np.random.default_rng(1).integers(0, 6, (H, W)) + 3 * (A | B)).astype(np.float32)


def model_ok(model, full=0.0, min_confidence=0.0):
    """The pass predicate on bool[H, W] masks: top-1 is class 1 with confidence >= min_confidence x full."""

    def ok(candidate):
        p = model_probs(model, X, candidate)
        return p.argmax() == 1 and p[1] >= np.float32(min_confidence * full)

    return ok


class Expected(NamedTuple):
    mask: np.ndarray
    alone: int  # images asked alone (one per candidate)
    joint: int  # images asked jointly, up to and including the first fail
    stopped: bool  # a joint ask failed before the last removable cell
    passes_after_fail: bool  # ... and a longer joint run would have passed again


def expected_prune(ok, mask, resp, g, m) -> Expected:
    """numpy re-derivation of one grid's prune."""
    cells = grid_cells(H, W, g)

    touched = [c for c in range(g * g) if mask[cells == c].any()]
    touched.sort(key=lambda c: (resp[mask & (cells == c)].mean(), c))
    candidates = touched[:m]
    removable = [c for c in candidates if ok(mask & (cells != c))]
    keep, n = mask, min(len(removable), len(touched) - 1)  # never every cell
    for j in range(1, n + 1):
        trial = mask & ~np.isin(cells, removable[:j])
        if not ok(trial):
            later = any(ok(mask & ~np.isin(cells, removable[:i])) for i in range(j + 1, n + 1))
            return Expected(keep, len(candidates), j, True, later)
        keep = trial
    return Expected(keep, len(candidates), n, False, False)


@pytest.mark.parametrize("g,m", [(6, 36), (6, 5), (3, 9)])
def test_prune_matches_a_numpy_rederivation(g, m):
    """Exact mask, confidence and image count (batch 1) of one grid. Catches a flipped
    candidate order (highest responsibility first), a tie-break on the wrong side, candidates
    beyond `prune_candidates`, dropping a cell that fails alone, an off-by-one in the joint run
    and an image count that includes cells the explanation does not touch."""
    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    plain_cfg = RexConfig.from_dict(dict(prefix_step=5, prefix_growth=0.0, prune_grids=()))
    plain = make_global_extractor(clf.masked(0.0), plain_cfg, 1)(jnp.asarray(X), RESP, 1, full)
    cfg = plain_cfg.replace(prune_grids=(g,), prune_candidates=m)
    ex = make_global_extractor(clf.masked(0.0), cfg, 1)(jnp.asarray(X), RESP, 1, full)
    keep, alone, joint, _, _ = expected_prune(model_ok(GRADED), plain.mask, RESP, g, m)
    assert ex.sufficient
    np.testing.assert_array_equal(ex.mask, keep)
    assert ex.pixels == keep.sum() < plain.pixels  # it did shrink here
    assert ex.forward_images == plain.forward_images + alone + joint
    assert ex.confidence == pytest.approx(model_probs(GRADED, X, keep)[1], rel=1e-5)


def test_prune_keeps_the_first_run_of_passes_on_a_non_monotone_model():
    """A model that needs patch A and rejects masks whose pixel count is a multiple of 7: the
    joint run fails and then passes again further on. The result must drop only the cells
    before the first fail (asked in blocks of 8, so later passes in the same block are seen).
    Catches a prune that counts every pass instead of the leading run."""
    from rexjax.causal.extract import prune

    a = jnp.asarray(A)

    def passes(masks):
        count = masks.sum(axis=(1, 2))
        return (masks & a).sum(axis=(1, 2)) == A.sum(), count.astype(jnp.float32)

    def ok(m):
        return bool(np.asarray(passes(jnp.asarray(m)[None])[0])[0]) and m.sum() % 7 != 0

    def passes_mod7(masks):
        hit, count = passes(masks)
        return hit & (count.astype(jnp.int32) % 7 != 0), count

    g, mask = 10, A | B
    mask[10:16, :] = True
    assert mask.sum() % 7 != 0
    resp = np.where(A, 2.0, 1.0).astype(np.float32)
    keep, _, _ = prune(passes_mod7, jnp.asarray(mask), jnp.asarray(resp), jnp.float32(0.0),
                       jnp.asarray(grid_cells(H, W, g)), g * g, 8)
    expected = expected_prune(ok, mask, resp, g, g * g)
    assert expected.stopped and expected.passes_after_fail  # the case this test is for
    np.testing.assert_array_equal(np.asarray(keep), expected.mask)


@pytest.mark.parametrize("g,batch", [(6, 1), (10, 1), (10, 8)])
def test_prune_stops_at_the_first_joint_failure(g, batch):
    """Both patches fully shown plus background; the model needs 1.5 patches' worth, so each
    patch cell can go alone but not all together: the joint run must stop at its first fail
    and drop only the cells before it. Catches an off-by-one in the joint run (dropping the
    failing cell too gives a mask that does not pass) and a run that skips a fail (counting
    the passes after it in the same block of 8)."""
    from rexjax.causal.extract import prune

    masked = Classifier(GRADED).masked(0.0)
    x = jnp.asarray(X)

    def passes(masks):
        probs = masked(x, masks)
        return jnp.argmax(probs, -1) == 1, probs[:, 1]

    mask = A | B
    mask[10:16, :] = True  # background the model does not need
    resp = np.where(A | B, 2.0, 1.0).astype(np.float32)
    keep, conf, forward = prune(passes, jnp.asarray(mask), jnp.asarray(resp), jnp.float32(0.0),
                                jnp.asarray(grid_cells(H, W, g)), g * g, batch)
    expected, alone, joint, stopped, _ = expected_prune(model_ok(GRADED), mask, resp, g, g * g)
    assert stopped  # the case this test is for
    np.testing.assert_array_equal(np.asarray(keep), expected)
    assert int(forward) == alone + joint if batch == 1 else int(forward) >= alone + joint
    assert float(conf) == pytest.approx(model_probs(GRADED, X, expected)[1], rel=1e-5)


def test_prune_respects_min_confidence_and_batch_size():
    """Every returned mask passes the threshold the prefix search used (a prune that only
    checked the top-1 class would keep fewer pixels here), the mask does not depend on the
    batch size, and the images counted are the rows pushed, padding included (as the prefix
    search counts them)."""
    clf = Classifier(GRADED)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    plain, pruned = {}, {}
    for batch in (1, 4, 16):
        base = dict(prefix_step=5, min_confidence=0.8, prefix_growth=0.0)
        plain_cfg = RexConfig.from_dict({**base, "prune_grids": ()})
        plain[batch] = make_global_extractor(clf.masked(0.0), plain_cfg, batch)(jnp.asarray(X), RESP, 1, full)
        cfg = RexConfig.from_dict({**base, "prune_grids": (6,), "prune_candidates": 36})
        pruned[batch] = ex = make_global_extractor(clf.masked(0.0), cfg, batch)(jnp.asarray(X), RESP, 1, full)
        assert ex.sufficient and ex.confidence >= 0.8 * full
    expected = expected_prune(model_ok(GRADED, full, 0.8), plain[1].mask, RESP, 6, 36)
    loose = expected_prune(model_ok(GRADED), plain[1].mask, RESP, 6, 36).mask
    assert loose.sum() < expected.mask.sum()  # the threshold changes the answer on this model
    for batch, ex in pruned.items():
        np.testing.assert_array_equal(ex.mask, expected.mask)
        # rows pushed: both calls in blocks of `batch`, the last block of each padded
        blocks = -(-expected.alone // batch) + -(-expected.joint // batch)
        assert ex.forward_images - plain[batch].forward_images == blocks * batch, batch


def test_coarse_to_fine_prune_meets_the_oracle_bound_at_a_fast_budget():
    """AND of two hidden 10x10 patches in 48x64 (the AND case of the oracle bound): at 6 narrow
    iterations (rule alg1; the defaults' rule is tests/causal/test_oracles.py's) the prefix alone is several times the 200 needed pixels (docs/benchmarks.md, oracle
    table: median 6.85); pruning on grids 4, 8, 16 brings every key within 1.5x, keeps both patches (the
    explanation is sufficient), only removes pixels, and costs at most 2 x 32 images a grid."""
    h, w, size = 48, 64, 10
    fast = dict(iters=6, tree_depth=7, max_active=1, prefix_growth=0.05, responsibility="alg1")
    model = oracles.marked_oracle(size * size, "and")
    plain = Explainer(model, RexConfig.from_dict({**fast, "prune_grids": ()}))
    pruned = Explainer(model, RexConfig.from_dict({**fast, "prune_grids": (4, 8, 16)}))
    for k in range(3):
        patches = oracles.random_patches(h, w, size, 2, np.random.default_rng(k))
        x = oracles.marked_image(h, w, patches, seed=k)
        a, b = plain(x, key=k), pruned(x, key=k)
        np.testing.assert_array_equal(a.responsibility, b.responsibility)  # the map is untouched
        assert b.sufficient and all(b.mask[p].all() for p in patches)
        assert not (b.mask & ~a.mask).any()
        assert b.mask.sum() <= 1.5 * 2 * size * size < a.mask.sum()
        assert 0 < b.forward_images - a.forward_images <= 2 * (16 + 32 + 32)


@pytest.mark.parametrize("bad", ["4,8", (0,), (4, 65), (2.5,)])
def test_prune_grids_is_validated(bad):
    with pytest.raises(ValueError, match="prune_grids"):
        RexConfig.from_dict({"prune_grids": bad})


def test_prune_grids_list_becomes_a_tuple():
    assert ExtractConfig(prune_grids=[4, 8]).prune_grids == (4, 8)
    assert RexConfig.from_dict({"prune_grids": [4, 8]}) == RexConfig(extract=ExtractConfig(prune_grids=(4, 8)))


def test_prune_never_empties_the_explanation():
    """A model that passes with nothing shown (a random network's class on a blank image):
    every cell is removable, and the prune keeps the one of highest mean responsibility, not
    an empty mask (which reads as "not found"). Catches a joint run allowed to drop every cell."""
    from rexjax.causal.extract import prune

    def passes(masks):
        return jnp.ones(masks.shape[0], bool), jnp.ones(masks.shape[0], jnp.float32)

    g = 3
    cells = grid_cells(H, W, g)
    resp = np.where(cells == 4, 5.0, 1.0).astype(np.float32) + np.arange(H * W).reshape(H, W) * 1e-4
    keep, _, forward = prune(passes, jnp.ones((H, W), bool), jnp.asarray(resp), jnp.float32(1.0),
                             jnp.asarray(cells), g * g, 1)
    np.testing.assert_array_equal(np.asarray(keep), cells == 4)
    assert int(forward) == 9 + 8  # each cell alone, then the joint run up to all but one
