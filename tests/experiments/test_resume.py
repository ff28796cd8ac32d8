"""Resuming a study: whatever happened to the folder since (a kill, a damaged or duplicated
line, lines in another order, images added or changed), the resumed run ends with the CSV of
an uninterrupted run on the folder as it is now: no row lost, none twice, no damaged value
kept. And one run at a time writes into a folder.

Most tests run a study at no cost (`tests/experiments/cheap.py`: the real runner and
Evaluator, a stand-in for the method and its metrics): the bookkeeping under test is the
runner's and the row log's, not a method's or a study's."""

import os
import random
import shutil
import subprocess
import sys

import pytest

from rexjax import evaluation
from rexjax.studies import runner
from tests.experiments.cheap import (POOL, cheap, cheap_measure, config_for, fill, pool, rows, run,  # noqa: F401
                                     tiny_classifier, uninterrupted)
from tests.experiments.helpers import REPO, TINY_A

# --- random damage to a results CSV (its header kept: another header is another study) ------

def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def damage_bytes(data: bytes, rng: random.Random) -> bytes:
    start = data.find(b"\n") + 1
    if start >= len(data):
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(start, len(out))] = rng.choice([rng.randrange(256), ord("\n"), ord(","), ord('"')])
    return bytes(out)


def duplicate_lines(data: bytes, rng: random.Random) -> bytes:
    header, *lines = data.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        if lines:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
    return b"\n".join([header, *lines])


def reorder_lines(data: bytes, rng: random.Random) -> bytes:
    header, *lines = data.split(b"\n")
    rng.shuffle(lines)
    return b"\n".join([header, *lines])


DAMAGE = (truncate, damage_bytes, duplicate_lines, reorder_lines)


@pytest.mark.parametrize("seed", range(40))
def test_resume_never_loses_or_duplicates_a_row(seed, pool, cheap, tmp_path, capsys):
    """A run's CSV damaged at random (cut anywhere, bytes changed, lines duplicated or
    reordered; one to three of them) and its folder given new images (names sorting first
    or last) or an image new content; the resumed run ends with exactly the rows of an
    uninterrupted run on the folder as it is then, and says in one line that it dropped rows.
    Catches rows keyed by position, a damaged or cut row counted as done (kept, or computed
    again beside it), duplicates kept by the merge, and a row of an image's old content."""
    rng = random.Random(seed)
    data = tmp_path / "data"
    first = rng.sample(POOL[:5], rng.randint(2, 4))
    fill(data / "images", pool, first)
    config = config_for(data, tmp_path / "out")
    run(config)
    csv = tmp_path / "out" / "results.csv"

    damaged = csv.read_bytes()
    for damage in rng.sample(DAMAGE, rng.randint(1, 3)):
        damaged = damage(damaged, rng)
    csv.write_bytes(damaged)
    names, contents = list(first), {}
    if rng.random() < 0.5:
        names += rng.sample([n for n in POOL if n not in first], rng.randint(1, 2))
    if rng.random() < 0.3:
        contents[first[0]] = next(n for n in POOL if n not in names)  # same name, other content
    fill(data / "images", pool, names, contents)
    capsys.readouterr()

    run(config)
    got, said = rows(tmp_path / "out"), capsys.readouterr().err.splitlines()
    assert got == uninterrupted(config, tmp_path / "fresh"), (seed, damaged)
    assert len(got) == 2 * len(names)
    assert len(said) <= 1 and all(line.startswith("evaluate: results.csv: dropped ") for line in said), said


def test_a_partial_row_that_ends_in_a_newline_is_computed_again(pool, cheap, tmp_path):
    """A run killed in the middle of a row whose cut line got a newline (a second writer, an
    editor): the row is not counted as done, and the resumed CSV has it once, whole. Catches
    a row accepted because its key columns parse."""
    fill(tmp_path / "data" / "images", pool, POOL[:2])
    config = config_for(tmp_path / "data", tmp_path / "out")
    run(config)
    csv = tmp_path / "out" / "results.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2] + "\n")
    run(config)
    assert rows(tmp_path / "out") == uninterrupted(config, tmp_path / "fresh")


def test_killed_after_row_0_then_an_image_that_sorts_first(pool, cheap, tmp_path):
    """The report's sequence: a run killed after its first row, an image whose name sorts
    first added, the run resumed: every image explained once, with its own key. Catches rows
    (or keys) by position."""
    fill(tmp_path / "data" / "images", pool, ["im0", "im1"])
    config = config_for(tmp_path / "data", tmp_path / "out")
    run(config)
    csv = tmp_path / "out" / "results.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:2]))
    fill(tmp_path / "data" / "images", pool, ["a0", "im0", "im1"])
    run(config)
    got = rows(tmp_path / "out")
    assert [(r["image"], r["method"]) for r in got] == [(f"{n}.png", m) for n in ("a0", "im0", "im1")
                                                        for m in ("rise", "occlusion")]
    assert got == uninterrupted(config, tmp_path / "fresh")


def test_an_image_with_new_content_is_explained_again(pool, cheap, tmp_path, capsys):
    """Same file name, other pixels: the rows of the old content are dropped (one line says
    so) and the image explained again. Catches rows keyed by file name alone."""
    fill(tmp_path / "data" / "images", pool, ["im0", "im1"])
    config = config_for(tmp_path / "data", tmp_path / "out")
    run(config)
    fill(tmp_path / "data" / "images", pool, ["im0", "im1"], {"im1": "im2"})
    capsys.readouterr()
    run(config)
    assert capsys.readouterr().err.startswith("evaluate: results.csv: dropped 2 rows of images whose content "
                                              "changed (first: im1.png)")
    got = rows(tmp_path / "out")
    assert got == uninterrupted(config, tmp_path / "fresh")
    assert got[2]["image_sha256"] == runner.file_sha256(tmp_path / "data" / "images" / "im1.png")


