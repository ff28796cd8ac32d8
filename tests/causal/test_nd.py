"""The ReX engine on signals x[N, C] and volumes x[D, H, W, C]: split rules, rendering and
painting against numpy, batch-size invariance, determinism under a key, refusals."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax
from rexjax.causal import partition as P
from rexjax.classifier import Classifier
from tests.helpers import oracles

KW = {"min_box_size": 4, "tree_depth": 10}


def _split_many(box, n, **kw):
    keys = jax.vmap(jax.random.key)(jnp.arange(n))
    split = lambda k: P.split_box(k, jnp.asarray(box, jnp.int32), jnp.int32(0), **{**KW, **kw})
    kids, ok = jax.jit(jax.vmap(split))(keys)
    return np.asarray(kids), np.asarray(ok)


def _cover(kids, shape):
    """Numpy: how many children cover each element (children int[4, 2k])."""
    k = len(shape)
    count = np.zeros(shape, int)
    for b in kids:
        count[tuple(slice(b[i], b[k + i]) for i in range(k))] += 1
    return count


def test_1d_split_three_distinct_uniform_cuts():
    """Catches: cuts not sorted or not distinct (empty or overlapping children), a cut at the
    box's end, a biased draw (the 10 cut triples of a length-6 box equally likely: each within
    4 binomial sd of 1/10 over 4000 keys)."""
    kids, ok = _split_many((3, 9), 4000)
    assert ok.all()
    assert (kids[:, :, 1] > kids[:, :, 0]).all()  # non-empty
    np.testing.assert_array_equal(kids[:, 0, 0], 3)
    np.testing.assert_array_equal(kids[:, 3, 1], 9)
    np.testing.assert_array_equal(kids[:, 1:, 0], kids[:, :-1, 1])  # consecutive, tiling [3, 9)
    triples, counts = np.unique(kids[:, 1:, 0], axis=0, return_counts=True)
    assert [tuple(t) for t in triples] == list(itertools.combinations(range(4, 9), 3))
    assert np.abs(counts / 4000 - 0.1).max() < 4 * np.sqrt(0.09 / 4000), counts
    short, ok_short = _split_many((0, 3), 4, min_box_size=1)
    assert not ok_short.any()  # fewer than 4 elements: 4 non-empty children impossible


def test_1d_refuses_betabinom():
    with pytest.raises(ValueError, match="1-D signals are cut at\\s+three uniform points"):
        _split_many((0, 20), 2, distribution="betabinom", distribution_args=(2.0, 2.0))


def test_3d_split_two_random_axes():
    """Catches: children that do not tile the box, a cut on one axis or on all three, a fixed
    axis pair (all 6 ordered pairs appear, each within 4 sd of 1/6), the child order (0: low-low,
    3: high-high on the two cut axes), an axis of extent 1 chosen (empty children)."""
    box = (1, 0, 2, 7, 6, 9)  # extents 6, 6, 7
    kids, ok = _split_many(box, 1200)
    assert ok.all() and (P.box_area(jnp.asarray(kids)) > 0).all()
    for ch in kids[:50]:
        cover = _cover(ch, (8, 8, 10))
        assert (cover[1:7, 0:6, 2:9] == 1).all() and cover.sum() == 6 * 6 * 7
    lo = kids[:, :, :3]
    first = lo[:, 2] > lo[:, 0]  # child 2 is high on the first axis, low on the second
    second = lo[:, 1] > lo[:, 0]  # child 1 the opposite
    assert (first.sum(1) == 1).all() and (second.sum(1) == 1).all() and not (first & second).any()
    assert ((lo[:, 3] > lo[:, 0]) == (first | second)).all()  # child 3 high on both, nothing else cut
    pairs = list(zip(first.argmax(1), second.argmax(1)))
    freq = np.array([pairs.count(p) for p in itertools.permutations(range(3), 2)]) / len(pairs)
    assert np.abs(freq - 1 / 6).max() < 4 * np.sqrt((1 / 6) * (5 / 6) / 1200), freq
    thin, ok_thin = _split_many((0, 0, 0, 1, 5, 6), 200)  # extent 1 on axis 0
    assert ok_thin.all() and (P.box_area(jnp.asarray(thin)) > 0).all()
    assert (thin[:, :, 0] == 0).all() and (thin[:, :, 3] == 1).all()
    _, ok_flat = _split_many((0, 0, 0, 1, 1, 9), 4)  # only one axis of extent >= 2
    assert not ok_flat.any()


@pytest.mark.parametrize("shape", [(23,), (5, 6, 7)])
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.float32])
def test_render_and_paint_match_numpy(shape, dtype):
    """Catches a corner sign or a missing axis in the N-D difference array, and an axis swap
    in the rendering."""
    rng = np.random.default_rng(0)
    k = len(shape)
    boxes = []
    for _ in range(12):
        lo = [int(rng.integers(0, n)) for n in shape]
        boxes.append(lo + [int(rng.integers(a + 1, n + 1)) for a, n in zip(lo, shape)])
    boxes = np.asarray(boxes, np.int32)
    valid = rng.random(12) < 0.6
    values = rng.integers(1, 9, 12).astype(np.float32)
    want_render = np.zeros(shape, bool)
    want_paint = np.zeros(shape, np.float64)
    for b, v, ok in zip(boxes, values, valid):
        region = tuple(slice(b[i], b[k + i]) for i in range(k))
        want_render[region] |= ok
        want_paint[region] += v
    np.testing.assert_array_equal(np.asarray(P.render(jnp.asarray(boxes), jnp.asarray(valid), *shape)), want_render)
    got = P.paint(jnp.zeros(shape, dtype), jnp.asarray(boxes), jnp.asarray(values, dtype))
    np.testing.assert_array_equal(np.asarray(got), want_paint.astype(np.asarray(got).dtype))


SIGNAL, VOLUME = (48,), (6, 6, 6)
# One Classifier per rank, so that every test below reuses the compiled explainers
# (`explainer_for` keeps them on the Classifier). Small budget: iterations 2, no prune.
MODELS = {SIGNAL: Classifier(oracles.marked_oracle(6)), VOLUME: Classifier(oracles.marked_oracle(8))}
SIZES = {SIGNAL: 6, VOLUME: 2}
FIELDS = {"iters": 2, "prune_grids": ()}


def _input(shape, seed=0):
    return oracles.marked_input(shape, oracles.random_boxes(shape, SIZES[shape], 1, np.random.default_rng(seed)), seed)


@pytest.mark.parametrize("shape", [SIGNAL, VOLUME])
def test_batch_size_invariance_and_determinism(shape):
    """Same key: the same map and mask whatever the batch size (catches mutants assigned to
    the wrong row when the compaction chunks differently) and on a second call; another
    key: another map. Map and mask have the input's spatial shape."""
    x = _input(shape)
    run = lambda key, batch: rexjax.explain(MODELS[shape], x, key=key, batch_size=batch, **FIELDS)
    a, b, again, other = run(0, 3), run(0, 16), run(0, 3), run(1, 3)
    assert a.responsibility.shape == a.mask.shape == shape and a.sufficient
    for e in (b, again):
        np.testing.assert_array_equal(a.responsibility, e.responsibility)
        np.testing.assert_array_equal(a.mask, e.mask)
    assert not np.array_equal(a.responsibility, other.responsibility)


