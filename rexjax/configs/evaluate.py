"""Default config of `rexjax evaluate` (ReX paper Table 1 protocol, paper-sized settings).

    rexjax evaluate                                   # this config
    rexjax evaluate --config.methods=rex,rise --config.rise.n_masks=1000 --config.max_images=2
    rexjax evaluate --config=experiments/configs/evaluate.py:cpu   # a study that extends it

Top level: what to run on and how to measure.
    model, weights        zoo model name (`rexjax models`) and optional torch .pth (None: bundled)
    images, masks         image file or folder; optional folder of segmentations
                          `<image stem>.png|.bmp|.gif` (nonzero = segment) for IN/OUT
    out                   output folder (results.csv, summary.txt)
    methods               comma-separated method names or aliases (`rexjax.methods`)
    seed                  image i is explained with key fold_in(key(seed), i)
    batch_size            images per model call, None = 8 on CPU, 128 on accelerators
    mask_mode             what masked pixels show: a number, min, max, mean, blur,
                          blur:SIGMA, or "ad" (ConvAD)
    convention, step      insertion/deletion convention ("rex" or "rise") and pixels per
                          step (None = the convention's: 100 for rex, 224 for rise)
    max_images            only the first N images (sorted by name), None = all
    warmup                call each method once before its first timed call, so time_s is a
                          warm call and the compile time is reported apart (compile_s)
`batch_size` and `mask_mode` are shared: they reach every method whose factory takes them
(`rexjax.methods.make(name, shared=...)`), and the metrics.

One sub-config per registered method, under its registry name, holding its factory's
keyword arguments (the values here are the factories' defaults, which follow the papers).
A method without a sub-config runs with its defaults; an alias (`ig`) reads its method's
entry (`integrated_gradients`).
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "efficientnet_lite0"
    config.weights = placeholder(str)
    config.images = "third_party/images"
    config.masks = placeholder(str)
    config.out = "out/evaluate"
    config.methods = "rex,rise,gradcam,ig,lime"
    config.seed = 0
    config.batch_size = placeholder(int)
    config.mask_mode = "0"
    config.convention = "rex"
    config.step = placeholder(int)
    config.max_images = placeholder(int)
    config.warmup = True

    # --- per-method settings (factory keyword arguments) ---------------------------------
    config.rex = dict(
        iters=20, min_box_size=10, tree_depth=10, queue_len=1, queue_style="area", max_active=3,
        refine_static=True, distribution="uniform", distribution_args=(1.0, 1.0), responsibility="alg1",
        concentrate=False, confidence_filter=0.0, search_limit=placeholder(int), discard_shallow=True,
        chunk_size=placeholder(int), min_confidence=0.0, prefix_growth=0.0, prune_grids=(), prune_candidates=32,
    )
    config.rise = dict(n_masks=4000, grid=7, p=0.5)
    config.shape = dict(n_masks=6000, grid=7, p=0.1)
    config.occlusion = dict(window=16, stride=8)
    config.kernel_shap = dict(n_samples=256, superpixel="slic")
    config.lime = dict(n_samples=1000, kernel_width=0.25, alpha=1.0, superpixel="quickshift")
    config.integrated_gradients = dict(n_steps=50, rule="gausslegendre", baseline=0.0, output="logit")
    config.gradient_shap = dict(n_samples=50, stdev=0.0, output="logit")
    config.noise_tunnel = dict(
        base="integrated_gradients", base_config=dict(n_steps=50), n_samples=5, stdev=0.15,
        nt_type="smoothgrad", relative=True,
    )
    config.lrp = dict(eps=1e-6, gamma=0.0)
    config.gradcam = dict(layer=placeholder(str), relu=True, output="logit")
    config.gradcam_pp = dict(layer=placeholder(str), relu=True, output="logit")
    return config
