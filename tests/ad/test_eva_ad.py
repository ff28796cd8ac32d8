"""Activation-Deactivation on the EVA-02 port (`rexjax.models.eva`), the tiny config of
`tests/ad/conftest.py` run at a 5 x 4 grid (position embeddings resampled, rotary positions
scaled): the attention rule of `rexjax.ad.rules_attention` with the rotary tables as per-token
constants. Theorem 1, exact deactivation and the poisoning check are in
`test_transformers_ad.py`; here, what remains when tokens are off. EVA-02 pools the patch
tokens (timm global_pool "avg"; the class token is not pooled), so a fully masked image gives
`head(fc_norm(0))` under the paper's pooling (deactivate, then the model's own mean), and one
visible patch gives the model on [class token, that patch token] with that patch's rotary
angles (`test_vit_ad.py` has the class-token-pooled ViT's counterpart)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.ad import convad
from rexjax.models import eva as E
from rexjax.models.vit import _ln, resample_pos_embed

P = 8  # the patch side of the tiny EVA-02
GRID = (5, 4)  # its patch grid on the fixture's 40 x 32 input


def _head(p, pooled) -> np.ndarray:
    h = _ln("n").apply({"params": p["fc_norm"]}, pooled)
    return np.asarray(h @ p["head"]["kernel"] + p["head"]["bias"])


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_fully_masked_image_gives_the_head_of_an_empty_pool(tiny_eva, tau):
    module, v, x = tiny_eva
    got = np.asarray(convad(module.apply, tau=tau)(v, x, jnp.zeros(x.shape[:3])))
    want = _head(v["params"], jnp.zeros((1, module.config.dim)))[0]
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-5, atol=1e-6)
    assert np.abs(got - np.asarray(module.apply(v, x))).max() > 1e-3  # not the plain logits


@pytest.mark.parametrize("pool", ["deactivate", "masked_mean"])
def test_one_visible_patch_is_the_two_token_model(tiny_eva, pool):
    """Only patch (3, 2) visible: the class token and that patch token attend to each other
    alone, the patch keeping its own position embedding and rotary angles; the pool sees
    that one token (divided by the grid size under "deactivate")."""
    module, v, x = tiny_eva
    cfg = module.config
    i, j = 3, 2
    idx = i * GRID[1] + j
    mask = jnp.zeros(x.shape[:3]).at[:, i * P : (i + 1) * P, j * P : (j + 1) * P].set(1.0)
    got = np.asarray(convad(module.apply, pool=pool)(v, x, mask))

    p = v["params"]
    _, state = module.apply(v, x, mutable=["intermediates"])
    patch = state["intermediates"]["patch_embed"][0][:, i, j]  # [B, D]
    pos = resample_pos_embed(p["pos_embed"], (cfg.grid, cfg.grid), GRID)[0]
    tokens = jnp.stack([jnp.broadcast_to(p["cls_token"][0, 0] + pos[0], patch.shape), patch + pos[1 + idx]], axis=1)
    sin, cos = E.rope_tables(GRID, (cfg.ref_grid,) * 2, cfg.dim // cfg.heads)
    for k in range(cfg.depth):
        tokens = E.EvaBlock(cfg).apply({"params": p[f"blocks.{k}"]}, tokens, sin[idx : idx + 1], cos[idx : idx + 1])
    pooled = tokens[:, 1] / (GRID[0] * GRID[1] if pool == "deactivate" else 1)
    np.testing.assert_allclose(got, _head(p, pooled), rtol=1e-4, atol=1e-5)
