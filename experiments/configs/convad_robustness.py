"""Study convad_robustness (ConvAD paper Figs. 5 / 6, Table 1): ReX under Activation-
Deactivation vs the min / max / zero / mean occlusion values, at confidence thresholds
gamma 0 and 0.5; rho-robustness on K1 = 20 solid colours and K2 = the other vendored images
of another class; LIME under each occlusion (Fig. 6):

    python experiments/run.py --config experiments/configs/convad_robustness.py

Paper scale: --config.gammas=0,0.1,0.3,0.5,0.7,0.9 --config.k_solid=100 --config.k_other=100
--config.models=resnet50,regnety_120,efficientnet_v2_s (with their weights) on ImageNet
(--config.layout=imagenet_val --config.data.labels=FILE) or PASCAL VOC.
"""

from ml_collections.config_dict import placeholder

from rexjax.studies import configs


def get_config():
    config = configs.base("convad_robustness")
    config.images = "third_party/images"
    config.methods = "rex,lime"  # ReX per gamma; LIME once per occlusion (Fig. 6)
    config.gammas = "0,0.5"
    config.occlusions = "ad,min,max,zero,mean"
    config.k_solid = 20
    config.k_other = placeholder(int)
    config.colour_bounds = placeholder(str)  # None: the model's input range; "image": the image's
    config.rex.search.iters = 10
    # The ConvAD paper ran the ReX tool (rex-xai), whose rule is 1/n per passing mutant.
    config.rex.search.responsibility = "tool"
    config.lime.n_samples = 300
    config.step = 250
    return config
