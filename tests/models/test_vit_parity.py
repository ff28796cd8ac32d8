"""ViT family (`rexjax.models.vit`): parameter counts of the torchvision/timm models, the torch
key layout, timm's bicubic position-embedding resampling, and parity against committed torch
fixtures (tests/fixtures/zoo/make_parity_fixtures.py, `vit_torchvision` / `vit_timm`), without torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.models import get_spec
from rexjax.models import vit as V
from rexjax.models.convert.checks import CheckpointMismatchError
from rexjax.models.convert.pth import load_state_dict
from rexjax.models.model import variables_template
from tests.helpers.zoo import FIXTURES

# sum(p.numel() for p in model.parameters()), torch 2.14.1, torchvision 0.29.1, timm 1.0.31;
# vit_huge_patch14_224: timm.create_model(name, num_classes=1000) (its default pretrained
# tag orig_in21k is headless: 630,764,800)
PARAM_COUNTS = {
    "vit_b_16": 86_567_656,
    "vit_b_32": 88_224_232,
    "vit_l_16": 304_326_632,
    "vit_large_patch16_224": 304_326_632,
    "vit_huge_patch14_224": 632_045_800,
}


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_parameter_counts_equal_the_source(name):
    spec = get_spec(name)
    template = variables_template(spec.make_module(), spec.input_size)
    count = sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(template["params"]))
    assert count == PARAM_COUNTS[name]


# the Flax twins of tests/fixtures/zoo/make_parity_fixtures.py's tiny_vit_torchvision / tiny_vit_timm
TINY = {
    "vit_torchvision": V.ViTConfig(patch=7, dim=16, depth=2, heads=2, mlp_dim=32, image_size=35, num_classes=10),
    "vit_timm": V.ViTConfig(
        patch=7, dim=16, depth=2, heads=2, mlp_dim=32, image_size=28, num_classes=10, layout="timm"
    ),
}


def _run(family: str, fmt: str):
    cfg = TINY[family]
    variables = V.convert(load_state_dict(FIXTURES / f"{family}_{fmt}.pth"), cfg)
    ref = np.load(FIXTURES / f"{family}.npz")
    x = jnp.asarray(ref["x"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    with jax.default_matmul_precision("highest"):
        logits, state = jax.jit(lambda v, x: V.ViT(cfg).apply(v, x, mutable=["intermediates"]))(variables, x)
    return np.asarray(logits), np.asarray(state["intermediates"]["last_block"][0]), ref


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("family", sorted(TINY))
def test_logits_and_gradcam_layer_match_torch(family, fmt):
    logits, feature, ref = _run(family, fmt)
    assert logits.shape == ref["logits"].shape and np.abs(ref["logits"]).max() > 0.5  # not a vacuous check
    assert np.abs(logits - ref["logits"]).max() <= 1e-4
    assert feature.shape == ref["feature"].shape
    np.testing.assert_allclose(feature, ref["feature"], rtol=1e-4, atol=1e-4)


def test_bad_keys_are_all_named():
    sd = load_state_dict(FIXTURES / "vit_torchvision_zip.pth")
    sd.pop("encoder.layers.encoder_layer_1.self_attention.in_proj_weight")
    sd["encoder.pos_embedding"] = sd["encoder.pos_embedding"][:, :-1]
    sd["encoder.layers.encoder_layer_2.ln_1.weight"] = np.ones(16, np.float32)
    with pytest.raises(CheckpointMismatchError) as e:
        V.convert(sd, TINY["vit_torchvision"])
    msg = str(e.value)
    assert len(e.value.problems) == 3
    assert "missing key 'encoder.layers.encoder_layer_1.self_attention.in_proj_weight' (expected shape (48, 16))" in msg
    assert "shape mismatch for 'encoder.pos_embedding': checkpoint (1, 25, 16), expected shape (1, 26, 16)" in msg
    assert "unexpected key 'encoder.layers.encoder_layer_2.ln_1.weight'" in msg
    with pytest.raises(CheckpointMismatchError, match="unexpected key 'cls_token'"):
        V.convert(load_state_dict(FIXTURES / "vit_timm_zip.pth"), TINY["vit_torchvision"])


@pytest.mark.parametrize("n_in,n_out", [(4, 7), (4, 5), (7, 4), (14, 16), (16, 14), (3, 3)])
def test_cubic_weights_are_torch_antialiased_bicubic(n_in, n_out):
    """Against an independent transcription of ATen's `_compute_indices_min_size_weights_aa`
    + `aa_filter` (bicubic, a = -0.5, align_corners False), the rule timm's
    `resample_abs_pos_embed` uses (antialias=True); the identity size gives the identity."""

    def aa_filter(x):
        x = abs(x)
        if x < 1.0:
            return ((-0.5 + 2) * x - (-0.5 + 3)) * x * x + 1
        if x < 2.0:
            return ((-0.5 * x - 5 * -0.5) * x + 8 * -0.5) * x - 4 * -0.5
        return 0.0

    scale = n_in / n_out
    support = 2.0 * scale if scale >= 1.0 else 2.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    want = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xsize = min(int(center + support + 0.5), n_in) - xmin
        ws = [aa_filter((j + xmin - center + 0.5) * invscale) for j in range(xsize)]
        for j, w in enumerate(ws):
            want[i, xmin + j] = w / sum(ws)
    np.testing.assert_allclose(V.cubic_weights(n_in, n_out), want, rtol=0, atol=1e-6)
    if n_in == n_out:
        np.testing.assert_allclose(V.cubic_weights(n_in, n_out), np.eye(n_in), atol=1e-6)


def test_inputs_must_be_whole_patches():
    module = V.ViT(TINY["vit_timm"])
    with pytest.raises(ValueError, match="multiples of the patch 7"):
        jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 35, 50, 3), jnp.float32))
