"""The fields every study config has, and the Captum-default settings.

    config = configs.base("rex_compare")     # then a study config sets its own fields

Fields (beside `rexjax/configs/evaluate.py`'s shared settings and per-method sub-configs):
    study        the study (`rexjax.studies.STUDIES`)
    images       a folder or a layout root; layout: one of `rexjax.data.LAYOUTS`; data: that
                 layout's options (masks, labels, synsets, image_set, segmentation; unset =
                 the layout's defaults)
    out          output folder (results.csv, maps/, report.html, tables.md, plots)
    models       comma-separated zoo names (or 'package.module:factory' for a model of your own)
    methods      comma-separated method names or aliases (`rexjax.methods`)
    max_images   only the first N samples (None = all); seed: an image gets
                 `keys.for_image(seed, its file name)`
    save_maps    write each row's map / explanation / mask PNGs (the report's gallery)
"""

from __future__ import annotations

import math

import ml_collections
from ml_collections.config_dict import placeholder

from rexjax.configs import evaluate, rex

# The ReX paper's tools (Table 1) that rexjax has; LRP ran on ResNet50 only.
PAPER_TOOLS = "rex,gradcam,kernel_shap,gradient_shap,rise,lime,ig,noise_tunnel"


def base(study: str) -> ml_collections.ConfigDict:
    config = evaluate.get_config()
    for field in ("model", "weights", "masks"):
        del config[field]
    config.study = study
    config.models = "efficientnet_lite0"
    config.layout = "folder"
    config.data = ml_collections.ConfigDict(dict(
        masks=placeholder(str), labels=placeholder(str), synsets=placeholder(str),
        image_set=placeholder(str), segmentation=placeholder(str)))
    config.out = f"out/{study}"
    config.save_maps = True
    config.extremal = dict(area=0.1, n_steps=300, learning_rate=0.1, stride=8, lambda_area=10.0)
    return config


def cpu_budget(config):
    """The CPU-sized method budgets shared by `rexjax evaluate`'s and the studies' `:cpu`
    configs (ReX: the paper's budget at 10 iterations; RISE 1000 masks, IG 32 steps, LIME 500
    samples, step 250)."""
    config.rex = rex.get_config("paper")
    config.rex.search.iters = 10
    config.rise.n_masks = 1000
    config.integrated_gradients.n_steps = 32
    config.lime.n_samples = 500
    config.step = 250
    return config


def captum_defaults(config):
    """The baselines at Captum 0.9's defaults (RISE: the authors' notebook settings). Where
    rexjax cannot express Captum's default (no feature mask = one feature per input scalar,
    LIME's Lasso, Grad-CAM's nearest up-sampling), ours stays: see BUILD_NOTES."""
    config.methods = PAPER_TOOLS
    config.kernel_shap.n_samples = 25  # KernelShap.attribute(n_samples=25)
    config.lime.n_samples = 25  # Lime.attribute(n_samples=25)
    # Captum: exp(-d^2 / 1.0^2) (get_exp_kernel_similarity_function: cosine, width 1); ours is
    # lime's sqrt(exp(-d^2 / w^2)) = exp(-d^2 / (2 w^2)): the same at w = 1 / sqrt(2)
    config.lime.kernel_width = 1 / math.sqrt(2)
    config.gradient_shap.n_samples = 5  # GradientShap.attribute(n_samples=5, stdevs=0.0)
    config.gradient_shap.stdev = 0.0
    # NoiseTunnel.attribute(nt_type="smoothgrad", nt_samples=5, stdevs=1.0): an absolute sigma
    config.noise_tunnel.n_samples = 5
    config.noise_tunnel.stdev = 1.0
    config.noise_tunnel.relative = False
    config.noise_tunnel.nt_type = "smoothgrad"
    config.gradcam.relu = False  # LayerGradCam(relu_attributions=False)
    config.lrp.eps = 1e-9  # EpsilonRule(epsilon=1e-9) on every layer
    # RISE ran from eclique/RISE, which has no defaults: its notebooks use N 6000, s 8, p1 0.1
    config.rise.n_masks = 6000
    config.rise.grid = 8
    config.rise.p = 0.1
    return config
