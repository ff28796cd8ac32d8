"""Degree-of-responsibility rules on hand-made pass/fail patterns (the 14 mutants of one split,
plus the empty subset = the job's region with none of the 4 children, and the full subset =
with all 4, which is the passing parent)."""

import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.causal import RexConfig
from rexjax.causal.partition import SUBSETS
from rexjax.causal.responsibility import child_responsibility
from tests.helpers.rex_search import PROPER, SUBSETS16, rule_values


def passes_of(*sets):
    want = {tuple(sorted(s)) for s in sets}
    return jnp.asarray([tuple(np.flatnonzero(row)) in want for row in SUBSETS])


def supersets_of(*needed):
    """Every mutant containing all of `needed`."""
    return [tuple(np.flatnonzero(r)) for r in SUBSETS if all(r[j] for j in needed)]


def test_reference_worked_example():
    # Only {0} and {0,1} pass: child 0 gets 1 + 1/2, child 1 gets 1/2.
    r = child_responsibility(passes_of((0,), (0, 1)), jnp.ones(14), "tool")
    np.testing.assert_allclose(np.asarray(r), [1.5, 0.5, 0, 0])


def test_weighted_scales_by_confidence():
    conf = jnp.linspace(0.1, 1.0, 14)
    p = passes_of((0,), (0, 1))
    r = child_responsibility(p, conf, "weighted")
    np.testing.assert_allclose(np.asarray(r), [conf[0] + conf[4] / 2, conf[4] / 2, 0, 0], rtol=1e-6)


def test_main_effect_on_an_additive_confidence():
    """Known answer: when c_S = b + sum_{i in S} w_i, each child's main effect over the 14
    mutants is (8/7) w_j - (1/7) sum_i w_i, whatever passes (a child that lowers the
    confidence gets a negative credit even where no mutant passes). Catches a rule that reads
    only passing mutants, a wrong divisor (14 instead of 7), a flipped sign or the children
    taken in another order."""
    w = np.array([0.05, 0.4, -0.2, 0.3])
    conf = jnp.asarray(0.1 + SUBSETS.astype(np.float64) @ w, jnp.float32)
    want = 8 / 7 * w - w.sum() / 7
    for passes in (jnp.ones(14, bool), jnp.zeros(14, bool), passes_of((1,), (1, 3))):
        r = child_responsibility(passes, conf, "main_effect")
        np.testing.assert_allclose(np.asarray(r), want, atol=1e-6)
    assert np.argsort(want).tolist() == np.argsort(w).tolist()  # the order by w is kept


def test_sufficient_is_definition_4_2_on_the_partition():
    """ReX paper Def. 4.2 and its Sec. 5.2 worked example: children {0, 2} needed together get
    1/2 each; a child that is enough alone gets 1; unneeded children get 0."""
    r = child_responsibility(passes_of(*supersets_of(0, 2)), jnp.ones(14), "sufficient")
    np.testing.assert_allclose(np.asarray(r), [0.5, 0, 0.5, 0])
    r = child_responsibility(passes_of(*supersets_of(0)), jnp.ones(14), "sufficient")
    np.testing.assert_allclose(np.asarray(r), [1, 0, 0, 0])
    # 0 or 3 each enough alone: both get 1 (the smallest explanation containing each is itself)
    either = [s for s in map(tuple, (np.flatnonzero(r) for r in SUBSETS)) if 0 in s or 3 in s]
    r = child_responsibility(passes_of(*either), jnp.ones(14), "sufficient")
    np.testing.assert_allclose(np.asarray(r), [1, 0, 0, 1])
    # nothing of the 14 passes, the parent does: all four are needed -> 1/4 each
    r = child_responsibility(jnp.zeros(14, bool), jnp.ones(14), "sufficient")
    np.testing.assert_allclose(np.asarray(r), [0.25] * 4)
    # ... unless the parent itself failed (the root, for a target that is not the top-1 class)
    r = child_responsibility(jnp.zeros(14, bool), jnp.ones(14), "sufficient", full_passes=False)
    np.testing.assert_allclose(np.asarray(r), [0, 0, 0, 0])


