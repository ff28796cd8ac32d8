"""`rexjax COMMAND [flags]`: dispatches to one module of `rexjax.commands` per command.

Each command module defines its own absl flags and a `main(argv)`; only the chosen module
is imported, so commands never see each other's flags.

Errors: a bad flag value or argument (absl's flag errors, `commands.common.UsageError`) is
one line on stderr, `rexjax COMMAND: --flag: problem`, and exit status 2; Ctrl-C is one
line and status 130; any other exception is one line and status 1, with the traceback only
under `--debug` (accepted by every command).
"""

from __future__ import annotations

import importlib
import os
import sys

COMMANDS = {
    "explain": ("rexjax.commands.explain", "explain images with ReX; writes PNG + .npz per image"),
    "models": ("rexjax.commands.models", "list the model zoo: input size, parameters, weights"),
    "evaluate": ("rexjax.commands.evaluate", "run saliency methods + metrics on a folder of images"),
}


def _usage() -> str:
    lines = ["usage: rexjax COMMAND [--flags]   (rexjax COMMAND --help for flags)", "", "commands:"]
    lines += [f"  {name:<10} {doc}" for name, (_, doc) in COMMANDS.items()]
    return "\n".join(lines)


def _say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr, flush=True)


def flags_parser(prog: str):
    """absl's parser with every flag error as one line `PROG: problem` and exit status 2
    (used by every command and by `experiments/run.py`)."""
    from absl import flags

    def parse(argv):
        try:
            rest = flags.FLAGS(argv)
            # ml_collections keeps a config file that failed to load as an error object that
            # raises when first used: fail here instead, as a usage error
            if any(type(v).__name__ == "_ErrorConfig" for v in flags.FLAGS.flag_values_dict().values()):
                raise OSError("config file failed to load")
            return rest
        except flags.Error as e:
            _say(prog, str(e).splitlines()[0])
        except OSError as e:  # a config file that is missing or raised while loading
            path = _config_path(argv)
            why = "no such file" if path and not os.path.isfile(path.split(":")[0]) else "it raised an error; --debug shows it"
            _say(prog, f"--config: cannot load {path!r} ({why})" if path else str(e).splitlines()[0])
        except (KeyError, AttributeError, TypeError, ValueError) as e:  # --config.FIELD the config lacks
            _say(prog, _override_problem(e))
        if "--debug" in sys.argv:
            raise
        sys.exit(2)

    return parse


def _override_problem(e: BaseException) -> str:
    """One line for a --config.FIELD=VALUE override ml_collections could not apply."""
    if isinstance(e, (KeyError, AttributeError)):  # the config has no such field
        field = str(e.args[0] if e.args else "").strip("\"'")
        return f"bad flag: the config has no field '{field}' (--help lists the config's fields)"
    return f"bad flag: {str(e.args[0] if e.args else e).splitlines()[0]}"


def _config_path(argv) -> str | None:
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            return a.split("=", 1)[1]
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def guarded(prog: str, main, debug: bool):
    """`main` with usage errors, Ctrl-C and unexpected errors turned into one stderr line
    `PROG: ...` and exit status 2, 130 and 1 (unexpected errors re-raised under --debug)."""
    from rexjax.commands.common import UsageError
    from rexjax.errors import first_line

    def run_main(argv):
        try:
            return main(argv)
        except UsageError as e:
            if debug:
                raise
            _say(prog, first_line(e))
            return 2
        except KeyboardInterrupt:
            if debug:
                raise
            _say(prog, "interrupted")
            return 130
        except Exception as e:
            if debug:
                raise
            _say(prog, f"error: {type(e).__name__}: {first_line(e)} (run with --debug for the traceback)")
            return 1

    return run_main


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point (`argv` defaults to sys.argv); always exits."""
    argv = list(sys.argv if argv is None else argv)
    debug = "--debug" in argv[2:]
    argv = argv[:2] + [a for a in argv[2:] if a != "--debug"]
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(_usage())
        sys.exit(0 if len(argv) >= 2 else 2)
    name = argv[1]
    if name not in COMMANDS:
        print(f"rexjax: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    try:  # ml_collections applies --config.FIELD overrides of a default config at import
        module = importlib.import_module(COMMANDS[name][0])
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        if debug:
            raise
        _say(f"rexjax {name}", _override_problem(e))
        sys.exit(2)
    from absl import app, flags

    if any(a in ("-h", "--help", "-help", "--helpshort") for a in argv[2:]):
        # absl's own --help lists only flags of `__main__`; show the command's instead.
        print((module.__doc__ or "").strip() + "\n\nflags:\n" + flags.FLAGS.module_help(module))
        sys.exit(0)
    from rexjax import compile_cache

    compile_cache.enable()  # compile once per machine; REXJAX_COMPILE_CACHE=0 switches it off
    # Warnings and errors only by default (JAX's backend probing logs at INFO); a user's
    # own --verbosity comes later on the command line and wins.
    prog = f"rexjax {name}"
    app.run(guarded(prog, module.main, debug), argv=[prog, "--verbosity=-1"] + argv[2:], flags_parser=flags_parser(prog))


if __name__ == "__main__":
    run()