def test_explain_many_signals_equals_one_by_one():
    """Lockstep search of several signals = each alone (catches lanes mixed between inputs)."""
    xs = [_input(SIGNAL, s) for s in (0, 1)]
    many = rexjax.explain_many(MODELS[SIGNAL], xs, keys=[3, 4], batch_size=3, **FIELDS)
    for x, key, got in zip(xs, (3, 4), many):
        one = rexjax.explain(MODELS[SIGNAL], x, key=key, batch_size=3, **FIELDS)
        np.testing.assert_array_equal(got.responsibility, one.responsibility)
        np.testing.assert_array_equal(got.mask, one.mask)


@pytest.mark.parametrize("fields", [{"strategy": "spatial"}, {"multiple": 2}, {"contrastive": True}])
def test_circle_based_parts_refused_for_signals(fields):
    with pytest.raises(ValueError, match="grow circles on images"):
        rexjax.explain(MODELS[SIGNAL], _input(SIGNAL), key=0, iters=1, **fields)


def test_model_that_refuses_the_rank_is_one_line():
    """An image model given a signal: one ValueError naming the shape, not a traceback from
    inside the model."""
    image_model = oracles.patch_oracle([oracles.patch_mask(8, 8, 0, 0, 4)])
    with pytest.raises(ValueError, match="model does not take inputs of shape \\(16, 3\\)"):
        rexjax.explain(image_model, np.ones((16, 3), np.float32), key=0, iters=1)
