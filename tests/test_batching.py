"""`rexjax.batching.push`, the one batching helper: compaction, early exit, padding, accounting."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import batching


def scores(idx):
    """A fake model answer per candidate: 10 * index (so values show which rows were read)."""
    return (idx * 10).astype(jnp.float32)


@pytest.mark.parametrize("n,b", [(10, 3), (9, 3), (4, 16), (1, 1)])
def test_every_candidate_read_once_and_padding_counted(n, b):
    """Catches dropped / duplicated / shifted rows and a forward count that ignores padding."""
    out = jax.jit(lambda: batching.push(scores, n, batch_size=b, read=lambda o, idx: o))()
    np.testing.assert_array_equal(out.values, 10 * np.arange(n))
    assert out.evaluated.all()
    assert int(out.forward_images) == batching.padded_count(n, b) == -(-n // min(b, n)) * min(b, n)


def test_compaction_evaluates_only_valid_in_order():
    """Invalid candidates keep `init`; chunks = ceil(count / b), not ceil(n / b)."""
    valid = jnp.array([0, 1, 0, 0, 1, 1, 0, 1, 0, 0], bool)
    init = jnp.full((10,), -1.0)
    out = jax.jit(
        lambda v: batching.push(scores, 10, batch_size=2, read=lambda o, idx: o, init=init, valid=v)
    )(valid)
    expected = np.where(np.asarray(valid), 10 * np.arange(10), -1)
    np.testing.assert_array_equal(out.values, expected)
    np.testing.assert_array_equal(out.evaluated, valid)
    assert int(out.chunks) == 2 and int(out.forward_images) == 4


def test_padding_never_writes_into_an_invalid_candidate():
    """Padding indices (= n) are dropped, not clipped onto candidate n-1 (which is invalid here)."""
    valid = jnp.array([1, 0, 1, 1, 0], bool)
    init = jnp.full((5,), -1.0)
    out = jax.jit(lambda: batching.push(scores, 5, batch_size=2, read=lambda o, idx: o, init=init, valid=valid))()
    np.testing.assert_array_equal(out.values, [0, -1, 20, 30, -1])
    assert int(out.forward_images) == 4


def test_early_exit_after_first_chunk_with_a_hit():
    """`stop` ends the loop after the chunk holding the first hit; later chunks are not run."""
    hit_at = 7
    out = jax.jit(
        lambda: batching.push(scores, 20, batch_size=3, read=lambda o, idx: idx == hit_at, stop=lambda h: h)
    )()
    assert int(out.chunks) == 3  # chunks [0-2], [3-5], [6-8]
    assert bool(out.values[hit_at]) and int(jnp.argmax(out.values)) == hit_at
    assert not out.evaluated[9:].any() and out.evaluated[:9].all()
    assert int(out.forward_images) == 9


def test_padding_rows_never_hit_and_fold_ignores_them():
    """Padded rows (idx >= n) are clipped for `evaluate`; their outputs are dropped."""
    out = jax.jit(
        lambda: batching.push(
            scores, 5, batch_size=4, read=lambda o, idx: o > 35, stop=lambda h: h,
            fold=lambda o, idx, ok: (o * ok).sum(),
        )
    )()
    # candidate 4 (score 40) is the only hit; the padded rows of chunk 2 evaluate index 4 again
    assert int(out.values.sum()) == 1 and bool(out.values[4])
    assert float(out.total) == sum(10 * i for i in range(5))


def test_fold_sums_chunk_partials_in_order():
    """The fold total equals the sum over candidates (ok masks the padding)."""
    out = jax.jit(lambda: batching.push(scores, 7, batch_size=3, fold=lambda o, idx, ok: (o * ok).sum()))()
    assert float(out.total) == 10 * sum(range(7))


def test_batch_size_policy():
    assert batching.resolve_batch_size(None) == batching.default_batch_size() == 8  # CPU
    assert batching.resolve_batch_size(5) == 5
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size"):
            batching.resolve_batch_size(bad)


def test_valid_shape_is_checked():
    with pytest.raises(AssertionError):
        batching.push(scores, 4, batch_size=2, read=lambda o, idx: o, valid=jnp.ones((3,), bool))
    chex.assert_shape(jnp.ones((2,)), (2,))


def test_on_chunk_reports_candidates_done_of_the_valid_count():
    """`on_chunk(done, total)` runs on the host once per chunk with the valid candidates
    evaluated so far (the last chunk clipped to the count) and the valid count, not n.
    Catches a report of n as the total, of padding rows as done, or one call per candidate."""
    heard = []
    valid = jnp.array([1, 1, 0, 1, 0, 1, 0, 0, 1, 0], bool)
    jax.block_until_ready(jax.jit(lambda v: batching.push(
        scores, 10, batch_size=2, read=lambda o, idx: o, valid=v,
        on_chunk=lambda d, t: heard.append((int(d), int(t)))).values)(valid))
    jax.effects_barrier()
    assert heard == [(2, 5), (4, 5), (5, 5)]
