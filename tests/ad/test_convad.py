"""ConvAD on small networks: hand-computed cases, oracles, Theorem 1, exact deactivation."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tests.helpers.ad_helpers import check_convad, check_poison, init_model, random_masks
from rexjax.ad import UnsupportedPrimitiveError, convad
from rexjax.classifier import Classifier
from rexjax.models.layers import DepthwiseConv

KEY = jax.random.key(0)


# ------------------------------------------------------------------ numpy reference


def np_window_count(m, k, stride, pads):
    """Number of mask-1 real positions in each k x k window: m[B,H,W] -> [B,Ho,Wo]."""
    (pt, pb), (pl, pr) = pads
    mp = np.pad(m, ((0, 0), (pt, pb), (pl, pr)))
    ho = (mp.shape[1] - k) // stride + 1
    wo = (mp.shape[2] - k) // stride + 1
    out = np.zeros((m.shape[0], ho, wo), np.float64)
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = mp[:, i * stride : i * stride + k, j * stride : j * stride + k].sum((1, 2))
    return out


def np_conv(x, w, b, stride, pads):
    """Plain NHWC / HWIO convolution in float64."""
    (pt, pb), (pl, pr) = pads
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (xp.shape[1] - k) // stride + 1
    wo = (xp.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[-1]))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j] = np.einsum("bhwc,hwco->bo", patch, w)
    return out + b


def np_mask(m, k, stride, pads, tau):
    """The paper's update `M' = 1(Phi > tau)`, Phi = visible / real positions in the window."""
    count = np_window_count(m, k, stride, pads)
    full = np_window_count(np.ones_like(m), k, stride, pads)
    return (count > tau * full).astype(np.float64)


# ---------------------------------------------------------------- hand-checked nets


def one_conv(v, x):
    """conv 3x3 SAME (+bias) -> ReLU -> global mean -> [B, C]."""
    y = lax.conv_general_dilated(x, v["w"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.mean(jax.nn.relu(y + v["b"]), axis=(1, 2))


@pytest.mark.parametrize("tau", [0.0, 0.5])
@pytest.mark.parametrize("pool", ["deactivate", "masked_mean"])
def test_one_conv_by_hand(tau, pool):
    k1, k2, k3 = jax.random.split(KEY, 3)
    v = {"w": jax.random.normal(k1, (3, 3, 2, 3)), "b": jax.random.normal(k2, (3,))}
    x = jax.random.normal(k3, (2, 7, 6, 2))
    m = np.ones((2, 7, 6), np.float32)
    m[0, 1:5, 2:6] = 0
    m[1, :, :3] = 0
    m[1, 0, 5] = 0
    out = np.asarray(jax.jit(convad(one_conv, tau=tau, pool=pool))(v, x, jnp.asarray(m)))

    xn, w, b = np.asarray(x, np.float64), np.asarray(v["w"], np.float64), np.asarray(v["b"], np.float64)
    y = np_conv(xn * m[..., None], w, b, 1, ((1, 1), (1, 1)))
    m1 = np_mask(m, 3, 1, ((1, 1), (1, 1)), tau)
    z = np.maximum(y, 0) * m1[..., None]
    if pool == "deactivate":
        want = z.sum((1, 2)) / (7 * 6)
    else:
        want = z.sum((1, 2)) / m1.sum((1, 2))[:, None]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert m1.min() == 0  # the hand case does switch units off


def conv_pool_conv(v, x):
    """conv 3x3/2 pad (0,1) -> ReLU -> max-pool 2x2/2 -> conv 3x3 SAME -> global mean."""
    dn = ("NHWC", "HWIO", "NHWC")
    y = lax.conv_general_dilated(x, v["w1"], (2, 2), ((0, 1), (0, 1)), dimension_numbers=dn) + v["b1"]
    y = nn.max_pool(jax.nn.relu(y), (2, 2), (2, 2))
    y = lax.conv_general_dilated(y, v["w2"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn) + v["b2"]
    return jnp.mean(y, axis=(1, 2))


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_conv_pool_conv_by_hand(tau):
    ks = jax.random.split(KEY, 5)
    v = {
        "w1": jax.random.normal(ks[0], (3, 3, 1, 2)),
        "b1": jax.random.normal(ks[1], (2,)) - 1.0,  # some ReLU outputs are 0, many negative pre-acts
        "w2": jax.random.normal(ks[2], (3, 3, 2, 2)),
        "b2": jax.random.normal(ks[3], (2,)),
    }
    x = jax.random.normal(ks[4], (2, 12, 12, 1))
    m = np.ones((2, 12, 12), np.float32)
    m[0, 0:7, 0:9] = 0
    m[1, 4:12, 5:8] = 0
    m[1, 1, 1] = 0
    out = np.asarray(jax.jit(convad(conv_pool_conv, tau=tau))(v, x, jnp.asarray(m)))

    f64 = lambda a: np.asarray(a, np.float64)
    y1 = np_conv(f64(x) * m[..., None], f64(v["w1"]), f64(v["b1"]), 2, ((0, 1), (0, 1)))  # [2,6,6,2]
    m1 = np_mask(m, 3, 2, ((0, 1), (0, 1)), tau)
    z1 = np.where(m1[..., None] > 0, np.maximum(y1, 0), -np.inf)  # max-pool ignores masked units
    p = z1.reshape(2, 3, 2, 3, 2, 2).max(axis=(2, 4))
    m2 = np_mask(m1, 2, 2, ((0, 0), (0, 0)), tau)
    p = np.where(m2[..., None] > 0, p, 0.0)
    y2 = np_conv(p, f64(v["w2"]), f64(v["b2"]), 1, ((1, 1), (1, 1)))
    m3 = np_mask(m2, 3, 1, ((1, 1), (1, 1)), tau)
    want = (y2 * m3[..., None]).sum((1, 2)) / 9
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert m2.min() == 0 and m2.max() == 1


# -------------------------------------------------------------- a small CNN family


class SmallNet(nn.Module):
    """Every rule family: conv (strided, TF-SAME), BN, ReLU6/SiLU/GELU, depthwise (named jit),
    residual add, max/avg pool, squeeze-excitation, concat, explicit pad, reshape/transpose,
    Dense over channels, global mean."""

    @nn.compact
    def __call__(self, x):
        bn = lambda: nn.BatchNorm(use_running_average=True)
        x = nn.Conv(8, (3, 3), strides=2, padding=((0, 1), (0, 1)))(x)
        x = jax.nn.relu6(bn()(x))
        r = x
        x = DepthwiseConv(3, 1, ((1, 1), (1, 1)))(x)
        x = jax.nn.silu(bn()(x))
        x = nn.Dense(8)(x)  # 1x1 conv as a Dense over channels
        x = x + r
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        x = x * jax.nn.sigmoid(nn.Conv(8, (1, 1))(jax.nn.relu(nn.Conv(4, (1, 1))(s))))
        x = jnp.concatenate([x, nn.Conv(4, (1, 1), strides=1)(x)], axis=-1)
        x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], 2, 6, *x.shape[1:3])
        x = jnp.transpose(x.reshape(x.shape[0], 12, *x.shape[3:]), (0, 2, 3, 1))
        x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        x = nn.Conv(8, (3, 3), strides=2, padding="VALID")(x)
        x = nn.gelu(x) + nn.Conv(8, (1, 1), strides=2)(x[:, 1:-1:1, 1:-1])
        x = nn.avg_pool(x, (2, 2), (1, 1), padding="SAME")
        return nn.Dense(5)(jnp.mean(x, axis=(1, 2)))


@pytest.fixture(scope="module")
def small_net():
    net = SmallNet()
    x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
    v = init_model(net, x)
    return net.apply, v, x


def test_small_net_theorem1_and_exact_deactivation(small_net):
    apply_fn, v, x = small_net
    check_convad(apply_fn, v, x, jax.random.key(3))
    check_convad(apply_fn, v, x, jax.random.key(4), taus=(0.5,), pool="masked_mean")


@pytest.mark.parametrize("primitive", ["conv_general_dilated", "reduce_sum", "reduce_window_max"])
def test_poison_check_catches_a_missing_checkpoint(small_net, monkeypatch, primitive):
    """Mutation: the rule of `primitive` without its input checkpoint (the value goes in
    with whatever its masked positions hold). The exact-deactivation check cannot see it
    (the input is zeroed at entry, so the hidden pixels never matter: it passed this very
    mutant before the poisoning check existed); the poisoning check does."""
    from rexjax.ad import interpreter
    from rexjax.jaxpr import bind

    rule = interpreter.PRIMITIVE_RULES[primitive]

    def without_checkpoint(ctx, eqn, vals, masks):
        outs, new = rule(ctx, eqn, vals, masks)
        if primitive == "reduce_sum" and new[0] is not None:
            return outs, new  # partial reductions are not in this net; only the global mean
        return bind(eqn, vals), new

    monkeypatch.setitem(interpreter.PRIMITIVE_RULES, primitive, without_checkpoint)
    apply_fn, v, x = small_net
    masks = random_masks(jax.random.key(3), x.shape[0], x.shape[1], x.shape[2])
    with pytest.raises(AssertionError, match="masked values reach the output"):
        check_poison(apply_fn, v, x, masks, taus=(0.0,))


def test_vmap_over_masks_matches_batch(small_net):
    apply_fn, v, x = small_net
    f = convad(apply_fn, tau=0.5)
    masks = random_masks(jax.random.key(5), 4, 32, 32)
    batched = f(v, jnp.broadcast_to(x[:1], x.shape), masks)
    mapped = jax.jit(jax.vmap(lambda m: f(v, x[:1], m[None])[0]))(masks)
    np.testing.assert_allclose(mapped, batched, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------- oracles


def test_depthwise_named_jit_equals_grouped_conv():
    """The conv-like rule for `layers.depthwise_conv` gives the same masks (hence the same
    outputs) as the conv rule for the equivalent grouped `conv_general_dilated`."""

    def net(grouped):
        def apply_fn(v, x):
            from rexjax.models.layers import depthwise_conv

            for k, s, pad in ((3, 2, ((0, 1), (0, 1))), (5, 1, ((2, 2), (2, 2)))):
                w = v[f"w{k}"]
                if grouped:
                    x = lax.conv_general_dilated(
                        x, w, (s, s), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1]
                    )
                else:
                    x = depthwise_conv(x, w, s, pad)
                x = jax.nn.relu(x + 0.1)
            return x  # the spatial output is switched off by its final mask

        return apply_fn

    v = {"w3": jax.random.normal(KEY, (3, 3, 1, 4)), "w5": jax.random.normal(jax.random.key(1), (5, 5, 1, 4))}
    x = jax.random.normal(jax.random.key(2), (4, 17, 17, 4))
    masks = random_masks(jax.random.key(3), 4, 17, 17)
    for tau in (0.0, 0.5):
        a = jax.jit(convad(net(False), tau=tau))(v, x, masks)
        b = jax.jit(convad(net(True), tau=tau))(v, x, masks)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        assert (np.asarray(b) == 0).any() and (np.asarray(b) != 0).any()


def test_explicit_pad_equals_conv_padding():
    """`jnp.pad` + VALID conv behaves as the conv's own padding: padding is never masked."""
    w = jax.random.normal(KEY, (3, 3, 2, 3))
    dn = ("NHWC", "HWIO", "NHWC")

    def padded(v, x):
        x = jnp.pad(x, ((0, 0), (1, 2), (2, 1), (0, 0)), constant_values=0.0)
        return jnp.tanh(lax.conv_general_dilated(x, v, (2, 2), "VALID", dimension_numbers=dn) + 0.3)

    def inline(v, x):
        return jnp.tanh(lax.conv_general_dilated(x, v, (2, 2), ((1, 2), (2, 1)), dimension_numbers=dn) + 0.3)

    x = jax.random.normal(jax.random.key(1), (4, 10, 9, 2))
    masks = random_masks(jax.random.key(2), 4, 10, 9)
    for tau in (0.0, 0.5):
        np.testing.assert_allclose(
            convad(padded, tau=tau)(w, x, masks), convad(inline, tau=tau)(w, x, masks), rtol=1e-6, atol=1e-6
        )


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_residual_add_mask_rule(tau):
    """Residual add of a 3x3-conv branch and the identity: Definition 4 over the two
    operands, i.e. OR at tau=0 (the branch's dilated mask) and AND at tau=0.5."""
    w = jnp.ones((3, 3, 1, 1))

    def res(v, x):
        y = lax.conv_general_dilated(x, v, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + x + 100.0  # +100: every active unit is non-zero

    m = np.ones((1, 9, 9), np.float32)
    m[0, 2:7, 3:8] = 0
    out = np.asarray(convad(res, tau=tau)(w, jnp.ones((1, 9, 9, 1)), jnp.asarray(m)))[0, ..., 0]
    branch = np_mask(m, 3, 1, ((1, 1), (1, 1)), tau)[0]
    want = np.maximum(branch, m[0]) if tau < 0.5 else np.minimum(branch, m[0])
    np.testing.assert_array_equal(out != 0, want > 0)


# ----------------------------------------------------------- errors and plumbing


def test_unknown_primitive_touching_mask_raises():
    def bad(v, x):
        return jnp.cumsum(x, axis=1).mean((1, 2)) + v

    with pytest.raises(UnsupportedPrimitiveError, match="cumsum"):
        convad(bad)(jnp.zeros(3), jnp.ones((1, 4, 4, 3)), jnp.ones((1, 4, 4)))


def test_unknown_primitive_on_parameters_is_fine():
    def ok(v, x):
        return x.mean((1, 2)) * jnp.cumsum(v)

    out = convad(ok)(jnp.ones(3), jnp.ones((1, 4, 4, 3)), jnp.ones((1, 4, 4)))
    np.testing.assert_allclose(out, [[1.0, 2.0, 3.0]])


def test_bad_arguments():
    with pytest.raises(ValueError, match="tau"):
        convad(one_conv, tau=1.0)
    with pytest.raises(ValueError, match="pool"):
        convad(one_conv, pool="median")
    f = convad(one_conv)
    v = {"w": jnp.ones((3, 3, 2, 3)), "b": jnp.zeros(3)}
    with pytest.raises(ValueError, match="mask"):
        f(v, jnp.ones((1, 5, 5, 2)), jnp.ones((1, 5, 4)))
    with pytest.raises(ValueError, match="x must be"):  # no position axis (1-3 are taken)
        f(v, jnp.ones((5, 2)), jnp.ones((5,)))


def test_classifier_masked_ad_mode(small_net):
    """`Classifier.masked("ad")` hands the model to ConvAD: softmax of `convad` outputs."""
    apply_fn, v, x = small_net

    class Model:
        variables = v

        @staticmethod
        def apply_fn(variables, xb):
            return apply_fn(variables, xb)

        def __call__(self, xb):
            return apply_fn(v, xb)

    masks = random_masks(jax.random.key(7), 3, 32, 32)
    probs = Classifier(Model()).masked("ad", tau=0.5)(x[0], masks)
    want = jax.nn.softmax(convad(apply_fn, tau=0.5)(v, jnp.broadcast_to(x[:1], (3, 32, 32, 3)), masks), axis=-1)
    np.testing.assert_allclose(probs, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, rtol=1e-5)


def test_window_count_matches_conv_of_ones():
    """The numpy window count (padding not counted) equals a conv of ones, dilations included."""
    from rexjax.ad.mask import window_count_1d

    rng = np.random.default_rng(0)
    for _ in range(12):
        n, k, s = int(rng.integers(3, 12)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
        pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        ld, rd = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        want = lax.conv_general_dilated(
            jnp.ones((1, n, 1)), jnp.ones((k, 1, 1)), (s,), (pad,), lhs_dilation=(ld,), rhs_dilation=(rd,),
            dimension_numbers=("NWC", "WIO", "NWC"),
        )[0, :, 0]
        np.testing.assert_array_equal(window_count_1d(n, k, s, pad, ld, rd), np.asarray(want))
