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
    seed                  an image is explained with key keys.for_image(seed, its file name)
    batch_size            images per model call, None = 8 on CPU, 128 on accelerators
    mask_mode             what masked pixels show: a number, min, max, mean, blur,
                          blur:SIGMA, or "ad" (ConvAD)
    convention, step      insertion/deletion convention ("rex" or "rise") and pixels per
                          step (None = the convention's: 100 for rex, 224 for rise)
    max_images            only the first N images (sorted by name), None = all
    warmup                call each method once before its first timed call, so time_s is a
                          warm call and the compile time is reported apart (compile_s)
    save_maps             also write each row's map, explanation and mask PNGs and the raw
                          map (`maps/<model>/<method>/<image>.map.npy`, f32[H, W])
`batch_size` and `mask_mode` are shared: they reach every method whose factory takes them
(`rexjax.methods.make(name, shared=...)`), and the metrics.

One sub-config per registered method, under its registry name, holding its factory's
keyword arguments, generated from the factories' defaults (`rexjax.configs.methods`; they
follow the papers): `rex` is ReX's "fast" preset, the same defaults `rexjax explain` runs
(`--config.rex=...` cannot switch presets; a study config sets `config.rex =
rexjax.configs.rex.get_config("paper")` for the paper's budget). An alias (`ig`) reads its
method's entry (`integrated_gradients`).
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from rexjax.configs.methods import all_method_configs


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
    config.save_maps = False

    # --- per-method settings: each factory's own defaults (rexjax.configs.methods) -----
    for name, method_config in all_method_configs().items():
        config[name] = method_config
    return config
