"""ReX on signals x[N, C] and volumes x[D, H, W, C] whose true explanation is known.

Planted oracles (tests/helpers/oracles.py `marked_oracle`, the 2-D test_oracles.py's, on any
spatial rank): class 1 iff every element of a planted segment (1-D, 8 of 64) or cube (3-D,
3x3x3 of 8x8x8) is visible, either of two (OR) or both (AND); the planted elements are the
brightest (1.0, others <= 0.95) and a hidden element is 0. And a small trained model per
rank, trained here with optax in a few seconds on a synthetic task (a 1-D conv net that
detects a bump, a 3-D one that detects a bright cube). Checked on each: the explanation is
sufficient (the target is still top-1 with only the explanation shown), holds what is
needed, and its size is at most 2x the needed elements at the median over the seeds and 3x
at the worst.

Both ranks run RexConfig's defaults (measured over 8 seeds: 1-D OR and AND median 1.4x,
worst 1.5x). A volume's prune tries twice an image's cells per call (`extract.prune_cells`):
with 32, as on images, a g^3 grid left most touched cells untried and the AND oracle reached
median 3.2x, worst 4.6x the needed voxels (one OR seed 5.1x; without any prune AND median
6.0x); with 64, OR 1.0x on all 8 seeds, AND median 1.07x, worst 1.3x. A mutation back to 32
cells for volumes fails `test_planted_or_and`.
"""

import numpy as np
import pytest
import scipy.ndimage

import jax
import jax.numpy as jnp

from rexjax.causal import Explainer, RexConfig
from rexjax.classifier import Classifier
from tests.helpers import oracles

SEEDS = range(6)
CASES = {1: ((64,), 8, {}), 3: ((8, 8, 8), 3, {})}  # shape, side, RexConfig fields


def _bounds(ratios):
    assert np.median(ratios) <= 2.0 and max(ratios) <= 3.0, np.round(ratios, 2)


@pytest.mark.parametrize("rank", sorted(CASES))
@pytest.mark.parametrize("mode", ["or", "and"])
def test_planted_or_and(rank, mode):
    """Catches credit painted on the wrong children (the map must favour the planted
    elements: mean responsibility inside above the mean outside, every seed; measured 1.14x
    to 2.8x) and an engine that cannot isolate the regions (size bounds); AND also needs both
    regions in the mask. (The prune rescues the size of a map that ignores an axis: the
    rendering itself is pinned by test_nd.py.)"""
    shape, size, fields = CASES[rank]
    explainer = Explainer(oracles.marked_oracle(size**rank, mode), RexConfig().replace(**fields))
    ratios = []
    for seed in SEEDS:
        planted = oracles.random_boxes(shape, size, 2, np.random.default_rng(seed), gap=2)
        ex = explainer(oracles.marked_input(shape, planted, seed), key=seed)
        held = [bool(ex.mask[p].all()) for p in planted]
        assert ex.target == 1 and ex.sufficient and ex.mask.shape == shape
        assert all(held) if mode == "and" else any(held), (seed, held)
        union = planted[0] | planted[1]
        assert ex.responsibility[union].mean() > ex.responsibility[~union].mean(), seed
        ratios.append(ex.mask.sum() / (size**rank * (2 if mode == "and" else 1)))
    _bounds(ratios)


# --- trained models -------------------------------------------------------------------------
BACKGROUND = 0.2  # background elements uniform in [0, 0.2]; the planted region is 1.0


def _sample(rng, shape, size, positive):
    """f32[*shape, 1] background noise with, when positive, a cube of side `size` at 1.0;
    -> (x, planted bool[*shape])."""
    x = rng.uniform(0.0, BACKGROUND, shape + (1,)).astype(np.float32)
    corner = tuple(int(rng.integers(0, n - size + 1)) for n in shape)
    planted = oracles.box_mask(shape, corner, size) if positive else np.zeros(shape, bool)
    x[planted] = 1.0
    return x, planted


def _train(rank, steps=100, seed=0):
    """A conv net (one k-D conv, ReLU, global max, dense) trained with Adam on 256 examples;
    -> (Classifier, test accuracy on 200 fresh examples)."""
    import flax.linen as nn
    import optax

    shape, size, _ = CASES[rank]

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.relu(nn.Conv(8, (3,) * rank)(x))
            return nn.Dense(2)(h.max(axis=tuple(range(1, rank + 1))))

    rng = np.random.default_rng(seed)
    data = [_sample(rng, shape, size, i % 2 == 1) for i in range(456)]
    xs = jnp.asarray(np.stack([d[0] for d in data]))
    ys = jnp.asarray(np.arange(456) % 2)
    net = Net()
    params = net.init(jax.random.key(seed), xs[:1])
    opt = optax.adam(1e-2)

    @jax.jit
    def step(params, state):
        loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(net.apply(p, xs[:256]), ys[:256]).mean()
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    accuracy = float((net.apply(params, xs[256:]).argmax(-1) == ys[256:]).mean())
    return Classifier(lambda xb: net.apply(params, xb), name=f"cube{rank}d"), accuracy


@pytest.mark.parametrize("rank", sorted(CASES))
def test_trained_detector(rank):
    """A learnt model, not a rule: the explanation is sufficient, touches the planted region
    and stays within the reach of the conv units that see it (the region dilated by 2, the
    kernel's width - 1; catches an explanation made of background), and is within the size
    bounds relative to it. (A detector fires on part of the region: measured 0.4-0.5x of the
    segment in 1-D, 0.2-0.3x of the cube in 3-D.)"""
    shape, size, fields = CASES[rank]
    clf, accuracy = _train(rank)
    assert accuracy >= 0.95, accuracy  # the task is learnt (precondition of the test)
    explainer = Explainer(clf, RexConfig().replace(**fields))
    ratios = []
    rng = np.random.default_rng(100)
    for seed in SEEDS:
        x, planted = _sample(rng, shape, size, True)
        ex = explainer(x, key=seed)
        assert ex.target == 1 and ex.sufficient, seed
        reach = scipy.ndimage.binary_dilation(planted, np.ones((5,) * rank, bool))
        assert (ex.mask & planted).any() and not (ex.mask & ~reach).any(), (seed, np.argwhere(ex.mask).tolist())
        ratios.append(ex.mask.sum() / planted.sum())
    _bounds(ratios)
