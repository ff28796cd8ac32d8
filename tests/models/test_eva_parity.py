"""EVA-02 (`rexjax.models.eva`): timm's parameter count, the timm key layout, and parity
against the committed timm fixture (tests/fixtures/zoo/make_parity_fixtures.py, `eva02`: rotary
embeddings at a non-reference grid, resampled position embeddings), without torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.models import list_models
from rexjax.models import eva as E
from rexjax.models.convert.checks import CheckpointMismatchError
from rexjax.models.convert.pth import load_state_dict
from tests.helpers.zoo import FIXTURES

# sum(p.numel() for p in timm.create_model("eva02_large_patch14_448").parameters()), timm 1.0.31
PARAM_COUNT = 305_080_232

# the Flax twin of tests/fixtures/zoo/make_parity_fixtures.py's tiny_eva02 (run there at 35 x 49)
TINY = E.EvaConfig(patch=7, dim=32, depth=2, heads=2, mlp_dim=85, image_size=28, ref_grid=3, num_classes=10)


def test_zoo_entry_has_timms_parameter_count_and_preprocessing():
    """`rexjax models` row: eval_shape parameter count, and timm's pretrained eval transform
    (448 bicubic, crop_pct 1.0 squash, OpenAI CLIP mean/std)."""
    (info,) = list_models(["eva02_large_patch14_448"])
    assert info.param_count == PARAM_COUNT and info.input_size == (448, 448)
    assert info.preprocessing == "whole image -> 448x448 bicubic, (x - (122.8, 116.7, 104.1)) / (68.5, 66.63, 70.32)"


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_logits_and_gradcam_layer_match_timm(fmt):
    variables = E.convert(load_state_dict(FIXTURES / f"eva02_{fmt}.pth"), TINY)
    ref = np.load(FIXTURES / "eva02.npz")
    x = jnp.asarray(ref["x"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    with jax.default_matmul_precision("highest"):
        logits, state = jax.jit(lambda v, x: E.Eva(TINY).apply(v, x, mutable=["intermediates"]))(variables, x)
    logits, feature = np.asarray(logits), np.asarray(state["intermediates"]["last_block"][0])
    assert logits.shape == ref["logits"].shape and np.abs(ref["logits"]).max() > 0.5  # not a vacuous check
    assert np.abs(logits - ref["logits"]).max() <= 1e-4
    assert feature.shape == ref["feature"].shape == (2, 5, 7, 32)
    np.testing.assert_allclose(feature, ref["feature"], rtol=1e-4, atol=1e-4)


def test_bad_keys_are_all_named():
    sd = load_state_dict(FIXTURES / "eva02_zip.pth")
    sd.pop("blocks.1.mlp.norm.weight")
    sd["blocks.0.attn.k_proj.bias"] = np.zeros(32, np.float32)  # timm's k has no bias
    sd["pos_embed"] = sd["pos_embed"][:, :-1]
    with pytest.raises(CheckpointMismatchError) as e:
        E.convert(sd, TINY)
    msg = str(e.value)
    assert len(e.value.problems) == 3
    assert "missing key 'blocks.1.mlp.norm.weight' (expected shape (85,))" in msg
    assert "unexpected key 'blocks.0.attn.k_proj.bias'" in msg
    assert "shape mismatch for 'pos_embed': checkpoint (1, 16, 32), expected shape (1, 17, 32)" in msg
    with pytest.raises(CheckpointMismatchError) as e:  # a timm ViT checkpoint: packed qkv, no fc_norm
        E.convert(load_state_dict(FIXTURES / "vit_timm_zip.pth"), TINY)
    problems = "\n".join(map(str, e.value.problems))
    assert "unexpected key 'blocks.0.attn.qkv.weight'" in problems and "missing key 'fc_norm.weight'" in problems


def test_inputs_must_be_whole_patches():
    with pytest.raises(ValueError, match="multiples of the patch 7"):
        jax.eval_shape(E.Eva(TINY).init, jax.random.key(0), jax.ShapeDtypeStruct((1, 35, 50, 3), jnp.float32))
