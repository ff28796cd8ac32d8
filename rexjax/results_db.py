"""A SQLite database of explanations (`rexjax explain --db results.db`), the ReX tool's
`--database` in our terms: one row per explanation, appended, never rewritten.

    db = ResultsDB(path)                        # opens, creates the table, or refuses the file
    db.append(row)                              # one row: a dict with every column of COLUMNS
    rows = explanation_rows(ex, image=..., ...) # the rows of one `Explanation` (primary, parts)

Table `explanations`, schema version SCHEMA_VERSION (kept in SQLite's `PRAGMA user_version`).
The columns (`COLUMNS`, in order after `id INTEGER PRIMARY KEY`):

    uid                   random hex id of the row (UNIQUE: a retried insert is never doubled)
    timestamp             UTC, ISO 8601 to the microsecond, when the row was made
    image, image_sha256   the input file's path as given (`io.display_name`) and its content's SHA-256
    mode                  what the file is (`rexjax explain --mode`): image, spectral, tabular or voxel
    model, model_sha256   the --model value; SHA-256 of the model file (ONNX), of the zoo model's
                          weights file, or NULL when there is no file (random init, a factory)
    part                  NULL: the primary explanation (`mask` in the .npz); i: the i-th of
                          --multiple's explanations (`multiple_masks[i]`)
    target, label         the explained class and its name
    full_confidence       the target's probability on the whole image
    explanation_confidence, area, sufficient
                          on the explanation alone: the target's probability, the fraction of
                          pixels, whether the target is still the decision (`Explanation.stats`,
                          `ExplanationPart.stats`: the numbers the JSON line prints)
    forward_images        the image's total (primary row) or the part's own (part rows)
    wall_time_s, time_map_s, time_extract_s   the explanation's times (`stats`), every row
    config                the RexConfig as JSON (`to_dict`, keys sorted)
    mask_mode, seed, batch_size    the call's settings (mask_mode as text, e.g. "0.0", "ad")
    rexjax_version, rexjax_commit  `provenance.versions()["rexjax"]`, `code_state().code_id`
                          (`<commit>` or `<commit>+dirty`; NULL outside a git checkout)
    npz, png, composite_png, map_npy, mask_npy
                          the files written beside the row's explanation, relative to the
                          database's folder (`../out/x.npz` when outside it): an image's npz and
                          png (composite_png NULL without --multiple), an array's (--mode
                          spectral, tabular, voxel) map_npy, mask_npy and png; NULL where not written
    executor              what ran the model's forward passes: "xla" (a zoo model, a compiled ONNX
                          graph) or "onnxruntime" (--onnx_runtime); NULL in rows written before
                          schema version 3

Concurrency: many processes may append to one file. SQLite's default rollback journal is
kept (the file format is unchanged, no -wal/-shm files; it works wherever SQLite's locks
do, not on network file systems that lack them); every row is one `BEGIN IMMEDIATE`
transaction with a busy timeout, and a busy or locked database is retried for up to RETRY_S
seconds before the row fails with one line.

Upgrade: a version-2 database (written by an earlier rexjax) gains the `executor` column
(ALTER TABLE, its rows keep NULL there) and version 3 in one transaction, re-checked inside
it so that writers opening it at once upgrade it once; its rows are never rewritten.

Refusals (ValueError, one line naming the file; the file is not written): not a regular
file, a non-empty file that is not SQLite, an `explanations` table with other columns, or a
database of another schema version (any but 2 and 3).
"""

from __future__ import annotations

import datetime
import json
import os
import random
import sqlite3
import stat
import time
import uuid
from typing import Any, Iterable, Optional

from rexjax import provenance
from rexjax.io import display_name

TABLE = "explanations"
SCHEMA_VERSION = 3  # 2: mode, map_npy, mask_npy; npz may be NULL (arrays). 3: executor
HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 database file
BUSY_TIMEOUT_S = 5.0  # SQLite's own wait for a lock, per attempt
RETRY_S = 120.0  # total time a row keeps retrying a busy database

