"""The cost of a black box: one model as a jitted JAX function and as `Classifier.from_callable`.

    .venv/bin/python -m benchmarks.callback_cost --model=efficientnet_lite0 --batch_sizes=1,8,32 \
        --repeats=5 --iters=2 --out=benchmarks/results/callback_cost

The same zoo model is run (a) as the jitted JAX function (`Classifier.of(model)`) and (b) as a
black box around a NumPy function that calls that same jitted function on the host
(`Classifier.from_callable`), so the difference is the host round trip of
`jax.pure_callback` (device -> host -> the model's own call -> host -> device). Measured:

* model calls: for each batch size, `timing.raw_rate_fn` (batches inside one compiled loop, as
  an explanation runs them) of both `logits`; median over `--repeats` rounds of seconds per
  batch and per image, and the ratio black box / JAX;
* ReX: seconds per image of `rexjax.explain` on one vendored image (`--image`) at a small
  budget (`--iters`), both classifiers, compile excluded (one warm-up call each, then the
  median of `--rex_repeats` calls), and whether the two explanations are the same.

Prints a markdown table; with `--out`, writes `<out>/<date>-<device>/results.json`,
`provenance.json` (commit, clean tree, command, versions, device; `rexjax.provenance`) and a
README.md written from them. Run it from a clean committed tree.
"""

from __future__ import annotations

import datetime
import json
import statistics
import time
from pathlib import Path

import jax
import numpy as np
from absl import app, flags