def test_an_image_changed_while_explained_fails_alone(pool, cheap, tmp_path, monkeypatch):
    """A file rewritten while its rows are computed: the pair fails (its rows would name
    content they were not computed on) and a rerun explains the new content. Catches rows
    stamped with the hash taken before the image was read."""
    images = tmp_path / "data" / "images"
    fill(images, pool, ["im0", "im1"])
    config = config_for(tmp_path / "data", tmp_path / "out")

    def rewrite_im1(self, name, key, x, *args, **kwargs):
        if name == "rise" and (images / "im1.png").read_bytes() == (pool / "im1.png").read_bytes():
            shutil.copy(pool / "im2.png", images / "im1.png")
        return cheap_measure(self, name, key, x, *args, **kwargs)

    monkeypatch.setattr(evaluation.Evaluator, "measure_maps", rewrite_im1)
    with pytest.raises(runner.StudyIncomplete, match="im1.png changed while it was explained"):
        run(config)
    monkeypatch.setattr(evaluation.Evaluator, "measure_maps", cheap_measure)
    run(config)
    assert rows(tmp_path / "out") == uninterrupted(config, tmp_path / "fresh")


def test_an_unreadable_image_keeps_its_rows_and_fails_alone(pool, cheap, tmp_path, monkeypatch):
    """An image that cannot be read on resume (its hash is unknown): its rows stay, it is
    not explained (its pair fails, named in failed.txt), the others are. Catches an unknown
    hash taken for changed content (rows lost) or rows stamped without a hash."""
    fill(tmp_path / "data" / "images", pool, ["im0", "im1"])
    config = config_for(tmp_path / "data", tmp_path / "out")
    run(config)
    before = rows(tmp_path / "out")
    fill(tmp_path / "data" / "images", pool, ["a0", "im0", "im1"])
    real = runner.file_sha256
    monkeypatch.setattr(runner, "file_sha256", lambda path: "" if path.name == "im1.png" else real(path))
    with pytest.raises(runner.StudyIncomplete, match="im1.png is not a regular file that can be read"):
        run(config)
    after = rows(tmp_path / "out")
    assert [r["image"] for r in after] == ["a0.png"] * 2 + ["im0.png"] * 2 + ["im1.png"] * 2
    assert after[2:] == before


def test_a_second_run_on_a_folder_is_refused(pool, cheap, tmp_path):
    """While a run holds the folder, another is refused before it writes a row; the lock goes
    with the run, so the next run proceeds. Catches two writers on one CSV (duplicated rows,
    a table saying n=3 for 2 images) and a lock file left behind."""
    fill(tmp_path / "data" / "images", pool, ["im0"])
    config = config_for(tmp_path / "data", tmp_path / "out")
    out = tmp_path / "out"
    held = runner.lock_folder(out)
    with pytest.raises(runner.Refused, match=r"another run is writing into .*out' \(it holds \.rexjax-run\.lock\)"):
        run(config)
    assert not (out / "results.csv").exists()
    runner.unlock(held)
    run(config)
    assert len(rows(out)) == 2 and not (out / runner.LOCK).exists()
    runner.unlock(runner.lock_folder(out))  # nothing held it


def test_processes_of_one_run_lock_their_own_files(tmp_path):
    """Process p > 0 of a run locks its own file: the processes of one run do not exclude
    each other, a second process p is refused. Catches one lock for every process (a
    multi-process run refusing itself)."""
    first, second = runner.lock_folder(tmp_path, 0), runner.lock_folder(tmp_path, 1)
    with pytest.raises(runner.Refused, match=r"\.rexjax-run\.p1\.lock"):
        runner.lock_folder(tmp_path, 1)
    runner.unlock(first)
    runner.unlock(second)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["run.py", "evaluate"])
def test_the_commands_refuse_a_locked_folder_in_one_line(command, pool, tmp_path):
    """experiments/run.py and `rexjax evaluate` on a folder another process holds: one line
    on stderr, exit status 1, nothing written. Catches a traceback or a run that goes on."""
    import fcntl

    fill(tmp_path / "data" / "images", pool, ["im0"])
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".rexjax-run.lock", "a+b") as lock:  # what runner.lock_folder takes
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if command == "run.py":
            argv = [str(REPO / "experiments" / "run.py"), f"--config={REPO / 'experiments/configs/rex_compare.py'}",
                    f"--config.models={TINY_A}"]
        else:
            argv = ["-m", "rexjax.cli", "evaluate", f"--config.model={TINY_A}"]
        argv += [f"--config.images={tmp_path / 'data' / 'images'}", f"--config.out={out}", "--config.methods=rise"]
        env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "REXJAX_COMPILE_CACHE": "0"}
        p = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"{'run.py' if command == 'run.py' else 'rexjax evaluate'}: another run is writing into {str(out)!r} "
        "(it holds .rexjax-run.lock); wait for it to finish or use another out folder"], p.stderr
    assert sorted(f.name for f in out.iterdir()) == [".rexjax-run.lock"]
