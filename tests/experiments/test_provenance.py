"""What produced a result (`rexjax.provenance`) and the runner's use of it: every results
folder carries provenance.json, every row the code that wrote it; a tree with uncommitted
changes does not write into the repository's experiments/results, nor does a run resume rows
of other code, unless told (and then the record says so). Git states are faked with a
temporary repository or by replacing `provenance.code_state`."""

import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from rexjax import provenance
from rexjax.studies import runner
from tests.experiments.cheap import cheap, config_for, fill, pool, rows, run, tiny_classifier  # noqa: F401
from tests.experiments.helpers import REPO, TINY_A

CLEAN = provenance.GitState("a" * 40, False)
DIRTY = provenance.GitState("a" * 40, True, ("rexjax/runner.py",))
OTHER = provenance.GitState("b" * 40, False)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


@needs_git
def test_git_state_of_a_repository(tmp_path, monkeypatch):
    """Commit and changes as git reports them: clean after a commit; a modified file, an
    untracked one and a rename each make the tree dirty and are named; files under the
    results folders do not; a folder below a repository's top (a package installed inside
    some repository) and a machine without git give no commit. Catches a dirty flag from
    tracked files only, results counted as code, and another repository's commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("a = 1\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "b.py").write_text("b = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert provenance.git_state(repo) == (head, False, ())

    for results in ("experiments/results/s", "benchmarks/results/b"):
        (repo / results).mkdir(parents=True)
        (repo / results / "results.csv").write_text("x\n")
    assert provenance.git_state(repo) == (head, False, ())
    (repo / "a.py").write_text("a = 2\n")
    (repo / "new.py").write_text("")
    git(repo, "mv", "sub/b.py", "sub/c.py")
    assert provenance.git_state(repo) == (head, True, ("a.py", "new.py", "sub/b.py", "sub/c.py"))
    assert provenance.git_state(repo).code_id == head + "+dirty"

    assert provenance.git_state(repo / "sub") == provenance.NO_GIT
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert provenance.git_state(repo) == provenance.NO_GIT and provenance.NO_GIT.code_id == ""


def test_a_record_names_code_command_versions_device_date_and_config(tmp_path):
    """Every field the record promises, the changed paths capped, and a round trip through
    provenance.json (no temporary file left). Catches a missing field and a record that
    cannot be read back."""
    many = provenance.GitState("c" * 40, True, tuple(f"f{i}.py" for i in range(25)))
    rec = provenance.record(config={"seed": 0}, state=many, study="s", versions={"torch": "2"})
    assert (rec["commit"], rec["dirty"], rec["config"], rec["study"]) == ("c" * 40, True, {"seed": 0}, "s")
    assert rec["changed"] == [f"f{i}.py" for i in range(20)] + ["... 5 more"]
    assert set(rec["versions"]) == {"rexjax", "jax", "jaxlib", "python", "torch"} and rec["versions"]["jax"]
    assert rec["device"]["platform"] == "cpu" and rec["device"]["kind"] and rec["device"]["processes"] == 1
    assert datetime.datetime.fromisoformat(rec["date"]).tzinfo is not None
    # the interpreter's options and the script's, the interpreter as `python` (no machine path)
    assert shlex.split(rec["command"]) == ["python", *sys.orig_argv[1:]]
    provenance.write(tmp_path, rec)
    assert provenance.read(tmp_path) == rec and os.listdir(tmp_path) == ["provenance.json"]
    assert provenance.read(tmp_path / "none") == {}
    (tmp_path / "provenance.json").write_text("[1]")
    with pytest.raises(ValueError, match="provenance.json' does not hold a JSON object"):
        provenance.read(tmp_path)


def test_every_results_folder_records_what_wrote_it(pool, cheap, tmp_path, monkeypatch):
    """A run writes provenance.json (commit, dirty flag, command, versions, device, date,
    study, config) before its rows and stamps each row with the code's id; a resumed run's
    record keeps the earlier one (less its config) under `earlier`. Catches a folder without
    provenance, a row without its code, and a resume that forgets who wrote the first rows."""
    monkeypatch.setattr(provenance, "code_state", lambda: DIRTY)
    fill(tmp_path / "data" / "images", pool, ["im0", "im1"])
    config = config_for(tmp_path / "data", tmp_path / "out")
    config.max_images = 1
    run(config)
    first = provenance.read(tmp_path / "out")
    assert (first["commit"], first["dirty"], first["changed"], first["study"]) == ("a" * 40, True,
                                                                                   ["rexjax/runner.py"], "evaluate")
    assert first["config"] == json.loads(config.to_json()) and first["allow_dirty"] is False
    assert {"command", "versions", "device", "date"} <= set(first) and "earlier" not in first
    assert {r["rexjax_commit"] for r in rows(tmp_path / "out")} == {"a" * 40 + "+dirty"}

    config.max_images = None
    run(config)
    second = provenance.read(tmp_path / "out")
    assert second["earlier"] == [{k: v for k, v in first.items() if k != "config"}]
    assert len(rows(tmp_path / "out")) == 4


def test_a_dirty_tree_does_not_write_into_the_repository_results(pool, cheap, tmp_path, monkeypatch):
    """Into the repository's experiments/results a dirty tree is refused (one line naming the
    changes and --allow_dirty) before the folder is made; with allow_dirty it runs and the
    record says dirty and allowed. Outside those results a dirty tree is recorded, not
    refused. Catches results from uncommitted code written where they are committed."""
    monkeypatch.setattr(provenance, "code_state", lambda: DIRTY)
    monkeypatch.setattr(runner, "REPO_RESULTS", tmp_path / "repo" / "experiments" / "results", raising=False)
    fill(tmp_path / "data" / "images", pool, ["im0"])
    inside = tmp_path / "repo" / "experiments" / "results" / "study"
    config = config_for(tmp_path / "data", inside)
    with pytest.raises(Exception, match=r"is in the repository's experiments/results and the tree has uncommitted "
                                        r"changes \(rexjax/runner.py\); commit them first, or pass --allow_dirty") as e:
        run(config)
    assert type(e.value).__name__ == "Refused" and not inside.exists()
    run(config, allow_dirty=True)
    record = provenance.read(inside)
    assert record["dirty"] is True and record["allow_dirty"] is True and len(rows(inside)) == 2

    outside = tmp_path / "elsewhere"
    run(config_for(tmp_path / "data", outside))
    assert provenance.read(outside)["dirty"] is True and provenance.read(outside)["allow_dirty"] is False


def test_rows_of_other_code_are_not_resumed_unless_allowed(pool, cheap, tmp_path, monkeypatch):
    """A folder with rows of commit a, resumed at commit b: refused (one line naming both and
    --allow_other_commit), the folder's lock released; allowed, the run goes on and the record
    names the other code. A clean and a dirty tree at one commit are other code too. Catches
    a resume guard that compares only the config."""
    fill(tmp_path / "data" / "images", pool, ["im0", "im1"])
    config = config_for(tmp_path / "data", tmp_path / "out")
    config.max_images = 1
    monkeypatch.setattr(provenance, "code_state", lambda: CLEAN)
    run(config)
    config.max_images = None
    for state, shown in ((OTHER, "b" * 40), (DIRTY, "a" * 40 + "+dirty")):
        monkeypatch.setattr(provenance, "code_state", lambda: state)
        with pytest.raises(Exception, match=rf"holds rows written by other code \(commit {'a' * 40}; this run: commit "
                                            rf"{shown.replace('+', '[+]')}\); resume with --allow_other_commit") as e:
            run(config)
        assert type(e.value).__name__ == "Refused" and len(rows(tmp_path / "out")) == 2
    assert not (tmp_path / "out" / ".rexjax-run.lock").exists()
    run(config, allow_other_commit=True)  # while the refusal's traceback is alive: the lock was released
    record = provenance.read(tmp_path / "out")
    assert record["allow_other_commit"] is True and record["other_code"] == [f"commit {'a' * 40}"]
    assert [r["rexjax_commit"] for r in rows(tmp_path / "out")] == ["a" * 40] * 2 + ["a" * 40 + "+dirty"] * 2


_FAKE = ("import sys; from pathlib import Path; from rexjax import provenance; from rexjax.studies import runner; "
         "provenance.code_state = lambda: provenance.GitState('a' * 40, True, ('x.py',)); "
         "runner.REPO_RESULTS = Path(sys.argv.pop(1)); sys.argv[0] = 'run.py'; "
         "import runpy; runpy.run_path(sys.argv.pop(1), run_name='__main__')")


def test_run_py_refuses_a_dirty_tree_in_one_line_and_allow_dirty_records_it(pool, tmp_path):
    """experiments/run.py into the repository's results (faked) from a dirty tree (faked):
    one line, exit 1, nothing written (run.py's write probe leaves the folder empty); with
    --allow_dirty it runs and provenance.json
    records the flag and the command line. Catches the flag not reaching the runner."""
    fill(tmp_path / "data" / "images", pool, ["im0"])
    results = tmp_path / "experiments" / "results"
    out = results / "rex_compare"
    argv = [sys.executable, "-c", _FAKE, str(results), str(REPO / "experiments" / "run.py"),
            f"--config={REPO / 'experiments' / 'configs' / 'rex_compare.py'}", f"--config.models={TINY_A}",
            f"--config.images={tmp_path / 'data' / 'images'}", f"--config.out={out}", "--config.methods=occlusion",
            "--config.occlusion.window=8", "--config.occlusion.stride=8", "--config.step=64", "--config.warmup=False",
            "--config.save_maps=False"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "REXJAX_COMPILE_CACHE": "0"}
    refused = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and refused.stderr.splitlines() == [
        f"run.py: {str(out)!r} is in the repository's experiments/results and the tree has uncommitted changes "
        "(x.py); commit them first, or pass --allow_dirty (recorded in provenance.json)"], refused.stderr
    assert list(out.iterdir()) == []
    allowed = subprocess.run([*argv, "--allow_dirty"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert allowed.returncode == 0, allowed.stderr
    record = provenance.read(out)
    assert record["dirty"] is True and record["allow_dirty"] is True and record["changed"] == ["x.py"]
    assert record["command"].endswith(f"--config.save_maps=False --allow_dirty") and "run.py" in record["command"]


def test_benchmarks_provenance_is_the_same_record(tmp_path, monkeypatch):
    """benchmarks' write_provenance writes `provenance.record` (commit, dirty, device, ...)
    with its command, the benchmark and the caller's facts; source_state names the commit and
    the changed files under rexjax/. Catches a second, diverging implementation."""
    from benchmarks import runs

    monkeypatch.setattr(provenance, "code_state", lambda: provenance.GitState(
        "d" * 40, True, ("README.md", "rexjax/a.py")))
    monkeypatch.setattr(sys, "argv", ["compare.py", "--limit=1"])
    assert runs.source_state() == "ddddddd + uncommitted ['rexjax/a.py']"
    rec = runs.write_provenance(tmp_path, "bench_compare", "compare", rexjax_commit="x", versions={"torch": "2"})
    assert provenance.read(tmp_path) == rec
    assert (rec["commit"], rec["dirty"], rec["benchmark"], rec["rexjax_commit"]) == ("d" * 40, True,
                                                                                     "bench_compare", "x")
    assert rec["command"] == "python -m benchmarks.compare --limit=1" and rec["versions"]["torch"] == "2"
    assert {"jax", "jaxlib", "rexjax"} <= set(rec["versions"]) and "device" in rec
