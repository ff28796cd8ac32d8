"""Several images in lockstep and split over devices.

The marked oracles read their hidden patches from the image itself, so images with different
layouts in one lockstep call have different explanations: a mix-up of rows, keys, targets or
thresholds between images shows up as a different map. Every lockstep result must equal the
explanation of that image alone (maps, masks, depths, mutants) and the summed forward images
must be the rows pushed.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rexjax
from rexjax.causal import Explainer, RexConfig
from tests.helpers import oracles

H, W, SIZE = 32, 40, 8
CONFIG = dict(iters=3, batch_size=16)  # keywords of rexjax.explain / explain_many


def explainer_of(model, **fields):
    """The Explainer of `model` with CONFIG and RexConfig `fields`."""
    return Explainer(model, RexConfig.from_dict({"iters": CONFIG["iters"], **fields}), batch_size=CONFIG["batch_size"])


def layouts(n, mode="or"):
    out = []
    for k in range(n):
        patches = oracles.random_patches(H, W, SIZE, 2, np.random.default_rng(k))
        out.append(oracles.marked_image(H, W, patches, seed=k))
    return out


def assert_same(a, b):
    np.testing.assert_array_equal(a.responsibility, b.responsibility)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert (a.target, a.sufficient, a.iteration_depths, a.mutants, a.explanation_confidence) == (
        b.target, b.sufficient, b.iteration_depths, b.mutants, b.explanation_confidence)


def test_lockstep_equals_one_by_one():
    """3 images x 3 iterations in one device call per round, keys 5, 6, 7, one target that
    is not the top-1 class, rule "sufficient" with queue_len 2: each as alone; the rows
    pushed are the mutants plus at most one padded batch per round, never more than one by one."""
    explainer = explainer_of(oracles.marked_oracle(SIZE * SIZE, "or"), responsibility="sufficient", queue_len=2)
    images, keys, targets = layouts(3), [5, 6, 7], [None, 0, None]
    many = explainer.explain_many(images, keys=keys, targets=targets)
    alone = [explainer(im, key=k, target=t) for im, k, t in zip(images, keys, targets)]
    for a, b in zip(many, alone):
        assert_same(a, b)
    assert len({m.responsibility.tobytes() for m in many}) == 3  # the layouts differ
    pushed, mutants = sum(m.forward_images_map for m in many), sum(m.mutants for m in many)
    assert mutants <= pushed <= min(mutants + 15 * 12, sum(a.forward_images_map for a in alone))


def test_explain_many_checks_its_arguments():
    model = oracles.marked_oracle(SIZE * SIZE, "or")
    with pytest.raises(ValueError, match="one entry per image"):
        rexjax.explain_many(model, layouts(2), keys=[0], **CONFIG)
    with pytest.raises(ValueError, match="lockstep"):
        rexjax.explain_many(model, layouts(2), keys=[0, 1], lockstep=0, **CONFIG)
    with pytest.raises(ValueError, match="one shape"):
        explainer_of(model).explain_many([layouts(1)[0], np.zeros((H, W + 2, 3), np.float32)], keys=[0, 1])


SHARDED = textwrap.dedent(
    """
    import jax, numpy as np, rexjax
    from tests.causal.test_lockstep import CONFIG, SIZE, assert_same, layouts
    from tests.helpers import oracles
    assert len(jax.local_devices()) == 4, jax.local_devices()
    model = oracles.marked_oracle(SIZE * SIZE, "and")
    images, keys = layouts(5, "and"), [0, 1, 2, 3, 4]
    many = rexjax.explain_many(model, images, keys=keys, lockstep=2, **CONFIG)  # one group of 8 lanes, 3 idle
    alone = [rexjax.explain(model, im, key=k, **CONFIG) for im, k in zip(images, keys)]
    for a, b in zip(many, alone):
        assert_same(a, b)
    print("sharded ok", [round(e.area, 3) for e in many])
    """
)


def test_sharded_over_four_host_devices_equals_single_device():
    """XLA_FLAGS=--xla_force_host_platform_device_count=4 in a subprocess: explain_many over
    4 devices (5 images, so idle padding lanes too) gives each image's single-device result."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = subprocess.run([sys.executable, "-c", SHARDED], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "sharded ok" in run.stdout, run.stderr[-3000:]
