"""Activation-Deactivation for vision transformers (`rexjax.ad.rules_attention`) on the tiny
ViT of `tests/ad/conftest.py` (random weights; Theorem 1, exact deactivation and the poisoning
check are in `test_transformers_ad.py`): a fully masked image = the class token alone,
Definition 4's `Phi > tau` on the patch window, the attention rule as what removes masked
tokens; and a user's own Flax ViT (patchify by reshape) that uses `layers.attention`."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.ad import convad
from rexjax.models import vit as V
from rexjax.models.layers import attention
from tests.helpers.ad_helpers import check_convad, init_model

P = 8  # the patch side of the tiny ViT


def _class_token_alone(cfg: V.ViTConfig, v) -> np.ndarray:
    """The model on the one-token sequence [class token + its position embedding]."""
    nm = V.NAMES[cfg.layout]
    p = v["params"]
    tokens = p[nm.cls] + p[nm.pos][:, :1]
    for i in range(cfg.depth):
        name = nm.block.format(i=i)
        tokens = V.Block(cfg).apply({"params": p[name]}, tokens)
    h = V._ln("n").apply({"params": p[nm.norm]}, tokens)[:, 0]
    return np.asarray(h @ p[nm.head]["kernel"] + p[nm.head]["bias"])[0]


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_fully_masked_image_gives_the_class_token_alone(tiny_vit, tau):
    module, v, x = tiny_vit
    got = np.asarray(convad(module.apply, tau=tau)(v, x, jnp.zeros(x.shape[:3])))
    want = _class_token_alone(module.config, v)
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-5, atol=1e-6)
    assert np.abs(got - np.asarray(module.apply(v, x))).max() > 1e-3  # not the plain logits


def test_token_is_active_iff_visible_fraction_exceeds_tau(tiny_vit):
    """Half of patch (1, 2) visible: Phi = 0.5, so the token is off at tau = 0.5 (as if the
    whole patch were masked) and on at tau = 0.4 (its visible half still counts)."""
    module, v, x = tiny_vit
    x = x[:1]
    half = jnp.ones(x.shape[:3]).at[:, P : 2 * P, 2 * P : 2 * P + P // 2].set(0.0)
    whole = jnp.ones(x.shape[:3]).at[:, P : 2 * P, 2 * P : 3 * P].set(0.0)
    run = lambda tau, m: np.asarray(convad(module.apply, tau=tau)(v, x, m))  # noqa: E731
    np.testing.assert_array_equal(run(0.5, half), run(0.5, whole))
    assert np.abs(run(0.4, half) - run(0.4, whole)).max() > 1e-4


def test_the_attention_rule_is_what_removes_masked_tokens(tiny_vit, monkeypatch):
    """Without the named-function rule the walker reaches q @ k^T with both operands
    masked, which has no sound generic rule: one clear error, never a silent leak."""
    from rexjax.ad import rules_attention
    from rexjax.ad.mask import UnsupportedPrimitiveError

    module, v, x = tiny_vit
    monkeypatch.setattr(rules_attention, "ATTENTION_FUNCTIONS", ())
    with pytest.raises(UnsupportedPrimitiveError, match="both operands masked"):
        convad(module.apply)(v, x, jnp.ones(x.shape[:3]))


class UserViT(nn.Module):
    """A user's own Flax ViT: patchify by reshape (no conv), no class token, mean pool over
    tokens; only `layers.attention` is shared with the zoo."""

    @nn.compact
    def __call__(self, x):
        b, h, w, c = x.shape
        t = x.reshape(b, h // P, P, w // P, P, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, (h // P) * (w // P), P * P * c)
        t = nn.Dense(16)(t)
        t = t + self.param("pos", nn.initializers.normal(0.5), (1, t.shape[1], 16))
        q, k, v = (nn.DenseGeneral((2, 8))(nn.LayerNorm()(t)) for _ in range(3))
        t = t + nn.Dense(16)(attention(q, k, v).reshape(b, -1, 16))
        return nn.Dense(10)(nn.LayerNorm()(t).mean(axis=1))


def test_a_users_own_vit_with_the_shared_attention_layer():
    module = UserViT()
    x = jax.random.normal(jax.random.key(4), (2, 32, 24, 3))
    v = init_model(module, x)
    check_convad(module.apply, v, x, jax.random.key(5))
