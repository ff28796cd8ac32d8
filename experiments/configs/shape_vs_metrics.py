"""Study shape_vs_metrics (SHAPE paper, Table 1): RISE, SHAPE, Grad-CAM and Grad-CAM++
insertion / deletion on the zoo models; SHAPE, which the paper shows is not an explanation,
is expected to rank first on insertion and deletion.

    python experiments/run.py --config experiments/configs/shape_vs_metrics.py

(EfficientNet-Lite0 over the vendored images; RISE and SHAPE on the same masks: 7 x 7 grids
kept with p 0.1 as the SHAPE paper, Sec. 4.1, and the same count, 2000 on the CPU; the RISE
convention of the SHAPE paper: blur substrate for insertion, zeros for deletion, step 224.)
The paper's 6000 masks: `shape_vs_metrics.py:paper` (add --config.models=resnet50,vgg16 with
their weights for the paper's models). With one seed RISE and SHAPE draw identical masks
(both key their masks from the image's key), so the comparison is paired.
"""

from rexjax.studies import configs


def get_config(size: str = "cpu"):
    if size not in ("cpu", "paper"):
        raise ValueError(f"config argument must be 'cpu' or 'paper', got {size!r}")
    config = configs.base("shape_vs_metrics")
    config.images = "third_party/images"
    config.methods = "rise,shape,gradcam,gradcam_pp"
    config.convention = "rise"
    masks = 2000 if size == "cpu" else 6000
    for method in ("rise", "shape"):
        config[method].n_masks = masks
        config[method].grid = 7
        config[method].p = 0.1
    return config
