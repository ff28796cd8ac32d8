"""ViT family (`rexjax.models.vit`): parameter counts of the torchvision/timm models, the torch
key layout, timm's bicubic position-embedding resampling, and parity against committed torch
fixtures (tools/make_parity_fixtures.py, `vit_torchvision` / `vit_timm`), without torch."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rexjax.models import get_spec
from rexjax.models.model import variables_template

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
