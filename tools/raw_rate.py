"""The bare model's images/s at one batch size, two ways, interleaved in one process
(issue 13: "during explain, images/s >= 90 % of the raw model at the same batch size"):

* `call`: one jitted call per batch, warm-up calls first (the slower form on XLA:CPU);
* `loop`: `--batches` batches inside one jitted `lax.fori_loop` (how the engine runs the
  model: `batching.push` loops over chunks inside one compiled program; what `rexjax bench`'s
  raw column and `tools/bench_compare.py` measure);
* `explain` (with `--explain_options`: RexConfig options as a JSON dict or name=value pairs,
  `tools/bench_options.py`): ReX explanations of
  the same image at the same batch size, keys 1, 2, ..., images/s = forward images (rows
  pushed, padding included) / wall seconds (compile excluded: one explanation first). This
  puts the acceptance's two sides in one process, interleaved.

  .venv/bin/python tools/raw_rate.py --batch 8 --rounds 3
  .venv/bin/python tools/raw_rate.py --rounds 5 --explain_options=iters=6,prefix_growth=0.05
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from absl import app, flags

ROOT = Path(__file__).resolve().parents[1]
FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a script: bench_compare.py imports this)."""
    flags.DEFINE_integer("batch", 8, "Images per model call.")
    flags.DEFINE_integer("batches", 40, "Batches per measurement.")
    flags.DEFINE_integer("rounds", 3, "Interleaved rounds (call, loop, call, loop, ...).")
    flags.DEFINE_string("image", str(ROOT / "third_party" / "images" / "ladybird.jpg"), "Image fed to the model.")
    flags.DEFINE_string("explain_options", None,
                        "RexConfig options (a JSON dict or name=value pairs, e.g. iters=6,prefix_growth=0.05; "
                        "empty: the defaults): also time ReX explanations at --batch, interleaved.")


def _batch(x, batch: int):
    import jax.numpy as jnp

    return jnp.broadcast_to(jnp.asarray(x), (batch,) + tuple(x.shape)) + 0.0


def call_rate_fn(classifier, x, batch: int, batches: int):
    """A function returning the bare model's images/s over `batches` jitted calls on `batch`
    copies of x[H, W, C], one call per batch; compiled and warmed up here."""
    import jax

    xb, call = _batch(x, batch), jax.jit(classifier.probs)
    for _ in range(3):
        call(xb).block_until_ready()

    def rate() -> float:
        t = time.perf_counter()
        for _ in range(batches):
            out = call(xb)
        out.block_until_ready()
        return batches * batch / (time.perf_counter() - t)

    return rate


def loop_rate_fn(classifier, x, batch: int, batches: int):
    """A function returning the bare model's images/s over `batches` batches of `batch`
    copies of x[H, W, C] inside one jitted loop (`rexjax bench`'s raw column); the first call
    compiles the loop untimed, then times it."""
    from rexjax.timing import raw_rate_fn

    rate = raw_rate_fn(classifier.probs, batch, batches)
    return lambda: rate(x)


def explain_rate_fn(classifier, x, batch: int, options: dict):
    """A function returning ReX's images/s (forward images / wall s) on x[H, W, C] at
    `batch`, one explanation per call with keys 1, 2, ...; compiled here (key 0)."""
    from rexjax.causal.explainer import Explainer

    explainer = Explainer(classifier, batch_size=batch, **options)
    explainer(x, key=0)
    keys = iter(range(1, 1 << 30))

    def rate() -> float:
        t = time.perf_counter()
        ex = explainer(x, key=next(keys))
        return ex.forward_images / (time.perf_counter() - t)

    return rate


def main(argv):
    import statistics

    from rexjax import models
    from rexjax.classifier import Classifier

    model = models.load("efficientnet_lite0")
    b, n = FLAGS.batch, FLAGS.batches
    clf, x = Classifier.of(model), model.preprocess(FLAGS.image)
    rates = {"one call per batch": call_rate_fn(clf, x, b, n), f"{n} batches in one loop": loop_rate_fn(clf, x, b, n)}
    if FLAGS.explain_options is not None:
        from bench_options import parse_options

        rates["explain"] = explain_rate_fn(clf, x, b, parse_options(FLAGS.explain_options, "explain_options"))
    seen = {name: [] for name in rates}
    for r in range(FLAGS.rounds):
        for name, rate in rates.items():
            seen[name].append(rate())
        print(f"round {r}: batch {b}: " + ", ".join(f"{name} {v[-1]:.1f}" for name, v in seen.items()) + " images/s",
              flush=True)
    medians = {name: statistics.median(v) for name, v in seen.items()}
    print("medians: " + ", ".join(f"{name} {m:.1f}" for name, m in medians.items()) + " images/s")
    if "explain" in medians:
        loop = medians[f"{n} batches in one loop"]
        per_round = [e / l for e, l in zip(seen["explain"], seen[f"{n} batches in one loop"])]
        print(f"explain / loop: {medians['explain'] / loop:.2f} (per round: "
              + ", ".join(f"{v:.2f}" for v in per_round) + ")")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    define_flags()
    app.run(main)
