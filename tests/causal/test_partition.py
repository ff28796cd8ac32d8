"""Boxes, splits, rendering and painting (deterministic, hand-checked)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.causal import partition as P


def test_subsets_table_is_reference_order():
    as_sets = [tuple(np.flatnonzero(row)) for row in P.SUBSETS]
    assert as_sets[:4] == [(0,), (1,), (2,), (3,)]
    assert as_sets[4:10] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert as_sets[10:] == [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]


def test_split_children_tile_the_box_and_are_nonempty():
    box = jnp.array([3, 5, 67, 69], jnp.int32)  # 64 x 64
    for seed in range(20):
        kids, ok = P.split_box(jax.random.key(seed), box, jnp.int32(0), min_box_size=10, tree_depth=10)
        kids = np.asarray(kids)
        assert bool(ok)
        assert (P.box_area(kids) > 0).all()
        assert P.box_area(kids).sum() == 64 * 64
        cover = np.asarray(P.render(jnp.asarray(kids), jnp.ones(4, bool), 80, 80)).astype(int)
        assert cover[3:67, 5:69].all() and cover.sum() == 64 * 64


def _split_many(box, n, **kw):
    kw = {"min_box_size": 10, "tree_depth": 10, **kw}
    keys = jax.vmap(jax.random.key)(jnp.arange(n))
    kids, ok = jax.vmap(lambda k: P.split_box(k, jnp.asarray(box, jnp.int32), jnp.int32(0), **kw))(keys)
    return np.asarray(kids), np.asarray(ok)


def test_split_box_children_are_the_reference_quadrants():
    """split_box itself (not children rebuilt by hand): child 0 top-left, 1 top-right, 2
    bottom-left, 3 bottom-right of the split point, for many split points; and the reference
    unit test (64x64 root split at (6, 35) -> areas 210/174/2030/1682, in child order) on the
    key whose split point is (6, 35)."""
    box = (0, 0, 64, 64)
    kids, ok = _split_many(box, 20000)
    assert ok.all()
    rows, cols = kids[:, 0, 2], kids[:, 0, 3]  # the split point (R, C)
    want = np.stack([
        np.stack([0 * rows, 0 * cols, rows, cols], -1),
        np.stack([0 * rows, cols, rows, 64 + 0 * cols], -1),
        np.stack([rows, 0 * cols, 64 + 0 * rows, cols], -1),
        np.stack([rows, cols, 64 + 0 * rows, 64 + 0 * cols], -1),
    ], 1)
    np.testing.assert_array_equal(kids, want)
    hit = np.flatnonzero((rows == 6) & (cols == 35))
    assert hit.size, "no key in 20000 splits the root at (6, 35)"
    areas = np.asarray(P.box_area(jnp.asarray(kids[hit[0]])))
    assert areas.tolist() == [210, 174, 2030, 1682]


def test_betabinom_arguments_move_the_split_point():
    """Beta-binomial(a, b) offsets: mean (n - 2) a / (a + b) + 1; (1, 1) is uniform-like, (8, 2)
    splits late, (2, 8) early; the arguments are not ignored."""
    box = (0, 0, 102, 102)  # offsets in [1, 101], n - 2 = 100 trials
    means = {}
    for args in [(1.0, 1.0), (8.0, 2.0), (2.0, 8.0)]:
        kids, ok = _split_many(box, 4000, distribution="betabinom", distribution_args=args)
        assert ok.all()
        means[args] = kids[:, 0, 2].mean()
        np.testing.assert_allclose(means[args], 1 + 100 * args[0] / sum(args), atol=1.5)
    assert means[(2.0, 8.0)] < means[(1.0, 1.0)] < means[(8.0, 2.0)]


class SplitVariants(chex.TestCase):
    """split_box and paint are pure: jitted and eager give the same answer."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_split_is_a_function_of_box_and_key(self):
        box = jnp.array([0, 0, 50, 40], jnp.int32)
        split = self.variant(lambda k, b, d: P.split_box(k, b, d, min_box_size=10, tree_depth=10)[0])
        a = split(jax.random.key(1), box, jnp.int32(2))
        b = split(jax.random.key(1), box, jnp.int32(2))
        c = split(jax.random.key(2), box, jnp.int32(2))
        chex.assert_shape(a, (4, 4))
        assert (np.asarray(a) == np.asarray(b)).all() and not (np.asarray(a) == np.asarray(c)).all()
        eager = P.split_box(jax.random.key(1), box, jnp.int32(2), min_box_size=10, tree_depth=10)[0]
        np.testing.assert_array_equal(a, eager)

    @chex.variants(with_jit=True, without_jit=True)
    def test_render_and_paint_agree(self):
        boxes = jnp.array([[0, 0, 3, 4], [2, 1, 6, 5]], jnp.int32)
        render = self.variant(lambda b, v: P.render(b, v, 7, 6))
        paint = self.variant(lambda c, b, v: P.paint(c, b, v))
        cover = np.asarray(render(boxes, jnp.array([True, True])))
        painted = np.asarray(paint(jnp.zeros((7, 6)), boxes, jnp.ones(2)))
        np.testing.assert_array_equal(cover, painted > 0)
        assert painted.max() == 2.0 and cover.sum() == 12 + 16 - 3


