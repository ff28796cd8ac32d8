"""Saliency baselines in JAX: batched, keyed, on the masked-classifier abstraction."""

from rexjax.saliency._common import Saliency
from rexjax.saliency.gradcam import gradcam
from rexjax.saliency.gradcam_pp import gradcam_pp
from rexjax.saliency.integrated_gradients import integrated_gradients
from rexjax.saliency.occlusion import occlusion
from rexjax.saliency.rise import rise, rise_masks
from rexjax.saliency.shape import shape
from rexjax.saliency.gradient_shap import gradient_shap
from rexjax.saliency.kernel_shap import kernel_shap
from rexjax.saliency.lime import lime
from rexjax.saliency.noise_tunnel import noise_tunnel
