"""Activation-Deactivation on the zoo's transformers (`tests/ad/conftest.py`: a tiny ViT and
a tiny EVA-02, each through the attention rule of `rexjax.ad.rules_attention`): the all-ones
mask is bitwise the plain model (eager), Theorem 1, exact deactivation (NaN under the mask
included) and the poisoning leak check. What each model gives on fully or partly masked
images is in `test_vit_ad.py` and `test_eva_ad.py`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.ad import convad
from tests.helpers.ad_helpers import check_convad, random_masks


@pytest.fixture(params=["tiny_vit", "tiny_eva"])
def tiny(request):
    return request.getfixturevalue(request.param)


def test_all_ones_mask_is_bitwise_the_plain_model(tiny):
    module, v, x = tiny
    plain = np.asarray(module.apply(v, x))
    got = np.asarray(convad(module.apply)(v, x, jnp.ones(x.shape[:3])))
    assert np.array_equal(got, plain)


def test_theorem1_exact_deactivation_nan_and_poisoning(tiny):
    module, v, x = tiny
    check_convad(module.apply, v, x, jax.random.key(2))  # Theorem 1, changed masked pixels, poisoning
    masks = random_masks(jax.random.key(3), *x.shape[:3])
    x_nan = jnp.where(masks[..., None] > 0, x, jnp.nan)
    f = convad(module.apply)
    np.testing.assert_array_equal(np.asarray(f(v, x_nan, masks)), np.asarray(f(v, x, masks)))
