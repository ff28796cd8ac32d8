"""`rexjax COMMAND [flags]`: dispatches to one module of `rexjax.commands` per command.

Each command module defines its own absl flags and a `main(argv)`; only the chosen module
is imported, so commands never see each other's flags.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "explain": ("rexjax.commands.explain", "explain images with ReX; writes PNG + .npz per image"),
    "models": ("rexjax.commands.models", "list the model zoo: input size, parameters, weights"),
    "bench": ("rexjax.commands.bench", "time ReX explain against raw model throughput"),
    "evaluate": ("rexjax.commands.evaluate", "run saliency methods + metrics on a folder of images"),
}


def _usage() -> str:
    lines = ["usage: rexjax COMMAND [--flags]   (rexjax COMMAND --help for flags)", "", "commands:"]
    lines += [f"  {name:<10} {doc}" for name, (_, doc) in COMMANDS.items()]
    return "\n".join(lines)


def run() -> None:
    """Console-script entry point."""
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print(_usage())
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    name = sys.argv[1]
    if name not in COMMANDS:
        print(f"rexjax: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(COMMANDS[name][0])
    from absl import app, flags

    if any(a in ("-h", "--help", "-help", "--helpshort") for a in sys.argv[2:]):
        # absl's own --help lists only flags of `__main__`; show the command's instead.
        print((module.__doc__ or "").strip() + "\n\nflags:\n" + flags.FLAGS.module_help(module))
        sys.exit(0)
    from rexjax import compile_cache

    compile_cache.enable()  # compile once per machine; REXJAX_COMPILE_CACHE=0 switches it off
    # Warnings and errors only by default (JAX's backend probing logs at INFO); a user's
    # own --verbosity comes later on the command line and wins.
    app.run(module.main, argv=[f"rexjax {name}", "--verbosity=-1"] + sys.argv[2:])


if __name__ == "__main__":
    run()
