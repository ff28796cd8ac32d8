"""Runs one study: `python experiments/run.py --config experiments/configs/<study>.py`.

    python experiments/run.py --config experiments/configs/rex_compare.py \
        --config.images=third_party/images --config.models=efficientnet_lite0 \
        --config.methods=rex,rise --config.max_images=2 --config.out=out/rex_compare_small

Every study config (experiments/configs/*.py; its docstring holds its own command) has the
fields images, layout, data, out, models, methods, max_images, seed (see
`rexjax/studies/configs.py`) and the per-method sub-configs of `rexjax evaluate`; any field
is overridden as --config.FIELD=VALUE. The run writes, under `out`: results.csv (one row per
(image, model, method), appended as each finishes; rerunning the same command resumes),
maps/ (per-row PNGs), the study's tables (tables.md) and plots, and report.html. Images are
spread over every local device (`jax.local_devices()`); on several hosts call
`jax.distributed.initialize()` first by setting --distributed (each process then takes
every P-th image and writes its own results.p<k>-of-<P>.csv; process 0 writes the report).
--report_only writes the tables, plots and report from the rows so far (a run in progress).

Errors are the `rexjax` CLI's: a bad flag, config file, field or value is one line on stderr
and exit status 2; Ctrl-C one line and 130; anything else one line and 1 (--debug: the
traceback).
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "study config file (experiments/configs/<study>.py[:ARG]); fields as --config.FIELD=VALUE",
    lock_config=True)
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "call jax.distributed.initialize() first (multi-host runs)")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "only write tables.md, the plots and report.html from the "
                                 "rows in out so far (e.g. of a run still going or interrupted)")


PROG = "run.py"


def main(argv) -> int:
    from rexjax.commands.common import UsageError, check_out_dir

    if len(argv) > 1:
        raise UsageError("", f"takes flags only (--config.FIELD=VALUE), got {argv[1:]}")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    if _CONFIG.value is None:
        raise UsageError("--config", "is required: --config=experiments/configs/<study>.py")
    check_out_dir(str(_CONFIG.value.out), "--config.out")
    if _DISTRIBUTED.value:
        import jax

        jax.distributed.initialize()
    from rexjax import studies
    from rexjax.studies import runner

    config = _CONFIG.value
    try:
        if _REPORT_ONLY.value:
            print(f"wrote {runner.report(config, studies.study(config.study))}")
            return 0
        out = runner.run(config, studies.study(config.study))
    except runner.StudyIncomplete as err:  # some pairs failed (one line each, already shown)
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # bad fields or values found while setting the study up
        raise UsageError("", str(err)) from err
    import jax

    print(f"wrote {out}/results.csv, {out}/tables.md and {out}/report.html "
          f"(process {jax.process_index()} of {jax.process_count()}, {jax.local_device_count()} devices)")
    return 0


def entry(argv: list[str]) -> None:
    """`run.py` with the rexjax CLI's error handling (`rexjax.cli.guarded`/`flags_parser`)."""
    from rexjax import cli

    debug = "--debug" in argv[1:]
    argv = [a for a in argv if a != "--debug"]
    app.run(cli.guarded(PROG, main, debug), argv=argv, flags_parser=cli.flags_parser(PROG))


if __name__ == "__main__":
    entry(sys.argv)
