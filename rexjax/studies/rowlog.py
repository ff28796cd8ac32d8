"""A CSV of result rows that survives being killed: rows are appended (one write, flushed
and fsynced) as they finish, and reopening it tells which rows are done.

    log = RowLog(path, columns, key=("image_index", "model", "method"))
    log.done                      {key tuple of strings}: rows already on disk
    log.append(row)               one row (a mapping over `columns`; None -> empty cell)
    log.finalise(order)           rewrites the file sorted by `order(row)` (atomic replace)
    read_rows(path)               [dict of strings]

A file whose header differs from `columns` is a ValueError (a different study or version
in the same folder); a last line cut by a kill (no final newline) is dropped on reopening,
so that row is simply computed again.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _line(values: Iterable) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


class RowLog:
    """Appends rows to `path` and knows the keys of the rows already there (module doc)."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], key: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)
        self.key = tuple(key)
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"key columns {missing} are not among the columns")
        self._lock = threading.Lock()
        self.done: set[tuple[str, ...]] = set()
        if self.path.exists() and self.path.stat().st_size > 0:
            self._reopen()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(_line(self.columns))

    def _reopen(self) -> None:
        raw = self.path.read_bytes()
        if not raw.endswith(b"\n"):  # a row cut by a kill: drop it
            cut = raw.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)
        with open(self.path, newline="") as f:
            header = next(csv.reader(f), None)
        if header != self.columns:
            raise ValueError(f"{str(self.path)!r} holds other columns ({header}); use another out folder")
        self.done = {self.key_of(r) for r in read_rows(self.path)}

    def key_of(self, row: Mapping) -> tuple[str, ...]:
        """The row's key as strings (as read back from the file)."""
        return tuple("" if row[k] is None else str(row[k]) for k in self.key)

    def append(self, row: Mapping) -> None:
        """Writes one row (missing columns are an error) and records its key; thread-safe."""
        line = _line(row[c] for c in self.columns)
        with self._lock:
            with open(self.path, "a", newline="") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self.done.add(self.key_of(row))

    def finalise(self, order: Callable[[Mapping[str, str]], tuple]) -> list[dict[str, str]]:
        """Rewrites the file with its rows sorted by `order` (atomically); returns them."""
        with self._lock:
            rows = sorted(read_rows(self.path), key=order)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(_line(self.columns) + "".join(_line(r[c] for c in self.columns) for r in rows))
            os.replace(tmp, self.path)
        return rows
