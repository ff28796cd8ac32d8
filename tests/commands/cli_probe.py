"""Runs several `rexjax` command lines in ONE process (one JAX import, one compile) and
prints, as JSON, each one's exit status, stdout and stderr (captured at the file
descriptors, so absl/tensorstore/tqdm output is seen too).

    python -m tests.commands.cli_probe CASES.json [--tiny WEIGHTS.pth]

CASES.json: a list of argument lists (without the program name), e.g.
[["explain", "a.png", "--iters", "-1"]]. With --tiny, the tiny `.pth` model of
`tests/helpers/tiny_pth_model` is registered first (as `tiny_pth`).
"""

import json
import os
import sys
import tempfile


def _run_captured(args: list[str]) -> dict:
    from absl import flags

    from rexjax import cli

    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
        code = None
        sys.argv = ["rexjax", *args]  # ml_collections reads the command line from sys.argv
        try:
            cli.run(["rexjax", *args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # an escaped exception: what a user would see as a traceback
            import traceback

            traceback.print_exc()
            code = f"raised {type(e).__name__}"
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            flags.FLAGS.unparse_flags()
            for name in [n for n in flags.FLAGS if n.startswith("config.")]:  # registered again when
                delattr(flags.FLAGS, name)  # --config is parsed again (ml_collections)
        out.seek(0), err.seek(0)
        return {"args": args, "code": code, "stdout": out.read(), "stderr": err.read()}


def _explicit_config(args: list[str]) -> list[str]:
    """`explain` / `evaluate` with the command's default --config named first: ml_collections
    registers the --config.FIELD flags (those on sys.argv) when --config is parsed, which a
    second in-process parse only does when --config is on the command line."""
    if args[:1] in (["explain"], ["evaluate"]) and not any(a.startswith("--config=") for a in args):
        import importlib

        default = importlib.import_module(f"rexjax.commands.{args[0]}").DEFAULT_CONFIG
        return [args[0], f"--config={default}", *args[1:]]
    return args


def main() -> None:
    cases = json.load(open(sys.argv[1]))
    if "--tiny" in sys.argv:
        from tests.helpers import tiny_pth_model

        tiny_pth_model.register()
    results = [_run_captured(_explicit_config(args)) for args in cases]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
