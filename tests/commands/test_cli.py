"""The `rexjax` dispatcher: usage, unknown commands, per-command --help."""

import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "rexjax.cli", *args], capture_output=True, text=True, timeout=120)


def test_usage_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for name in ("explain", "models", "bench", "evaluate"):
        assert name in out.stdout


def test_unknown_command():
    out = run("frobnicate")
    assert out.returncode == 2 and "unknown command" in out.stderr


@pytest.mark.parametrize("name,flag", [("explain", "--iters"), ("bench", "--raw_calls")])
def test_command_help_shows_its_flags(name, flag):
    out = run(name, "--help")
    assert out.returncode == 0 and flag in out.stdout


def test_explain_missing_file(tmp_path):
    out = run("explain", str(tmp_path / "nope.jpg"), "--out", str(tmp_path))
    assert out.returncode != 0 and "no such file" in out.stderr
