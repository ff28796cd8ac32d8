"""Compile once per machine: a second `rexjax` process loads every executable the first one
compiled from the persistent cache (counted with JAX's cache events, no timing)."""

import json
import os
import subprocess
import sys

import pytest

from rexjax import compile_cache

# Runs the real CLI entry with a probe command registered (tests/helpers/compile_probe.py).
PROBE = (
    "import sys, rexjax.cli as cli; "
    "cli.COMMANDS['probe'] = ('tests.helpers.compile_probe', 'test probe'); "
    "sys.argv = ['rexjax', 'probe']; cli.run()"
)


def probe(cache_root, switch=None):
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", compile_cache.ENV_SWITCH)}
    env["REXJAX_CACHE_DIR"] = str(cache_root)
    if switch is not None:
        env[compile_cache.ENV_SWITCH] = switch
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env, cwd=root)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def entries(cache_root):
    d = cache_root / "xla"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_second_cli_process_compiles_nothing_the_first_compiled(tmp_path):
    first = probe(tmp_path)
    assert first["cache_dir"] == str((tmp_path / "xla").resolve())
    assert first["misses"] >= 2 and first["hits"] == 0
    written = entries(tmp_path)
    assert len(written) >= 2
    second = probe(tmp_path)
    assert second["misses"] == 0 and second["hits"] == first["misses"]
    assert entries(tmp_path) == written


def test_switched_off_by_env(tmp_path):
    out = probe(tmp_path, "off")
    assert out["cache_dir"] is None and out["hits"] == out["misses"] == 0
    assert entries(tmp_path) == []


@pytest.mark.parametrize("value,on", [("0", False), ("OFF", False), (" false ", False), ("no", False), ("1", True), ("", True)])
def test_switch_values(monkeypatch, value, on):
    monkeypatch.setenv(compile_cache.ENV_SWITCH, value)
    assert compile_cache.requested() is on


def test_existing_unwritable_directory_is_refused(monkeypatch):
    """An existing directory that refuses new files (/proc/self, even for root) is not handed
    to JAX (whose cache writes would fail at every compile): one warning, None. Catches a
    check that only creates the directory."""
    import jax

    monkeypatch.delenv(compile_cache.ENV_SWITCH, raising=False)
    before = jax.config.jax_compilation_cache_dir
    if before:
        pytest.skip("a JAX compilation cache directory is set for this process")
    with pytest.warns(UserWarning, match="compilation cache disabled: cannot write"):
        assert compile_cache.enable("/proc/self") is None
    assert jax.config.jax_compilation_cache_dir == before
