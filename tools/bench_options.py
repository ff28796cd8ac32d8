"""Options on a benchmark command line: `--rexjax_options`, `--tool_args`, `--explain_options`.

Either a JSON dict (`{"iters": 6, "prefix_growth": 0.05}`) or `name=value` pairs separated by
commas (`iters=6,prefix_growth=0.05,responsibility=rex`), each value read as JSON when it
parses (numbers, true/false/null) and as a string otherwise. The second form survives `make`
and the shell, which strip a JSON dict's quotes:

    make bench-compare BENCH_ARGS="--rexjax_options=iters=6,prefix_growth=0.05"
"""

from __future__ import annotations

import json


def parse_options(text: str, name: str) -> dict:
    """`text` as a dict of options; ValueError naming `name` (the flag) when it is neither form."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"--{name}: not a JSON dict ({e.msg} at character {e.pos}): {text!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"--{name}: expected a JSON dict, got {text!r}")
        return value
    options = {}
    for pair in text.split(","):
        key, sep, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--{name}: expected name=value pairs separated by commas, got {pair!r} in {text!r}")
        if key in options:
            raise ValueError(f"--{name}: {key!r} given twice in {text!r}")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options
