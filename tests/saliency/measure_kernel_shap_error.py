"""Measures the sampling error of sampled KernelSHAP: the numbers behind the tolerance of
tests/saliency/test_shapley_lime.py::test_kernel_shap_sampling_error_is_the_measured_one.

    .venv/bin/python -m tests.saliency.measure_kernel_shap_error [N_SAMPLES] [KEYS] [--uniform] [--pairwise]

Default game (the test's): 10 superpixels (2 x 5 blocks of a 6 x 10 all-ones image), class-1
score `unanimity10(v) = 0.6 v0 v1 v2 v3 v4 + 0.2 v5 + 0.2 max(v6, v7) - 0.1 v8 v9` (a 5-way
interaction: where the coalition-size law matters); `--pairwise` uses the 6-superpixel
`nonlinear` game of the older test (order <= 2, where every symmetric size law gives the
Shapley value, so it cannot tell the laws apart). One KernelSHAP run per key 0..KEYS-1 with
N_SAMPLES coalitions (fewer than 2^M - 2: sampled, not enumerated); prints the exact Shapley
values (brute force), the bias (mean error +- its standard error), the per-component
standard deviation and quantiles of max_j |phi_j - exact_j|. `--uniform` draws coalition
sizes uniformly (the mutation the test must catch).
"""

import importlib
import itertools
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from tests.helpers.saliency_models import visible_game

K = importlib.import_module("rexjax.saliency.kernel_shap")
SEG10 = np.repeat(np.repeat(np.arange(10).reshape(2, 5), 3, 0), 2, 1)  # 6 x 10, 10 superpixels
SEG6 = np.repeat(np.repeat(np.arange(6).reshape(2, 3), 4, 0), 3, 1)


def unanimity10(v):
    xp = jnp if isinstance(v, jax.Array) else np
    return 0.6 * v[:, 0] * v[:, 1] * v[:, 2] * v[:, 3] * v[:, 4] + 0.2 * v[:, 5] \
        + 0.2 * xp.maximum(v[:, 6], v[:, 7]) - 0.1 * v[:, 8] * v[:, 9]


def pairwise6(v):
    xp = jnp if isinstance(v, jax.Array) else np
    return 0.3 * v[:, 0] * v[:, 1] - 0.05 * v[:, 5] * v[:, 0] + 0.2 * v[:, 2] + 0.1 * xp.maximum(v[:, 3], v[:, 4]) + 0.1


def exact_shapley(f, m):
    """Brute force over all 2^M coalitions (numpy)."""
    z = np.array(list(itertools.product((0.0, 1.0), repeat=m)))
    value = dict(zip(map(tuple, z.astype(int)), f(z)))
    phi = np.zeros(m)
    for key, v in value.items():
        s = sum(key)
        for i in range(m):
            if key[i] == 0:
                with_i = key[:i] + (1,) + key[i + 1:]
                phi[i] += math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) * (value[with_i] - v)
    return phi


def uniform_sizes(key, n, m):
    ks, kp = jax.random.split(key)
    s = jax.random.randint(ks, (n,), 1, m)
    ranks = jnp.argsort(jnp.argsort(jax.random.uniform(kp, (n, m)), axis=1), axis=1)
    return (ranks < s[:, None]).astype(jnp.float32)


def errors(n, keys, seg, game):
    m = int(seg.max()) + 1
    ks = K.kernel_shap(n_samples=n, batch_size=n)
    clf = visible_game(seg, game)
    x = jnp.ones(seg.shape + (3,))
    exact = exact_shapley(game, m)
    phis = np.array([np.asarray(ks(clf, x, 1, key=jax.random.key(k), segments=seg).record.shap_values)
                     for k in range(keys)])
    return exact, phis - exact


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 500
    keys = int(args[1]) if len(args) > 1 else 1000
    if "--uniform" in sys.argv:
        K.sample_coalitions = uniform_sizes
    seg, game = (SEG6, pairwise6) if "--pairwise" in sys.argv else (SEG10, unanimity10)
    t = time.time()
    exact, err = errors(n, keys, seg, game)
    print(f"game {game.__name__}, n_samples {n}, {keys} keys, uniform sizes: {'--uniform' in sys.argv}, "
          f"{time.time() - t:.1f} s")
    print("exact            ", np.round(exact, 4))
    print("bias             ", np.round(err.mean(0), 4), "+-", np.round(err.std(0, ddof=1) / np.sqrt(keys), 4))
    print("sd per component ", np.round(err.std(0, ddof=1), 4))
    q = np.quantile(np.abs(err).max(1), [0.5, 0.99, 0.999, 1.0])
    print("max_j|err| q50/q99/q99.9/max", np.round(q, 4))
    print("key 0: err", np.round(err[0], 4), "max", np.round(np.abs(err[0]).max(), 4))


if __name__ == "__main__":
    main()
