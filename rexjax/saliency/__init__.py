"""Saliency baselines in JAX: batched, keyed, on the masked-classifier abstraction.

Each method is a factory (hyper-parameters) returning `(key, model, x[H,W,C], target) ->
Saliency(map f32[H,W], forward_images)`. What `model` is depends on the method's KIND:

    "masked"    a MaskedClassifier (rexjax.masking): rise, shape, occlusion, kernel_shap, lime
    "logits"    a batched logits function x[B,H,W,C] -> logits[B,K]: integrated_gradients,
                gradient_shap, noise_tunnel (around IG by default), lrp
    "features"  `features_and_logits(x, delta)` (see gradcam): gradcam, gradcam_pp

`make(name, **cfg)` builds a method by name; `for_model(name, model, mask_mode, **cfg)`
adapts a zoo `Model` (or, for "masked"/"logits", any batched logits callable) to it and
returns `(key, x, target) -> Saliency`.
"""

from rexjax.masking import masked_classifier
from rexjax.saliency._common import Saliency
from rexjax.saliency.gradcam import gradcam, zoo_features_and_logits
from rexjax.saliency.gradcam_pp import gradcam_pp
from rexjax.saliency.gradient_shap import gradient_shap
from rexjax.saliency.integrated_gradients import integrated_gradients
from rexjax.saliency.kernel_shap import kernel_shap
from rexjax.saliency.lime import lime
from rexjax.saliency.lrp import lrp
from rexjax.saliency.noise_tunnel import noise_tunnel
from rexjax.saliency.occlusion import occlusion
from rexjax.saliency.rise import rise, rise_masks
from rexjax.saliency.shape import shape

METHODS = {
    "rise": (rise, "masked"),
    "shape": (shape, "masked"),
    "occlusion": (occlusion, "masked"),
    "kernel_shap": (kernel_shap, "masked"),
    "lime": (lime, "masked"),
    "integrated_gradients": (integrated_gradients, "logits"),
    "gradient_shap": (gradient_shap, "logits"),
    "noise_tunnel": (noise_tunnel, "logits"),
    "lrp": (lrp, "logits"),
    "gradcam": (gradcam, "features"),
    "gradcam_pp": (gradcam_pp, "features"),
}
ALIASES = {"ig": "integrated_gradients", "smoothgrad": "noise_tunnel", "noisetunnel": "noise_tunnel",
           "kernelshap": "kernel_shap", "gradientshap": "gradient_shap", "gradcampp": "gradcam_pp",
           "grad_cam": "gradcam"}


def canonical(name: str) -> str:
    """Method name or alias -> registry name (ValueError if unknown)."""
    n = ALIASES.get(name.lower(), name.lower())
    if n not in METHODS:
        raise ValueError(f"unknown saliency method {name!r}; known: {sorted(METHODS)} (aliases {sorted(ALIASES)})")
    return n


def make(name: str, **cfg):
    """The method's explain function `(key, model_view, x, target) -> Saliency`."""
    return METHODS[canonical(name)][0](**cfg)


def model_view(kind: str, model, mask_mode=0.0, layer=None):
    """What a method of `kind` takes, built from a zoo Model or a batched logits callable."""
    if kind == "masked":
        return masked_classifier(model, mask_mode)
    if kind == "logits":
        return model
    if kind == "features":
        if not hasattr(model, "features_fn"):
            raise ValueError(
                "Grad-CAM needs a zoo Model (feature points); pass features_and_logits to gradcam directly"
            )
        return zoo_features_and_logits(model, layer)
    raise ValueError(f"kind must be 'masked', 'logits' or 'features', got {kind!r}")


def for_model(name: str, model, mask_mode=0.0, layer=None, **cfg):
    """`(key, x, target) -> Saliency` for method `name` on `model` (built once; reuse it)."""
    factory, kind = METHODS[canonical(name)]
    explain = factory(**cfg)
    view = model_view(kind, model, mask_mode, layer)
    return lambda key, x, target: explain(key, view, x, target)


__all__ = [
    "ALIASES", "METHODS", "Saliency", "canonical", "for_model", "gradcam", "gradcam_pp", "gradient_shap",
    "integrated_gradients", "kernel_shap", "lime", "lrp", "make", "model_view", "noise_tunnel", "occlusion",
    "rise", "rise_masks", "shape", "zoo_features_and_logits",
]
