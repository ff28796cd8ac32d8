"""Degree of responsibility of the 4 children of one split, from its 14 mutants.

Each split of an active box `a` of a job evaluates the 14 non-empty proper subsets `S` of
its children, everything else the job shows (its static region and its other active boxes)
visible. Two more subsets matter to the rules that ask whether a child is *needed*: the
empty subset (the job's region without `a`) and the full subset (with all of `a`, i.e. the
passing mutant the job was queued from; at the root, the full image). `empty_passes` and
`full_passes` say whether those pass (search.py knows them: see its module doc).

Rules (`rule=`):

* ``"alg1"`` (`PAPER_BUDGET`'s): the ReX paper's Alg. 1 read literally, `1/(k+1)` with `k = 4 - |S|`
  the number of *masked* children of a passing `S` in which `j` is needed (`S - {j}`
  fails), minimised over those `S` (the 16 subsets). It rewards the opposite of Def. 4.2:
  {0, 2} needed together get 1 each (k = 0 in the full set), and so does a child that is
  needed alone; two children that are each enough alone get 1/2 each. On hidden-patch
  oracles it gives the smallest explanations at the paper's budget
  (`tests/causal/oracle_quality.py`): a patch cut by a split keeps full credit on both
  sides. (The name ``"minimal_k"`` is refused with a pointer to ``"alg1"``.)
* ``"sufficient"`` (ReX paper Def. 4.2 restricted to the partition): child `j`
  gets `1 / min{|S| : j in S, S passes, S - {j} fails}` over the 16 subsets, 0 if no such
  `S`. The paper's Sec. 5.2 example: children {0, 2} needed together get 1/2 each, a child
  that is enough alone gets 1, a child nothing needs gets 0. Under a monotone model (more
  visible never turns a pass into a fail) this smallest `S` is the smallest minimal
  sufficient subset containing `j`, which is Def. 4.2 word for word. Its credit halves on
  each side of a patch cut by a split, which costs it explanation size on the oracles.
* ``"tool"`` (rex-xai 0.4.1's default rule): every passing mutant with `n` visible children gives
  `1/n` to each of them, summed over the passing mutants (reference Sec. 3.1); nothing checks
  that a child is needed. The tool's default map also multiplies its iterations
  (`SearchConfig.combine="product"`).
* ``"weighted"`` (the tool's `weighted` option): as ``"tool"`` with each mutant's credit
  multiplied by its target confidence, so a visible child that lowers the confidence of the
  mutants it is in gets less.
* ``"main_effect"`` (RexConfig's default): the main effect of showing child `j` in the
  split's 2^4 design read on its 14 mutants, `(1/7) sum_{S ∋ j} c_S - (1/7) sum_{S ∌ j} c_S`
  (c_S the target confidence of mutant S, passing or not; 7 mutants show j and 7 hide it).
  It asks no extra image. Unlike the pass-counting rules it sees a child that *lowers* the
  confidence (a negative credit), which is what the pixels ranked after the explanation need.
  On a model whose confidence is additive over the children, c_S = b + sum_{i in S} w_i, it
  is (8/7) w_j - (1/7) sum_i w_i: the children's order by w is kept. A departure from the
  paper's responsibility (BUILD_NOTES.md section 12); the search itself (which mutants pass
  and are refined) is the same for every rule.

The values of "sufficient", "alg1" and "tool" are multiples of 1/12 (1/|S|, 1/(k+1) and sums
of 1/n with |S|, k + 1, n in 1..4); the search accumulates them exactly as integers in units
of 1/RESOLUTION (`units`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.causal.config import RESPONSIBILITY_RULES
from rexjax.causal.partition import SUBSETS

RESOLUTION = 12  # lcm(1, 2, 3, 4): every exact rule's value is an integer number of 1/12
NEEDS_EMPTY = ("sufficient", "alg1")  # the rules that ask whether a child is needed

# Extended subset table: rows 0..13 are the mutants, 14 the empty set, 15 the full set.
_EXT = np.concatenate([SUBSETS, np.zeros((1, 4), bool), np.ones((1, 4), bool)])
_INDEX = {tuple(row): i for i, row in enumerate(_EXT)}
# WITHOUT[s, j]: the row of subset s with child j removed (s itself when j is not in s).
WITHOUT = np.array(
    [[_INDEX[tuple(row & (np.arange(4) != j))] for j in range(4)] for row in _EXT], np.int32
)


def critical(passes: jax.Array, empty_passes=False, full_passes=True) -> jax.Array:
    """bool[16, 4]: child j is in subset s, s passes and s without j fails (rows as `_EXT`)."""
    ext_pass = jnp.concatenate([passes, jnp.stack([jnp.asarray(empty_passes), jnp.asarray(full_passes)])])
    ext_sub = jnp.asarray(_EXT)
    return ext_pass[:, None] & ext_sub & ~ext_pass[jnp.asarray(WITHOUT)]


def child_responsibility(
    passes: jax.Array, confidence: jax.Array, rule: str = "alg1", *, empty_passes=False, full_passes=True
) -> jax.Array:
    """`passes bool[14]`, `confidence f32[14]` (target prob.) -> responsibility `f32[4]`.

    empty_passes / full_passes: whether the empty / full subset of the children passes
    (bool scalars; used by "sufficient" and "alg1").
    """
    sub = jnp.asarray(SUBSETS, jnp.float32)
    n = sub.sum(axis=1)
    if rule == "tool":
        return (passes / n) @ sub
    if rule == "weighted":
        return (passes * confidence / n) @ sub
    if rule == "main_effect":  # 7 of the 14 mutants show each child, 7 hide it
        return (confidence @ sub - confidence @ (1.0 - sub)) / 7.0
    if rule in ("sufficient", "alg1"):
        size = jnp.asarray(_EXT.sum(axis=1), jnp.float32)  # |S|
        denominator = size if rule == "sufficient" else 5.0 - size  # |S| or k + 1 = 4 - |S| + 1
        value = jnp.where(critical(passes, empty_passes, full_passes), 1.0 / denominator[:, None], 0.0)
        return value.max(axis=0)
    raise ValueError(f"unknown responsibility rule {rule!r}; expected one of {RESPONSIBILITY_RULES}")


def units(values: jax.Array) -> jax.Array:
    """Exact rules' values (multiples of 1/12) -> int32 units of 1/RESOLUTION."""
    return jnp.round(values * RESOLUTION).astype(jnp.int32)
