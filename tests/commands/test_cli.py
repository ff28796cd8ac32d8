"""The `rexjax` dispatcher: usage, unknown commands, per-command --help."""

import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "rexjax.cli", *args], capture_output=True, text=True, timeout=120)


def test_usage_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for name in ("explain", "models", "evaluate"):
        assert name in out.stdout


def test_unknown_command():
    out = run("frobnicate")
    assert out.returncode == 2 and "unknown command" in out.stderr


@pytest.mark.parametrize("name,flag", [("explain", "--iters")])
def test_command_help_shows_its_flags(name, flag):
    out = run(name, "--help")
    assert out.returncode == 0 and flag in out.stdout


def test_explain_missing_file(tmp_path):
    out = run("explain", str(tmp_path / "nope.jpg"), "--out", str(tmp_path))
    assert out.returncode != 0 and "no such file" in out.stderr


# --- rexjax evaluate -----------------------------------------------------------------------


def test_evaluate_help_shows_config_and_defaults():
    out = run("evaluate", "--help")
    assert out.returncode == 0
    assert "--config:" in out.stdout and "--config.rise.n_masks=1000" in out.stdout
    assert "rise: grid=7 n_masks=4000 p=0.5" in out.stdout  # the default config's fields


def test_evaluate_unknown_method_is_one_line_before_the_model():
    # the model name is bad too: the method names are checked first, before any model
    out = run("evaluate", "--config.methods=rise,nope", "--config.model=no_such_model")
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert err[0].startswith("rexjax evaluate: unknown method 'nope'")


@pytest.mark.slow
def test_evaluate_lite0_two_vendored_images(tmp_path):
    import csv

    from pathlib import Path

    images = Path(__file__).resolve().parents[2] / "third_party" / "images"
    args = ["evaluate", f"--config.images={images}", "--config.methods=gradcam,rise", "--config.rise.n_masks=8", "--config.max_images=2",
            "--config.step=5000", f"--config.out={tmp_path}"]
    out = subprocess.run([sys.executable, "-m", "rexjax.cli", *args], capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["image"], r["method"]) for r in rows] == [
        (i, m) for i in ("004_0002.jpg", "2008_000033.jpg") for m in ("gradcam", "rise")]
    assert {r["forward_images"] for r in rows if r["method"] == "rise"} == {"8"}
    assert all(0 < float(r["area"]) <= 1 and r["step"] == "5000" for r in rows)
    assert (tmp_path / "summary.txt").read_text().splitlines()[0].startswith("model efficientnet_lite0, 2 images")



def explain_config(*argv: str) -> dict:
    """The RexConfig `rexjax explain` would run with `argv` (flags parsed in a fresh process:
    absl's FLAGS are global), as a nested dict."""
    code = ("import json, sys, rexjax.commands.explain as m; m.FLAGS(['x', *sys.argv[1:]]); "
            "print(json.dumps(m._config().to_dict()))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    import json

    return json.loads(out.stdout.splitlines()[-1])


def test_explain_default_config_is_the_library_default():
    """`rexjax explain` with no flags runs RexConfig() (catches a CLI default drifting from the
    library's: the config is generated from the dataclass, and no flag repeats a field)."""
    from rexjax.causal import RexConfig

    assert RexConfig.from_dict(explain_config()) == RexConfig()
    assert RexConfig.from_dict(explain_config("--config=rexjax/configs/rex.py:paper")) == RexConfig.from_dict(
        __import__("rexjax").causal.PAPER_BUDGET)


def test_explain_config_fields_and_aliases_reach_the_config():
    """--config.FIELD overrides (the library's nested names) and the four aliases end up in the
    RexConfig `rexjax explain` runs (catches an override or alias parsed but not passed on)."""
    c = explain_config("--config.search.tree_depth=4", "--config.search.min_box_size=20",
                       "--config.extract.prefix_growth=0.1", "--config.search.responsibility=alg1",
                       "--config.extract.prune_grids=(4, 8)", "--iters=3", "--multiple=2", "--contrastive",
                       "--strategy=spatial")
    assert (c["search"]["tree_depth"], c["search"]["min_box_size"], c["extract"]["prefix_growth"],
            c["search"]["responsibility"], c["extract"]["prune_grids"]) == (4, 20, 0.1, "alg1", [4, 8])
    assert (c["search"]["iters"], c["multiple"], c["contrastive"], c["strategy"]) == (3, 2, True, "spatial")
    assert explain_config("--multiple=0")["multiple"] is None
