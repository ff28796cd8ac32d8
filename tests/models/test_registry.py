"""Registry: the name -> family table (no import side effects), load/list/register,
random-init warning, orbax cache, checked conversion."""

import dataclasses
import os
import shutil
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax.models as M
from rexjax.models import registry
from rexjax.models.convert.checks import CheckpointMismatchError, convert_state_dict
from rexjax.models.convert.pth import load_state_dict
from rexjax.models.efficientnet_lite import EfficientNetLite, bundled_weights, torch_key
from rexjax.models.model import variables_template


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3), name="conv")(x)
        x = nn.BatchNorm(use_running_average=True, name="bn")(x)
        self.sow("intermediates", "feat", x)
        return nn.Dense(5, name="fc")(x.mean(axis=(1, 2)))


@pytest.fixture
def tiny(monkeypatch):
    spec = M.ModelSpec(
        name="tiny", make_module=Tiny, input_size=(8, 6), num_classes=5,
        labels=lambda: tuple("abcde"), feature_names=("feat",),
    )
    monkeypatch.setattr(registry, "USER_MODELS", {})
    M.register("tiny", lambda: spec)
    return spec


def test_import_loads_no_family_module():
    code = "import rexjax.models, sys; print(*[m for m in sys.modules if m.startswith('rexjax.models.')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert loaded and not loaded & set(registry.FAMILIES.values()), loaded


@pytest.mark.parametrize("name", sorted(registry.FAMILIES))
def test_every_table_name_resolves_to_its_spec(name):
    spec = M.get_spec(name)
    assert isinstance(spec, M.ModelSpec) and spec.name == name
    assert name in M.known_models()


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError, match="efficientnet_lite0") as e:
        M.load("resnet9000")
    assert "resnet9000" in str(e.value)
    assert all(name in str(e.value) for name in registry.FAMILIES)


