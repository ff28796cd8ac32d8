"""ConvAD on the issue-14 CNNs (small variants, random init): Theorem 1, exact
deactivation and the poisoning leak check at tau 0 and 0.5 (`check_convad`), and the
empty-mask probe.

What each variant exercises: ConvNeXt, LayerNorm over channels, the depthwise 7x7 (named
`depthwise_conv`), exact GELU, the torchvision layer scale; ConvNeXt-V2, GRN's global
L2 norm over (H, W) (a spatial reduction: masked positions are switched off first, so the
norm is over the visible ones); ResNet-D, the deep stem and the ceil-mode
`count_include_pad=False` average-pool shortcut on odd sizes; Inception, a mini network of
the real blocks: branch concatenation, torchvision's `count_include_pad=True` pool (V3A),
timm's `count_include_pad=False` pool (InceptionA), a pass-through max-pool branch (V3Reduction "B") and
the scaled residual (Block35).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.models import convnext as CN
from rexjax.models import inception as INC
from rexjax.models import resnet as R
from tests.helpers.ad_helpers import check_convad, empty_mask_output, init_model


class MiniInception(nn.Module):
    """Real Inception blocks at 1/16 width: stem -> V3A -> InceptionA -> V3Reduction "B" -> head
    (`residual` adds a Block35 after the stem)."""

    residual: bool = False

    @nn.compact
    def __call__(self, x):
        d = 16
        x = INC.conv(d, 320, "stem", 3, 2)(x)
        if self.residual:
            x = INC.Residual("Block35", 0.17, d, name="block35")(x)
        x = INC.V3A(32, d, name="v3a")(x)
        x = INC.Mixed("InceptionA", d, name="v4a")(x)
        x = INC.V3Reduction("B", d, name="v3b")(x)
        return nn.Dense(10, name="fc")(jnp.mean(x, axis=(1, 2)))


def _layer_norm_bias_head(params, norm, fc):
    """Logits of the head on an all-zero pooled vector: LayerNorm(0) = its bias."""
    return np.asarray(params[norm]["bias"] @ params[fc]["kernel"] + params[fc]["bias"])


VARIANTS = {
    "convnext": (
        lambda: CN.ConvNeXt(CN.ConvNeXtConfig(depths=(1, 1), dims=(8, 16), num_classes=10)),
        (48, 48),
        lambda p: _layer_norm_bias_head(p, "classifier_0", "classifier_2"),
    ),
    "convnextv2": (
        lambda: CN.ConvNeXt(CN.ConvNeXtConfig(depths=(1, 1), dims=(8, 16), layer_scale=False, grn=True, timm=True, num_classes=10)),
        (48, 48),
        lambda p: _layer_norm_bias_head(p, "head_norm", "head_fc"),
    ),
    "resnet_d": (  # 50 x 46 -> 13 x 12 before the stride-2 ceil-mode shortcut pool (odd rows)
        lambda: R.ResNet(R.ResNetConfig(depths=(1, 1), planes=(4, 8), stem_width=8, deep_stem_width=4, avg_down=True, num_classes=10)),
        (50, 46),
        lambda p: np.asarray(p["fc"]["bias"]),
    ),
    "inception": (MiniInception, (41, 37), lambda p: np.asarray(p["fc"]["bias"])),
    "inception_resnet": (lambda: MiniInception(residual=True), (41, 37), lambda p: np.asarray(p["fc"]["bias"])),
}


@pytest.mark.parametrize("family", sorted(VARIANTS))
def test_convad_theorem1_deactivation_and_poisoning(family):
    make, hw, _ = VARIANTS[family]
    module = make()
    x = jax.random.normal(jax.random.key(1), (2, *hw, 3))
    check_convad(module.apply, init_model(module, x), x, jax.random.key(2))


@pytest.mark.parametrize("family", sorted(VARIANTS))
def test_empty_mask_gives_the_head_on_nothing(family):
    """All pixels masked: the pooled features are zero, so the logits are the head applied
    to zeros (ConvNeXt: its LayerNorm's bias through the Linear), at both taus."""
    make, hw, head = VARIANTS[family]
    module = make()
    x = jax.random.normal(jax.random.key(1), (2, *hw, 3))
    v = init_model(module, x)
    want = head(v["params"])
    assert np.abs(want).max() > 0
    for tau in (0.0, 0.5):
        got = empty_mask_output(module.apply, v, x, tau=tau)
        np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-6, atol=1e-6)
