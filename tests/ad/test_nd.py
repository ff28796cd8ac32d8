"""ConvAD on 1-D (signals) and 3-D (volumes) CNNs: Theorem 1, exact deactivation and the
poisoning leak check (`check_convad`) at tau 0 and 0.5, and the empty-mask probe.

The networks use every position-mixing layer a 1-D or 3-D classifier is made of: padded
and strided convolutions, a dilated one, a depthwise (grouped) one, BatchNorm (BN(0) != 0,
so a missing re-mask after it leaks), max and average pooling with padding, a residual add
and global average pooling."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.ad import convad
from tests.helpers.ad_helpers import check_convad, empty_mask_output, init_model


class NdCNN(nn.Module):
    """A small CNN over `rank` position axes: x f32[B, *S, C] -> logits f32[B, 5]."""

    rank: int

    @nn.compact
    def __call__(self, x):
        k = lambda n: (n,) * self.rank
        x = nn.relu(nn.BatchNorm(use_running_average=True)(nn.Conv(8, k(3), padding="SAME")(x)))
        x = nn.max_pool(x, k(3), strides=k(2), padding="SAME")
        y = nn.Conv(8, k(3), padding="SAME", kernel_dilation=k(2))(x)
        y = nn.Conv(8, k(3), padding="SAME", feature_group_count=8)(nn.relu(y))
        x = x + nn.BatchNorm(use_running_average=True)(y)
        x = nn.avg_pool(x, k(3), strides=k(1), padding="SAME", count_include_pad=False)
        x = nn.relu(nn.Conv(16, k(3), strides=k(2), padding="VALID")(x))
        return nn.Dense(5)(jnp.mean(x, axis=tuple(range(1, 1 + self.rank))))


SHAPES = {1: (3, 37, 2), 3: (3, 9, 11, 10, 1)}


@pytest.fixture(scope="module", params=sorted(SHAPES), ids=lambda r: f"rank{r}")
def nd_model(request):
    rank = request.param
    x = jax.random.normal(jax.random.key(rank), SHAPES[rank], jnp.float32)
    module = NdCNN(rank)
    return module.apply, init_model(module, x, seed=rank), x


def test_theorem1_exact_deactivation_and_no_leak(nd_model):
    """Bugs caught: an entry that assumes [B, H, W, C] (refuses or mis-masks a signal or a
    volume), a rule reading fixed axes 1 and 2 as positions (the third volume axis never
    masked: the changed-under-mask batch differs), a window count built for two axes."""
    apply_fn, variables, x = nd_model
    check_convad(apply_fn, variables, x, jax.random.key(7))


def test_all_masked_input_gives_the_empty_input_output(nd_model):
    """With every element masked the output cannot depend on x: two different inputs give
    the same logits. Bug caught: the input not multiplied by M at entry in N-D."""
    apply_fn, variables, x = nd_model
    a = empty_mask_output(apply_fn, variables, x)
    b = empty_mask_output(apply_fn, variables, 3.0 * x + 1.0)
    np.testing.assert_array_equal(a, b)


def test_mask_shape_must_match_the_position_axes(nd_model):
    """One line naming the expected shape, not a broadcasting error deep in a rule."""
    apply_fn, variables, x = nd_model
    with pytest.raises(ValueError, match=r"mask must be \[B, \*S\]"):
        convad(apply_fn)(variables, x, jnp.ones(x.shape, x.dtype))
