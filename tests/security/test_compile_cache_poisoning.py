"""A tampered compile cache: the program a run executes is its own, a FIFO does not hang it,
a broken entry is repaired once, and a directory others can write is not used.

Each case runs a child process (time-bounded) that turns the cache on the way the CLI does
(`compile_cache.enable()`) and jits two tiny programs with the same signature and different
embedded constants (`plus`: sum(x + 1) = 10, `times`: sum(x * 3) = 18), so running one
program's entry for the other shows as a wrong number. The child records warnings and JAX's
cache hits instead of printing them.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from rexjax import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUS, TIMES = 10.0, 18.0

CHILD = textwrap.dedent(
    """
    import json, os, warnings
    import numpy as np
    import jax
    from rexjax import compile_cache

    hits = {"/jax/compilation_cache/cache_hits": 0}
    jax.monitoring.register_event_listener(lambda e, **k: e in hits and hits.__setitem__(e, hits[e] + 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        where = compile_cache.enable()
        x = np.arange(4, dtype=np.float32)
        listing = lambda: set(os.listdir(where)) if where else set()
        seen, out = listing(), {}
        for name, f in (("plus", lambda v: (v + 1.0).sum()), ("times", lambda v: (v * 3.0).sum())):
            out[name] = float(jax.jit(f)(x))
            now = listing()
            out[name + "_entry"] = sorted(now - seen)
            seen = now
    print(json.dumps(dict(out, hits=sum(hits.values()), cache_dir=where and str(where),
                          warnings=[str(w.message) for w in caught])))
    """
)


def run(cache_root, timeout=120):
    """One child run against `cache_root`; fails the test on a hang, a crash or a traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", compile_cache.ENV_SWITCH)}
    env["REXJAX_CACHE_DIR"] = str(cache_root)
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run hung (> {timeout} s) on the compile cache")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_warning(result, *words):
    """Exactly one warning, on one line, containing `words`."""
    assert len(result["warnings"]) == 1, result["warnings"]
    line = result["warnings"][0]
    assert "\n" not in line and all(w in line for w in words), line
    return line


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cache holding exactly the two programs' entries, and a copy of it."""
    root = tmp_path_factory.mktemp("cache")
    assert compile_cache.untrusted(root) is None  # a temporary directory others can change
    first = run(root)
    assert (first["plus"], first["times"], first["hits"]) == (PLUS, TIMES, 0)
    assert len(first["plus_entry"]) == len(first["times_entry"]) == 1
    backup = tmp_path_factory.mktemp("backup") / "xla"
    shutil.copytree(root / "xla", backup, symlinks=True)
    return root, backup, first["plus_entry"][0], first["times_entry"][0]


@pytest.fixture
def cache(pristine):
    """The pristine cache, restored at its own path (JAX's keys depend on the directory)."""
    root, backup, plus, times = pristine
    shutil.rmtree(root / "xla")
    shutil.copytree(backup, root / "xla", symlinks=True)
    return root, root / "xla" / plus, root / "xla" / times


def assert_repaired(root):
    """The next run warns about nothing and loads both programs from the cache."""
    again = run(root)
    assert (again["plus"], again["times"], again["warnings"], again["hits"]) == (PLUS, TIMES, [], 2)


def test_entry_symlinked_to_another_program_is_not_run(cache):
    """`plus`'s entry replaced by a symlink to `times`'s entry: JAX followed it and ran
    `times` for `plus` (18, exit 0, no warning). The symlink is dropped unopened."""
    root, plus, times = cache
    plus.unlink()
    plus.symlink_to(times.name)
    result = run(root)
    assert (result["plus"], result["times"]) == (PLUS, TIMES)
    one_warning(result, "dropped 1 unusable entry", "symlink")
    assert not plus.is_symlink()
    assert_repaired(root)


def test_fifo_entry_does_not_hang(cache):
    """`plus`'s entry replaced by a FIFO: JAX's read blocked forever. It is dropped
    unopened, `plus` is compiled again and written back."""
    root, plus, _ = cache
    plus.unlink()
    os.mkfifo(plus)
    result = run(root, timeout=60)
    assert (result["plus"], result["times"]) == (PLUS, TIMES)
    one_warning(result, "dropped 1 unusable entry", "not a regular file")
    assert plus.is_file()
    assert_repaired(root)


def test_truncated_entry_is_repaired_once(cache):
    """`plus`'s entry cut in half: JAX warned at every run and never rewrote it (its writer
    keeps an existing entry). It is dropped once, then compiled and written again."""
    root, plus, _ = cache
    data = plus.read_bytes()
    plus.write_bytes(data[: len(data) // 2])
    result = run(root)
    assert (result["plus"], result["times"]) == (PLUS, TIMES)
    one_warning(result, "dropped 1 unusable entry", "unreadable")
    assert plus.read_bytes() != data[: len(data) // 2]
    assert_repaired(root)


def test_directory_others_can_write_is_refused(cache):
    """A world-writable cache directory holding a poisoned entry (`plus` -> `times`): the
    directory is refused as it is (one line naming the fix), the run compiles uncached and
    gives the right numbers."""
    root, plus, times = cache
    plus.unlink()
    plus.symlink_to(times.name)
    (root / "xla").chmod(0o777)
    result = run(root)
    assert (result["plus"], result["times"], result["cache_dir"], result["hits"]) == (PLUS, TIMES, None, 0)
    one_warning(result, "compilation cache disabled", "writable by its group or other users", "chmod go-w")
    assert plus.is_symlink()  # a refused directory is not touched
