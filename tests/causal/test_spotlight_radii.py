"""The spotlight search asks every (radius, slot) circle of an attempt in one tester call and
gives each slot its smallest passing radius, as testing one radius at a time would."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.causal import RexConfig, SpotlightConfig
from rexjax.causal import multiple
from rexjax.causal.multiple import circle_candidates, first_passing_radius, make_spotlight_search
from rexjax.causal.spatial import radius_schedule
from rexjax.classifier import Classifier
from tests.helpers import oracles

H, W = 40, 100
A = oracles.patch_mask(H, W, 12, 12, 16)  # centre (19.5, 19.5)
B = oracles.patch_mask(H, W, 12, 72, 16)  # centre (19.5, 79.5)
X = oracles.image(H, W, seed=2)
OR = oracles.patch_oracle([A, B], "or")
# Two centres: on A, and between A and B. From the second, the radius-38 circle holds all of
# A but not all of B; the next radius holds B. (Radii 12, 38, 107.)
CENTRES = [(20, 20), (20, 45)]
RESP = np.zeros((H, W), np.float32)
for r, c in CENTRES:
    RESP[r, c] = 1e6
SPOT = dict(spotlights=2, initial_radius=12, radius_eta=2.2, expansions=3, budget=0)


def test_circle_candidates_are_radius_major():
    """Catches a layout that the host reads back with the axes swapped."""
    centres, radii = circle_candidates(np.array([[1, 2], [3, 4]]), np.array([5, 7, 9]))
    np.testing.assert_array_equal(radii, [5, 5, 7, 7, 9, 9])
    np.testing.assert_array_equal(centres, [[1, 2], [3, 4]] * 3)


def test_first_passing_radius_per_open_slot():
    """Smallest passing radius index per slot; -1 for none and for closed slots. Catches an
    argmax over the wrong axis, a last (not first) pass, and 0 for a slot that never passes."""
    passes = np.array([[0, 1, 0, 1], [1, 1, 0, 1], [1, 0, 0, 1]], bool)  # [R=3, S=4]
    np.testing.assert_array_equal(first_passing_radius(passes, np.ones(4, bool)), [1, 0, -1, 0])
    np.testing.assert_array_equal(first_passing_radius(passes, np.array([1, 1, 1, 0], bool)), [1, 0, -1, -1])


def passes(x, visible, threshold):
    """The model itself (no rexjax): top-1 is class 1 with probability >= threshold."""
    logits = np.asarray(OR(jnp.asarray(x * visible[..., None])[None]), np.float64)[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return int(np.argmax(probs)) == 1 and probs[1] >= threshold


@pytest.mark.parametrize("hide_held", [False, True])
def test_one_tester_call_per_attempt_and_smallest_passing_radius(monkeypatch, hide_held):
    """Each slot's radius is the smallest whose circle passes with the explanations held so
    far hidden (`hide_held`; checked against the model directly, radius by radius, in the
    order the search handles slots), and the circles go through one tester call per attempt
    unless `hide_held` holds a new explanation before a larger radius (then once more).
    Catches a per-radius loop (one call per radius), a slot given a later passing radius, and
    with `hide_held` larger circles judged before the new explanation was hidden: from the
    second centre the radius-38 circle passes only through A, which the first slot holds."""
    calls = []

    def counting(*args, **kwargs):
        test = make_tester(*args, **kwargs)
        return lambda *a: calls.append(1) or test(*a)

    make_tester = multiple.make_tester
    monkeypatch.setattr(multiple, "make_tester", counting)
    clf = Classifier(OR)
    full = float(np.asarray(clf.full_probs(jnp.asarray(X)))[1])
    cfg = RexConfig.from_dict(dict(spotlight=SpotlightConfig(**SPOT, hide_held=hide_held)))
    search = make_spotlight_search(clf.masked(0.0), cfg, 8)
    res = search(jax.random.key(0), jnp.asarray(X), RESP, 1, full)
    threshold = cfg.extract.min_confidence * full
    radii = [int(r) for r in radius_schedule(H, W, 12, 2.2, 3)]
    assert radii == [12, 38, 107] and res.attempts == 1
    assert sorted(p.centre for p in res.parts) == CENTRES
    held_at = []  # (radius index, mask) of the explanations held, in order
    for part in res.parts:
        i = radii.index(part.radius)
        if hide_held:
            before = lambda k: np.any([m for j, m in held_at if j < k] + [np.zeros((H, W), bool)], axis=0)
        else:
            before = lambda k: np.zeros((H, W), bool)
        ring = lambda k: (np.hypot(np.arange(H)[:, None] - part.centre[0], np.arange(W)[None] - part.centre[1]) <= radii[k])
        assert passes(X, ring(i) & ~before(i), threshold), part
        assert i == 0 or not passes(X, ring(i - 1) & ~before(i - 1), threshold), part
        held_at.append((i, part.mask))
    by_centre = {p.centre: p.radius for p in res.parts}
    assert by_centre[(20, 20)] == 12
    assert by_centre[(20, 45)] == (107 if hide_held else 38)
    assert len(calls) == (2 if hide_held else 1)
