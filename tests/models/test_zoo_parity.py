"""torchvision/timm ports (ResNet, VGG, RegNetY, EfficientNet-V2) against committed torch
fixtures (tests/fixtures/zoo/make_parity_fixtures.py), without torch: pure-python .pth reader (both
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


# XLA:CPU without LLVM's expensive passes: the Inception twins (~250 convs) compile in ~7 s, not ~40 s
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _run(family: str, fmt: str):
    """Flax logits and Grad-CAM feature on the fixture input, in the reference's dtype
    (float64 references: the Inception fixtures, see tests/fixtures/zoo/make_parity_fixtures.py FLOAT64)."""
    cls, cfg, convert, feat = TINY[family]
    sd = load_state_dict(FIXTURES / f"{family}_{fmt}.pth")
    variables = convert(sd, cfg)
    ref = np.load(FIXTURES / f"{family}.npz")
    dtype = ref["logits"].dtype
    with jax.enable_x64(dtype == np.float64), jax.default_matmul_precision("highest"):
        variables = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), variables)
        x = jnp.asarray(ref["x"].transpose(0, 2, 3, 1), dtype)  # NCHW -> NHWC
        lowered = jax.jit(lambda v, x: cls(cfg).apply(v, x, mutable=["intermediates"])).lower(variables, x)
        logits, state = lowered.compile(compiler_options=FAST_COMPILE)(variables, x)
        assert logits.dtype == dtype
    return np.asarray(logits), np.asarray(state["intermediates"][feat][0]), ref


# ~30 s each on 2 cores (~250 BasicConvs to trace and compile); their blocks' conventions are
# covered fast by inception_v4 (count_include_pad=False) and tests/ad/test_zoo_cnn.py
SLOW_PARITY = {"inception_resnet_v2"}


# tighter where the port reaches ~2e-6 in float32 (ConvNeXt: the tanh-approximate GELU
# moves these logits by ~5e-5) or ~1e-12 in float64 (Inception: a wrong constant anywhere shows)
TOLERANCE = {"convnext": 1e-5, "convnextv2": 1e-5, "inception_v3": 1e-9, "inception_v4": 1e-9, "inception_resnet_v2": 1e-9}


def _maybe_slow(names, slow):
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in sorted(names)]


@pytest.mark.parametrize("family", _maybe_slow(TINY, SLOW_PARITY))
def test_logits_and_features_match_torch(family):
    logits, feature, ref = _run(family, "zip")
    assert logits.shape == ref["logits"].shape and np.abs(ref["logits"]).max() > 0.5  # not a vacuous check
    assert np.abs(ref["feature"][0] - ref["feature"][1]).max() > 1e-3  # the feature depends on the input
    tol = TOLERANCE.get(family, 1e-4)
    assert np.abs(logits - ref["logits"]).max() <= tol
    assert feature.shape == ref["feature"].shape
    np.testing.assert_allclose(feature, ref["feature"], rtol=tol, atol=tol)


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


# torchvision 0.29.1 / timm 1.0.31 `sum(p.numel() for p in model.parameters())`; inception_v3:
# 27,161,264 with the training-only AuxLogits head (3,326,696), which the port does not build
ISSUE14_PARAMS = {
    "convnext_tiny": 28_589_128,
    "convnext_small": 50_223_688,
    "convnext_base": 88_591_464,
    "convnext_large": 197_767_336,
    "convnextv2_large": 197_956_840,
    "convnextv2_huge": 660_289_640,
    "resnet152": 60_192_808,
    "resnet152d": 60_212_040,
    "vgg19": 143_667_240,
    "inception_v3": 27_161_264 - 3_326_696,
    "inception_v4": 42_679_816,
    "inception_resnet_v2": 55_843_464,
}
# hand-checked keys of the full-size torchvision/timm state_dicts
ISSUE14_KEYS = {
    "convnext_tiny": {"features.0.0.weight", "features.1.2.layer_scale", "features.5.8.block.0.bias", "features.6.1.weight", "classifier.2.weight"},
    "convnextv2_huge": {"stem.1.bias", "stages.2.blocks.26.mlp.grn.weight", "stages.3.downsample.1.weight", "stages.1.blocks.0.conv_dw.weight", "head.norm.weight"},
    "resnet152d": {"conv1.6.weight", "conv1.4.running_var", "layer1.0.downsample.1.weight", "layer3.35.bn3.bias", "layer4.0.downsample.2.running_mean"},
    "vgg19": {"features.34.weight", "classifier.6.bias"},
    "inception_v3": {"Conv2d_4a_3x3.conv.weight", "Mixed_6e.branch7x7dbl_5.bn.running_var", "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.bias"},
    "inception_v4": {"features.3.conv.conv.weight", "features.21.branch2_3b.bn.bias", "features.17.branch3.1.conv.weight", "last_linear.weight"},
    "inception_resnet_v2": {"repeat_1.19.conv2d.bias", "repeat.9.branch2.2.bn.weight", "block8.conv2d.weight", "conv2d_7b.bn.running_mean", "classif.weight"},
}


IMAGENET = (0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)
INCEPTION = (127.5,) * 3, (127.5,) * 3
# (eval size, resample, (mean, std)) as the source's default weights define them
ISSUE14_PREPROCESS = {
    **{n: (224, "bilinear", IMAGENET) for n in ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large", "resnet152", "vgg19")},
    "convnextv2_large": (224, "bicubic", IMAGENET),
    "convnextv2_huge": (384, "bicubic", IMAGENET),
    "resnet152d": (256, "bicubic", IMAGENET),
    "inception_v3": (299, "bilinear", IMAGENET),
    "inception_v4": (299, "bicubic", INCEPTION),
    "inception_resnet_v2": (299, "bicubic", INCEPTION),
}


@pytest.mark.parametrize("name", _maybe_slow(ISSUE14_PARAMS, {"inception_v4", "inception_resnet_v2"}))  # 5-8 s traces
def test_parameter_counts_keys_and_preprocessing(name):
    import rexjax.models as M
    from flax import traverse_util
    from rexjax.models.inception import inception_key
    from rexjax.models.model import variables_template
    from rexjax.models.torch_port import dotted_key

    spec = M.get_spec(name)
    template = variables_template(spec.make_module(), spec.input_size)  # jax.eval_shape: no compute
    assert sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(template["params"])) == ISSUE14_PARAMS[name]
    key_fn = spec.key_fn or {"vgg19": dotted_key, "inception_v3": inception_key}[name]  # these two convert via `prepare`
    keys = {key_fn(p) for p in traverse_util.flatten_dict(template)}
    assert ISSUE14_KEYS.get(name, set()) <= keys, ISSUE14_KEYS[name] - keys
    size, resample, (mean, std) = ISSUE14_PREPROCESS[name]
    pre = spec.preprocess
    assert spec.input_size == pre.size == (size, size) and pre.resample == resample
    np.testing.assert_allclose(pre.mean, mean) and np.testing.assert_allclose(pre.std, std)


def test_inception_v3_converter_drops_only_the_aux_head():
    """AuxLogits.* (training only) are dropped; every other bad key is still named."""
    _, cfg, convert, _ = TINY["inception_v3"]
    sd = load_state_dict(FIXTURES / "inception_v3_zip.pth")
    assert any(k.startswith("AuxLogits.") for k in sd)
    sd.pop("Mixed_6e.branch7x7dbl_5.conv.weight")
    sd["AuxLogits.conv9.weight"] = np.zeros(3, np.float32)
    sd["Mixed_7c.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointMismatchError) as e:
        convert(sd, cfg)
    assert e.value.problems == [
        "unexpected key 'Mixed_7c.extra.weight' (shape (3,))",
        "missing key 'Mixed_6e.branch7x7dbl_5.conv.weight' (expected shape (12, 12, 1, 7))",
    ]


def _torch_avg_pool_1d_ref(x, k, s, p, ceil_mode, count_include_pad):
    """aten avg_pool2d (pooling_shape.h / AvgPoolKernel.cpp) along axis 1, by loops."""
    n = x.shape[1]
    span = n + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    res = []
    for o in range(out):
        start, end = o * s - p, min(o * s - p + k, n + p)
        pool_size = end - start
        lo, hi = max(start, 0), min(end, n)
        div = pool_size if count_include_pad else hi - lo
        res.append(x[:, lo:hi].sum(axis=1) / div)
    return np.stack(res, axis=1)


@pytest.mark.parametrize(
    "k,s,p,ceil_mode,cip",
    [(3, 1, 1, False, True), (3, 1, 1, False, False), (2, 2, 0, True, False), (3, 2, 1, True, True), (3, 2, 1, True, False), (5, 3, 0, False, True)],
)
def test_avg_pool2d_matches_aten_definition(k, s, p, ceil_mode, cip):
    from rexjax.models.pooling import avg_pool2d

    x = np.random.default_rng(0).normal(size=(1, 13, 8, 2)).astype(np.float32)
    want = _torch_avg_pool_1d_ref(x, k, s, p, ceil_mode, cip)  # rows
    want = _torch_avg_pool_1d_ref(want.transpose(0, 2, 1, 3), k, s, p, ceil_mode, cip).transpose(0, 2, 1, 3)  # columns
    got = np.asarray(avg_pool2d(jnp.asarray(x), k, s, p, ceil_mode=ceil_mode, count_include_pad=cip))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
