"""benchmarks/config.py: the `--rex` flag is rexjax's ml_collections config, overridden with
RexConfig's field names, and survives `make bench-compare BENCH_ARGS=...`."""

import shlex
import subprocess

import pytest
from absl import flags

from benchmarks import config as rex_flags
from rexjax.causal import PAPER_BUDGET, RexConfig


def _parse(argv):
    values = flags.FlagValues()
    rex_flags.define_rex_flag("fast", flag_values=values, argv=["prog", *argv])
    values(["prog", *argv])
    return RexConfig.from_dict(values.rex)


def test_overrides_reach_the_config_and_the_rest_is_the_preset():
    # Catches an override parsed but not applied (or applied to a fresh preset), and a
    # preset other than the library's defaults.
    assert _parse([]) == RexConfig()
    config = _parse(["--rex.search.iters=9", "--rex.extract.prefix_growth=0.1"])
    assert config == RexConfig().replace(iters=9, prefix_growth=0.1)
    assert _parse([f"--rex={rex_flags.presets_file()}:paper"]) == RexConfig.from_dict(PAPER_BUDGET)


def test_bench_args_survive_make_and_the_shell():
    # make hands BENCH_ARGS to the shell; the flags must arrive as typed (the reason the old
    # JSON option strings needed a second syntax).
    makefile = 'show:\n\t@python3 -c "import sys, shlex; print(shlex.join(sys.argv[1:]))" $(BENCH_ARGS)\n'
    args = "--rex.search.iters=8 --rex.extract.prune_grids=8,16"
    out = subprocess.run(["make", "-s", "-f", "-", "show", f"BENCH_ARGS={args}"], input=makefile,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert _parse(shlex.split(out)) == RexConfig().replace(iters=8, prune_grids=(8, 16))


def test_an_override_the_config_lacks_is_one_line_exit_2(capsys):
    # ml_collections applies overrides while the flag is defined, before absl's error handling:
    # without the guard a typo in a field name is a traceback.
    with pytest.raises(SystemExit) as stop:
        _parse(["--rex.search.itres=3"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and "--rex: the config has no field 'itres'" in lines[0], lines
