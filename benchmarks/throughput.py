"""`make bench`: ReX wall time and throughput against the bare model, per image.

Prints a Markdown table: per image the class, area, wall time (map + extraction, compiled),
forward images, images/s during the explanation, and the bare model's images/s at the same
batch size, timed the way the engine runs the model (`timing.raw_rate_fn`: `--raw_calls`
full batches inside one jitted loop, median of 3 timings per image). The framework should
not be the bottleneck: ReX images/s >= 90 % of the bare model's.

  make bench                                                       # the vendored images
  .venv/bin/python -m benchmarks.throughput --limit 2 --rex.search.iters 2   # a smoke run
  .venv/bin/python -m benchmarks.throughput --rex=rexjax/configs/rex.py:paper --batch_size 16

Image i is explained with `keys.for_image(seed, its file name)`, as `rexjax explain --seed`
does. A bad flag is one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import statistics
import sys

from absl import app, flags

from benchmarks import config as rex_flags
from benchmarks.timing import median_of, raw_rate_fn

PROG = "benchmarks.throughput"
FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a script, so modules import each other freely)."""
    flags.DEFINE_string("images", "third_party/images", "Folder of images (or one image).")
    flags.DEFINE_string("model", "efficientnet_lite0", "Registered model name.")
    rex_flags.define_rex_flag("fast", prog=PROG)
    flags.DEFINE_integer("batch_size", None, "Images per model call (default per backend).", lower_bound=1)
    flags.DEFINE_string("mask_mode", "0", "What masked pixels show: a number, min, max, mean, blur[:SIGMA], or 'ad'.")
    flags.DEFINE_integer("seed", 0, "Seed in [0, 2^32 - 1]; image keys are keys.for_image(seed, file name).")
    flags.DEFINE_integer("raw_calls", 5, "Bare-model batches per timing, inside one jitted loop as the engine "
                         "runs them; median of 3 timings per image.", lower_bound=1)
    flags.DEFINE_integer("limit", None, "Only the first N images.", lower_bound=1)


def main(argv):
    import jax

    from rexjax import data
    from rexjax.causal import RexConfig
    from rexjax.causal.explainer import Explainer
    from rexjax.commands import common

    if len(argv) > 1:
        raise common.UsageError("", f"takes flags only, got {argv[1:]}")
    try:  # every flag is checked before the model is loaded (usage errors: one line, exit 2)
        paths = data.list_images(FLAGS.images)[: FLAGS.limit]
    except ValueError as err:
        raise common.UsageError("--images", str(err).splitlines()[0]) from err
    try:
        config = RexConfig.from_dict(FLAGS.rex)
    except ValueError as err:
        raise common.UsageError("--rex", str(err).splitlines()[0]) from err
    spec = common.check_model(FLAGS.model)
    common.check_seed(FLAGS.seed)
    mask_mode = common.check_mask_mode(FLAGS.mask_mode)
    common.check_batch_size(FLAGS.batch_size, spec.input_size)
    model = common.load_model(FLAGS.model, None)
    explainer = Explainer(model, config, mask_mode=mask_mode, batch_size=FLAGS.batch_size)
    print(f"# benchmarks.throughput: {FLAGS.model}, iters {config.search.iters}, batch {explainer.batch_size}, "
          f"mask_mode {FLAGS.mask_mode}, device {jax.devices()[0]}", flush=True)
    measure(explainer, model.preprocess, paths, FLAGS.seed, FLAGS.raw_calls, log=lambda line: print(line, flush=True))
    return 0


def measure(explainer, preprocess, paths, seed: int, raw_calls: int, log=print) -> list[dict]:
    """One row per image (`log`ged as a Markdown table, then a median row): the explanation of
    `preprocess(path)` with key `keys.for_image(seed, path)` and its images/s, against the bare
    model's images/s at the explainer's batch size. Compiles on the first image, untimed."""
    from rexjax import keys

    log("| image | class | area | wall s | map s | extract s | forward images | rex img/s | raw img/s | ratio |")
    log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    explainer(preprocess(paths[0]), key=keys.for_image(seed, paths[0]))  # compile once, not timed
    raw_rate = raw_rate_fn(explainer.classifier.probs, explainer.batch_size, raw_calls)
    rows = []
    for path in paths:
        x = preprocess(path)
        ex = explainer(x, key=keys.for_image(seed, path))
        row = {"image": os.path.basename(path), "explanation": ex, "rex_ips": ex.forward_images / ex.wall_time,
               "raw_ips": median_of(lambda: raw_rate(x), 3)}
        rows.append(row)
        log(f"| {row['image']} | {ex.target_label} | {ex.area:.3f} | {ex.wall_time:.1f} | {ex.time_map:.1f} | "
            f"{ex.time_extract:.1f} | {ex.forward_images} | {row['rex_ips']:.1f} | {row['raw_ips']:.1f} | "
            f"{row['rex_ips'] / row['raw_ips']:.2f} |")
    med = lambda f: statistics.median(f(r) for r in rows)
    log(f"| **median** | | {med(lambda r: r['explanation'].area):.3f} | {med(lambda r: r['explanation'].wall_time):.1f} "
        f"| | | {med(lambda r: r['explanation'].forward_images):.0f} | {med(lambda r: r['rex_ips']):.1f} | "
        f"{med(lambda r: r['raw_ips']):.1f} | {med(lambda r: r['rex_ips']) / med(lambda r: r['raw_ips']):.2f} |")
    return rows


def entry(argv: list[str]) -> None:
    """The command with the rexjax CLI's error handling (one line per bad flag, exit 2)."""
    from rexjax import cli

    debug = "--debug" in argv[1:]
    argv = [a for a in argv if a != "--debug"]
    define_flags()
    # warnings and errors only (JAX's backend probing logs at INFO); a later --verbosity wins
    app.run(cli.guarded(PROG, main, debug), argv=[argv[0], "--verbosity=-1", *argv[1:]], flags_parser=cli.flags_parser(PROG))


if __name__ == "__main__":
    entry(sys.argv)