def test_alg1_is_the_literal_reading():
    """Alg. 1 read literally: 1/(k+1), k = masked children of a passing mutant where the child
    is critical; the opposite of Def. 4.2 on the paper's examples."""
    # Exactly the sets with child 0 pass: removing 0 from the full set (k = 0) breaks it.
    r = child_responsibility(passes_of(*supersets_of(0)), jnp.ones(14), "alg1")
    np.testing.assert_allclose(np.asarray(r), [1, 0, 0, 0])
    # Children 0 and 3 are each enough alone: neither is critical in the full set or in a
    # 3-set holding the other; {0,1,2} minus 0 leaves {1,2}, which fails: k = 1 -> 1/2.
    either = [s for s in map(tuple, (np.flatnonzero(r) for r in SUBSETS)) if 0 in s or 3 in s]
    r = child_responsibility(passes_of(*either), jnp.ones(14), "alg1")
    np.testing.assert_allclose(np.asarray(r), [0.5, 0, 0, 0.5], rtol=1e-6)
    # Nothing of the 14 passes: only the full set does, each child is critical there, k = 0.
    r = child_responsibility(jnp.zeros(14, bool), jnp.ones(14), "alg1")
    np.testing.assert_allclose(np.asarray(r), [1, 1, 1, 1])
    # {0,2} needed together: each is critical in the full set (k = 0) -> 1 (Def. 4.2: 1/2).
    r = child_responsibility(passes_of(*supersets_of(0, 2)), jnp.ones(14), "alg1")
    np.testing.assert_allclose(np.asarray(r), [1, 0, 1, 0], rtol=1e-6)


@pytest.mark.parametrize("rule", ["sufficient", "alg1"])
def test_empty_subset_that_passes_makes_no_singleton_critical(rule):
    """The job's static region and other active boxes can pass on their own: then a child that
    passes alone is not needed, and gets nothing from the singleton."""
    only_0 = passes_of(*supersets_of(0))
    lone = child_responsibility(only_0, jnp.ones(14), rule, empty_passes=False)
    assert float(lone[0]) == 1.0
    everything = jnp.ones(14, bool)  # with the empty set passing, nothing is needed
    r = child_responsibility(everything, jnp.ones(14), rule, empty_passes=True)
    np.testing.assert_allclose(np.asarray(r), [0, 0, 0, 0])
    r = child_responsibility(everything, jnp.ones(14), rule, empty_passes=False)
    assert float(r.min()) > 0  # each singleton {j} passes where nothing else does


@pytest.mark.parametrize("rule", ["tool", "sufficient", "alg1", "weighted", "main_effect"])
def test_rules_match_the_independent_formulas_on_every_pattern(rule):
    """400 random pass patterns (14 mutants + the empty subset) with random confidences
    against the formulas of tests/helpers/rex_search.py (written from the definitions; exact
    fractions for the pass-counting rules)."""
    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 2, (400, 15)).astype(bool)
    confidences = rng.random((400, 14)).astype(np.float32)
    for row, c in zip(patterns, confidences):
        got = np.asarray(child_responsibility(jnp.asarray(row[:14]), jnp.asarray(c), rule, empty_passes=bool(row[14])))
        passes = dict(zip(PROPER, row[:14]))
        passes[SUBSETS16[14]] = bool(row[14])
        passes[SUBSETS16[15]] = True
        want = [float(v) for v in rule_values(rule, passes, dict(zip(PROPER, c.astype(np.float64))))]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 if rule == "main_effect" else 0,
                                   err_msg=str(row.astype(int)))  # a difference of means can be ~0


def test_unknown_rule_and_renamed_rules():
    with pytest.raises(ValueError, match="unknown responsibility rule"):
        child_responsibility(jnp.zeros(14, bool), jnp.ones(14), "bogus")
    with pytest.raises(ValueError, match="unknown responsibility rule"):
        child_responsibility(jnp.zeros(14, bool), jnp.ones(14), "rex")  # the old name of "tool"
    with pytest.raises(ValueError, match="'minimal_k' is now 'alg1'"):
        RexConfig.from_dict({"responsibility": "minimal_k"})
    with pytest.raises(ValueError, match="'rex' is now 'tool'"):
        RexConfig.from_dict({"responsibility": "rex"})


def test_the_default_rule_gives_a_distracting_region_negative_responsibility():
    """End to end, RexConfig's defaults on a synthetic model whose class-1 score rises with
    the visible share of patch A and falls with that of patch D: A ranks first, the neutral
    background next, D last and below zero (the pass-counting rules give D a positive
    credit), and the explanation is drawn from A, never from D. Catches a default rule that
    ignores failing mutants (e.g. "weighted": D > 0), a flipped sign, or the default not
    reaching the engine."""
    import rexjax
    from tests.helpers import oracles

    h = w = 64
    a_patch, d_patch = oracles.patch_mask(h, w, 6, 8, 12), oracles.patch_mask(h, w, 40, 36, 12)
    model = oracles.weighted_oracle([a_patch, d_patch], gains=[4.0, -3.0], bias=-0.5)

    assert RexConfig().search.responsibility == "main_effect"
    ex = rexjax.explain(model, oracles.image(h, w), key=0, batch_size=16)
    r, background = ex.responsibility, ~(a_patch | d_patch)
    assert ex.target == 1 and ex.sufficient
    assert r[a_patch].mean() > r[background].mean() > 0 > r[d_patch].mean()
    # sufficient once 1/8 of A shows with D hidden: the explanation lies in A, none in D
    assert not ex.mask[d_patch].any() and ex.mask[a_patch].sum() >= ex.mask[background].sum()
