"""depthwise_conv: the two implementations agree; one named jaxpr equation; Flax wrapper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.models import layers


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [((0, 1), (1, 2)), ((2, 2), (2, 2)), ((0, 0), (0, 0))])
def test_slices_equal_grouped_conv(k, stride, padding):
    kx, kk = jax.random.split(jax.random.key(k * 10 + stride))
    x = jax.random.normal(kx, (2, 11, 14, 6))
    w = jax.random.normal(kk, (k, k, 1, 6))
    a = jax.jit(layers.depthwise_conv_slices, static_argnums=(2, 3))(x, w, stride, padding)
    b = jax.jit(layers.depthwise_conv_lax, static_argnums=(2, 3))(x, w, stride, padding)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_hand_computed_case():
    # 1 channel, 3x3 input, 2x2 kernel of ones, stride 1, no padding -> sums of 2x2 windows
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    w = jnp.ones((2, 2, 1, 1))
    y = layers.depthwise_conv(x, w, 1, ((0, 0), (0, 0)))
    np.testing.assert_allclose(y[0, :, :, 0], [[8, 12], [20, 24]])
    # stride 2 with end padding (TF SAME on even size): windows (0..1, 0..1) and (2..3, ...)
    y2 = layers.depthwise_conv(x, w, 2, ((0, 1), (0, 1)))
    np.testing.assert_allclose(y2[0, :, :, 0], [[8, 7], [13, 8]])


def test_one_named_equation_and_backend_choice():
    x = jnp.zeros((1, 8, 8, 4))
    w = jnp.zeros((3, 3, 1, 4))
    jaxpr = jax.make_jaxpr(lambda x, w: layers.depthwise_conv(x, w, 2, ((1, 1), (1, 1))))(x, w)
    (eqn,) = jaxpr.jaxpr.eqns
    assert eqn.params["name"] == "depthwise_conv"
    inner = [e.primitive.name for e in eqn.params["jaxpr"].jaxpr.eqns]
    if jax.default_backend() == "cpu":
        assert "conv_general_dilated" not in inner and "slice" in inner
    else:
        assert "conv_general_dilated" in inner


def test_bad_shapes():
    with pytest.raises(ValueError, match="kernel"):
        layers.depthwise_conv(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 1, 4)), 1, ((1, 1), (1, 1)))


def test_padding_helpers():
    assert layers.same_padding(224, 3, 2) == (0, 1)
    assert layers.same_padding(224, 5, 2) == (1, 2)
    assert layers.same_padding(15, 5, 2) == (2, 2)
    assert layers.same_padding(14, 5, 1) == (2, 2)
    assert layers.symmetric_padding(5) == (2, 2)


def test_flax_module_matches_function():
    mod = layers.DepthwiseConv(3, 2, ((0, 1), (0, 1)))
    x = jax.random.normal(jax.random.key(0), (1, 8, 8, 5))
    v = mod.init(jax.random.key(1), x)
    assert v["params"]["kernel"].shape == (3, 3, 1, 5)
    np.testing.assert_allclose(
        mod.apply(v, x), layers.depthwise_conv_lax(x, v["params"]["kernel"], 2, ((0, 1), (0, 1))), atol=1e-5
    )
