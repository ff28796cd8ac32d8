"""ConvAD through layouts that split or merge position axes, keepdims pooling, and the
primitives behind stop_gradient, edge padding and image resizing.

Each model is checked against an oracle whose ConvAD semantics are already pinned
(a strided conv, the numpy mask of Definition 4, the painted input), plus the exact
deactivation and poisoning checks. Never a silently clean value: layouts ConvAD cannot
carry raise `UnsupportedPrimitiveError`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from rexjax.ad import UnsupportedPrimitiveError, convad
from tests.helpers.ad_helpers import check_convad, random_masks

DN = ("NHWC", "HWIO", "NHWC")
KEY = jax.random.key(0)


def conv(x, w, stride=1, padding="SAME"):
    return lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=DN)


def random_weights(**shapes: tuple[int, ...]) -> dict[str, jax.Array]:
    """{name: standard normal f32[shape]}, the i-th name drawn with the i-th key of
    `jax.random.split(KEY, len(shapes))`."""
    keys = jax.random.split(KEY, len(shapes))
    return {name: jax.random.normal(k, shape) for k, (name, shape) in zip(keys, shapes.items())}


def space_to_depth(x, p):
    """[B,H,W,C] -> [B,H/p,W/p,p*p*C] by reshape/transpose (order (dy, dx, c))."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // p, w // p, p * p * c)