from benchmarks.timing import median_of, raw_rate_fn

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a script, so modules import each other freely)."""
    flags.DEFINE_string("model", "efficientnet_lite0", "zoo model name")
    flags.DEFINE_list("batch_sizes", ["1", "8", "32"], "batch sizes of the model-call timing")
    flags.DEFINE_integer("batches", 4, "batches per timed loop", lower_bound=1)
    flags.DEFINE_integer("repeats", 5, "timed loops per batch size (median reported)", lower_bound=1)
    flags.DEFINE_string("image", "third_party/images/ladybird.jpg", "image explained by ReX")
    flags.DEFINE_integer("iters", 2, "ReX iterations (a small budget)", lower_bound=1)
    flags.DEFINE_integer("rex_repeats", 2, "timed ReX calls per classifier after the warm-up", lower_bound=1)
    flags.DEFINE_string("note", "", "a sentence on the conditions (load, machine) for the README")
    flags.DEFINE_string("out", None, "results folder (a dated subfolder is written); none: print only")


def classifiers(name: str):
    """(the JAX Classifier, the black-box Classifier around the same jitted model)."""
    from rexjax import models
    from rexjax.classifier import Classifier

    model = models.load(name)
    jax_clf = Classifier.of(model)

    def host_model(x: np.ndarray) -> np.ndarray:
        return np.asarray(model(x))  # the zoo model's own jitted call, on the host

    box = Classifier.from_callable(host_model, tuple(model.input_size) + (3,), name=f"{name} (black box)",
                                   labels=model.labels)
    return jax_clf, box


def model_rows(jax_clf, box, x, batch_sizes, batches: int, repeats: int) -> list[dict]:
    """One row per batch size: median seconds per batch and per image of both, and the ratio."""
    rows = []
    for b in batch_sizes:
        seconds = {}
        for kind, clf in (("jax", jax_clf), ("black_box", box)):
            rate = raw_rate_fn(clf.logits, b, batches)
            rate(x)  # compile (not timed)
            seconds[kind] = 1.0 / median_of(lambda: rate(x), repeats)  # seconds per image
        rows.append({"batch": b,
                     "jax_s_per_batch": seconds["jax"] * b, "black_box_s_per_batch": seconds["black_box"] * b,
                     "jax_s_per_image": seconds["jax"], "black_box_s_per_image": seconds["black_box"],
                     "ratio": seconds["black_box"] / seconds["jax"]})
        print(f"| model call | {b} | {seconds['jax'] * b:.4f} | {seconds['black_box'] * b:.4f} | "
              f"{seconds['jax']:.4f} | {seconds['black_box']:.4f} | {rows[-1]['ratio']:.2f} |", flush=True)
    return rows


def rex_row(jax_clf, box, x, iters: int, repeats: int) -> dict:
    """ReX seconds per image through both classifiers (warm), and whether the results agree."""
    import rexjax

    times, explanations = {}, {}
    for kind, clf in (("jax", jax_clf), ("black_box", box)):
        explanations[kind] = rexjax.explain(clf, x, key=0, iters=iters)  # compiles
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            rexjax.explain(clf, x, key=0, iters=iters)
            runs.append(time.perf_counter() - t)
        times[kind] = statistics.median(runs)
    a, b = explanations["jax"], explanations["black_box"]
    row = {"iters": iters, "jax_s_per_image": times["jax"], "black_box_s_per_image": times["black_box"],
           "ratio": times["black_box"] / times["jax"], "forward_images": a.forward_images,
           "same_mask": bool(np.array_equal(a.mask, b.mask)), "same_target": a.target == b.target,
           "max_responsibility_difference": float(np.abs(np.asarray(a.responsibility)
                                                         - np.asarray(b.responsibility)).max())}
    print(f"| ReX, {iters} iterations ({a.forward_images} forward images) | 1 | {times['jax']:.2f} | "
          f"{times['black_box']:.2f} | {times['jax']:.2f} | {times['black_box']:.2f} | {row['ratio']:.2f} |", flush=True)
    return row


HEADER = ["| measurement | batch | JAX s / batch | black box s / batch | JAX s / image | black box s / image | "
          "black box / JAX |", "|---|---|---|---|---|---|---|"]


def readme(results: dict, prov: dict) -> str:
    """The run's README, written from results.json and provenance.json."""
    rows = [f"| model call | {r['batch']} | {r['jax_s_per_batch']:.4f} | {r['black_box_s_per_batch']:.4f} | "
            f"{r['jax_s_per_image']:.4f} | {r['black_box_s_per_image']:.4f} | {r['ratio']:.2f} |"
            for r in results["model_calls"]]
    rex = results["rex"]
    rows.append(f"| ReX, {rex['iters']} iterations ({rex['forward_images']} forward images) | 1 | "
                f"{rex['jax_s_per_image']:.2f} | {rex['black_box_s_per_image']:.2f} | {rex['jax_s_per_image']:.2f} | "
                f"{rex['black_box_s_per_image']:.2f} | {rex['ratio']:.2f} |")
    device = prov.get("device", {})
    return "\n".join([
        "# callback_cost", "",
        f"The host round trip of a black box: `{results['model']}` as a jitted JAX function and as "
        "`Classifier.from_callable` around a NumPy function that calls the same jitted function on the "
        "host. Script: `benchmarks/callback_cost.py` (its docstring says what is timed).", "",
        f"- date: {prov.get('date')}",
        f"- command: `{prov.get('command')}`",
        f"- commit: {prov.get('commit')} (tree {'with changes' if prov.get('dirty') else 'clean'})",
        f"- versions: {', '.join(f'{k} {v}' for k, v in prov.get('versions', {}).items())}",
        f"- device: {device.get('kind')} ({device.get('platform')}), {results['cpus']} CPUs",
        f"- image: `{results['image']}`; model-call loops of {results['batches']} batches, median of "
        f"{results['repeats']} loops; ReX: median of {results['rex_repeats']} warm calls",
        *([f"- conditions: {results['note']}"] if results["note"] else []), "",
        *HEADER, *rows, "",
        f"ReX through both: same target {rex['same_target']}, same explanation mask {rex['same_mask']}, largest "
        f"responsibility difference {rex['max_responsibility_difference']:.3g}.", "",
        "Written by `benchmarks/callback_cost.py --out` from `results.json` and `provenance.json`.", ""])


def main(argv):
    del argv
    import os

    from rexjax import provenance

    batch_sizes = [int(s) for s in FLAGS.batch_sizes]
    jax_clf, box = classifiers(FLAGS.model)
    x = jax_clf.prepare(FLAGS.image)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), model {FLAGS.model}")
    print("\n".join(HEADER), flush=True)
    results = {"model": FLAGS.model, "image": FLAGS.image, "batches": FLAGS.batches, "repeats": FLAGS.repeats,
               "rex_repeats": FLAGS.rex_repeats, "cpus": os.cpu_count(), "note": FLAGS.note,
               "model_calls": model_rows(jax_clf, box, x, batch_sizes, FLAGS.batches, FLAGS.repeats),
               "rex": rex_row(jax_clf, box, x, FLAGS.iters, FLAGS.rex_repeats)}
    if FLAGS.out:
        prov = provenance.record(config={k: results[k] for k in ("model", "image", "batches", "repeats", "rex_repeats")})
        if prov["dirty"] is not False:
            raise app.UsageError(f"--out: the tree has changes ({', '.join(prov['changed'])}) or is not a git "
                                 "checkout; results are written from a clean commit only")
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        folder = Path(FLAGS.out) / f"{date}-{jax.default_backend()}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        provenance.write(folder, prov)
        (folder / "README.md").write_text(readme(results, prov))
        print(f"wrote {folder}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
