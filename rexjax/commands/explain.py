"""`rexjax explain IMAGE... [flags]`: ReX causal explanations of a model's decisions.

For each image: prints one JSON line of statistics (class, confidence, area, forward images,
time) and writes `<out>/<stem>.png` (input | responsibility heatmap | explanation overlay)
and `<out>/<stem>.npz` (`responsibility` f32[H,W], `mask` bool[H,W], `target`).

Example:
  rexjax explain third_party/images/ladybird.jpg --out out/demo
  rexjax explain third_party/images/*.jpg --iters 10 --mask_mode ad --seed 3
"""

from __future__ import annotations

import json
import os
import sys

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "efficientnet_lite0", "Registered model name (see `rexjax models`).")
flags.DEFINE_string("weights", None, "Optional torch state_dict (.pth) for the model.")
flags.DEFINE_integer("target", None, "Class to explain (default: the model's top-1 class).")
flags.DEFINE_integer("iters", 20, "ReX iterations (independent random partitions).")
flags.DEFINE_integer("seed", 0, "PRNG seed; the same seed gives the same map and mask.")
flags.DEFINE_string("mask_value", "0", "Occlusion value: a number, min, max, mean, blur, blur:SIGMA.")
flags.DEFINE_string("mask_mode", None, "'ad' for Activation-Deactivation (ConvAD) instead of painting.")
flags.DEFINE_integer("batch_size", None, "Images per model call (default 16 on CPU, 128 on GPU).")
flags.DEFINE_enum("responsibility", "rex", ["rex", "weighted", "minimal_k"], "Responsibility rule.")
flags.DEFINE_float("min_confidence", 0.0, "Fraction of the full-image confidence the explanation keeps.")
flags.DEFINE_integer("min_box_size", 10, "Boxes with fewer pixels are not split.")
flags.DEFINE_string("out", "out/explain", "Output directory for PNG and .npz files.")
flags.DEFINE_bool("progress", True, "Show progress bars.")


def main(argv):
    images = argv[1:]
    if not images:
        print("rexjax explain: give at least one image path (see --help)", file=sys.stderr)
        return 2
    import numpy as np
    from tqdm.auto import tqdm

    from rexjax import models
    from rexjax.api import make_explainer
    from rexjax.viz.explanation import display_image, save_explanation_figure

    missing = [p for p in images if not os.path.isfile(p)]
    if missing:
        print(f"rexjax explain: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    model = models.load(FLAGS.model, weights=FLAGS.weights)
    explainer = make_explainer(
        model,
        iters=FLAGS.iters,
        mask_value=FLAGS.mask_mode or FLAGS.mask_value,
        batch_size=FLAGS.batch_size,
        responsibility=FLAGS.responsibility,
        min_confidence=FLAGS.min_confidence,
        min_box_size=FLAGS.min_box_size,
    )
    os.makedirs(FLAGS.out, exist_ok=True)
    status = 0
    for path in tqdm(images, desc="images", disable=not FLAGS.progress or len(images) == 1):
        stem = os.path.splitext(os.path.basename(path))[0]
        try:
            x = model.preprocess(path)
            ex = explainer(x, target=FLAGS.target, key=FLAGS.seed, progress=FLAGS.progress)
        except ValueError as err:
            print(json.dumps({"image": path, "error": str(err)}), flush=True)
            status = 1
            continue
        np.savez_compressed(
            os.path.join(FLAGS.out, f"{stem}.npz"), responsibility=ex.responsibility, mask=ex.mask, target=ex.target
        )
        png = os.path.join(FLAGS.out, f"{stem}.png")
        title = f"{stem}: {ex.target_label} ({ex.target}), p={ex.full_confidence:.3f}"
        save_explanation_figure(png, display_image(model, x), ex.responsibility, ex.mask, title)
        print(json.dumps({"image": path, "model": FLAGS.model, **ex.stats(), "png": png}), flush=True)
    return status
