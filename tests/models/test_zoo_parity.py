"""torchvision/timm ports (ResNet, VGG, RegNetY, EfficientNet-V2) against committed torch
fixtures (tools/make_parity_fixtures.py), without torch: pure-python .pth reader (both
formats) -> checked converter -> Flax logits and Grad-CAM-layer features."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.models import efficientnet_v2 as EV2
from rexjax.models import regnet as RN
from rexjax.models import resnet as R
from rexjax.models import vgg as V
from rexjax.models.convert.checks import CheckpointMismatchError
from rexjax.models.convert.pth import load_state_dict

from tests.helpers.zoo import FIXTURES, TINY


def _run(family: str, fmt: str):
    cls, cfg, convert, feat = TINY[family]
    sd = load_state_dict(FIXTURES / f"{family}_{fmt}.pth")
    variables = convert(sd, cfg)
    ref = np.load(FIXTURES / f"{family}.npz")
    x = jnp.asarray(ref["x"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    with jax.default_matmul_precision("highest"):
        logits, state = jax.jit(lambda v, x: cls(cfg).apply(v, x, mutable=["intermediates"]))(variables, x)
    return np.asarray(logits), np.asarray(state["intermediates"][feat][0]), ref


@pytest.mark.parametrize("family", sorted(TINY))
def test_logits_and_features_match_torch(family):
    logits, feature, ref = _run(family, "zip")
    assert logits.shape == ref["logits"].shape and np.abs(ref["logits"]).max() > 0.5  # not a vacuous check
    assert np.abs(logits - ref["logits"]).max() <= 1e-4
    assert feature.shape == ref["feature"].shape
    np.testing.assert_allclose(feature, ref["feature"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", sorted(TINY))
def test_legacy_and_zip_formats_read_identically(family):
    a = load_state_dict(FIXTURES / f"{family}_zip.pth")
    b = load_state_dict(FIXTURES / f"{family}_legacy.pth")
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def test_legacy_format_converts_to_same_logits():
    logits, _, ref = _run("regnety", "legacy")
    assert np.abs(logits - ref["logits"]).max() <= 1e-4


def test_missing_and_mismatched_keys_are_all_reported():
    _, cfg, convert, _ = TINY["resnet"]
    sd = load_state_dict(FIXTURES / "resnet_zip.pth")
    sd.pop("layer2.0.conv2.weight")
    sd["fc.weight"] = sd["fc.weight"][:, :-1]
    sd["extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointMismatchError) as e:
        convert(sd, cfg)
    problems = e.value.problems
    assert len(problems) == 3
    msg = str(e.value)
    assert "missing key 'layer2.0.conv2.weight' (expected shape (32, 32, 3, 3))" in msg
    assert "'fc.weight'" in msg and "expected shape (10, 512)" in msg
    assert "unexpected key 'extra.weight'" in msg


def test_wrong_architecture_checkpoint_names_first_bad_key():
    _, cfg, convert, _ = TINY["regnety"]
    sd = load_state_dict(FIXTURES / "resnet_zip.pth")
    with pytest.raises(CheckpointMismatchError) as e:
        convert(sd, cfg)
    first = str(e.value).splitlines()[0]
    assert "RegNet state_dict does not match the model: unexpected key 'conv1.weight'" in first
    problems = e.value.problems
    assert "missing key 'stem.conv.weight' (expected shape (8, 3, 3, 3))" in problems
    assert any("unexpected key 'layer1.0.conv1.weight'" in p for p in problems)


def test_truncated_checkpoint_fails_naming_a_key(tmp_path):
    data = (FIXTURES / "vgg_legacy.pth").read_bytes()
    bad = tmp_path / "vgg_truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"tensor '(features|classifier)\.\d+\.(weight|bias)'"):
        V.convert(load_state_dict(bad), TINY["vgg"][1])
    zbad = tmp_path / "vgg_zip_truncated.pth"
    zdata = (FIXTURES / "vgg_zip.pth").read_bytes()
    zbad.write_bytes(zdata[: len(zdata) // 2])
    with pytest.raises(ValueError):
        load_state_dict(zbad)


def test_vgg_classifier_permutation_matches_nchw_flatten():
    # Dense on the NHWC flatten with permuted weights == torch Linear on the NCHW flatten.
    rng = np.random.default_rng(0)
    cfg = V.VGGConfig(features=(3, "M"), hidden=5, pool=2, num_classes=4)
    w = rng.normal(size=(5, 3 * 2 * 2)).astype(np.float32)
    feats = rng.normal(size=(2, 3, 2, 2)).astype(np.float32)  # NCHW
    torch_out = feats.reshape(2, -1) @ w.T
    wp = V.permute_classifier({"classifier.0.weight": w}, cfg)["classifier.0.weight"]
    flax_out = feats.transpose(0, 2, 3, 1).reshape(2, -1) @ wp.T
    np.testing.assert_allclose(flax_out, torch_out, rtol=1e-5, atol=1e-6)


def _adaptive_ref(x, oh, ow):
    b, h, w, c = x.shape
    out = np.zeros((b, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            c0, c1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("hw", [(7, 7), (14, 21), (2, 3), (9, 10), (5, 13)])
def test_adaptive_avg_pool_matches_torch_bins(hw):
    x = np.random.default_rng(1).normal(size=(2, *hw, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(V.adaptive_avg_pool(jnp.asarray(x), (7, 7))), _adaptive_ref(x, 7, 7), rtol=1e-5, atol=1e-6)


def test_regnet_stages_follow_timm():
    # timm 1.0.31: regnety_120 stage widths/depths/groups (s1..s4 conv2 weights (224,112,3,3) ...)
    assert RN.regnet_stages(19, 168, 73.36, 2.37, 112) == ((224, 448, 896, 2240), (2, 5, 11, 1), (112,) * 4)
    assert RN.regnet_stages(6, 16, 10.0, 1.5, 8) == ((16, 24, 32, 56), (1, 1, 1, 3), (8,) * 4)
    with pytest.raises(ValueError, match="w0"):
        RN.regnet_stages(6, 12, 10.0, 1.5, 8)


def test_efficientnet_v2_depthwise_convs_are_named_equations():
    cls, cfg, _, _ = TINY["efficientnet_v2"]
    module = cls(cfg)
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.key(0), x)
    eqns = jax.make_jaxpr(module.apply)(variables, x).jaxpr.eqns
    names = [e.params.get("name") for e in eqns]
    assert names.count("depthwise_conv") == 4  # one per MBConv block (2 stages x 2)
    assert not any(e.params.get("feature_group_count", 1) > 1 for e in eqns)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="depths"):
        R.ResNetConfig(depths=(1, 1), planes=(64,))
    with pytest.raises(ValueError, match="group size"):
        RN.RegNetConfig(widths=(24,), depths=(1,), group_sizes=(16,))
    with pytest.raises(ValueError, match="features"):
        V.VGGConfig(features=(8, "X"))
    with pytest.raises(ValueError, match=r"x\[B,H,W,3\]"):
        R.ResNet(TINY["resnet"][1]).init(jax.random.key(0), jnp.zeros((1, 32, 32, 4)))


@pytest.mark.parametrize("hw", [(56, 56), (40, 48)])  # adaptive pool: identity (7x7) / slice-concat (5x6)
def test_vgg_under_convad(hw):
    """ConvAD (tests/ad covers the other families): all-ones mask -> plain logits
    (Theorem 1); values under a mask do not reach the logits."""
    from rexjax.ad import convad

    module = V.VGG(V.VGGConfig(features=(8, "M", 16, "M", 16, "M"), hidden=16, num_classes=10))
    x = jax.random.normal(jax.random.key(1), (1, *hw, 3))
    rng = np.random.default_rng(0)  # numpy values: compiling a random init is slow on CPU
    shapes = jax.eval_shape(module.init, jax.random.key(0), x)
    variables = jax.tree_util.tree_map(
        lambda s: jnp.asarray(rng.normal(size=s.shape).astype(np.float32) / np.sqrt(np.prod(s.shape[:-1]) or 1)),
        {"params": shapes["params"]},
    )
    mask = jnp.ones(x.shape[:3]).at[:, 5:30, 10:40].set(0.0)
    x2 = jnp.where(mask[..., None] > 0, x, 5.0 * jax.random.normal(jax.random.key(2), x.shape))
    f = jax.jit(convad(module.apply))
    with jax.default_matmul_precision("highest"):
        out = f(variables, jnp.concatenate([x, x, x2]), jnp.concatenate([jnp.ones_like(mask), mask, mask]))
        plain = module.apply(variables, x)
    np.testing.assert_allclose(out[0], plain[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[1], out[2], rtol=1e-5, atol=1e-5)
    assert np.abs(np.asarray(out[0] - out[1])).max() > 1e-4  # the mask does something
