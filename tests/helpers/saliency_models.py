"""Small synthetic models for the saliency tests, as `rexjax.classifier.Classifier`s.

The occlusion-style synthetic models score *which pixels are visible*. They are plain model
functions of the image, declared `outputs="probs"` so their scores reach the methods
unchanged (never softmaxed): shown an all-ones image through the default painted masking
(`mask_mode=0`), the model's input is `1 * m + 0 * (1 - m) = m`, so its first channel is
exactly the mask. Use them with `x = ones`.
"""

import jax
import jax.numpy as jnp

from rexjax.classifier import Classifier


def linear_model(c, b=0.0, k=2):
    """Classifier whose class-0 score is sum(c * m) + b on an all-ones image (c: f32[H, W])."""
    c = jnp.asarray(c)

    def scores(xb):
        f = (xb[..., 0] * c[None]).sum((1, 2)) + b
        return jnp.concatenate([f[:, None], jnp.zeros((xb.shape[0], k - 1))], -1)

    return Classifier(scores, outputs="probs", name="linear")


def visible_game(segments, value):
    """Classifier whose class-1 score is value(v) on an all-ones image, v_j = visible
    fraction of superpixel j of `segments` (int [H, W], labels 0..M-1); class 0 = 1 - value."""
    onehot = jax.nn.one_hot(jnp.asarray(segments), int(segments.max()) + 1)  # [H, W, M]

    def scores(xb):
        v = jnp.einsum("bhw,hwj->bj", xb[..., 0], onehot) / onehot.sum((0, 1))
        f = value(v)
        return jnp.stack([1 - f, f], -1)

    return Classifier(scores, outputs="probs", name="game")


def small_cnn(key, channels=3, k=5):
    """A ReLU CNN x[B,H,W,C] -> logits[B,k] with random weights (two 3x3 convs, mean pool)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    w1 = jax.random.normal(k1, (3, 3, channels, 8)) * 0.5
    w2 = jax.random.normal(k2, (3, 3, 8, 8)) * 0.3
    b1 = jax.random.normal(k4, (8,)) * 0.1
    wd = jax.random.normal(k3, (8, k))

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def logits(x):
        h = jax.nn.relu(conv(x, w1) + b1)
        h = jax.nn.relu(conv(h, w2))
        return h.mean((1, 2)) @ wd

    return logits