def test_random_init_warns_and_model_record(tiny):
    with pytest.warns(UserWarning, match="randomly"):
        m = M.load("tiny")
    assert not m.has_weights and m.weights_path is None
    assert m.input_size == (8, 6) and m.num_classes == 5 and m.labels == tuple("abcde")
    assert set(m.variables) == {"params", "batch_stats"}
    assert m.param_count == 3 * 3 * 3 * 4 + 4 + 4 + 4 + 4 * 5 + 5
    x = jnp.ones((2, 8, 6, 3))
    np.testing.assert_allclose(m(x), m.apply_fn(m.variables, x), rtol=1e-6)
    assert m.features(x)["feat"].shape == (2, 8, 6, 4)
    assert m.preprocess(np.zeros((20, 30, 3), np.uint8)).shape == (8, 6, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "other"


def test_register_validates(tiny):
    with pytest.raises(ValueError, match="already registered"):
        M.register("tiny", lambda: tiny)
    with pytest.raises(ValueError, match="callable"):
        M.register("x", 3)
    with pytest.raises(ValueError, match="already registered"):
        M.register("resnet50", lambda: tiny)
    M.register("resnet50", lambda: tiny, overwrite=True)  # a user model may shadow a zoo name
    assert M.get_spec("resnet50") is tiny


def test_list_models_has_lite_family():
    infos = {i.name: i for i in M.list_models(["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])}
    for name, size in [("efficientnet_lite0", 224), ("efficientnet_lite1", 240), ("efficientnet_lite2", 260)]:
        assert infos[name].input_size == (size, size) and infos[name].has_weights
    assert infos["efficientnet_lite0"].param_count == 4_652_008


def test_cache_hit_gives_identical_params(tmp_path, monkeypatch):
    monkeypatch.setenv("REXJAX_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "lite0.pth"
    shutil.copy(bundled_weights(0), src)
    calls = []
    real = registry.convert_weights
    monkeypatch.setattr(registry, "convert_weights", lambda *a: calls.append(1) or real(*a))
    a = M.load("efficientnet_lite0", weights=src)
    assert len(calls) == 1 and len(os.listdir(tmp_path / "cache")) == 1
    b = M.load("efficientnet_lite0", weights=src)
    assert len(calls) == 1  # second load restored from the orbax cache
    for x, y in zip(jax.tree_util.tree_leaves(a.variables), jax.tree_util.tree_leaves(b.variables)):
        np.testing.assert_array_equal(x, y)
    assert jax.tree_util.tree_structure(a.variables) == jax.tree_util.tree_structure(b.variables)
    os.utime(src, ns=(1, 1))  # the cache is keyed on content: a touched file is still a hit
    M.load("efficientnet_lite0", weights=src)
    assert len(calls) == 1


def test_wrong_checkpoint_names_first_bad_key(tmp_path):
    with pytest.raises(CheckpointMismatchError, match=r"_blocks\.3\._depthwise_conv\.weight.*expected shape \(144, 1, 5, 5\)\n") as e:
        M.load("efficientnet_lite0", weights=bundled_weights(2), use_cache=False)
    assert len(e.value.problems) > 10
    bad = tmp_path / "bad.pth"
    data = open(bundled_weights(0), "rb").read()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="bad.pth"):
        M.load("efficientnet_lite0", weights=bad, use_cache=False)
    with pytest.raises(ValueError, match="does not exist"):
        M.load("efficientnet_lite0", weights=tmp_path / "nope.pth")


def test_checks_report_missing_unexpected_mismatched():
    sd = load_state_dict(bundled_weights(0))
    module = EfficientNetLite()
    template = variables_template(module, (224, 224))
    ok = convert_state_dict(sd, template, torch_key)
    assert ok["params"]["conv_stem"]["kernel"].shape == (3, 3, 3, 32)
    np.testing.assert_array_equal(ok["params"]["conv_stem"]["kernel"], sd["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(ok["params"]["fc"]["kernel"], sd["_fc.weight"].T)
    np.testing.assert_array_equal(ok["batch_stats"]["bn0"]["var"], sd["_bn0.running_var"])
    broken = dict(sd)
    del broken["_blocks.2._bn1.running_mean"]
    broken["_extra.weight"] = np.zeros(3, np.float32)
    broken["_fc.bias"] = np.zeros(999, np.float32)
    with pytest.raises(CheckpointMismatchError) as e:
        convert_state_dict(broken, template, torch_key)
    msg = "\n".join(e.value.problems)
    assert "missing key '_blocks.2._bn1.running_mean' (expected shape (144,))" in msg
    assert "unexpected key '_extra.weight'" in msg
    assert "shape mismatch for '_fc.bias': checkpoint (999,), expected shape (1000,)" in msg
    assert len(e.value.problems) == 3


def test_models_command_table(capsys):
    from absl import flags

    from rexjax.commands import models as cmd

    flags.FLAGS(["rexjax models", "--models_filter=lite"])
    try:
        cmd.main(["rexjax models"])
    finally:
        flags.FLAGS.unparse_flags()
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["name", "input", "params", "weights"]
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert set(rows) == {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
    assert rows["efficientnet_lite0"][1:4] == ["224x224", "4,652,008", "yes"]
    assert "whole image -> 224x224 bicubic, (x - 127) / 128" in out[2 + list(rows).index("efficientnet_lite0")]
    # every zoo model states its own preprocessing (not the Lite default for all)
    from rexjax.models import list_models

    prep = {i.name: i.preprocessing for i in list_models(["vit_b_32", "inception_v3", "efficientnet_lite1"])}
    assert prep["efficientnet_lite1"].startswith("whole image -> 240x240 bicubic, (x - 127) / 128")
    assert prep["vit_b_32"].startswith("whole image -> 224x224 bilinear, (x - (123.7, 116.3, 103.5))"), prep
    assert prep["inception_v3"].startswith("whole image -> 299x299"), prep
