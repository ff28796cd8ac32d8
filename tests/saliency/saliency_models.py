"""Small synthetic models for the saliency tests."""

import jax
import jax.numpy as jnp


def linear_masked(c, b=0.0, k=2):
    """MaskedClassifier whose class-0 score is sum(c * m) + b (c: f32[H, W])."""

    def classify(x, masks):
        f = (masks * c[None]).sum((1, 2)) + b
        return jnp.concatenate([f[:, None], jnp.zeros((masks.shape[0], k - 1))], -1)

    return classify


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
