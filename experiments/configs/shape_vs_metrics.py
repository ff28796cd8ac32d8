"""Study shape_vs_metrics (SHAPE paper, Table 1): RISE, SHAPE, Grad-CAM and Grad-CAM++
insertion / deletion on the zoo models; SHAPE, which the paper shows is not an explanation,
is expected to rank first on insertion and deletion.

    python experiments/run.py --config experiments/configs/shape_vs_metrics.py

(EfficientNet-Lite0 over the vendored images, RISE / SHAPE with 2000 masks, the RISE
convention of the SHAPE paper: blur substrate for insertion, zeros for deletion, step 224.)
Paper scale: --config.models=resnet50,vgg16 --config.rise.n_masks=4000 --config.shape.n_masks=6000.
"""

from rexjax.studies import configs


def get_config():
    config = configs.base("shape_vs_metrics")
    config.images = "third_party/images"
    config.methods = "rise,shape,gradcam,gradcam_pp"
    config.convention = "rise"
    config.rise.n_masks = 2000
    config.shape.n_masks = 2000
    return config
