"""Boxes, splits, rendering and painting (deterministic, hand-checked)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

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


def test_reference_split_point_areas():
    # Reference unit test: 64x64 root split at (6, 35) -> areas 210/174/2030/1682.
    r, c = 6, 35
    kids = jnp.array([[0, 0, r, c], [0, c, r, 64], [r, 0, 64, c], [r, c, 64, 64]])
    assert np.asarray(P.box_area(kids)).tolist() == [210, 174, 2030, 1682]


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
