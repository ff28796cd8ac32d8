"""Images per hour: one by one against in lockstep, on the local devices.

    .venv/bin/python -m benchmarks.lockstep --size=96 --limit=4 --rex.search.iters=4
    .venv/bin/python -m benchmarks.lockstep --size=224 --limit=11

Explains the first `--limit` vendored images with EfficientNet-Lite0 (preprocessed, then
resized to `--size` x `--size`, so a shared CPU gets through it; 224 is the model's own size)
with the `--rex` config, once one by one (`Explainer.__call__`) and once in lockstep
(`Explainer.explain_many`, all images in one device call per round), after one untimed
warm-up of each (compile). Image i is keyed `keys.for_image(--seed, its file name)`. Prints
rows pushed (deterministic: lockstep pads one batch per round instead of one per round and
image), the wall time and images/hour of each, and checks that both give the same masks.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import config as rex_flags

IMAGES = Path(__file__).resolve().parents[1] / "third_party" / "images"
FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a script, so modules import each other freely)."""
    flags.DEFINE_integer("size", 96, "Image side in pixels.", lower_bound=32)
    flags.DEFINE_integer("limit", 4, "Vendored images.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Seed; image keys are keys.for_image(seed, file name).", lower_bound=0)
    rex_flags.define_rex_flag("fast")


def main(argv):
    del argv
    import jax

    from rexjax import keys
    from rexjax.causal import RexConfig
    from rexjax.causal.explainer import Explainer
    from rexjax.data import list_images

    config = RexConfig.from_dict(FLAGS.rex)
    explainer = Explainer("efficientnet_lite0", config)
    paths = list_images(IMAGES)[: FLAGS.limit]
    xs = [jax.image.resize(explainer.classifier.prepare(p), (FLAGS.size, FLAGS.size, 3), "linear") for p in paths]
    image_keys = [keys.for_image(FLAGS.seed, p) for p in paths]
    explainer(xs[0], key=image_keys[0])  # compile
    explainer.explain_many(xs, keys=image_keys)
    start = time.perf_counter()
    alone = [explainer(x, key=k) for x, k in zip(xs, image_keys)]
    t_alone = time.perf_counter() - start
    start = time.perf_counter()
    many = explainer.explain_many(xs, keys=image_keys)
    t_many = time.perf_counter() - start
    same = all(np.array_equal(a.mask, b.mask) and np.array_equal(a.responsibility, b.responsibility)
               for a, b in zip(alone, many))
    print(f"Lite0 at {FLAGS.size}x{FLAGS.size}, config {config.to_dict()}, {len(xs)} images, "
          f"batch {explainer.batch_size}; same masks and maps: {same}")
    print("| mode | rows pushed | wall s | images/hour |")
    print("| --- | --- | --- | --- |")
    for name, out, t in (("one by one", alone, t_alone), ("lockstep", many, t_many)):
        print(f"| {name} | {sum(e.forward_images for e in out)} | {t:.1f} | {3600 * len(xs) / t:.0f} |")


if __name__ == "__main__":
    define_flags()
    app.run(main)
