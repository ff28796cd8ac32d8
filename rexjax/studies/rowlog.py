"""CSVs of result rows that survive being killed: rows are appended (one write, flushed and
fsynced) as they finish, reopening a file tells which rows are done, and the files of
several writers merge into one.

    log = RowLog(path, columns, key=("image", "model", "method"))
    log.done                      {key tuple of strings}: rows already on disk
    log.append(rows)              rows (mappings over `columns`; None -> empty cell), one write
    read_rows(path)               [dict of strings]
    read_keys(path, columns, key) {key tuple}: the rows of a file another writer may be appending to
    merge(path, parts, columns, key, order)   path := the rows of path and parts, each key
                                  once, sorted by `order(row)` (atomic replace); parts deleted

A file whose header differs from `columns` is a ValueError (a different study or version
in the same folder); a last line cut by a kill (no final newline) is never read as a row
(reopening a log drops it), so that row is simply computed again.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence


def _whole_lines(path: str | os.PathLike) -> str:
    """The file's text up to its last newline (a line cut by a kill is not a row)."""
    text = Path(path).read_text()
    return text[: text.rfind("\n") + 1]


def _header(text: str) -> list[str] | None:
    return next(csv.reader(io.StringIO(text)), None)


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, as dicts of strings (a cut last line dropped)."""
    return list(csv.DictReader(io.StringIO(_whole_lines(path))))


def _checked_rows(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    text = _whole_lines(path)
    header = _header(text)
    if header is not None and header != list(columns):
        raise ValueError(f"{str(path)!r} holds other columns ({header}); use another out folder")
    return list(csv.DictReader(io.StringIO(text)))


def _key_of(row: Mapping, key: Sequence[str]) -> tuple[str, ...]:
    return tuple("" if row[k] is None else str(row[k]) for k in key)


def read_keys(path: str | os.PathLike, columns: Sequence[str], key: Sequence[str]) -> set[tuple[str, ...]]:
    """The keys of the rows in `path` (empty when there is no such file); ValueError when its
    header is not `columns`."""
    path = Path(path)
    if not path.exists():
        return set()
    return {_key_of(r, key) for r in _checked_rows(path, columns)}


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
        self.done: set[tuple[str, ...]] = set()
        if self.path.exists() and self.path.stat().st_size > 0:
            self._reopen()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(_line(self.columns))

    def _reopen(self) -> None:
        raw = self.path.read_bytes()
        if not raw.endswith(b"\n"):  # a row cut by a kill: drop it
            with open(self.path, "r+b") as f:
                f.truncate(raw.rfind(b"\n") + 1)
        self.done = read_keys(self.path, self.columns, self.key)

    def append(self, rows: Iterable[Mapping]) -> None:
        """Writes `rows` in one write (missing columns are an error) and records their keys."""
        rows = list(rows)
        text = "".join(_line(r[c] for c in self.columns) for r in rows)
        with open(self.path, "a", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self.done.update(_key_of(r, self.key) for r in rows)


def merge(path: str | os.PathLike, parts: Sequence[str | os.PathLike], columns: Sequence[str], key: Sequence[str],
          order: Callable[[Mapping[str, str]], tuple]) -> list[dict[str, str]]:
    """Rewrites `path` (atomically) with the rows of `path` and of `parts`, the first row of
    each key kept, sorted by `order`; deletes the parts; returns the rows."""
    path = Path(path)
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    for f in [path, *map(Path, parts)]:
        if f.exists():
            for r in _checked_rows(f, columns):
                rows.setdefault(_key_of(r, key), r)
    ordered = sorted(rows.values(), key=order)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_line(columns) + "".join(_line(r[c] for c in columns) for r in ordered))
    os.replace(tmp, path)
    for f in parts:
        if Path(f) != path:
            Path(f).unlink(missing_ok=True)
    return ordered
