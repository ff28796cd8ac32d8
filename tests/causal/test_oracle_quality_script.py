"""experiments/oracle_quality.py's `--options`: the extra RexConfig fields reach the search.

Bug caught: the flag parsed but never merged into the config (or merged before the flags it
should override), so a "fast budget" table would silently be the default budget's.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--rules=sufficient", "--oracles=single", "--sizes=24x24:6", "--keys=1", "--iters=3"]


def _run(*extra):
    out = subprocess.run([sys.executable, "-m", "experiments.oracle_quality", *ARGS, *extra], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    config = next(line for line in out.stdout.splitlines() if line.startswith("config:"))
    row = next(line for line in out.stdout.splitlines() if line.startswith("| sufficient | single"))
    forward = int(row.strip("|").split("|")[8])
    return config, forward


def test_options_override_flags_and_change_the_search():
    base_config, base_forward = _run()
    config, forward = _run("--options=iters=2,max_active=1")
    assert "'iters': 3" in base_config and "max_active" not in base_config
    assert re.search(r"'iters': 2\b", config) and "'max_active': 1" in config
    # 2 narrow iterations ask far fewer forward images than 3 wide ones
    assert forward < base_forward
