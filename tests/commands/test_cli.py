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



@pytest.mark.parametrize("module,names", [
    ("explain", ("iters", "prefix_growth", "min_box_size", "tree_depth", "max_active", "min_confidence", "concentrate", "responsibility",
                 "prune_grids")),
])
def test_cli_rex_defaults_are_the_library_defaults(module, names):
    """`rexjax explain` / `rexjax bench` flag defaults equal RexConfig's (catches a default
    changed in one place only, as issue 13 changed iters and prefix_growth). One process per
    command module: both define --iters on absl's global FLAGS."""
    code = (f"import json, rexjax.commands.{module} as m; from rexjax.causal import RexConfig; d = RexConfig(); "
            f"print(json.dumps([[m.FLAGS[n].default, getattr(d, n)] for n in {list(names)!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    import json

    for name, (flag, config) in zip(names, json.loads(out.stdout.splitlines()[-1])):
        if isinstance(flag, list):  # a DEFINE_list default holds strings
            flag = [int(v) for v in flag]
        assert flag == config, (module, name, flag, config)


def test_explain_search_flags_reach_the_config():
    """--iters, --tree_depth, --min_box_size, --prefix_growth, --responsibility, --max_active and --prune_grids
    end up in the RexConfig that `rexjax explain` runs (catches a flag defined but not passed on)."""
    code = ("import json, rexjax.commands.explain as m; "
            "m.FLAGS(['x', '--iters=6', '--tree_depth=4', '--min_box_size=20', '--prefix_growth=0.05', "
            "'--responsibility=rex', '--max_active=1', '--prune_grids=4,8']); c = m._config(); "
            "print(json.dumps([c.iters, c.tree_depth, c.min_box_size, c.prefix_growth, c.responsibility, c.max_active, "
            "c.prune_grids]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    import json

    assert json.loads(out.stdout.splitlines()[-1]) == [6, 4, 20, 0.05, "rex", 1, [4, 8]]
