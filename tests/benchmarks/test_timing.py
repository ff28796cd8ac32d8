"""benchmarks/timing.py: the bare model timed the way the engine runs it; and the benchmark
modules import side by side (none defines absl flags at import)."""

import importlib
import pkgutil
import time

import jax
import numpy as np
import pytest
from absl import flags

import benchmarks
from benchmarks.timing import first_and_median, median_of, raw_rate_fn


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


def test_first_call_is_reported_apart_from_the_median_of_the_others():
    # Catches the first (compiling) call counted among the timed ones, or too few timed calls.
    calls = []

    def fn(v):
        calls.append(v)
        if len(calls) == 1:
            time.sleep(0.2)  # the "compile"
        return jax.numpy.zeros(())

    first, median = first_and_median(fn, 1.0, repeats=3)
    assert len(calls) == 4 and first >= 0.2 > median
    values = iter([5.0, 1.0, 3.0])
    assert median_of(lambda: next(values), 3) == 3.0
    with pytest.raises(ValueError, match="rounds"):
        median_of(lambda: 1.0, 0)


def test_benchmark_modules_import_together_without_defining_flags():
    # Catches a module that defines its absl flags at import: importing two such modules
    # (compare imports runs, timing, config ...) raised DuplicateFlagError before any run.
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name != "tool_worker"]  # torch side
    for name in names:
        importlib.import_module(f"benchmarks.{name}")
    assert {"compare", "throughput", "frontier", "screen", "timing", "config"} <= set(names)
    assert [m for m in flags.FLAGS.flags_by_module_dict() if "benchmarks" in m] == []
