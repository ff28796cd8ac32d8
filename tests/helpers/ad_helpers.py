"""Shared checks for ConvAD tests: Theorem 1, exact deactivation and the poisoning leak
check on any model, and the empty-mask probe."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.ad import convad


def init_model(module, x, seed=0):
    """Random variables for a Flax module without compiling its init (threefry over hundreds
    of parameters takes minutes on 2 cores): shapes from `eval_shape`, values from numpy.
    LeCun-normal kernels (activations stay O(1) through deep residual stacks, so float
    noise is not amplified); BN scale/bias/mean/var and biases perturbed away from (1, 0, 0, 1)
    so that BN(0) != 0 (the reason ConvAD re-masks after BN)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(module.init, jax.random.key(0), x)
    shapes = {k: v for k, v in shapes.items() if k in ("params", "batch_stats")}

    def fill(path, sd):
        name = str(getattr(path[-1], "key", path[-1]))
        n = rng.standard_normal(sd.shape).astype(np.float32)
        if name == "kernel":
            fan_in = int(np.prod(sd.shape[:-1])) or 1
            return jnp.asarray(n * np.sqrt(1.0 / fan_in))
        if name == "var":
            return jnp.asarray(1.0 + 0.2 * np.abs(n))
        if name == "scale":
            return jnp.asarray(1.0 + 0.1 * n)
        return jnp.asarray(0.1 * n)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def random_masks(key, b, *spatial):
    """Half boxes, half scattered elements: f32[b, *spatial] (1 to 3 position axes), 1 =
    visible, each with both values. A box spans a random quarter-or-more of every axis."""
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    masks = []
    for i in range(b):
        m = np.ones(spatial, np.float32)
        if i % 2 == 0:
            starts = [rng.integers(0, n // 2) for n in spatial]
            box = tuple(slice(s0, rng.integers(s0 + n // 4, n + 1)) for s0, n in zip(starts, spatial))
            m[box] = 0
        else:
            m = (rng.random(spatial) < 0.7).astype(np.float32)
        masks.append(m)
    return jnp.asarray(np.stack(masks))


def check_poison(apply_fn, variables, x, masks, taus=(0.0, 0.5), **options):
    """The leak check (`convad(poison=True)`): the input is not zeroed and every masked
    intermediate holds NaN at its masked positions. A rule that lets one masked position
    reach an active one (a missing checkpoint, a `* M` instead of a `where`, a dropped
    mask) makes the output non-finite or different. Both runs are eager (op by op), so
    the comparison is bitwise: the two compiled programs of a jit could differ in the last
    ulp through fusion alone."""
    for tau in taus:
        normal = np.asarray(convad(apply_fn, tau=tau, **options)(variables, x, masks))
        poisoned = np.asarray(convad(apply_fn, tau=tau, poison=True, **options)(variables, x, masks))
        assert np.isfinite(normal).all(), f"tau={tau}: the normal AD output is not finite"
        bad = ~np.isfinite(poisoned)
        assert not bad.any(), f"tau={tau}: masked values reach the output ({int(bad.sum())} non-finite entries)"
        assert np.array_equal(poisoned, normal), (
            f"tau={tau}: poisoned output differs, max diff {np.abs(poisoned - normal).max()}"
        )


def empty_mask_output(apply_fn, variables, x, tau=0.0, **options):
    """ConvAD output with every element masked (all-zero masks), eagerly."""
    masks = jnp.zeros(x.shape[:-1], x.dtype)
    return np.asarray(convad(apply_fn, tau=tau, **options)(variables, x, masks))


def check_convad(apply_fn, variables, x, key, taus=(0.0, 0.5), atol=1e-5, poison=True, **options):
    """Theorem 1 and exact deactivation with one compiled ConvAD call per tau: the batch
    is [x with all-ones masks; x with random masks; x changed under those masks]; then the
    poisoning leak check (`check_poison`) on x with the random masks."""
    b = x.shape[0]
    masks = random_masks(key, b, *x.shape[1:-1])
    noise = 5.0 * jax.random.normal(jax.random.fold_in(key, 99), x.shape, x.dtype)
    x2 = jnp.where(masks[..., None] > 0, x, noise)
    xs = jnp.concatenate([x, x, x2])
    ms = jnp.concatenate([jnp.ones_like(masks), masks, masks])
    plain = np.asarray(jax.jit(apply_fn)(variables, x))
    scale = max(1.0, float(np.abs(plain).max()))
    for tau in taus:
        out = np.asarray(jax.jit(convad(apply_fn, tau=tau, **options))(variables, xs, ms))
        full, a, c = out[:b], out[b : 2 * b], out[2 * b :]
        np.testing.assert_allclose(full, plain, rtol=0, atol=atol * scale, err_msg=f"Theorem 1, tau={tau}")
        assert np.array_equal(a, c), f"tau={tau}: masked pixels leak, max diff {np.abs(a - c).max()}"
        assert np.isfinite(a).all()
        assert not np.allclose(a, plain), f"tau={tau}: the mask had no effect at all"
    if poison:
        check_poison(apply_fn, variables, x, masks, taus=taus, **options)
