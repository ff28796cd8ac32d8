"""The Method contract, for all 12 registered explainers on one tiny counting CNN:

* same key -> identical map; a different key -> a different map for stochastic methods and
  the same map for deterministic ones;
* batch size 3 vs 32 -> the same map (1e-5): chunking never changes results;
* `forward_images` equals the rows the model really saw (counted by `jax.debug.callback`
  inside the model), padding included;
* the result is an `Attribution` with a finite, non-constant f32[H, W] map;
* one signature, `method(classifier, x, target=None, *, key)`: the key is keyword only and
  required, and `target=None` explains the top-1 class.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import methods
from rexjax.classifier import Classifier
from rexjax.types import Attribution
from tests.helpers.counting import CountingModel

H, W = 24, 24
X = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (H, W, 3)), jnp.float32)

SMALL = {
    "rex": dict(iters=2),
    "rise": dict(n_masks=20, grid=4),
    "shape": dict(n_masks=20, grid=4),
    "occlusion": dict(window=8, stride=8),
    "kernel_shap": dict(n_samples=20, superpixel="grid"),
    "lime": dict(n_samples=20, superpixel="grid"),
    "integrated_gradients": dict(n_steps=5),
    "gradient_shap": dict(n_samples=5, stdev=0.1),
    "noise_tunnel": dict(n_samples=2, base_config=dict(n_steps=3)),
    "lrp": dict(),
    "gradcam": dict(),
    "gradcam_pp": dict(),
    "extremal": dict(n_steps=5, stride=8),
}
STOCHASTIC = {"rex", "rise", "shape", "kernel_shap", "lime", "gradient_shap", "noise_tunnel"}


def test_every_registered_method_is_covered():
    assert sorted(SMALL) == sorted(methods.names())


@pytest.fixture(scope="module")
def model():
    m = CountingModel(jax.random.key(3))
    clf = Classifier(m, features=m.features_and_logits)
    return m, clf, int(jnp.argmax(clf.full_probs(X)))


def run(name, model, batch_size, key):
    m, clf, target = model
    method = methods.make(name, shared={"batch_size": batch_size}, **SMALL[name])
    m.reset()
    out = method(clf, X, target, key=key)
    out_map = np.asarray(jax.block_until_ready(out.map))
    jax.effects_barrier()
    return out, out_map, m.rows


@pytest.mark.parametrize("name", sorted(SMALL))
def test_method_contract(name, model):
    out, a, rows = run(name, model, 3, 7)
    assert isinstance(out, Attribution)
    assert a.shape == (H, W) and a.dtype == np.float32 and np.isfinite(a).all() and a.std() > 0
    assert out.forward_images == rows > 0, f"{name}: reported {out.forward_images}, model saw {rows}"

    _, again, _ = run(name, model, 3, 7)
    np.testing.assert_array_equal(a, again)

    _, other, _ = run(name, model, 3, 8)
    if name in STOCHASTIC:
        assert not np.array_equal(a, other), f"{name}: a different key gave the same map"
    else:
        np.testing.assert_array_equal(a, other)

    big, b, rows_big = run(name, model, 32, 7)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    assert big.forward_images == rows_big


@pytest.mark.parametrize("name", sorted(SMALL))
def test_key_is_keyword_only_and_required(name, model):
    """Catches a method that runs without a key (a silent default) or takes it positionally."""
    _, clf, target = model
    method = methods.make(name, **SMALL[name])
    with pytest.raises(ValueError, match=r"^key is required"):
        method(clf, X, target)
    with pytest.raises(ValueError, match=r"^key is required"):
        method(clf, X, target, key=None)
    with pytest.raises(TypeError):
        method(0, clf, X, target)  # the old order: key first


def test_target_none_is_the_top1_class(model):
    """Catches `target=None` resolved to anything but argmax of the full-image probabilities
    (e.g. class 0, or the least likely class)."""
    _, clf, target = model
    probs = np.asarray(clf.full_probs(X))
    assert target == probs.argmax() and target != 0 and target != probs.argmin()
    method = methods.make("occlusion", window=8, stride=8)
    implicit = method(clf, X, key=0)
    np.testing.assert_array_equal(implicit.map, method(clf, X, target, key=0).map)
    assert not np.array_equal(implicit.map, method(clf, X, 0, key=0).map)


def test_x_must_be_an_image(model):
    _, clf, target = model
    with pytest.raises(ValueError, match=r"x must be an image \[H, W, C\]"):
        methods.make("occlusion", window=8, stride=8)(clf, X[None], key=0)


def test_accepts_lists_rex_config_fields_without_function_attributes():
    """Catches `accepts` reading a function attribute (`rex.options`) or forgetting the
    fields the ReX factory takes through `**config` (flat fields of every part)."""
    fac = methods.factory("rex")
    assert not hasattr(fac, "options")
    got = methods.accepts("rex")
    assert {"iters", "tree_depth", "responsibility", "min_confidence", "prefix_growth", "spatial", "spotlight",
            "mask_mode", "batch_size"} <= got
    assert "n_masks" not in got and methods.accepts("rise") >= {"n_masks", "mask_mode", "batch_size"}
    # shared options reach ReX through its fields, and a wrong name is refused
    assert methods.make("rex", shared={"iters": 3, "n_masks": 5}).config == {"iters": 3}


def test_unknown_method_and_option():
    with pytest.raises(ValueError, match="unknown method 'deeplift'"):
        methods.make("deeplift")
    with pytest.raises(ValueError, match="n_mask"):
        methods.make("rise", n_mask=10)
    assert methods.canonical("IG") == "integrated_gradients"
