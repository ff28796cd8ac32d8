"""Images per hour: one by one against in lockstep (issue 13 item 6), on the local devices.

    .venv/bin/python -m experiments.lockstep_throughput --size=96 --iters=4 --limit=4
    .venv/bin/python -m experiments.lockstep_throughput --size=224 --iters=6 --tree_depth=4 --prefix_growth=0.05 --limit=11

Explains the first `--limit` vendored images with EfficientNet-Lite0 (preprocessed, then
resized to `--size` x `--size`, so a shared CPU gets through it; 224 is the model's own size) once one
by one (`Explainer.__call__`) and once in lockstep (`Explainer.explain_many`, all images in
one device call per round), after one untimed warm-up of each (compile). Prints rows pushed
(deterministic: lockstep pads one batch per round instead of one per round and image), the
wall time and images/hour of each, and checks that both give the same masks.
"""

from __future__ import annotations

import os
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("size", 96, "image side in pixels")
flags.DEFINE_integer("iters", 4, "ReX iterations")
flags.DEFINE_integer("limit", 4, "vendored images")
flags.DEFINE_integer("tree_depth", 10, "RexConfig.tree_depth")
flags.DEFINE_float("prefix_growth", 0.0, "RexConfig.prefix_growth")

IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "third_party", "images")


def main(argv):
    del argv
    import jax

    import rexjax
    from rexjax.data import list_images

    explainer = rexjax.make_explainer("efficientnet_lite0", iters=FLAGS.iters, tree_depth=FLAGS.tree_depth,
                                      prefix_growth=FLAGS.prefix_growth)
    paths = list_images(IMAGES)[: FLAGS.limit]
    xs = [jax.image.resize(explainer.classifier.prepare(p), (FLAGS.size, FLAGS.size, 3), "linear") for p in paths]
    keys = list(range(len(xs)))
    explainer(xs[0], key=0)  # compile
    explainer.explain_many(xs, keys=keys)
    start = time.perf_counter()
    alone = [explainer(x, key=k) for x, k in zip(xs, keys)]
    t_alone = time.perf_counter() - start
    start = time.perf_counter()
    many = explainer.explain_many(xs, keys=keys)
    t_many = time.perf_counter() - start
    same = all(np.array_equal(a.mask, b.mask) and np.array_equal(a.responsibility, b.responsibility)
               for a, b in zip(alone, many))
    print(f"Lite0 at {FLAGS.size}x{FLAGS.size}, iters {FLAGS.iters}, tree_depth {FLAGS.tree_depth}, "
          f"prefix_growth {FLAGS.prefix_growth}, {len(xs)} images, batch {explainer.config.batch_size}; "
          f"same masks and maps: {same}")
    print("| mode | rows pushed | wall s | images/hour |")
    print("| --- | --- | --- | --- |")
    for name, out, t in (("one by one", alone, t_alone), ("lockstep", many, t_many)):
        print(f"| {name} | {sum(e.forward_images for e in out)} | {t:.1f} | {3600 * len(xs) / t:.0f} |")


if __name__ == "__main__":
    app.run(main)
