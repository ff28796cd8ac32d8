"""`rexjax evaluate`: saliency methods + metrics on a folder of images (ReX paper Table 1).

Settings come from an ml_collections config (default: `rexjax/configs/evaluate.py`, the
papers' settings); any field is overridden on the command line:

    rexjax evaluate
    rexjax evaluate --config.methods=rex,rise,gradcam,ig,lime --config.images=third_party/images \\
        --config.rise.n_masks=1000 --config.rex.search.iters=10 --config.step=250 --config.max_images=4
    rexjax evaluate --config.mask_mode=ad --config.masks=DIR --config.out=out/ad
    rexjax evaluate --config=experiments/configs/evaluate.py:cpu      # a study's config file

Top-level fields: model, weights, images, masks, out, methods (comma separated names or
aliases), seed, batch_size, mask_mode, convention (rex|rise), step, max_images, warmup; one
sub-config per method under its registry name (`--config.lime.n_samples=500`,
`--config.integrated_gradients.n_steps=32`). `mask_mode` and `batch_size` reach every method
that takes them and the metrics.

The run is a one-model study (`rexjax.studies.evaluate` on `rexjax.studies.runner`): for
every image the model's top-1 class is explained by every method, with the key
`keys.for_image(seed, image file name)`. Per (image, method) one CSV row
(`rexjax.evaluation.COLUMNS`): area (the ReX global extraction applied to the map, pixels /
H W), ins and del (insertion/deletion AUC; convention rex: the mask_mode substrate, step
100, normalised by the full-image confidence), IN/OUT (fraction of that extraction
inside/outside the image's segmentation `<masks>/<image stem>.png`, nonzero = segment), the
method's time (warm; the first call's compile time apart, `compile_s`, unless
--config.warmup=False) and forward images, the extraction's forward images, and what
reproduces the row on its own: model, weights, mask_mode, convention, step and substrates,
seed and image, the method's full config as JSON (defaults included) and the rexjax version.
Every method is measured the same way (`rexjax.evaluation.Evaluator`). Writes, under `out`:
results.csv (an image's rows as they finish; rerunning the same command resumes, a changed
setting is refused), summary.txt (n, area mean and sample std, ins, del, IN, time_s,
compile_s, fwd per method), report.html, tables.md and config.json, and prints the summary
table. An image that fails (unreadable file, a method's error) is one line on stderr and no
row; the others are evaluated, the summary names the failed ones, and the exit status is 1.

Several processes (hosts, or one per accelerator) share the images with
--coordinator_address=HOST:PORT --num_processes=P --process_id=p (`jax.distributed`); process
0 merges the rows and writes the summary.

Each row also names its image's content (`image_sha256`) and the code that wrote it
(`rexjax_commit`), and `out` gets provenance.json (`rexjax.studies.runner`): a second run on
the same folder, a run into the repository's experiments/results/ from a tree with
uncommitted changes (unless --allow_dirty) and a resume of rows written by other code (unless
--allow_other_commit) are refused with one line and exit status 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from absl import flags
from ml_collections import config_flags

from rexjax.commands import common
from rexjax.configs import evaluate as default_config
from rexjax.configs.describe import describe_config
from rexjax.errors import first_line

DEFAULT_CONFIG = default_config.__file__  # a plain file inside the installed package
PROG = "rexjax evaluate"


_CONFIG = config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG,
    "ml_collections config file with get_config() (PATH or PATH:ARG); fields overridable as "
    "--config.FIELD=VALUE, e.g. --config.methods=rex,rise --config.rise.n_masks=1000. "
    "Default fields:\n" + describe_config(default_config.get_config()),
)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (jax.distributed)")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "processes sharing the images (jax.distributed)")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index in [0, num_processes)")
_ALLOW_DIRTY = flags.DEFINE_bool("allow_dirty", False, "write into the repository's experiments/results from a tree "
                                 "with uncommitted changes (recorded in provenance.json)")
_ALLOW_OTHER_COMMIT = flags.DEFINE_bool("allow_other_commit", False, "resume rows written by other code (another "
                                        "commit or rexjax version; recorded in provenance.json)")


def _fail(message) -> int:
    """One line on stderr (the first line of `message`), exit status 2."""
    print(f"{PROG}: {first_line(message) if isinstance(message, BaseException) else message}", file=sys.stderr)
    return 2


def main(argv) -> int:
    from rexjax.studies import runner

    if len(argv) > 1:
        return _fail(f"takes flags only (--config.FIELD=VALUE), got {argv[1:]}")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:
        runner.start_processes(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except ValueError as err:
        return _fail(err)
    return run(_CONFIG.value, allow_dirty=_ALLOW_DIRTY.value, allow_other_commit=_ALLOW_OTHER_COMMIT.value)


def run(config, *, allow_dirty: bool = False, allow_other_commit: bool = False) -> int:
    """Evaluates with `config` (a ConfigDict shaped like the default config) as a one-model
    study; returns the exit status (2: a setting is invalid, reported in one line before the
    model is loaded; 1: an image failed, or the run was refused, one line)."""
    from rexjax import models
    from rexjax.studies import evaluate as study
    from rexjax.studies import runner

    # Everything that can be checked without the model is checked first: names, method
    # configs (each factory validates its own), the metric settings and the image list.
    try:
        plan = runner.plan(study.study_config(config), study, allow_dirty=allow_dirty,
                           allow_other_commit=allow_other_commit)
    except ValueError as err:
        return _fail(err)
    except runner.Refused as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    try:
        common.check_mask_mode(config.mask_mode, "mask_mode")
        if ":" not in config.model:  # a zoo model: its input size bounds the batch
            common.check_batch_size(config.batch_size, models.get_spec(config.model).input_size, "batch_size")
        common.check_range("seed", config.seed, 0, common.MAX_SEED)
        common.check_out_dir(config.out, "out")
        classifiers = runner.load_classifiers(plan)
    except ValueError as err:
        plan.release()
        return _fail(err)

    failed = runner.execute(plan, classifiers, prog=PROG).failed
    try:
        out = runner.finish(plan, failed)
    except runner.StudyIncomplete:  # each failed image is already one line on stderr
        out = plan.out
    if plan.process[0] != 0:  # process 0 reports for all
        return 1 if failed else 0
    failed = runner.read_failed(out / "failed.txt")
    print(study.summary(runner.run_rows(out), plan.config, failed))
    print(f"wrote {out / 'results.csv'} and {out / 'summary.txt'}")
    if failed:
        print(f"{PROG}: {len(failed)} of {len(plan.samples)} images failed", file=sys.stderr)
    return 1 if failed else 0
