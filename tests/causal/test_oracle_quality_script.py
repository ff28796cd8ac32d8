"""tests/causal/oracle_quality.py's `--rex` overrides reach the search.

Bug caught: the overrides parsed but not used (the script building its own config, or a
preset), so a table labelled with a budget would silently be the default budget's.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--rules=sufficient", "--oracles=single", "--sizes=24x24:6", "--keys=1", "--rex.search.iters=3",
        "--rex.search.max_active=3"]


def _run(*extra):
    out = subprocess.run([sys.executable, "-m", "tests.causal.oracle_quality", *ARGS, *extra], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    config = next(line for line in out.stdout.splitlines() if line.startswith("config:"))
    row = next(line for line in out.stdout.splitlines() if line.startswith("| sufficient | single"))
    forward = int(row.strip("|").split("|")[8])
    return config, forward


def test_overrides_reach_the_config_and_change_the_search():
    base_config, base_forward = _run()
    config, forward = _run("--rex.search.iters=2", "--rex.search.max_active=1")
    assert "'iters': 3" in base_config and "'max_active': 3" in base_config
    assert "'iters': 2" in config and "'max_active': 1" in config
    # 2 narrow iterations ask far fewer forward images than 3 wide ones
    assert forward < base_forward
