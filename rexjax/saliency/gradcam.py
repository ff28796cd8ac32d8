"""Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018) on a named
intermediate feature map.

The model is seen through `classifier.features(layer)`: `features_and_logits(x[B,H,W,C],
delta) -> (feat[B,h,w,c], logits[B,K])`, where `delta` (None, or an array shaped like `feat`)
is *added* to the feature map before the rest of the network runs. Differentiating the
logits with respect to `delta` at 0 gives d y_t / d A without model surgery. Zoo models
expose every feature point (`layer=None`: the last spatial one); a plain callable brings its
own (`Classifier(fn, features=features_and_logits)`).

Grad-CAM:    alpha_k = 1/(hw) sum_ij d y_t / d A^k_ij,   L = ReLU(sum_k alpha_k A^k)  (Eq. 1-2)
Grad-CAM++:  a^kc_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3),   w_k = sum_ij a^kc_ij ReLU(g_ij),
             L = ReLU(sum_k w_k A^k)        (Eq. 19, exponential-score closed form, with
             g = d y_t / d A^k_ij as pytorch-grad-cam; a = 0 where g = 0)

then bilinear upsampling to H x W (`upsample`). y_t is the target logit (`output="logit"`,
the paper's pre-softmax score) or its probability. forward_images = 1.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from rexjax import checks
from rexjax.types import Attribution

OUTPUTS = ("logit", "prob")


def upsample(m: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """Bilinear resize of `m[h, w]` to `hw` (half-pixel centres, edge clamp)."""
    return jax.image.resize(m, tuple(hw), "bilinear")


def feature_shape(features_and_logits: Callable, x: jax.Array) -> tuple:
    """Shape of the feature map for one image x[H,W,C] (shape inference; checks the outputs)."""
    feat, logits = jax.eval_shape(lambda z: features_and_logits(z, None), x[None])
    if len(feat.shape) != 4:
        raise ValueError(f"features_and_logits must return features [B, h, w, c], got {feat.shape}")
    if len(logits.shape) != 2:
        raise ValueError(f"features_and_logits must return logits [B, K], got {logits.shape}")
    return feat.shape


def feature_gradients(features_and_logits, x, target, output="logit"):
    """(A f32[h,w,c], d y_t / d A f32[h,w,c]) for one image x[H,W,C]."""
    checks.one_of("output", output, OUTPUTS)
    feat_shape = jax.eval_shape(lambda z: features_and_logits(z, None)[0], x[None]).shape

    def score(delta):
        feat, logits = features_and_logits(x[None], delta)
        if output == "prob":
            logits = jax.nn.softmax(logits, axis=-1)
        return logits[0, target], feat[0]

    grads, feat = jax.grad(score, has_aux=True)(jnp.zeros(feat_shape, x.dtype))
    return feat, grads[0]


def gradcam_weights(feat, g):
    """alpha_k: spatial mean of the gradients (Grad-CAM Eq. 1)."""
    return g.mean(axis=(0, 1))


def gradcam_pp_weights(feat, g):
    """w_k of Grad-CAM++ (Eq. 19 with the exponential-score closed form)."""
    g2, g3 = g**2, g**3
    denom = 2 * g2 + feat.sum(axis=(0, 1), keepdims=True) * g3
    denom = jnp.where(denom != 0, denom, 1.0)
    a = jnp.where(g != 0, g2 / denom, 0.0)
    return (a * jax.nn.relu(g)).sum(axis=(0, 1))


def cam_method(name: str, weights_fn: Callable, layer: Optional[str], relu: bool, output: str):
    """`fn(classifier, x, target, *, key) -> Attribution` for the CAM `name` with channel weights
    `weights_fn(feat f32[h,w,c], grads f32[h,w,c]) -> f32[c]`."""
    checks.one_of("output", output, OUTPUTS)
    if layer is not None and not isinstance(layer, str):
        raise ValueError(f"layer must be a feature point name or None, got {layer!r}")

    @functools.partial(jax.jit, static_argnums=0)
    def cam_map(features_and_logits, x, target):
        feat, g = feature_gradients(features_and_logits, x, target, output)
        cam = jnp.einsum("hwc,c->hw", feat, weights_fn(feat, g))
        if relu:
            cam = jax.nn.relu(cam)
        return upsample(cam, x.shape[:2])

    def explain(classifier, x, target, *, key) -> Attribution:
        del key
        classifier.require_gradients(name)
        x, t = classifier.check(x, target)
        features_and_logits = classifier.features(layer)
        feature_shape(features_and_logits, x)
        return Attribution(cam_map(features_and_logits, x, t), 1)

    return explain


def gradcam(layer: Optional[str] = None, relu: bool = True, output: str = "logit"):
    """Grad-CAM factory. Returns `fn(classifier, x, target, *, key) -> Attribution` (key unused)."""
    return cam_method("gradcam", gradcam_weights, layer, relu, output)


def gradcam_pp(layer: Optional[str] = None, relu: bool = True, output: str = "logit"):
    """Grad-CAM++ factory. Returns `fn(classifier, x, target, *, key) -> Attribution` (key unused)."""
    return cam_method("gradcam_pp", gradcam_pp_weights, layer, relu, output)
