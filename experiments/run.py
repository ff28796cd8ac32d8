"""Runs one study: `python experiments/run.py --config experiments/configs/<study>.py`.

    python experiments/run.py --config experiments/configs/rex_compare.py \
        --config.images=third_party/images --config.models=efficientnet_lite0 \
        --config.methods=rex,rise --config.max_images=2 --config.out=out/rex_compare_small

Every study config (experiments/configs/*.py; its docstring holds its own command) has the
fields images, layout, data, out, models, methods, max_images, seed (see
`rexjax/studies/configs.py`) and the per-method sub-configs of `rexjax evaluate`; any field
is overridden as --config.FIELD=VALUE. The run writes, under `out`: results.csv (one row per
(image, model, method), appended as each finishes; rerunning the same command resumes),
maps/ (per-row PNGs), the study's tables (tables.md) and plots, and report.html.

A process computes on its default device. Several devices or hosts share the images as
processes (`jax.distributed`; one process per accelerator, e.g. CUDA_VISIBLE_DEVICES=k):
start the same command P times with --coordinator_address=HOST:PORT (process 0's)
--num_processes=P --process_id=p. Process p takes the images at positions j = p mod P and
writes results.p<p>-of-<P>.csv; once all are done, process 0 merges them into results.csv
(equal to a one-process run's up to the timing columns) and writes the report. On one
machine (CPU collectives: gloo):

    python experiments/run.py --config experiments/configs/rex_compare.py \
        --coordinator_address=127.0.0.1:12355 --num_processes=2 --process_id=0 &
    python experiments/run.py --config experiments/configs/rex_compare.py \
        --coordinator_address=127.0.0.1:12355 --num_processes=2 --process_id=1

--report_only writes the tables, plots and report from the rows so far (a run in progress).

Every run writes provenance.json into `out` (commit, dirty tree, this command line, versions,
device, date, config) and names its code in every row (`rexjax_commit`). One run at a time
writes into a folder (a second is refused). Writing into the repository's
experiments/results/ from a tree with uncommitted changes is refused unless --allow_dirty,
and resuming rows written by other code (another commit) unless --allow_other_commit; both
are recorded in provenance.json.

Errors are the `rexjax` CLI's: a bad flag, config file, field or value is one line on stderr
and exit status 2; a refused run (see above), Ctrl-C (130) and anything else one line and 1
(--debug: the traceback).
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "study config file (experiments/configs/<study>.py[:ARG]); fields as --config.FIELD=VALUE",
    lock_config=True)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (jax.distributed)")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "processes sharing the images (jax.distributed)")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index in [0, num_processes)")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "only write tables.md, the plots and report.html from the "
                                 "rows in out so far (e.g. of a run still going or interrupted)")
_ALLOW_DIRTY = flags.DEFINE_bool("allow_dirty", False, "write into the repository's experiments/results from a tree "
                                 "with uncommitted changes (recorded in provenance.json)")
_ALLOW_OTHER_COMMIT = flags.DEFINE_bool("allow_other_commit", False, "resume rows written by other code (another "
                                        "commit or rexjax version; recorded in provenance.json)")


PROG = "run.py"


def main(argv) -> int:
    from rexjax.commands.common import UsageError, check_out_dir

    if len(argv) > 1:
        raise UsageError("", f"takes flags only (--config.FIELD=VALUE), got {argv[1:]}")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    if _CONFIG.value is None:
        raise UsageError("--config", "is required: --config=experiments/configs/<study>.py")
    check_out_dir(str(_CONFIG.value.out), "--config.out")
    from rexjax import studies
    from rexjax.studies import runner

    try:
        runner.start_processes(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except ValueError as err:
        raise UsageError("", str(err)) from err
    config = _CONFIG.value
    try:
        study = studies.study(config.study)
        if _REPORT_ONLY.value:
            print(f"wrote {runner.report(config, study)}")
            return 0
        plan = runner.plan(config, study, allow_dirty=_ALLOW_DIRTY.value, allow_other_commit=_ALLOW_OTHER_COMMIT.value)
    except ValueError as err:  # bad fields or values found while setting the study up
        raise UsageError("", str(err)) from err
    except runner.Refused as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    try:
        classifiers = runner.load_classifiers(plan)
    except ValueError as err:  # a bad weights file
        plan.release()
        raise UsageError("", str(err)) from err
    done = runner.execute(plan, classifiers)
    index, count = plan.process
    print(f"process {index} of {count}: {done.maps} maps computed here")
    try:
        out = runner.finish(plan, done.failed)
    except runner.StudyIncomplete as err:  # some pairs failed (one line each, already shown)
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    if index == 0:
        print(f"wrote {out}/results.csv, {out}/tables.md and {out}/report.html")
    return 0


def entry(argv: list[str]) -> None:
    """`run.py` with the rexjax CLI's error handling (`rexjax.cli.guarded`/`flags_parser`)."""
    from rexjax import cli

    debug = "--debug" in argv[1:]
    argv = [a for a in argv if a != "--debug"]
    app.run(cli.guarded(PROG, main, debug), argv=argv, flags_parser=cli.flags_parser(PROG))


if __name__ == "__main__":
    entry(sys.argv)
