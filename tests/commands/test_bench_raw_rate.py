"""`rexjax bench`'s raw column: the bare model timed the way the engine runs it."""

import jax
import numpy as np

from rexjax.timing import raw_rate_fn


def test_raw_rate_runs_every_batch_inside_one_program():
    # Catches a loop that runs the model once (hoisted out, or a wrong trip count) while
    # reporting batches x batch images, and a rate that recompiles per image.
    seen = []

    def model(xb):
        jax.debug.callback(lambda b: seen.append(np.asarray(b).shape[0]), xb)
        return xb.reshape(xb.shape[0], -1)[:, :3]

    traces = []
    rate = raw_rate_fn(lambda xb: (traces.append(1), model(xb))[1], batch=4, batches=7)
    x = np.ones((5, 6, 3), np.float32)
    r1 = rate(x)
    assert len(traces) == 1 and seen == [4] * 14  # one untimed (compiling) loop + one timed loop
    r2 = rate(x * 2)  # another image of the same shape: no new trace, one timed loop
    assert len(traces) == 1 and seen == [4] * 21
    assert np.isfinite(r1) and np.isfinite(r2) and r1 > 0 and r2 > 0


_IN_BENCH_COMPARE = r"""
import sys, types
import numpy as np
sys.path.insert(0, "tools")
import bench_compare  # defines its absl flags (--images, ...), as when run as a script
from raw_rate import loop_rate_fn
clf = types.SimpleNamespace(probs=lambda xb: xb.reshape(xb.shape[0], -1)[:, :2])
rate = loop_rate_fn(clf, np.ones((4, 4, 3), np.float32), 2, 3)
print("rate", rate() > 0)
"""


def test_bench_compare_can_time_the_raw_model():
    # Catches the timing helper living in a module that defines absl flags: inside
    # tools/bench_compare.py that import raised DuplicateFlagError('images') before any run.
    import os
    import subprocess
    import sys

    from tests.commands.test_cli_errors import ROOT

    p = subprocess.run([sys.executable, "-c", _IN_BENCH_COMPARE], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}, timeout=300)
    assert p.returncode == 0 and "rate True" in p.stdout, p.stderr[-2000:]
