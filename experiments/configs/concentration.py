"""Study concentration (minimal pixel sets paper): ReX's minimal sufficient pixel sets for
EfficientNet-Lite0/1/2 on the same images and seed; size ratios, Kruskal-Wallis / Friedman /
post hoc tests, the mixed model (with labels), Dice and Hausdorff matrices across models:

    python experiments/run.py --config experiments/configs/concentration.py

With ground truth (correct vs incorrect): --config.layout=imagenet_val
--config.images=VAL_DIR --config.data.labels=LABELS_FILE [--config.data.synsets=FILE].
Paper scale: more models (--config.models=efficientnet_lite0,resnet50,vgg16,... with their
weights), --config.rex.search.iters=20, ImageNet validation images.
"""

from ml_collections.config_dict import placeholder

from rexjax.studies import configs


def get_config():
    config = configs.base("concentration")
    config.images = "third_party/images"
    config.models = "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2"
    config.methods = "rex"
    config.architectures = placeholder(str)  # 'model=family,...'; None: the name without its size suffix
    config.rex.search.iters = 10
    # The minimal pixel sets paper ran the ReX tool (rex-xai), whose rule is 1/n per passing mutant.
    config.rex.search.responsibility = "tool"
    config.step = 250
    return config