def test_unsplittable_boxes():
    key = jax.random.key(0)
    small = jnp.array([0, 0, 3, 3], jnp.int32)  # 9 px < 10
    thin = jnp.array([0, 0, 1, 40], jnp.int32)
    ok_box = jnp.array([0, 0, 4, 4], jnp.int32)
    kw = dict(min_box_size=10, tree_depth=10)
    assert not bool(P.split_box(key, small, jnp.int32(0), **kw)[1])
    assert not bool(P.split_box(key, thin, jnp.int32(0), **kw)[1])
    assert bool(P.split_box(key, ok_box, jnp.int32(10), **kw)[1])
    assert not bool(P.split_box(key, ok_box, jnp.int32(11), **kw)[1])


def test_betabinom_split_is_inside_the_box():
    box = jnp.array([10, 10, 40, 90], jnp.int32)
    for seed in range(10):
        kids, ok = P.split_box(jax.random.key(seed), box, jnp.int32(0), min_box_size=10, tree_depth=10,
                               distribution="betabinom", distribution_args=(2.0, 2.0))
        assert bool(ok) and (np.asarray(P.box_area(kids)) > 0).all()


def test_paint_equals_dense_sum():
    rng = np.random.default_rng(0)
    boxes = np.sort(rng.integers(0, 30, (12, 2, 2)), axis=1).reshape(12, 4)  # r0<=r1, c0<=c1
    vals = rng.normal(size=12).astype(np.float32)
    dense = np.zeros((30, 30), np.float32)
    for (r0, c0, r1, c1), v in zip(boxes, vals):
        dense[r0:r1, c0:c1] += v
    got = P.paint(jnp.zeros((30, 30)), jnp.asarray(boxes, jnp.int32), jnp.asarray(vals))
    np.testing.assert_allclose(np.asarray(got), dense, atol=1e-5)


def _coverage_regions(boxes, h, w):
    """int[H, W] label of each pixel's exact set of covering boxes."""
    cover = np.zeros((len(boxes), h, w), bool)
    for i, (r0, c0, r1, c1) in enumerate(boxes):
        cover[i, r0:r1, c0:c1] = True
    flat = np.packbits(cover.reshape(len(boxes), -1), axis=0).T  # [H*W, bytes]
    return np.unique(flat, axis=0, return_inverse=True)[1].reshape(h, w)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32])
def test_paint_is_constant_on_equal_coverage(dtype):
    """Exact ties: 400 random boxes; pixels covered by exactly the same boxes get exactly the same
    value (float: a difference array leaves last-ulp residue that then decides the ranking)."""
    h, w = 120, 150
    rng = np.random.default_rng(1)
    r = np.sort(rng.integers(0, h + 1, (400, 2)), 1)
    c = np.sort(rng.integers(0, w + 1, (400, 2)), 1)
    boxes = np.stack([r[:, 0], c[:, 0], r[:, 1], c[:, 1]], 1)
    units = rng.integers(1, 43, 400)  # increments as the engine paints them: k/12 or k units
    vals = units / 12.0 if dtype == jnp.float32 else units
    got = np.asarray(P.paint(jnp.zeros((h, w), dtype), jnp.asarray(boxes, jnp.int32), jnp.asarray(vals, dtype)))
    labels = _coverage_regions(boxes, h, w)
    bad = [k for k in np.unique(labels) if np.ptp(got[labels == k]) != 0]
    assert not bad, f"{len(bad)} of {labels.max() + 1} equal-coverage regions are not constant"
    dense = np.zeros((h, w))
    for (r0, c0, r1, c1), v in zip(boxes, vals):
        dense[r0:r1, c0:c1] += v
    np.testing.assert_allclose(got, dense, rtol=1e-5)
