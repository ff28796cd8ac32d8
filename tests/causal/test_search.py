"""The responsibility search pinned against an independent re-implementation.

`tests/helpers/rex_search.py` reruns the documented search with Python loops and asks the
model about every mask itself (the empty and the full subset of each split included). On
fake models with a known pass pattern the engine must give the same per-iteration maps (exactly,
in units of 1/12, for the exact rules), the same depth per iteration and the same kept set:
this pins the queue choice (smallest passing mutant over all splits of a round, static region
kept visible), the depth of held boxes under `refine_static`, `search_limit`,
`confidence_filter`, `discard_shallow` and every responsibility rule.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax
from rexjax.causal import PAPER_BUDGET, RexConfig, make_search
from rexjax.causal.extract import pixel_rank
from rexjax.classifier import Classifier
from tests.helpers import oracles
from tests.helpers.rex_search import RESOLUTION, exact_rank_order, reference_search

H = W = 40
A = oracles.patch_mask(H, W, 4, 6, 8)
B = oracles.patch_mask(H, W, 26, 24, 8)
X = oracles.image(H, W)
MODELS = {
    "and": oracles.patch_oracle([A, B], "and"),
    "or": oracles.patch_oracle([A, B], "or"),
    # class 1 once more than 1.5 of the 2 patches are visible; probability grows with both
    "graded": oracles.graded_oracle([A, B]),
}

slow = pytest.mark.slow
# the search fields in which RexConfig's defaults (the fast budget) differ from PAPER_BUDGET
FAST_SEARCH = dict(tree_depth=7, max_active=1, responsibility="main_effect")
CASES = {  # id: (model, overrides of the paper's budget PAPER_BUDGET, iters)
    "default": ("and", dict(), 3),  # the paper's budget: alg1, refine_static, max_active 3
    "fast-budget": ("and", FAST_SEARCH, 3),  # RexConfig's defaults
    "tool-0.4.1": ("and", dict(responsibility="tool", refine_static=False), 3),
    # what rex-xai 0.4.1 runs by default: its iterations multiplied (SearchConfig.combine)
    "tool-0.4.1-product": ("graded", dict(responsibility="tool", refine_static=False, combine="product"), 3),
    "sufficient-static": ("and", dict(responsibility="sufficient", refine_static=False), 3),
    "sufficient-or-all": ("or", dict(responsibility="sufficient", queue_style="all", refine_static=False), 3),
    "tool-refine-static-depth3": ("and", dict(responsibility="tool", refine_static=True, tree_depth=3), 3),
    "graded-filter-limit": ("graded", dict(responsibility="tool", confidence_filter=0.9, search_limit=150), 3),
    "sufficient-shallow": ("or", dict(responsibility="sufficient", min_box_size=700, refine_static=False), 4),
    "tool-all": ("and", dict(responsibility="tool", queue_style="all", refine_static=False), 4),
    "alg1-or-queue3": ("or", dict(responsibility="alg1", queue_len=3, max_active=4, refine_static=False), 3),
    "sufficient-refine-static": ("or", dict(responsibility="sufficient", refine_static=True, queue_len=2), 3),
    "weighted-concentrate": ("graded", dict(responsibility="weighted", concentrate=True, discard_shallow=False), 3),
    "fast-budget-graded": ("graded", FAST_SEARCH, 3),  # the default rule on graded confidences
    # one box split per round, the other children of the passing mutant kept visible
    "alg1-max-active-1": ("and", dict(max_active=1, tree_depth=6), 3),
    "tool-max-active-1-static": ("and", dict(responsibility="tool", max_active=1, refine_static=False, tree_depth=6), 3),
}
FAST = {"default", "fast-budget", "tool-0.4.1-product", "alg1-max-active-1", "sufficient-or-all", "tool-refine-static-depth3", "graded-filter-limit", "sufficient-shallow",
        "weighted-concentrate", "fast-budget-graded"}


BATCH = 16


def run_both(model, overrides, iters=3, key=0):
    """-> (SearchConfig, reference, engine) for PAPER_BUDGET with `overrides`, batch size BATCH."""
    cfg = RexConfig.from_dict({**PAPER_BUDGET, "iters": iters, **overrides}).search
    classify = Classifier(MODELS[model]).masked(0.0)
    full = float(np.asarray(Classifier(MODELS[model]).full_probs(jnp.asarray(X)))[1])
    ref = reference_search(classify, X, 1, cfg, jax.random.key(key), full)
    got = make_search(classify, cfg, BATCH)(jax.random.key(key), jnp.asarray(X), 1, full)
    return cfg, ref, got


def test_fast_budget_case_is_the_defaults():
    """The "fast-budget" case searches as RexConfig() does (catches a default changed without
    the reference case following it)."""
    fields = ("tree_depth", "max_active", "responsibility", "refine_static", "queue_len", "min_box_size")
    case = RexConfig.from_dict({**PAPER_BUDGET, **FAST_SEARCH}).search
    assert [getattr(case, f) for f in fields] == [getattr(RexConfig().search, f) for f in fields]


@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=slow) for c in CASES])
def test_search_matches_reference(case):
    model, overrides, iters = CASES[case]
    cfg, ref, got = run_both(model, overrides, iters)
    assert list(got.depth_reached) == ref.depth_reached
    np.testing.assert_allclose(got.per_iteration, np.stack(ref.values), rtol=1e-6, atol=1e-6)
    assert list(got.kept) == ref.kept
    np.testing.assert_allclose(got.responsibility, ref.total, rtol=1e-6, atol=1e-6)
    if ref.units[0] is not None and cfg.combine == "sum":  # exact rules: integer units, bit for bit
        assert got.resolution == RESOLUTION
        np.testing.assert_array_equal(got.units, np.stack(ref.units))
        total = sum(u for u, k in zip(ref.units, ref.kept) if k) + np.zeros((H, W), np.int64)
        np.testing.assert_array_equal(got.responsibility, (total / RESOLUTION).astype(np.float32))
        # the ranking of the returned map is the exact (value desc, index desc) order
        order = np.argsort(np.asarray(pixel_rank(jnp.asarray(got.responsibility))).reshape(-1))
        np.testing.assert_array_equal(order, exact_rank_order(total))
    # every split evaluates its 14 mutants; the empty subset is evaluated only when unknown
    assert 14 * sum(ref.splits) <= got.mutants <= 15 * sum(ref.splits)
    assert got.forward_images >= got.mutants and got.forward_images % BATCH == 0
    if cfg.responsibility in ("tool", "weighted", "main_effect"):  # these never ask the empty subset
        assert got.mutants == 14 * sum(ref.splits)
    elif not cfg.refine_static:
        # the empty subset of a split is a mutant of the round before, or the blank image at
        # the root: one extra image per iteration
        assert got.mutants == 14 * sum(ref.splits) + iters
    if case == "tool-refine-static-depth3":
        # a held box is one level above the children refined with it; with tree_depth
        # 3 it is split once more, and the depth is not inflated to its partners'
        assert ref.depth_reached == [4, 4, 3]
    if case == "sufficient-shallow":
        # boxes under 700 px are not split: iterations whose passing root children are small
        # stop at depth 1 and are dropped from the sum (discard_shallow), the others kept
        assert 0 < sum(ref.kept) < iters, ref.depth_reached
        np.testing.assert_array_equal(got.kept, got.depth_reached > 1)


def test_all_iterations_discarded_warns_and_reports():
    """A run whose every iteration stays at the root is not silently a success."""
    root_only = oracles.patch_oracle([np.ones((H, W), bool)])  # only the full image passes
    ex = None
    with pytest.warns(UserWarning, match="every iteration was discarded"):
        ex = rexjax.explain(root_only, X, key=0, iters=3, batch_size=16)
    assert ex.iterations_kept == 0 and list(ex.iteration_depths) == [0, 0, 0]
    assert not ex.responsibility.any()
    stats = ex.stats()
    assert stats["iterations_kept"] == 0 and stats["iteration_depths"] == [0, 0, 0]
    assert stats["mutants"] == ex.mutants and 0 < ex.mutants <= ex.forward_images_map


def test_diagnostics_on_a_normal_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = rexjax.explain(MODELS["and"], X, key=0, iters=3, batch_size=16)
    assert ex.iterations_kept == sum(d > 1 for d in ex.iteration_depths) > 0
    assert len(ex.iteration_depths) == 3 and ex.max_depth == max(ex.iteration_depths)
    assert 0 < ex.mutants <= ex.forward_images_map
    assert {"iterations_kept", "iteration_depths", "mutants"} <= set(ex.stats())
