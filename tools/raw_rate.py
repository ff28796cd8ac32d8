"""The bare model's images/s at one batch size, two ways, interleaved in one process
(issue 13: "during explain, images/s >= 90 % of the raw model at the same batch size"):

* `call`: one jitted call per batch (what `rexjax bench`'s raw column times), warm-up calls
  first;
* `loop`: `--batches` batches inside one jitted `lax.fori_loop` (how the engine runs the
  model: `batching.push` loops over chunks inside one compiled program; what
  `tools/bench_compare.py` measures before and after its runs).

  .venv/bin/python tools/raw_rate.py --batch 8 --rounds 3
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
    copies of x[H, W, C] inside one jitted loop; compiled here."""
    import jax

    xb = _batch(x, batch)

    @jax.jit
    def loop(xb):
        def body(i, acc):  # a different input per batch, so nothing is hoisted out of the loop
            return acc + classifier.probs(xb * (1.0 + 1e-6 * i)).sum()
        return jax.lax.fori_loop(0, batches, body, 0.0)

    loop(xb).block_until_ready()

    def rate() -> float:
        t = time.perf_counter()
        loop(xb).block_until_ready()
        return batches * batch / (time.perf_counter() - t)

    return rate


def main(argv):
    from rexjax import models
    from rexjax.classifier import Classifier

    model = models.load("efficientnet_lite0")
    b, n = FLAGS.batch, FLAGS.batches
    clf, x = Classifier.of(model), model.preprocess(FLAGS.image)
    call_rate, loop_rate = call_rate_fn(clf, x, b, n), loop_rate_fn(clf, x, b, n)
    for r in range(FLAGS.rounds):
        rate_call, rate_loop = call_rate(), loop_rate()
        print(f"round {r}: batch {b}: one call per batch {rate_call:.1f} images/s, "
              f"{n} batches in one loop {rate_loop:.1f} images/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    define_flags()
    app.run(main)