COLUMNS: tuple[tuple[str, str], ...] = (
    ("uid", "TEXT NOT NULL UNIQUE"),
    ("timestamp", "TEXT NOT NULL"),
    ("image", "TEXT NOT NULL"),
    ("image_sha256", "TEXT NOT NULL"),
    ("mode", "TEXT NOT NULL"),
    ("model", "TEXT NOT NULL"),
    ("model_sha256", "TEXT"),
    ("part", "INTEGER"),
    ("target", "INTEGER NOT NULL"),
    ("label", "TEXT"),
    ("full_confidence", "REAL NOT NULL"),
    ("explanation_confidence", "REAL NOT NULL"),
    ("area", "REAL NOT NULL"),
    ("sufficient", "INTEGER NOT NULL"),
    ("forward_images", "INTEGER NOT NULL"),
    ("wall_time_s", "REAL NOT NULL"),
    ("time_map_s", "REAL NOT NULL"),
    ("time_extract_s", "REAL NOT NULL"),
    ("config", "TEXT NOT NULL"),
    ("mask_mode", "TEXT NOT NULL"),
    ("seed", "INTEGER NOT NULL"),
    ("batch_size", "INTEGER NOT NULL"),
    ("rexjax_version", "TEXT"),
    ("rexjax_commit", "TEXT"),
    ("npz", "TEXT"),
    ("png", "TEXT NOT NULL"),
    ("composite_png", "TEXT"),
    ("map_npy", "TEXT"),
    ("mask_npy", "TEXT"),
    ("executor", "TEXT"),  # last: ALTER TABLE ADD COLUMN appends it to a version-2 table
)
UPGRADE_FROM = 2  # a table of this version (every column but the last) gains the last in place
UPGRADE = f"ALTER TABLE {TABLE} ADD COLUMN executor TEXT"
FILES = ("npz", "png", "composite_png", "map_npy", "mask_npy")  # the columns naming written files
NAMES = tuple(name for name, _ in COLUMNS)
CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
          + ", ".join(f"{name} {kind}" for name, kind in COLUMNS) + ")")
INSERT = f"INSERT OR IGNORE INTO {TABLE} ({', '.join(NAMES)}) VALUES ({', '.join('?' * len(NAMES))})"


def _upgradable(columns: list[str], version: int) -> bool:
    """A version-2 table as an earlier rexjax wrote it (UPGRADE makes it the current one)."""
    return version == UPGRADE_FROM and columns == ["id", *NAMES[:-1]]