def depth_to_space(x, p):
    """Pixel shuffle [B,H,W,p*p*C] -> [B,pH,pW,C] by reshape/transpose."""
    b, h, w, c = x.shape
    x = x.reshape(b, h, w, p, p, c // (p * p)).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * p, w * p, c // (p * p))


def active(out):
    """Where the (spatial) AD output is switched off: the final mask, read off a value
    that is non-zero wherever it is active (tanh of something + a bias away from 0)."""
    return np.asarray(out) != 0


def assert_same_convad(net, reference, x, masks, tau):
    """ConvAD of `net` = (apply_fn, variables) equals ConvAD of the `reference` it rewrites:
    the same outputs switched off and the same values, on a mask that switches some but not
    all outputs off."""
    got = convad(net[0], tau=tau)(net[1], x, masks)
    want = convad(reference[0], tau=tau)(reference[1], x, masks)
    np.testing.assert_array_equal(active(got), active(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert active(want).any() and not active(want).all()


# ------------------------------------------------------------------ position layouts


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_space_to_depth_then_1x1_conv_is_a_2x2_stride_2_conv(tau):
    """Space-to-depth by reshape, then a 1x1 conv over the merged (position, channel)
    features == a 2x2 / 2 conv: same values, same mask (Definition 4 over input features).
    Before: the reshape returned a clean value, masked pixels acted as visible zeros."""
    c, d = 3, 4
    w1 = jax.random.normal(KEY, (1, 1, 4 * c, d))
    w2 = w1.reshape(2, 2, c, d)  # (dy, dx, c) order of space_to_depth
    b = 0.5 + jnp.arange(d) / 10

    def s2d(v, x):
        return jnp.tanh(conv(space_to_depth(x, 2), v) + b)

    def strided(v, x):
        return jnp.tanh(conv(x, v, 2, "VALID") + b)

    x = jax.random.normal(jax.random.key(1), (4, 12, 10, c))
    masks = random_masks(jax.random.key(2), 4, 12, 10)
    assert_same_convad((s2d, w1), (strided, w2), x, masks, tau)


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_patchify_by_reshape_then_dense_is_a_patch_conv(tau):
    """ViT-style patch embedding: patches by reshape, a Dense over each patch's (position,
    channel) features == a conv with kernel = stride = patch. Some taps have zero weights
    for some outputs: Definition 4 counts window positions, not non-zero weights, so the
    Dense over a merged (mixed) axis must count every patch position as the conv does."""
    c, d, p = 2, 5, 3
    w = jax.random.normal(KEY, (p, p, c, d)).at[0, :, :, :2].set(0.0)
    b = 0.5 + jnp.arange(d) / 10

    def patchify(v, x):
        return jnp.tanh(space_to_depth(x, p) @ v.reshape(p * p * c, d) + b)

    def patch_conv(v, x):
        return jnp.tanh(conv(x, v, p, "VALID") + b)

    x = jax.random.normal(jax.random.key(1), (4, 12, 9, c))
    masks = random_masks(jax.random.key(3), 4, 12, 9)
    assert_same_convad((patchify, w), (patch_conv, w), x, masks, tau)


def test_pixel_shuffle_carries_the_mask_to_the_copies():
    """Depth-to-space (a reshape merging rows with a channel split): each output pixel
    comes from one input position and carries its mask (nearest upsampling of the mask)."""
    w = jax.random.normal(KEY, (1, 1, 3, 8))

    def shuffle(v, x):
        return jnp.tanh(depth_to_space(conv(x, v), 2) + 0.5)

    x = jax.random.normal(jax.random.key(1), (4, 6, 5, 3))
    masks = random_masks(jax.random.key(4), 4, 6, 5)
    out = convad(shuffle)(w, x, masks)
    up = np.repeat(np.repeat(np.asarray(masks) > 0, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(active(out), np.broadcast_to(up[..., None], out.shape))


class ShuffleNet:
    """conv -> pixel shuffle -> 3x3 conv -> space-to-depth -> 3x3 conv -> mean -> Dense."""

    @staticmethod
    def init():
        v = random_weights(w1=(3, 3, 3, 8), w2=(3, 3, 2, 4), w3=(3, 3, 16, 6), wd=(6, 5))
        return {name: w if name == "wd" else w * 0.3 for name, w in v.items()}  # convs scaled down

    @staticmethod
    def apply(v, x):
        y = jax.nn.relu(conv(x, v["w1"]) + 0.1)
        y = jax.nn.relu(conv(depth_to_space(y, 2), v["w2"]) - 0.1)
        y = jax.nn.relu(conv(space_to_depth(y, 2), v["w3"]) + 0.2)
        return y.mean((1, 2)) @ v["wd"]


def test_shuffle_net_exact_and_leak_free():
    x = jax.random.normal(jax.random.key(1), (4, 12, 12, 3))
    check_convad(ShuffleNet.apply, ShuffleNet.init(), x, jax.random.key(5))


def test_attention_over_flattened_positions_raises():
    """Flatten to tokens, then attention: the scores pair two masked operands. ConvAD has no
    rule for it and says so (before: the flatten made the tokens clean, silently)."""
    wq, wk = jax.random.normal(KEY, (2, 3, 4))

    def attend(v, x):
        t = x.reshape(x.shape[0], -1, x.shape[-1])
        s = jnp.einsum("bqd,bkd->bqk", t @ v[0], t @ v[1])
        return (jax.nn.softmax(s, -1) @ t).mean(1)

    with pytest.raises(UnsupportedPrimitiveError, match="both operands masked"):
        convad(attend)(jnp.stack([wq, wk]), jnp.ones((1, 4, 4, 3)), jnp.ones((1, 4, 4)))


def test_merged_position_axis_keeps_its_mask():
    """[B,H,W,C] -> [B,HW,C] (tokens) -> Dense over channels -> back to [B,H,W,D]: the
    token axis is a position axis, so the output mask is the input mask (a 1x1 conv)."""
    w = jax.random.normal(KEY, (3, 4))

    def tokens(v, x):
        t = x.reshape(x.shape[0], -1, x.shape[-1]) @ v
        return jnp.tanh(t.reshape(*x.shape[:3], -1) + 0.5)

    x = jax.random.normal(jax.random.key(1), (4, 5, 6, 3))
    masks = random_masks(jax.random.key(6), 4, 5, 6)
    out = convad(tokens)(w, x, masks)
    np.testing.assert_array_equal(active(out), np.broadcast_to((np.asarray(masks) > 0)[..., None], out.shape))


def np_adaptive_pool_ad(x, m, out_hw, tau, pool):
    """ConvAD of torch's separable AdaptiveAvgPool2d (rows, then columns), in numpy: each
    bin is a DA op on its own (Phi = visible / positions in the bin > tau), its value the
    mean with masked positions zeroed (pool "deactivate") or the mean of visible ones."""

    def axis_pool(x, m, n_out, axis):
        n = x.shape[axis]
        xs, ms = [], []
        for i in range(n_out):
            lo, hi = (i * n) // n_out, -((-(i + 1) * n) // n_out)
            xb = np.take(x, range(lo, hi), axis=axis)
            mb = np.take(m, range(lo, hi), axis=axis)
            count = mb.sum(axis, keepdims=True)
            total = (xb * mb[..., None]).sum(axis, keepdims=True)
            if pool == "deactivate":
                val = total / (hi - lo)
            else:
                val = np.where(count[..., None] > 0, total / np.maximum(count[..., None], 1), 0.0)
            keep = (count > tau * (hi - lo)).astype(np.float64)
            xs.append(val * keep[..., None])
            ms.append(keep)
        return np.concatenate(xs, axis), np.concatenate(ms, axis)

    x, m = axis_pool(np.asarray(x, np.float64), np.asarray(m, np.float64), out_hw[0], 1)
    x, m = axis_pool(x, m, out_hw[1], 2)
    return x, m


@pytest.mark.parametrize("tau,pool", [(0.5, "deactivate"), (0.0, "masked_mean"), (0.3, "masked_mean")])
def test_vgg_adaptive_pool_at_a_size_not_divisible_keeps_per_bin_masks(tau, pool):
    """VGG's adaptive pool at 8 x 10 -> 3 x 4 (overlapping bins: slices, mean with keepdims,
    concatenation). The keepdims axis stays a position axis, so the bins' masks are
    concatenated, not OR-ed, and the second pass thresholds per bin. Before: the first
    pass left an untagged size-1 axis, the concatenation OR-ed the bins and the second
    pass returned a clean value."""
    from rexjax.models.vgg import adaptive_avg_pool

    def pool_only(v, x):
        return adaptive_avg_pool(x, (3, 4)) + v  # v = 0: keeps the output's zeros readable

    x = jax.random.normal(KEY, (4, 8, 10, 2)) + 3.0  # non-zero means
    masks = random_masks(jax.random.key(7), 4, 8, 10)
    got = np.asarray(convad(pool_only, tau=tau, pool=pool)(jnp.zeros(()), x, masks))
    want, want_mask = np_adaptive_pool_ad(x, masks, (3, 4), tau, pool)
    np.testing.assert_array_equal(got != 0, np.broadcast_to(want_mask[..., None] > 0, got.shape))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert 0 < want_mask.mean() < 1


# ------------------------------------------------ rule gaps: stop_gradient, pad, resize


def test_softmax_over_channels_has_stop_gradient_rule():
    """jax.nn.softmax subtracts `stop_gradient(max)`: an identity, position-wise."""
    v = random_weights(w1=(3, 3, 3, 6), w2=(3, 3, 6, 4), wd=(4, 5))

    def net(v, x):
        y = jax.nn.softmax(conv(x, v["w1"]), axis=-1)
        return jax.nn.relu(conv(y, v["w2"]) + 0.1).mean((1, 2)) @ v["wd"]

    x = jax.random.normal(jax.random.key(1), (4, 10, 10, 3))
    check_convad(net, v, x, jax.random.key(8))


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric", "wrap"])
def test_copying_pad_modes_carry_the_copied_masks(mode):
    """jnp.pad modes that copy pixels lower to slices, flips, broadcasts, reshapes and
    concatenations (with zero-width pieces along the batch and channel axes): the copies
    carry the masks of what they copy. Before, "edge" failed with a wrong reason
    ("concatenation along the batch axis")."""

    def padded(v, x):
        return jnp.tanh(jnp.pad(x, ((0, 0), (2, 1), (1, 3), (0, 0)), mode=mode) + v)

    x = jax.random.normal(KEY, (4, 6, 5, 2))
    masks = random_masks(jax.random.key(9), 4, 6, 5)
    b = jnp.asarray([0.5, -0.7])
    out = np.asarray(convad(padded)(b, x, masks))
    want_mask = np.pad(np.asarray(masks) > 0, ((0, 0), (2, 1), (1, 3)), mode=mode)
    np.testing.assert_array_equal(active(out), np.broadcast_to(want_mask[..., None], out.shape))
    painted = np.asarray(padded(b, x * masks[..., None]))
    np.testing.assert_allclose(out, np.where(want_mask[..., None], painted, 0.0), rtol=1e-6, atol=1e-6)


def test_edge_pad_net_exact_and_leak_free():
    w = jax.random.normal(KEY, (3, 3, 3, 4))

    def net(v, x):
        y = conv(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge"), v, 1, "VALID")
        return jax.nn.relu(y + 0.1).mean((1, 2))

    check_convad(net, w, jax.random.normal(jax.random.key(1), (4, 9, 8, 3)), jax.random.key(10))


def test_nearest_resize_copies_masks():
    """jax.image.resize "nearest" is a gather: each output pixel copies one input pixel
    and its mask (up by 2 == np.repeat; down by 2 picks one pixel per 2 x 2 block)."""

    def up(v, x):
        return jnp.tanh(jax.image.resize(x, (x.shape[0], 12, 10, x.shape[3]), "nearest") + v)

    x = jax.random.normal(KEY, (4, 6, 5, 2))
    masks = random_masks(jax.random.key(11), 4, 6, 5)
    out = np.asarray(convad(up)(jnp.asarray(0.5), x, masks))
    want = np.repeat(np.repeat(np.asarray(masks) > 0, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(active(out), np.broadcast_to(want[..., None], out.shape))
    painted = np.asarray(up(0.5, x * masks[..., None]))
    np.testing.assert_allclose(out, np.where(want[..., None], painted, 0.0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name,layout,mask_of",
    [
        ("bgr", lambda x: x[..., ::-1][..., jnp.array([0, 2, 1])], lambda m: m),  # feature gather: same mask
        ("take", lambda x: jnp.take(x, jnp.array([0, 2, 2, 5]), axis=1), lambda m: m[:, [0, 2, 2, 5]]),  # mode fill
        ("repeat", lambda x: jnp.repeat(jnp.repeat(x, 2, axis=1), 3, axis=2), lambda m: m.repeat(2, 1).repeat(3, 2)),
    ],
)
def test_copying_layouts_carry_masks(name, layout, mask_of):
    """Integer indexing along channels or positions (gather, also with out-of-bounds fill),
    and jnp.repeat (broadcast + reshape): the mask follows the copies."""

    def net(v, x):
        return jnp.tanh(layout(x) + v)

    x = jax.random.normal(KEY, (4, 6, 5, 3))
    masks = random_masks(jax.random.key(14), 4, 6, 5)
    out = np.asarray(convad(net)(jnp.asarray(0.5), x, masks))
    want = mask_of(np.asarray(masks) > 0)
    np.testing.assert_array_equal(active(out), np.broadcast_to(want[..., None], out.shape))


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_bilinear_resize_masks_by_receptive_field(tau):
    """jax.image.resize "bilinear" is two contractions with interpolation matrices: each
    output pixel is active iff the visible fraction of the input pixels with a non-zero
    weight is > tau (rows first, then columns); its value is the resize of the image with
    masked pixels zeroed."""
    h, w, oh, ow = 6, 5, 12, 10

    def up(v, x):
        return jax.image.resize(x, (x.shape[0], oh, ow, x.shape[3]), "bilinear") + v

    x = jax.random.normal(KEY, (4, h, w, 2)) + 3.0
    masks = random_masks(jax.random.key(12), 4, h, w)
    out = np.asarray(convad(up, tau=tau)(jnp.zeros(()), x, masks))
    kh = np.asarray(jax.image.resize(jnp.eye(h), (oh, h), "bilinear")) != 0  # [oh, h]
    kw = np.asarray(jax.image.resize(jnp.eye(w), (ow, w), "bilinear")) != 0
    m = np.asarray(masks, np.float64)
    m1 = (np.einsum("oh,bhw->bow", kh, m) > tau * kh.sum(1)[None, :, None]).astype(np.float64)
    m2 = np.einsum("pw,bow->bop", kw, m1) > tau * kw.sum(1)[None, None, :]
    np.testing.assert_array_equal(active(out), np.broadcast_to(m2[..., None], out.shape))
    painted = np.asarray(up(0.0, x * masks[..., None]))
    np.testing.assert_allclose(out, np.where(m2[..., None], painted, 0.0), rtol=1e-5, atol=1e-5)
    assert 0 < m2.mean() < 1


def test_upsampling_unet_exact_and_leak_free():
    """conv/2 -> nearest up -> concat skip -> conv -> bilinear down -> mean: exact and no leak."""
    v = random_weights(w1=(3, 3, 3, 4), w2=(3, 3, 7, 4), wd=(4, 3))

    def net(v, x):
        b, h, w, _ = x.shape
        y = jax.nn.relu(conv(x, v["w1"], 2) + 0.1)
        y = jax.image.resize(y, (b, h, w, y.shape[3]), "nearest")
        y = jax.nn.relu(conv(jnp.concatenate([y, x], -1), v["w2"]) - 0.1)
        y = jax.image.resize(y, (b, h // 2, w // 2, y.shape[3]), "bilinear")
        return y.mean((1, 2)) @ v["wd"]

    check_convad(net, v, jax.random.normal(jax.random.key(1), (4, 12, 10, 3)), jax.random.key(13))
