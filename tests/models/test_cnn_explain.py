"""End to end with random-weight `convnext_tiny` and `inception_v3` checkpoints written by the
test (no torch): the registry loads them through the checked converters, and ReX explains a
vendored image at a small input (ConvNeXt 64 px; Inception-v3 at 80 px, just above its 75 px
minimum), with occlusion (fast) and with ConvAD (slow); slow too: ReX with a tiny zoo ConvNeXt."""

from __future__ import annotations

from pathlib import Path

import flax
import numpy as np
import pytest

from rexjax import models
from rexjax.causal import Explainer, RexConfig
from rexjax.models.convert.checks import torch_shape
from rexjax.models.inception import inception_key
from rexjax.models.model import variables_template
from rexjax.models.preprocess import Preprocess
from tests.helpers.tiny_pth_model import write_weights

IMAGE = Path(__file__).resolve().parents[2] / "third_party" / "images" / "ladybird.jpg"
SIZES = {"convnext_tiny": 64, "inception_v3": 80}


def random_checkpoint(name: str, path, seed: int = 0) -> dict:
    """A zip .pth with the torch keys and shapes of zoo model `name`: weights N(0, 1/fan_in)
    (activations stay O(1)), BN variances 1 + |N|/5, other vectors N(0, 0.1)."""
    spec = models.get_spec(name)
    key_fn = spec.key_fn or {"inception_v3": inception_key}[name]
    rng = np.random.default_rng(seed)
    sd = {}
    for p, leaf in flax.traverse_util.flatten_dict(variables_template(spec.make_module(), spec.input_size)).items():
        shape = tuple(leaf.shape)
        if p[-1] == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            value = rng.standard_normal(torch_shape(shape, {4: "conv", 2: "dense"}[len(shape)]), dtype=np.float32) / np.sqrt(fan_in)
        elif p[-1] == "var":
            value = 1.0 + 0.2 * np.abs(rng.standard_normal(shape, dtype=np.float32))
        else:
            value = 0.1 * rng.standard_normal(shape, dtype=np.float32)
        sd[key_fn(p)] = np.asarray(value, np.float32)
    write_weights(path, sd=sd)
    return sd


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """name -> (model loaded from a random checkpoint, that checkpoint's state_dict), built once."""
    cache = {}

    def get(name):
        if name not in cache:
            path = tmp_path_factory.mktemp(name) / f"{name}.pth"
            sd = random_checkpoint(name, path)
            cache[name] = models.load(name, weights=path, use_cache=False), sd
        return cache[name]

    return get


# One family fast (inception_v3, occlusion: ~20 s on 2 idle cores, a checkpoint written, read
# and converted, ReX compiled at the small input); the others and ConvAD (~60 s more each) slow:
# they re-check the same path (each family's loading is pinned by tests/models/test_zoo_parity.py).
FAST = ("inception_v3", "zero")
CASES = [pytest.param(n, m, marks=[] if (n, m) == FAST else [pytest.mark.slow]) for n in sorted(SIZES)
         for m in ("zero", "ad")]


@pytest.mark.parametrize("name,mask_mode", CASES)
def test_rex_explains_a_vendored_image_with_a_random_checkpoint(loaded, name, mask_mode):
    model, sd = loaded(name)
    assert model.has_weights
    first = next(iter(sd))  # a value read back through the .pth reader and converter
    assert any(np.array_equal(np.asarray(a).ravel(), np.asarray(sd[first]).ravel()) for a in _leaves(model.variables))
    small = model.at_size(SIZES[name])
    x = small.preprocess(IMAGE)
    ex = Explainer(small, RexConfig().replace(iters=2), mask_mode=mask_mode)(x, key=0)
    assert ex.target == int(np.argmax(np.asarray(small(x[None]))[0]))
    assert ex.mask.shape == (SIZES[name],) * 2 and 0 < ex.mask.mean() < 1
    assert np.isfinite(ex.responsibility).all()  # random weights: responsibility may be all 0


@pytest.mark.slow  # convnext_tiny itself runs in the fast suite above
def test_rex_explains_a_vendored_image_with_a_tiny_zoo_convnext():
    """Fast: ReX (occlusion, 2 iterations) with the zoo's ConvNeXt module at a tiny config
    (random init), the registry model's preprocessing at 48 px."""
    from rexjax.models.convnext import ConvNeXt, ConvNeXtConfig
    from rexjax.models.model import Model
    from tests.helpers.ad_helpers import init_model

    module = ConvNeXt(ConvNeXtConfig(depths=(1, 1), dims=(8, 16), num_classes=10))
    x0 = np.zeros((1, 48, 48, 3), np.float32)
    pre = models.get_spec("convnext_tiny").preprocess
    model = Model("tiny_convnext", module, init_model(module, x0, seed=1), (48, 48), 10, tuple("abcdefghij"), False,
                  Preprocess((48, 48), pre.mean, pre.std, pre.resample), module.config.feature_names)
    x = model.preprocess(IMAGE)
    ex = Explainer(model, RexConfig.from_dict({"iters": 2, "min_box_size": 8}), mask_mode="zero")(x, key=0)
    assert ex.target == int(np.argmax(np.asarray(model(x[None]))[0]))
    assert ex.mask.shape == (48, 48) and 0 < ex.mask.mean() < 1
    assert np.isfinite(ex.responsibility).all()


def _leaves(tree):
    return flax.traverse_util.flatten_dict(tree).values()
