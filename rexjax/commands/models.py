"""`rexjax models`: the model zoo as a table (name, input size, parameters, weights,
preprocessing, description)."""

from __future__ import annotations

import logging

from absl import flags

from rexjax.commands import common

FLAGS = flags.FLAGS
flags.DEFINE_string("models_filter", "", "only list models whose name contains this string")


def table(infos) -> str:
    rows = [("name", "input", "params", "weights", "preprocessing", "description")]
    for i in infos:
        rows.append(
            (i.name, f"{i.input_size[0]}x{i.input_size[1]}", f"{i.param_count:,}",
             "yes" if i.has_weights else "no (random init)", i.preprocessing, i.description)
        )
    n = len(rows[0]) - 1  # the description is last and not padded
    widths = [max(len(r[c]) for r in rows) for c in range(n)]
    lines = ["  ".join(r[c].ljust(widths[c]) for c in range(n)) + "  " + r[n] for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 11)
    return "\n".join(line.rstrip() for line in lines)


def main(argv) -> None:
    if len(argv) > 1:
        raise common.UsageError("", f"takes no positional arguments, got {argv[1:]}")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no TPU-probe noise
    from rexjax.models import known_models, list_models

    print(table(list_models([n for n in known_models() if FLAGS.models_filter in n])))
