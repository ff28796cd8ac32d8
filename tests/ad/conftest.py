"""Tiny zoo transformers for the ConvAD tests: random weights, run on x f32[2, 40, 32, 3],
a 5 x 4 grid of 8 x 8 patches (off their learned 4 x 4 grid, so the position embeddings are
resampled and EVA-02's rotary positions rescaled)."""

from __future__ import annotations

import jax
import pytest

from rexjax.models import eva as E
from rexjax.models import vit as V
from tests.helpers.ad_helpers import init_model


def _tiny(module):
    x = jax.random.normal(jax.random.key(1), (2, 40, 32, 3))
    return module, init_model(module, x), x


@pytest.fixture(scope="session")
def tiny_vit():
    """(ViT, variables, x): torchvision key layout, depth 2, dim 16, 2 heads."""
    return _tiny(V.ViT(V.ViTConfig(patch=8, dim=16, depth=2, heads=2, mlp_dim=32, image_size=32, num_classes=10)))


@pytest.fixture(scope="session")
def tiny_eva():
    """(Eva, variables, x): depth 2, dim 32, 2 heads, rotary reference grid 3."""
    cfg = E.EvaConfig(patch=8, dim=32, depth=2, heads=2, mlp_dim=40, image_size=32, ref_grid=3, num_classes=10)
    return _tiny(E.Eva(cfg))
