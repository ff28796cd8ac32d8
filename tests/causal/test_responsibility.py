"""Degree-of-responsibility rules on hand-made pass/fail patterns."""

import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.causal.partition import SUBSETS
from rexjax.causal.responsibility import child_responsibility


def passes_of(*sets):
    want = {tuple(sorted(s)) for s in sets}
    return jnp.asarray([tuple(np.flatnonzero(row)) in want for row in SUBSETS])


def test_reference_worked_example():
    # Only {0} and {0,1} pass: child 0 gets 1 + 1/2, child 1 gets 1/2.
    r = child_responsibility(passes_of((0,), (0, 1)), jnp.ones(14), "rex")
    np.testing.assert_allclose(np.asarray(r), [1.5, 0.5, 0, 0])


def test_weighted_scales_by_confidence():
    conf = jnp.linspace(0.1, 1.0, 14)
    p = passes_of((0,), (0, 1))
    r = child_responsibility(p, conf, "weighted")
    np.testing.assert_allclose(np.asarray(r), [conf[0] + conf[4] / 2, conf[4] / 2, 0, 0], rtol=1e-6)


def test_minimal_k():
    # Exactly the sets with child 0 pass: removing 0 from the full set (k = 0) breaks it.
    r = child_responsibility(passes_of((0,), (0, 1), (0, 2), (0, 3), (0, 1, 2), (0, 1, 3), (0, 2, 3)), jnp.ones(14), "minimal_k")
    np.testing.assert_allclose(np.asarray(r), [1, 0, 0, 0])
    # Children 0 and 3 are each enough alone: neither is critical in the full set or in any
    # 3-set containing the other; {0,1,2}: removing 0 leaves {1,2}, which fails -> k = 1.
    both = [s for s in map(tuple, (np.flatnonzero(r) for r in SUBSETS)) if 0 in s or 3 in s]
    r = child_responsibility(passes_of(*both), jnp.ones(14), "minimal_k")
    np.testing.assert_allclose(np.asarray(r), [0.5, 0, 0, 0.5], rtol=1e-6)
    # Nothing of the 14 passes: only the full set passes, each child is critical with k = 0.
    r = child_responsibility(jnp.zeros(14, bool), jnp.ones(14), "minimal_k")
    np.testing.assert_allclose(np.asarray(r), [1, 1, 1, 1])
    # {0,1} needed together: each is critical in {0,1} (k = 2 -> 1/3).
    r = child_responsibility(passes_of((0, 1), (0, 1, 2), (0, 1, 3)), jnp.ones(14), "minimal_k")
    np.testing.assert_allclose(np.asarray(r), [1, 1, 0, 0], rtol=1e-6)


def test_unknown_rule():
    with pytest.raises(ValueError, match="unknown responsibility rule"):
        child_responsibility(jnp.zeros(14, bool), jnp.ones(14), "bogus")
