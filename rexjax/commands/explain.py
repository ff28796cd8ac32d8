"""`rexjax explain IMAGE... [flags]`: ReX causal explanations of a model's decisions.

For each image: prints one JSON line of statistics (class, confidence, area, forward images,
time) and writes `<out>/<stem>.png` (input | responsibility heatmap | explanation overlay)
and `<out>/<stem>.npz` (`responsibility` f32[H,W], `mask` bool[H,W], `target`).

With `--multiple K` it also searches up to K sufficient explanations (spotlights, pairwise
Dice <= --permitted_overlap) and writes `<out>/<stem>_multiple.png` (each contoured in its
colour) and `multiple_masks` in the .npz; `--contrastive` adds a sufficient-and-necessary
explanation (`contrastive_mask`, third panel of the composite; reported when none exists).

Example:
  rexjax explain third_party/images/ladybird.jpg --out out/demo
  rexjax explain third_party/images/*.jpg --iters 10 --mask_mode ad --seed 3
  rexjax explain --multiple 4 third_party/images/starfish.jpg
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
flags.DEFINE_string(
    "mask_mode", "0",
    "What masked pixels show: a number, min, max, mean, blur, blur:SIGMA, or 'ad' (Activation-Deactivation).",
)
flags.DEFINE_integer("batch_size", None, "Images per model call (default 16 on CPU, 128 on GPU).")
flags.DEFINE_enum(
    "responsibility", "alg1", ["alg1", "sufficient", "rex", "weighted"],
    "Responsibility rule: alg1 (paper Alg. 1 read literally), sufficient (paper Def. 4.2), rex (rex-xai 0.4.1), weighted.",
)
flags.DEFINE_bool("concentrate", False, "Divide each box's credit by its area (paper Alg. 3 line 6; the tool's concentrate).")
flags.DEFINE_float("min_confidence", 0.0, "Fraction of the full-image confidence the explanation keeps.")
flags.DEFINE_integer("min_box_size", 10, "Boxes with fewer pixels are not split.")
flags.DEFINE_enum("strategy", "global", ["global", "spatial"], "Extraction: global prefix search or spatial circles.")
flags.DEFINE_integer("multiple", 0, "Search up to this many sufficient explanations (0: off).")
flags.DEFINE_bool("contrastive", False, "Also find a sufficient and necessary (contrastive) explanation.")
flags.DEFINE_float("permitted_overlap", 0.0, "Largest Dice between two of the multiple explanations.")
flags.DEFINE_integer("spotlights", 9, "Spotlight slots searched besides the main explanation.")
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
    from rexjax.causal import RexConfig, SpotlightConfig
    from rexjax.viz.explanation import display_image, save_explanation_figure

    missing = [p for p in images if not os.path.isfile(p)]
    if missing:
        print(f"rexjax explain: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        config = RexConfig(
            iters=FLAGS.iters,
            mask_mode=FLAGS.mask_mode,
            batch_size=FLAGS.batch_size,
            responsibility=FLAGS.responsibility,
            concentrate=FLAGS.concentrate,
            min_confidence=FLAGS.min_confidence,
            min_box_size=FLAGS.min_box_size,
            strategy=FLAGS.strategy,
            multiple=FLAGS.multiple or None,
            contrastive=FLAGS.contrastive,
            permitted_overlap=FLAGS.permitted_overlap,
            spotlight=SpotlightConfig(spotlights=FLAGS.spotlights),
        )
    except ValueError as err:  # one clear line before any model is loaded
        print(f"rexjax explain: {err}", file=sys.stderr)
        return 2
    model = models.load(FLAGS.model, weights=FLAGS.weights)
    explainer = make_explainer(model, config)
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
        arrays = {"responsibility": ex.responsibility, "mask": ex.mask, "target": ex.target}
        if ex.multiple is not None:
            arrays["multiple_masks"] = np.stack([p.mask for p in ex.multiple.parts] + [np.zeros_like(ex.mask)])[:-1]
        if ex.contrastive is not None:
            arrays["contrastive_mask"] = ex.contrastive.mask
        np.savez_compressed(os.path.join(FLAGS.out, f"{stem}.npz"), **arrays)
        png = os.path.join(FLAGS.out, f"{stem}.png")
        title = f"{stem}: {ex.target_label} ({ex.target}), p={ex.full_confidence:.3f}"
        save_explanation_figure(png, display_image(model, x), ex.responsibility, ex.mask, title)
        written = {"png": png}
        if ex.multiple is not None:
            from rexjax.viz.multiple import save_multiple_figure

            written["composite_png"] = os.path.join(FLAGS.out, f"{stem}_multiple.png")
            contrastive = ex.contrastive.mask if ex.contrastive is not None and ex.contrastive.found else None
            save_multiple_figure(written["composite_png"], display_image(model, x), ex.responsibility,
                                 ex.multiple.parts if FLAGS.multiple else (), title, contrastive)
        if ex.contrastive is not None and not ex.contrastive.found:
            print(f"rexjax explain: {path}: no contrastive explanation: {ex.contrastive.message}", file=sys.stderr)
        print(json.dumps({"image": path, "model": FLAGS.model, **ex.stats(), **written}), flush=True)
    return status
