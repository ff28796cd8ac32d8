"""Study extremal: extremal perturbations (Fong et al. 2019; optax, area 0.1) against ReX's
minimal sufficient explanations on EfficientNet-Lite0 over the vendored images - area,
sufficiency, confidence and Dice / Hausdorff between the two:

    python experiments/run.py --config experiments/configs/extremal.py

The extremal method's settings: --config.extremal.area=0.05 --config.extremal.n_steps=800 ...
(the study's mask_mode is the occlusion of both methods and of the sufficiency check).
"""

from rexjax.studies import configs


def get_config():
    config = configs.base("extremal")
    config.images = "third_party/images"
    config.methods = "rex,extremal"
    config.rex.search.iters = 10
    config.step = 250
    return config
