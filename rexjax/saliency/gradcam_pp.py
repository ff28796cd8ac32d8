"""Grad-CAM++ (Chattopadhay et al. 2018), Eq. 19 with the exponential-score closed form:

    a^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3),   w_k = sum_ij a^kc_ij ReLU(g_ij)
    L = ReLU(sum_k w_k A^k)

with g = d y_t / d A^k_ij (as pytorch-grad-cam; a = 0 where g = 0). Same model interface
as `gradcam`. forward_images = 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rexjax.saliency.gradcam import _cam_factory


def gradcam_pp_weights(feat, g):
    g2, g3 = g**2, g**3
    denom = 2 * g2 + feat.sum(axis=(0, 1), keepdims=True) * g3
    denom = jnp.where(denom != 0, denom, 1.0)
    a = jnp.where(g != 0, g2 / denom, 0.0)
    return (a * jax.nn.relu(g)).sum(axis=(0, 1))


def gradcam_pp(relu: bool = True, output: str = "logit"):
    """Grad-CAM++ factory. Returns `(key, features_and_logits, x, target) -> Saliency`."""
    return _cam_factory(gradcam_pp_weights, relu, output)
