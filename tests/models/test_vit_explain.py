"""End to end with a random-weight `vit_b_32` checkpoint written by the test (no torch): the
registry loads it through the checked converter, `Model.at_size(64)` runs it at 64 px (position
embeddings resampled to the 2 x 2 grid), ReX explains a vendored image with it (zero occlusion
fast, AD slow) and with a tiny zoo ViT, and `rexjax explain --model vit_b_32 --weights PATH`
runs end to end (fast at `--input_size 64`, slow at 224 px)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import flax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import models
from rexjax.causal import Explainer, RexConfig
from rexjax.models import vit as V
from rexjax.models.convert.checks import torch_shape
from rexjax.models.model import Model, variables_template
from rexjax.models.preprocess import Preprocess
from tests.helpers.ad_helpers import init_model
from tests.helpers.tiny_pth_model import write_weights

IMAGE = Path(__file__).resolve().parents[2] / "third_party" / "images" / "ladybird.jpg"


def random_checkpoint(name: str, path, seed: int = 0) -> dict:
    """Writes a zip .pth with the torch keys and shapes of zoo model `name`, N(0, 0.05) values."""
    spec = models.get_spec(name)
    rng = np.random.default_rng(seed)
    sd = {}
    for p, leaf in flax.traverse_util.flatten_dict(variables_template(spec.make_module(), spec.input_size)).items():
        layout = {4: "conv", 2: "dense"}.get(len(leaf.shape), "same") if p[-1] == "kernel" else "same"
        sd[spec.key_fn(p)] = 0.05 * rng.standard_normal(torch_shape(tuple(leaf.shape), layout), dtype=np.float32)
    write_weights(path, sd=sd)
    return sd


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("vit") / "vit_b_32_random.pth"
    return path, random_checkpoint("vit_b_32", path)


@pytest.fixture(scope="module")
def small_vit_b_32(checkpoint):
    """vit_b_32 loaded from the random checkpoint, fed 64 px images (2 x 2 patches)."""
    return models.load("vit_b_32", weights=checkpoint[0], use_cache=False).at_size(64)


def test_random_vit_b_32_checkpoint_loads_through_the_registry(checkpoint, small_vit_b_32):
    _, sd = checkpoint
    small = small_vit_b_32  # position embeddings resampled from 7 x 7 to 2 x 2 patches
    params = small.variables["params"]
    assert small.has_weights and small.param_count == 88_224_232 and small.input_size == (64, 64)
    np.testing.assert_array_equal(params["class_token"], sd["class_token"])
    np.testing.assert_array_equal(params["conv_proj"]["kernel"], sd["conv_proj.weight"].transpose(2, 3, 1, 0))
    qkv = params["encoder.layers.encoder_layer_11"]["self_attention"]["in_proj"]["kernel"]
    np.testing.assert_array_equal(qkv, sd["encoder.layers.encoder_layer_11.self_attention.in_proj_weight"].T)
    logits = np.asarray(small(small.preprocess(IMAGE)[None]))
    assert logits.shape == (1, 1000) and np.isfinite(logits).all() and logits.std() > 0.1


@pytest.mark.parametrize("mask_mode", [pytest.param("zero", marks=pytest.mark.slow), "ad"])
def test_rex_explains_a_vendored_image_with_a_tiny_vit(mask_mode):
    """ReX end to end on a zoo ViT module (tiny config, random weights), occlusion and AD."""
    cfg = V.ViTConfig(patch=8, dim=32, depth=2, heads=2, mlp_dim=64, image_size=48, num_classes=10)
    module = V.ViT(cfg)
    variables = init_model(module, jnp.zeros((1, 48, 48, 3)), seed=1)
    model = Model("tiny_vit", module, variables, (48, 48), 10, tuple("abcdefghij"), False,
                  Preprocess((48, 48), (127.5,) * 3, (127.5,) * 3, "bicubic"), cfg.feature_names)
    x = model.preprocess(IMAGE)
    ex = Explainer(model, RexConfig.from_dict({"iters": 4, "min_box_size": 8}), mask_mode=mask_mode)(x, key=0)
    assert ex.target == int(np.argmax(np.asarray(model(x[None]))[0]))
    assert ex.mask.shape == (48, 48) and 0 < ex.mask.mean() < 1 and ex.sufficient
    assert np.isfinite(ex.responsibility).all() and ex.responsibility.max() > 0


@pytest.mark.slow  # the fast CLI test below explains the same checkpoint at 64 px end to end
@pytest.mark.parametrize("mask_mode", ["zero", "ad"])
def test_rex_explains_a_vendored_image_with_random_vit_b_32(small_vit_b_32, mask_mode):
    small = small_vit_b_32
    x = small.preprocess(IMAGE)
    ex = Explainer(small, RexConfig().replace(iters=2), mask_mode=mask_mode)(x, key=0)
    assert ex.target == int(np.argmax(np.asarray(small(x[None]))[0]))
    assert ex.mask.shape == (64, 64) and 0 < ex.mask.mean() < 1
    assert np.isfinite(ex.responsibility).all()


@pytest.mark.parametrize("size", [64, pytest.param(None, marks=pytest.mark.slow)])
def test_cli_explain_vit_b_32_with_weights(checkpoint, tmp_path, size):
    """`rexjax explain --model vit_b_32 --weights PATH` end to end: fast at `--input_size 64`,
    slow at the model's own 224 px."""
    path, _ = checkpoint
    env = dict(os.environ, REXJAX_CACHE_DIR=str(tmp_path / "cache"), REXJAX_COMPILE_CACHE="0")
    args = ["explain", str(IMAGE), "--model", "vit_b_32", "--weights", str(path), "--iters", "1",
            "--out", str(tmp_path / "out"), "--progress=false", *(["--input_size", str(size)] if size else [])]
    out = subprocess.run([sys.executable, "-m", "rexjax.cli", *args], capture_output=True, text=True, env=env, timeout=1800)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["model"] == "vit_b_32" and 0 < row["area"] < 1 and os.path.isfile(row["png"])
    with np.load(row["npz"]) as saved:
        assert saved["responsibility"].shape == (size or 224,) * 2


def test_at_size_refuses_a_size_the_model_cannot_take():
    """`Model.at_size` checks the size by shape inference and names `input_size`."""
    cfg = V.ViTConfig(patch=8, dim=16, depth=1, heads=2, mlp_dim=32, image_size=48, num_classes=10)
    module = V.ViT(cfg)
    model = Model("tiny_vit", module, init_model(module, jnp.zeros((1, 48, 48, 3)), seed=1), (48, 48), 10,
                  tuple("abcdefghij"), False, Preprocess((48, 48), 127.5, 127.5, "bicubic"), cfg.feature_names)
    assert model.at_size(48) is model
    wide = model.at_size(32, 64)
    assert wide.input_size == (32, 64) and wide.preprocessing.size == (32, 64)
    assert wide(jnp.zeros((1, 32, 64, 3))).shape == (1, 10)
    with pytest.raises(ValueError, match=r"tiny_vit: input_size 36x36 is not accepted.*multiples of the patch 8"):
        model.at_size(36)
