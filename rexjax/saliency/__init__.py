"""Saliency baselines in JAX: batched, keyed, every one a `rexjax.types.Method`.

A method module holds a factory: `factory(**config)` validates its config at once and returns

    fn(classifier, x f32[H, W, C], target, *, key) -> rexjax.types.Attribution(map f32[H, W], forward_images, record)

`classifier` is a `rexjax.classifier.Classifier`; each method takes what it needs from it:

    occlusion-style   classifier.masked(mask_mode)    rise, shape, occlusion, kernel_shap, lime
    gradients         classifier.logits               integrated_gradients, gradient_shap,
                                                      noise_tunnel (around any Method), lrp
    feature maps      classifier.features(layer)      gradcam, gradcam_pp

`batch_size=None` means `rexjax.batching.default_batch_size()`; candidates go through the
model with `rexjax.batching.push`, and `forward_images` counts the rows the model saw
(padding of the last chunk included, plus the full image where a method uses f_t(x)).
`key` is keyword only and required (deterministic methods ignore it). By name, with the
same config keys: `rexjax.methods.make("rise", n_masks=1000)(classifier, x, target, key=key)`
(the registry; there `target=None` means the top-1 class and the key and x are checked).

Records: IG, GradientSHAP and LRP return the per-channel attributions f32[H, W, C]
(`ChannelAttributions`); LIME and KernelSHAP take fixed `segments` (config, or per call) and
return their coefficients (`LimeRecord`, `ShapRecord`); extremal its region (`ExtremalRecord`).
"""

from rexjax.saliency.gradcam import gradcam, gradcam_pp
from rexjax.saliency.gradient_shap import gradient_shap
from rexjax.saliency.gradients import ChannelAttributions
from rexjax.saliency.integrated_gradients import integrated_gradients
from rexjax.saliency.kernel_shap import ShapRecord, kernel_shap
from rexjax.saliency.lime import LimeRecord, lime
from rexjax.saliency.lrp import lrp
from rexjax.saliency.noise_tunnel import noise_tunnel
from rexjax.saliency.occlusion import occlusion
from rexjax.saliency.rise import rise, rise_masks
from rexjax.saliency.shape import shape

__all__ = [
    "ChannelAttributions", "LimeRecord", "ShapRecord", "gradcam", "gradcam_pp", "gradient_shap",
    "integrated_gradients", "kernel_shap", "lime", "lrp", "noise_tunnel", "occlusion", "rise", "rise_masks", "shape",
]
