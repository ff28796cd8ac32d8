"""`rexjax bench`: ReX wall time and throughput against the raw model, per image.

Prints a Markdown table: per image the class, area, wall time (map + extraction, compiled),
forward images, images/s during `explain`, and the raw model's images/s at the same batch
size, timed the way the engine runs the model: `--raw_calls` full batches inside one jitted
loop (median of 3 timings per image). One jitted call per batch would be the wrong baseline:
on XLA:CPU it is 20-30 % slower than batches inside one program (BUILD_NOTES, issue 13). The
framework should not be the bottleneck: ReX images/s >= 90 % of raw.

Example:
  rexjax bench --images third_party/images --iters 6
"""

from __future__ import annotations

import os
import statistics

from absl import flags

from rexjax.commands import common
from rexjax.timing import raw_rate_fn

FLAGS = flags.FLAGS
flags.DEFINE_string("images", "third_party/images", "Folder of images (or one image).")
flags.DEFINE_string("model", "efficientnet_lite0", "Registered model name.")
flags.DEFINE_integer("iters", 6, "ReX iterations (the other search settings: RexConfig's defaults).", lower_bound=1)
flags.DEFINE_integer("batch_size", None, "Images per model call (default per backend).", lower_bound=1)
flags.DEFINE_integer("seed", 0, "PRNG seed in [0, 2^32 - 1].")
flags.DEFINE_string("mask_mode", "0", "What masked pixels show: a number, min, max, mean, blur[:SIGMA], or 'ad'.")
flags.DEFINE_integer("raw_calls", 5, "Raw-model batches per timing, inside one jitted loop as the engine runs "
                     "them; median of 3 timings per image.", lower_bound=1)
flags.DEFINE_integer("limit", None, "Only the first N images.", lower_bound=1)

def main(argv):
    import jax

    from rexjax import data, models
    from rexjax.api import make_explainer

    try:  # every flag is checked before the model is loaded (usage errors: one line, exit 2)
        paths = [str(p) for p in data.list_images(FLAGS.images)[: FLAGS.limit]]
    except ValueError as err:
        raise common.UsageError("--images", common.first_line(err)) from err
    spec = common.check_model(FLAGS.model)
    common.check_seed(FLAGS.seed)
    common.check_mask_mode(FLAGS.mask_mode)
    common.check_batch_size(FLAGS.batch_size, spec.input_size)
    model = common.load_model(FLAGS.model, None)
    explainer = make_explainer(model, iters=FLAGS.iters, batch_size=FLAGS.batch_size, mask_mode=FLAGS.mask_mode)
    batch = explainer.config.batch_size
    first = model.preprocess(paths[0])
    explainer(first, key=FLAGS.seed)  # compile once, not timed
    print(f"# rexjax bench: {FLAGS.model}, iters {FLAGS.iters}, batch {batch}, mask_mode {FLAGS.mask_mode}, device {jax.devices()[0]}")
    print("| image | class | area | wall s | map s | extract s | forward images | rex img/s | raw img/s | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    raw_rate = raw_rate_fn(model, batch, FLAGS.raw_calls)
    rows = []
    for path in paths:
        x = model.preprocess(path)
        ex = explainer(x, key=FLAGS.seed)
        rex_ips = ex.forward_images / ex.wall_time
        raw_ips = statistics.median(raw_rate(x) for _ in range(3))
        rows.append((ex.wall_time, ex.forward_images, rex_ips, raw_ips, ex.area))
        print(
            f"| {os.path.basename(path)} | {ex.target_label} | {ex.area:.3f} | {ex.wall_time:.1f} | {ex.time_map:.1f} | "
            f"{ex.time_extract:.1f} | {ex.forward_images} | {rex_ips:.1f} | {raw_ips:.1f} | {rex_ips / raw_ips:.2f} |",
            flush=True,
        )
    med = lambda i: statistics.median(r[i] for r in rows)
    print(
        f"| **median** | | {med(4):.3f} | {med(0):.1f} | | | {med(1):.0f} | {med(2):.1f} | {med(3):.1f} | {med(2) / med(3):.2f} |"
    )
    print(f"mean area {statistics.mean(r[4] for r in rows):.4f}")
    return 0
