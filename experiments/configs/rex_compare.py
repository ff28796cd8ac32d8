"""Study rex_compare (ReX paper Tables 1-3, Figs. 7-9): ReX against the baselines, per model.

    python experiments/run.py --config experiments/configs/rex_compare.py

runs rex, rise, gradcam, ig, lime and kernel_shap on EfficientNet-Lite0 over the vendored
images at CPU-sized settings (ReX 10 iterations with the tool's 1/n rule, as the paper ran
the tool; RISE 1000 masks, IG 32 steps, LIME 500 samples, insertion / deletion step 250; the
paper: 20 iterations and step 100, `:paper`). The paper's full protocol is the same command with
--config.methods=rex,gradcam,kernel_shap,gradient_shap,rise,lime,ig,noise_tunnel
--config.models=resnet50,vgg16,... and the default settings of `rexjax evaluate`
(`:paper`), e.g. on PASCAL VOC with IN / OUT:

    python experiments/run.py --config experiments/configs/rex_compare.py:paper \
        --config.layout=voc2012 --config.images=VOCdevkit/VOC2012 --config.data.image_set=val

and on the photobombing set (experiments/photobomb.py writes a folder layout with masks):

    python experiments/run.py --config experiments/configs/rex_compare.py \
        --config.images=out/photobomb/images --config.data.masks=out/photobomb/masks \
        --config.out=out/rex_compare_photobomb

The Captum-default settings the paper used: experiments/configs/rex_compare_captum.py.
"""

from rexjax.configs import rex
from rexjax.studies import configs


def get_config(size: str = "cpu"):
    if size not in ("cpu", "paper"):
        raise ValueError(f"config argument must be 'cpu' or 'paper', got {size!r}")
    config = configs.base("rex_compare")
    config.images = "third_party/images"
    config.methods = "rex,rise,gradcam,ig,lime,kernel_shap"
    if size == "cpu":
        configs.cpu_budget(config)
    else:
        config.rex = rex.get_config("paper")
    # The paper's Tables 1-3 ran the ReX tool (rex-xai), whose responsibility rule is 1/n per
    # passing mutant ("tool"), not Alg. 1 as printed ("alg1", PAPER_BUDGET's).
    config.rex.search.responsibility = "tool"
    return config
