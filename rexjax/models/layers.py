"""Shared layers for the Flax zoo.

`SqueezeExcitation` is the squeeze-excitation block of RegNetY (timm `SEModule`, ReLU) and
EfficientNet-V2 (torchvision `ops.SqueezeExcitation`, SiLU). `attention` (multi-head
self-attention) is named the same way for the ViT token rule (`rexjax.ad.rules_attention`).
`depthwise_conv` is one `jax.jit`-wrapped function, so it appears in a jaxpr as a single
named equation (`name=depthwise_conv`) that ConvAD's interpreter treats as a convolution.
On CPU it is a sum of k*k strided, shifted slices (XLA:CPU's grouped convolution is 5-13x
slower, see BUILD_NOTES.md); elsewhere it is `lax.conv_general_dilated` with
`feature_group_count=C`.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Padding = tuple[tuple[int, int], tuple[int, int]]


def _check_padding(padding) -> Padding:
    try:
        (pt, pb), (pl, pr) = padding
        return ((int(pt), int(pb)), (int(pl), int(pr)))
    except (TypeError, ValueError):
        raise ValueError(f"padding must be ((top, bottom), (left, right)), got {padding!r}") from None


def depthwise_conv_slices(x: jax.Array, kernel: jax.Array, stride: int, padding: Padding) -> jax.Array:
    """Depthwise conv as a sum of k*k strided shifted slices: `y = sum_ij xp[s*o+i, s*p+j] * w[i,j]`."""
    kh, kw = kernel.shape[:2]
    (pt, pb), (pl, pr) = padding
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    b, hp, wp, c = xp.shape
    ho = (hp - kh) // stride + 1
    wo = (wp - kw) // stride + 1
    out = None
    for i in range(kh):
        for j in range(kw):
            sl = lax.slice(
                xp,
                (0, i, j, 0),
                (b, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, c),
                (1, stride, stride, 1),
            )
            term = sl * kernel[i, j, 0]
            out = term if out is None else out + term
    return out


def depthwise_conv_lax(x: jax.Array, kernel: jax.Array, stride: int, padding: Padding) -> jax.Array:
    """Depthwise conv with `lax.conv_general_dilated(feature_group_count=C)` (NHWC / HWIO)."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=x.shape[-1],
        precision=None,
    )


@partial(jax.jit, static_argnames=("stride", "padding"))
def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: Padding) -> jax.Array:
    """Depthwise 2-D convolution, one named jaxpr equation.

    x: f32[B, H, W, C]; kernel: f32[kh, kw, 1, C] (HWIO, as flax `feature_group_count=C`);
    stride: int; padding: ((top, bottom), (left, right)) zeros.
    Returns f32[B, (H+pt+pb-kh)//s+1, (W+pl+pr-kw)//s+1, C]. The implementation is chosen
    by `jax.default_backend()` when traced: shifted slices on CPU, grouped conv elsewhere.
    """
    if x.ndim != 4 or kernel.ndim != 4 or kernel.shape[2] != 1 or kernel.shape[3] != x.shape[-1]:
        raise ValueError(
            f"depthwise_conv expects x[B,H,W,C] and kernel[kh,kw,1,C], got {x.shape} and {kernel.shape}"
        )
    if jax.default_backend() == "cpu":
        return depthwise_conv_slices(x, kernel, stride, padding)
    return depthwise_conv_lax(x, kernel, stride, padding)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (as `Conv2dStaticSamePadding`): output ceil(size/stride), extra pad at the end."""
    out = -(-size // stride)
    pad = max((out - 1) * stride + kernel - size, 0)
    return (pad // 2, pad - pad // 2)


def symmetric_padding(kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """torch-style symmetric padding `((s-1) + d(k-1)) // 2` on both sides."""
    p = ((stride - 1) + dilation * (kernel - 1)) // 2
    return (p, p)


class DepthwiseConv(nn.Module):
    """Flax depthwise conv (no bias) with param `kernel[kh, kw, 1, C]`, calling `depthwise_conv`."""

    kernel_size: int
    stride: int = 1
    padding: Sequence[Sequence[int]] = ((0, 0), (0, 0))
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (self.kernel_size, self.kernel_size, 1, c), jnp.float32)
        return depthwise_conv(x, kernel.astype(x.dtype), self.stride, _check_padding(self.padding))


class SqueezeExcitation(nn.Module):
    """Squeeze-excitation `x * sigmoid(fc2(activation(fc1(mean_hw x))))`: x[B,H,W,C] -> x[B,H,W,C].

    fc1 (C -> `features`) and fc2 (`features` -> C) are 1x1 convs with bias, named as the
    torch modules (`fc1`/`fc2`) of both timm `SEModule` and torchvision `SqueezeExcitation`.
    """

    features: int
    activation: Callable[[jax.Array], jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = self.activation(nn.Conv(self.features, (1, 1), name="fc1")(s))
        s = nn.Conv(x.shape[-1], (1, 1), name="fc2")(s)
        return x * jax.nn.sigmoid(s)


def attention_core(q: jax.Array, k: jax.Array, v: jax.Array, key_keep: jax.Array | None = None) -> jax.Array:
    """Scaled dot-product attention `softmax(q k^T / sqrt(d) + bias) v` per head.

    q, k, v: f32[B, N, heads, d]; key_keep: None or bool[B, N] (False = the key/value token
    takes no part: its logits are -inf before the softmax). Returns f32[B, N, heads, d].
    """
    logits = jnp.einsum("bqhd,bkhd->bhqk", q * (q.shape[-1] ** -0.5), k)
    if key_keep is not None:
        logits = jnp.where(key_keep[:, None, None, :], logits, -jnp.inf)
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v)


@jax.jit
def attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    """Multi-head self-attention, one named jaxpr equation (`name=attention`), so that
    Activation-Deactivation (`rexjax.ad.rules_attention`) can drop inactive tokens as keys
    and values. q, k, v: f32[B, N, heads, d] -> f32[B, N, heads, d] (`attention_core`)."""
    if q.ndim != 4 or q.shape != k.shape or k.shape != v.shape:
        raise ValueError(f"attention expects q, k, v of one shape [B,N,heads,d], got {q.shape}, {k.shape}, {v.shape}")
    return attention_core(q, k, v)
