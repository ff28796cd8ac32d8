"""`rexjax.results_db`: concurrent writers lose no row and double none; files that are not
ours are refused with one line and left byte for byte as they were; the rows of a real
explanation match its stats and files (the CLI end of `--db` is in test_model_file.py)."""

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

from rexjax import results_db
from tests.commands.test_cli_errors import ROOT

WRITER = """
import os, sys, time
from rexjax import results_db
path, writer, go = sys.argv[1], sys.argv[2], sys.argv[3]
db = results_db.ResultsDB(path)
open(go + "." + writer, "w").close()
while not all(os.path.exists(go + "." + w) for w in ("a", "b", "c")):
    time.sleep(0.005)
for i in range(50):
    db.append(dict({name: None for name in results_db.NAMES}, uid=f"{writer}-{i}", timestamp="t",
                   image=f"{writer}/{i}.png", image_sha256="x", model="m", target=i, full_confidence=0.5,
                   explanation_confidence=0.5, area=0.1, sufficient=1, forward_images=1, wall_time_s=0.0,
                   time_map_s=0.0, time_extract_s=0.0, config="{}", mask_mode="0.0", seed=0, batch_size=1,
                   npz="a.npz", png="a.png", mode="image"))
"""


def _row(names, **fields) -> dict:
    """A row with the columns `names`: the required ones filled with placeholders, `fields`
    over them, the rest NULL."""
    return dict({name: None for name in names}, timestamp="t", image_sha256="x", model="m", full_confidence=0.5,
                explanation_confidence=0.5, area=0.1, sufficient=1, forward_images=1, wall_time_s=0.0,
                time_map_s=0.0, time_extract_s=0.0, config="{}", mask_mode="0.0", seed=0, batch_size=1,
                png="a.png", mode="image", **fields)


def _version_2(path, rows: int = 0) -> None:
    """A database as rexjax wrote it at schema version 2 (no executor column), with `rows` rows."""
    v2 = [(name, kind) for name, kind in results_db.COLUMNS if name != "executor"]
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE explanations (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     + ", ".join(f"{name} {kind}" for name, kind in v2) + ")")
        for i in range(rows):
            row = _row([name for name, _ in v2], uid=f"old-{i}", image=f"old/{i}.png", target=i)
            conn.execute(f"INSERT INTO explanations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         list(row.values()))
        conn.execute("PRAGMA user_version = 2")
    conn.close()


@pytest.mark.parametrize("start", ["new", "version-2"])
def test_three_writers_append_150_rows_none_lost_or_doubled(tmp_path, start):
    """Three processes open the same file at once (each may create the table, or upgrade a
    version-2 one) and append 50 rows each at the same moment. Catches writes without a busy
    timeout and retry (a writer dies with 'database is locked' and its rows are missing), and
    old rows lost or reordered by the upgrade."""
    path, go = tmp_path / "r.db", tmp_path / "go"
    if start == "version-2":
        _version_2(path, rows=2)
    env = {**os.environ, "PYTHONPATH": ROOT}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), w, str(go)], env=env, stderr=subprocess.PIPE)
             for w in ("a", "b", "c")]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    with sqlite3.connect(path) as conn:
        images = [r[0] for r in conn.execute("SELECT image FROM explanations ORDER BY id")]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == results_db.SCHEMA_VERSION
    old = ["old/0.png", "old/1.png"] if start == "version-2" else []
    assert images[:len(old)] == old
    assert sorted(images[len(old):]) == sorted(f"{w}/{i}.png" for w in "abc" for i in range(50))
    for w in "abc":  # each writer's rows in its own order
        assert [im for im in images if im.startswith(w)] == [f"{w}/{i}.png" for i in range(50)]


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _refusal(path) -> str:
    with pytest.raises(ValueError) as err:
        results_db.ResultsDB(path)
    message = str(err.value)
    assert "\n" not in message and repr(str(path)) in message, message
    return message


def test_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path):
    """Catches handing any file to sqlite3 (which would then fail later, or write a journal)."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"not a database\n" * 100)
    before = _digest(path)
    assert "is not a SQLite database" in _refusal(path)
    assert _digest(path) == before and sorted(os.listdir(tmp_path)) == ["notes.db"]
    (tmp_path / "dir.db").mkdir()
    assert "is not a regular file" in _refusal(tmp_path / "dir.db")


def test_another_schema_is_refused_unchanged(tmp_path):
    """A table `explanations` with other columns, and our table at another schema version:
    refused, the file untouched. Catches CREATE TABLE IF NOT EXISTS taken as success (rows
    would then fail, or land in someone else's table)."""
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE explanations (id INTEGER PRIMARY KEY, path TEXT, score REAL)")
        conn.execute("INSERT INTO explanations (path, score) VALUES ('a.png', 0.5)")
    conn.close()
    before = _digest(other)
    assert "has a table 'explanations' with other columns (id, path, score)" in _refusal(other)
    assert _digest(other) == before

    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute(results_db.CREATE)
        conn.execute(f"PRAGMA user_version = {results_db.SCHEMA_VERSION + 1}")
    conn.close()
    before = _digest(newer)
    assert f"has schema version {results_db.SCHEMA_VERSION + 1}" in _refusal(newer)
    assert _digest(newer) == before


def test_a_version_2_database_gains_the_executor_column_and_keeps_its_rows(tmp_path):
    """A database of the previous schema (no executor column) is upgraded in place: its rows
    kept byte for byte with executor NULL, new rows name their executor, version 3 after.
    Catches refusing the earlier --db files, rewriting old rows, the version not bumped (the
    next open would try the upgrade again and fail on the duplicate column), and an upgrade
    not re-checked inside its transaction (a writer that looked before another's upgrade
    committed would add the column twice)."""
    path = tmp_path / "r.db"
    _version_2(path, rows=3)
    with sqlite3.connect(path) as conn:
        before = conn.execute("SELECT * FROM explanations ORDER BY id").fetchall()
    conn.close()
    with results_db.ResultsDB(path) as db:
        db.append(_row(results_db.NAMES, uid="new", image="new.png", target=0, executor="onnxruntime"))
    with results_db.ResultsDB(path) as db:  # opened again: already version 3, nothing to do
        db._in_transaction(db._upgrade)  # a writer that saw version 2 before the first upgrade committed
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM explanations ORDER BY id").fetchall()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == results_db.SCHEMA_VERSION == 3
    conn.close()
    assert [tuple(r)[:-1] for r in rows[:3]] == before and [r["executor"] for r in rows] == [None] * 3 + ["onnxruntime"]
    assert list(rows[0].keys()) == ["id", *results_db.NAMES]


def test_a_row_must_have_every_column(tmp_path):
    with results_db.ResultsDB(tmp_path / "r.db") as db:
        with pytest.raises(ValueError, match=r"missing \['uid'\], unknown \['extra'\]"):
            db.append({**{name: None for name in results_db.NAMES if name != "uid"}, "extra": 1})
        assert db.relative(tmp_path / "out" / "a.npz") == os.path.join("out", "a.npz")
        assert db.relative(tmp_path.parent / "b.png") == os.path.join("..", "b.png")
