"""Shared checks for ConvAD tests: Theorem 1 and exact deactivation on any model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.ad import convad


def perturb_variables(variables, key, scale=0.1):
    """Random init made non-trivial: BN stats/scales away from (0, 1), so BN(0) != 0."""
    leaves, tree = jax.tree_util.tree_flatten_with_path(variables)
    keys = jax.random.split(key, len(leaves))
    out = []
    for (path, a), k in zip(leaves, keys):
        noise = scale * jax.random.normal(k, a.shape, a.dtype)
        name = str(path[-1])
        out.append(jnp.abs(a + noise) + 0.5 if "var" in name else a + noise)
    return jax.tree_util.tree_unflatten(tree, out)


def random_masks(key, b, h, w):
    """Half boxes, half scattered pixels: f32[b, h, w], 1 = visible, each with both values."""
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    masks = []
    for i in range(b):
        m = np.ones((h, w), np.float32)
        if i % 2 == 0:
            r0, c0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
            r1, c1 = rng.integers(r0 + h // 4, h + 1), rng.integers(c0 + w // 4, w + 1)
            m[r0:r1, c0:c1] = 0
        else:
            m = (rng.random((h, w)) < 0.7).astype(np.float32)
        masks.append(m)
    return jnp.asarray(np.stack(masks))


def check_theorem1(apply_fn, variables, x, taus=(0.0, 0.5), atol=1e-5, **options):
    """All-ones mask: ConvAD logits equal the plain model's (Theorem 1)."""
    plain = np.asarray(jax.jit(apply_fn)(variables, x))
    ones = jnp.ones(x.shape[:3], jnp.float32)
    for tau in taus:
        out = np.asarray(jax.jit(convad(apply_fn, tau=tau, **options))(variables, x, ones))
        scale = max(1.0, float(np.abs(plain).max()))
        np.testing.assert_allclose(out, plain, rtol=0, atol=atol * scale, err_msg=f"tau={tau}")


def check_exact_deactivation(apply_fn, variables, x, key, taus=(0.0, 0.5), **options):
    """Two inputs that differ only under the mask give bitwise identical logits."""
    masks = random_masks(key, x.shape[0], x.shape[1], x.shape[2])
    noise = 5.0 * jax.random.normal(jax.random.fold_in(key, 99), x.shape, x.dtype)
    x2 = jnp.where(masks[..., None] > 0, x, noise)
    plain = np.asarray(jax.jit(apply_fn)(variables, x))
    for tau in taus:
        f = jax.jit(convad(apply_fn, tau=tau, **options))
        a, b = np.asarray(f(variables, x, masks)), np.asarray(f(variables, x2, masks))
        assert np.array_equal(a, b), f"tau={tau}: masked pixels leak, max diff {np.abs(a - b).max()}"
        assert np.isfinite(a).all()
        assert not np.allclose(a, plain), f"tau={tau}: the mask had no effect at all"
