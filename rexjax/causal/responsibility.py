"""Degree of responsibility of the 4 children of one split, from its 14 mutants.

Rules (`rule=`):

* ``"rex"`` (default, rex-xai 0.4.1): every passing mutant with `n` visible children gives
  `1/n` to each of them, summed over the passing mutants (reference Sec. 3.1).
* ``"weighted"``: as ``"rex"`` with each mutant weighted by its target confidence.
* ``"minimal_k"`` (ReX paper, Alg. 1): child `j` gets `1/(k+1)`, `k` the smallest number of
  masked children over the passing mutants `S` that contain `j` and stop passing when `j` is
  masked too. The full set (the parent, which passed) counts as passing and the empty set
  as failing; 0 if no such mutant.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.causal.config import RESPONSIBILITY_RULES
from rexjax.causal.partition import SUBSETS


# Extended subset table: rows 0..13 are the mutants, 14 the empty set, 15 the full set.
_EXT = np.concatenate([SUBSETS, np.zeros((1, 4), bool), np.ones((1, 4), bool)])
_INDEX = {tuple(row): i for i, row in enumerate(_EXT)}
# _WITHOUT[s, j]: the row of subset s with child j removed (s itself when j is not in s).
_WITHOUT = np.array(
    [[_INDEX[tuple(row & (np.arange(4) != j))] for j in range(4)] for row in _EXT], np.int32
)


def child_responsibility(passes: jax.Array, confidence: jax.Array, rule: str = "rex") -> jax.Array:
    """`passes bool[14]`, `confidence f32[14]` (target prob.) -> responsibility `f32[4]`."""
    sub = jnp.asarray(SUBSETS, jnp.float32)
    n = sub.sum(axis=1)
    if rule == "rex":
        return (passes / n) @ sub
    if rule == "weighted":
        return (passes * confidence / n) @ sub
    if rule == "minimal_k":
        ext_pass = jnp.concatenate([passes, jnp.array([False, True])])
        ext_sub = jnp.asarray(_EXT)
        critical = ext_pass[:, None] & ext_sub & ~ext_pass[jnp.asarray(_WITHOUT)]  # [16, 4]
        k = 4 - ext_sub.sum(axis=1)  # masked children of each subset
        value = jnp.where(critical, 1.0 / (k[:, None] + 1.0), 0.0)
        return value.max(axis=0)
    raise ValueError(f"unknown responsibility rule {rule!r}; expected one of {RESPONSIBILITY_RULES}")