def _busy(err: sqlite3.Error) -> bool:
    return getattr(err, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or \
        "locked" in str(err) or "busy" in str(err)


class ResultsDB:
    """The database file `path` (see module doc), opened or created; ValueError naming the
    file when it cannot be used. Use as a context manager or call `close()`."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.folder = os.path.dirname(os.path.abspath(self.path))
        self._shown = display_name(self.path)
        self._check_file()
        try:
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as e:
            raise self._error(f"cannot open it ({e})") from e
        try:
            self._check_or_create()
        except BaseException:
            self._conn.close()
            raise

    def _error(self, problem: str) -> ValueError:
        return ValueError(f"results database {self._shown!r}: {problem}")

    def _check_file(self) -> None:
        """A missing file is created by SQLite; an existing one must be a regular file that is
        empty or starts with SQLite's header (read here, never written)."""
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            return
        except OSError as e:
            raise self._error(f"cannot be read ({e.strerror or e})") from e
        if not stat.S_ISREG(mode):
            raise self._error("is not a regular file")
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(HEADER))
        except OSError as e:
            raise self._error(f"cannot be read ({e.strerror or e})") from e
        if head and head != HEADER:
            raise self._error("is not a SQLite database (give a new file name or an earlier --db file)")

    def _columns(self) -> list[str]:
        return [row[1] for row in self._conn.execute(f"PRAGMA table_info({TABLE})")]

    def _state(self) -> tuple[list[str], int]:
        """(the table's column names, PRAGMA user_version)."""
        return self._columns(), self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _check_or_create(self) -> None:
        try:
            columns, version = self._state()
            if not columns:
                if version not in (0, SCHEMA_VERSION):
                    raise self._error(f"has user_version {version}, not a rexjax results database")
                def create():
                    self._conn.execute(CREATE)
                    self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

                self._in_transaction(create)
                columns, version = self._state()
            if _upgradable(columns, version):  # looked at outside the lock, checked again inside it
                self._in_transaction(self._upgrade)
                columns, version = self._state()
        except sqlite3.Error as e:
            raise self._error(f"is not a usable SQLite database ({e})") from e
        if columns != ["id", *NAMES]:
            raise self._error(f"has a table {TABLE!r} with other columns ({', '.join(columns)}); "
                              f"rexjax writes schema version {SCHEMA_VERSION}: give another --db file")
        if version != SCHEMA_VERSION:
            raise self._error(f"has schema version {version}; this rexjax writes version {SCHEMA_VERSION}")

    def _upgrade(self) -> None:
        """Inside a transaction: a version-2 table gains the executor column and version 3,
        unless another writer did so since this one looked (then nothing)."""
        if _upgradable(*self._state()):
            self._conn.execute(UPGRADE)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _in_transaction(self, work) -> None:
        """`work()` inside BEGIN IMMEDIATE ... COMMIT, retried while the database is busy (up
        to RETRY_S seconds, with a random pause between tries)."""
        deadline = time.monotonic() + RETRY_S
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    work()
                    self._conn.execute("COMMIT")
                    return
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as e:
                if not _busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.005, 0.05))

    def append(self, row: dict[str, Any]) -> None:
        """Appends one row (every column of COLUMNS, no other key) in its own transaction."""
        if set(row) != set(NAMES):
            raise ValueError(f"a results row needs exactly the columns of results_db.COLUMNS; missing "
                             f"{sorted(set(NAMES) - set(row))}, unknown {sorted(set(row) - set(NAMES))}")
        values = [row[name] for name in NAMES]
        try:
            self._in_transaction(lambda: self._conn.execute(INSERT, values))
        except sqlite3.Error as e:
            raise self._error(f"cannot append a row ({e})") from e

    def relative(self, path: str | os.PathLike) -> str:
        """`path` relative to the database's folder (as the rows name files)."""
        return display_name(os.path.relpath(os.path.abspath(path), self.folder))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def explanation_rows(ex, *, image: str, image_sha256: str, model: str, model_sha256: Optional[str], seed: int,
                     files: dict[str, Optional[str]], executor: str, mode: str = "image") -> list[dict[str, Any]]:
    """The rows of one `Explanation` `ex`: the primary explanation (part NULL), then one per
    --multiple part (part i = `multiple_masks[i]`). `files` maps some of FILES to the names the
    rows hold (the others: NULL, not written); `executor` is what ran the forward passes
    ("xla" or "onnxruntime"); `mode` is the input's kind. Numbers are those of `ex.stats()` and
    each part's `stats()`."""
    unknown = set(files) - set(FILES)
    if unknown:
        raise ValueError(f"files: unknown file columns {sorted(unknown)}; expected some of {FILES}")
    stats = ex.stats()
    state = provenance.code_state()
    common = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"),
        "image": display_name(image), "image_sha256": image_sha256, "mode": mode, "model": display_name(model),
        "model_sha256": model_sha256, "target": stats["target"], "label": stats["label"],
        "full_confidence": stats["full_confidence"], "wall_time_s": stats["wall_time_s"],
        "time_map_s": stats["time_map_s"], "time_extract_s": stats["time_extract_s"],
        "config": json.dumps(ex.config.to_dict(), sort_keys=True), "mask_mode": str(ex.mask_mode), "seed": seed,
        "batch_size": stats["batch_size"], "rexjax_version": provenance.versions()["rexjax"],
        "rexjax_commit": state.code_id or None, "executor": executor, **{name: files.get(name) for name in FILES},
    }
    primary = {"part": None, "explanation_confidence": stats["explanation_confidence"], "area": stats["area"],
               "sufficient": int(stats["sufficient"]), "forward_images": stats["forward_images"]}
    parts: Iterable = ex.multiple.parts if ex.multiple is not None else ()
    rows = [primary] + [{"part": i, "explanation_confidence": p["confidence"], "area": p["area"],
                         "sufficient": int(p["sufficient"]), "forward_images": p["forward_images"]}
                        for i, p in enumerate(part.stats() for part in parts)]
    return [{"uid": uuid.uuid4().hex, **common, **row} for row in rows]
