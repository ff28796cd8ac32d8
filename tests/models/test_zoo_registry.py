"""Registry integration of the torchvision/timm ports: names, full-size parameter counts,
random init with a warning, `load(name, weights=PATH)` through the converter and cache."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax.models as M
from flax import traverse_util

from rexjax.models import registry
from rexjax.models import vgg as V
from rexjax.models.convert.checks import CheckpointMismatchError
from rexjax.models.model import variables_template
from rexjax.models.torch_port import dotted_key, imagenet_preprocess

from tests.helpers.zoo import FIXTURES, TINY

# torchvision 0.29 / timm 1.0.31 `sum(p.numel() for p in model.parameters())`
PARAMS = {
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "vgg16": 138_357_544,
    "efficientnet_v2_s": 21_458_488,
    "regnety_120": 51_822_544,
}
GRADCAM_LAYER = {
    "resnet50": "layer4",  # 7x7x2048
    "resnet101": "layer4",
    "vgg16": "last_conv",  # 14x14x512, conv5_3 after ReLU (Grad-CAM paper)
    "regnety_120": "stage4",
    "efficientnet_v2_s": "head",  # 12x12x1280 at 384
}
# a few hand-checked keys per architecture (torchvision 0.29 / timm 1.0.31 state_dicts)
TORCH_KEYS = {
    "resnet50": {"conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer4.2.bn3.bias", "fc.weight"},
    "resnet101": {"layer3.22.conv3.weight", "layer4.0.downsample.1.running_mean"},
    "vgg16": {"features.0.weight", "features.28.bias", "classifier.0.weight", "classifier.6.bias"},
    "regnety_120": {"stem.conv.weight", "s1.b1.se.fc1.bias", "s4.b1.downsample.bn.running_mean", "head.fc.weight"},
    "efficientnet_v2_s": {
        "features.0.0.weight", "features.1.0.block.0.1.weight", "features.2.0.block.1.0.weight",
        "features.4.0.block.2.fc2.weight", "features.6.14.block.3.1.running_var", "features.7.0.weight",
        "classifier.1.weight",
    },
}


def test_zoo_names_are_listed():
    assert set(PARAMS) <= set(M.known_models())


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_full_size_parameter_counts_and_torch_keys(name):
    spec = M.get_spec(name)
    assert spec.num_classes == 1000 and spec.default_weights is None  # no bundled weights
    template = variables_template(spec.make_module(), spec.input_size)  # jax.eval_shape: no compute
    assert sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(template["params"])) == PARAMS[name]
    got = {dotted_key(p) for p in traverse_util.flatten_dict(template)}
    assert TORCH_KEYS[name] <= got, TORCH_KEYS[name] - got
    assert spec.preprocess.size == spec.input_size
    # feature points exist, and the last spatial one (in feature_names order) is the Grad-CAM layer
    module = spec.make_module()
    x = jax.ShapeDtypeStruct((1, *spec.input_size, 3), jnp.float32)
    _, state = jax.eval_shape(lambda v, x: module.apply(v, x, mutable=["intermediates"]), template, x)
    shapes = {k: v[0].shape for k, v in state["intermediates"].items()}
    assert set(shapes) == set(spec.feature_names)
    spatial = [n for n in spec.feature_names if len(shapes[n]) == 4 and shapes[n][1] * shapes[n][2] > 1]
    assert spatial[-1] == GRADCAM_LAYER[name]


@pytest.mark.parametrize("name,family", [("vgg16", "vgg"), ("resnet50", "resnet"), ("regnety_120", "regnety")])
def test_load_wrong_checkpoint_names_first_bad_key(name, family):
    with pytest.raises(CheckpointMismatchError) as e:
        M.load(name, weights=FIXTURES / f"{family}_zip.pth", use_cache=False)
    first = str(e.value).splitlines()[0]
    assert "expected shape (" in first and "does not match the model" in first
    assert len(e.value.problems) > 1  # every bad key is listed, not only the first


def _register_tiny(family, monkeypatch):
    cls, cfg, convert, feat = TINY[family]
    name = f"_tiny_{family}"
    spec = M.ModelSpec(
        name=name,
        make_module=lambda: cls(cfg),
        input_size=(63, 72),
        num_classes=10,
        preprocess=imagenet_preprocess(64),
        convert=lambda sd, template: convert(sd, cfg),
        labels=lambda: [str(i) for i in range(10)],
        feature_names=(feat,),
    )
    monkeypatch.setattr(registry, "USER_MODELS", {})
    M.register(name, lambda: spec)
    return name, feat


def test_load_without_weights_warns_and_runs(monkeypatch):
    # random init compiles one RNG kernel per parameter shape (slow on CPU): a 3-shape VGG
    cfg = V.VGGConfig(features=(4, "M"), hidden=4, pool=1, num_classes=10)
    spec = M.ModelSpec("_tiny_vgg_init", lambda: V.VGG(cfg), (8, 8), 10, imagenet_preprocess(8),
                              labels=lambda: [str(i) for i in range(10)], feature_names=("last_conv",))
    monkeypatch.setattr(registry, "USER_MODELS", {})
    M.register(spec.name, lambda: spec)
    with pytest.warns(UserWarning, match="no weights found; initialising randomly"):
        model = M.load(spec.name)
    assert not model.has_weights and model.weights_path is None
    x = jnp.ones((1, 8, 8, 3))
    assert model(x).shape == (1, 10)
    assert model.features(x, ["last_conv"])["last_conv"].shape == (1, 8, 8, 4)


@pytest.mark.parametrize("family", ["vgg"])  # the custom-convert path; the rest use key_fn
def test_load_with_weights_through_registry_and_cache(family, monkeypatch):
    name, _ = _register_tiny(family, monkeypatch)
    ref = np.load(FIXTURES / f"{family}.npz")
    x = ref["x"].transpose(0, 2, 3, 1)
    for fmt in ("legacy", "zip", "zip"):  # the second zip load is served from the orbax cache
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no random-init warning when weights are given
            model = M.load(name, weights=FIXTURES / f"{family}_{fmt}.pth")
        assert model.has_weights
        with jax.default_matmul_precision("highest"):
            logits = model.apply_fn(model.variables, x)  # eager: no compile per load
        assert np.abs(np.asarray(logits) - ref["logits"]).max() <= 1e-4
