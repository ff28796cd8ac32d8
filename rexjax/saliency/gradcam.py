"""Grad-CAM (Selvaraju et al. 2017) on a named intermediate feature map.

The model is seen through `features_and_logits(x[B,H,W,C], delta) -> (feat[B,h,w,c],
logits[B,K])`: `delta` (None, or an array shaped like `feat`) is *added* to the feature map
before the rest of the network runs. Differentiating the logits with respect to `delta` at
0 gives d y_t / d A without model surgery (`rexjax.saliency.features.flax_features_and_logits`
builds this for any Flax linen model and a submodule name).

    alpha_k = 1/(hw) sum_ij d y_t / d A^k_ij,   L = ReLU(sum_k alpha_k A^k)     (Grad-CAM Eq. 1-2)

then bilinear upsampling to H x W. y_t is the target logit (`output="logit"`, the paper's
pre-softmax score) or its probability. forward_images = 1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rexjax.saliency._common import Saliency, check_image, check_target, upsample


def _num_classes(features_and_logits, x) -> tuple[int, tuple]:
    feat, logits = jax.eval_shape(lambda z: features_and_logits(z, None), x[None])
    if len(feat.shape) != 4:
        raise ValueError(f"features_and_logits must return features [B, h, w, c], got {feat.shape}")
    if len(logits.shape) != 2:
        raise ValueError(f"features_and_logits must return logits [B, K], got {logits.shape}")
    return logits.shape[1], feat.shape


def feature_gradients(features_and_logits, x, target, output="logit"):
    """(A f32[h,w,c], d y_t / d A f32[h,w,c]) for one image x[H,W,C]."""
    if output not in ("logit", "prob"):
        raise ValueError(f"output must be 'logit' or 'prob', got {output!r}")
    feat_shape = jax.eval_shape(lambda z: features_and_logits(z, None)[0], x[None]).shape

    def score(delta):
        feat, logits = features_and_logits(x[None], delta)
        if output == "prob":
            logits = jax.nn.softmax(logits, axis=-1)
        return logits[0, target], feat[0]

    grads, feat = jax.grad(score, has_aux=True)(jnp.zeros(feat_shape, x.dtype))
    return feat, grads[0]


def _cam_factory(weights_fn, relu: bool, output: str):
    @functools.partial(jax.jit, static_argnums=0)
    def cam_map(features_and_logits, x, target):
        feat, g = feature_gradients(features_and_logits, x, target, output)
        cam = jnp.einsum("hwc,c->hw", feat, weights_fn(feat, g))
        if relu:
            cam = jax.nn.relu(cam)
        return upsample(cam, x.shape[:2])

    def explain(key, features_and_logits, x, target) -> Saliency:
        del key
        x = check_image(x)
        k, _ = _num_classes(features_and_logits, x)
        t = check_target(target, k)
        return Saliency(cam_map(features_and_logits, x, t), 1)

    return explain


def gradcam_weights(feat, g):
    """alpha_k: spatial mean of the gradients (Grad-CAM Eq. 1)."""
    return g.mean(axis=(0, 1))


def gradcam(relu: bool = True, output: str = "logit"):
    """Grad-CAM factory. Returns `(key, features_and_logits, x, target) -> Saliency`."""
    return _cam_factory(gradcam_weights, relu, output)


def last_spatial_feature(model) -> str:
    """Name of the last feature map of a zoo model with spatial extent > 1 (Grad-CAM's layer)."""
    x = jnp.zeros((1,) + tuple(model.input_size) + (3,), jnp.float32)
    _, feats = jax.eval_shape(lambda z: model.features_fn(model.variables, z), x)
    spatial = [n for n in model.feature_names if len(feats[n].shape) == 4 and feats[n].shape[1] * feats[n].shape[2] > 1]
    if not spatial:
        raise ValueError(f"{model.name}: no spatial feature map among {model.feature_names}")
    return spatial[-1]


def zoo_features_and_logits(model, layer: str | None = None):
    """`features_and_logits(x, delta)` for a `rexjax.models.Model` at feature point `layer`
    (default: `last_spatial_feature`); `delta` goes in through the zoo's `perturb` hooks."""
    layer = layer or last_spatial_feature(model)
    if layer not in model.feature_names:
        raise ValueError(f"layer must be one of {model.feature_names}, got {layer!r}")

    def features_and_logits(xb, delta):
        pert = None
        if delta is not None:  # Flax wants every perturbation point: zeros except `layer`
            _, shapes = jax.eval_shape(lambda z: model.features_fn(model.variables, z), xb)
            pert = {n: jnp.zeros(s.shape, s.dtype) for n, s in shapes.items()}
            pert[layer] = delta
        logits, feats = model.features_fn(model.variables, xb, pert)
        return feats[layer], logits

    return features_and_logits
