"""CSVs of result rows that survive being killed, damaged or appended to twice: each row is
one line that ends in the CRC-32 of its other cells, appended (one write, flushed and
fsynced) as it finishes; a reader keeps a line only when it is whole, its checksum holds and
the caller's `check` accepts it, so a row cut by a kill, a damaged byte or a stray line is
dropped (and its row computed again), never counted as done; the files of several writers
merge into one.

    log = RowLog(path, columns)          opens the file (a cut last line removed) or creates it
    log.append(rows)                     rows (mappings over `columns`; None -> empty cell), one write
    read_valid(path, columns, check)     Reading(rows, bad): the good rows, (line number, why) of the others
    read_rows(path)                      the good rows of a file, as dicts of strings (no CHECK cell)
    merge(path, parts, columns, key, order, check, keep)
                                         path := the good rows of path and parts that `keep` keeps,
                                         each key once, sorted by `order(row)` (atomic replace);
                                         parts deleted

A file's header is `columns` + [CHECK]; another header is a ValueError (a different study or
version in the same folder). A value holding a line break is refused when written (a row is
one line). `check(row) -> None | reason` is the caller's test of the cells' types.
"""

from __future__ import annotations

import csv
import io
import os
import zlib
from pathlib import Path
from typing import Callable, Iterable, Mapping, NamedTuple, Optional, Sequence

CHECK = "row_crc32"  # the last column: CRC-32 of the line before its last comma, 8 hex digits

Check = Callable[[Mapping[str, str]], Optional[str]]


class Reading(NamedTuple):
    """A file's good rows (dicts over its columns, CHECK left out) and its bad lines as
    (line number, reason)."""

    rows: list[dict[str, str]]
    bad: list[tuple[int, str]]


def _csv(values: Iterable) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def _crc(body: str) -> str:
    return f"{zlib.crc32(body.encode()):08x}"


def _row_line(row: Mapping, columns: Sequence[str]) -> str:
    cells = ["" if row[c] is None else str(row[c]) for c in columns]
    broken = [c for c, v in zip(columns, cells) if "\n" in v or "\r" in v]
    if broken:
        raise ValueError(f"columns {broken} hold a line break; a row must be one line")
    body = _csv(cells)
    return f"{body},{_crc(body)}\n"


def _header_line(columns: Sequence[str]) -> str:
    return _csv([*columns, CHECK]) + "\n"


def _first_line(path: Path) -> Optional[str]:
    """The file's first line if it is whole (ends in a newline), else None."""
    with open(path, "rb") as f:
        line = f.readline()
    return line.decode("utf-8", "replace") if line.endswith(b"\n") else None


def _check_header(path: Path, header: Optional[str], columns: Sequence[str]) -> None:
    if header is not None and header != _header_line(columns):
        raise ValueError(f"{str(path)!r} holds other columns ({header.strip()}); use another out folder")


def _parse(line: bytes, columns: Sequence[str], check: Optional[Check]) -> tuple[Optional[dict], str]:
    """(row, "") for a good line, (None, reason) otherwise."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    body, comma, crc = text.rpartition(",")
    if not comma or crc != _crc(body):
        return None, "checksum does not match (cut or damaged)"
    cells = next(csv.reader([body]), [])
    if len(cells) != len(columns):
        return None, f"{len(cells)} cells, {len(columns)} expected"
    row = dict(zip(columns, cells))
    reason = check(row) if check is not None else None
    return (None, reason) if reason else (row, "")


def read_valid(path: str | os.PathLike, columns: Sequence[str], check: Optional[Check] = None) -> Reading:
    """The good rows of `path` and its bad lines (module doc); an empty Reading when there is
    no such file. ValueError when its header is not `columns` + [CHECK]."""
    path = Path(path)
    if not path.exists():
        return Reading([], [])
    lines = path.read_bytes().split(b"\n")
    header = lines[0].decode("utf-8", "replace") + "\n" if len(lines) > 1 else None
    _check_header(path, header, columns)
    rows, bad = [], []
    for number, line in enumerate(lines[1:], start=2):
        if number == len(lines):  # after the last newline: nothing, or a line a writer never finished
            if line:
                bad.append((number, "cut short (no newline)"))
            continue
        row, reason = _parse(line, columns, check)
        if row is None:
            bad.append((number, reason))
        else:
            rows.append(row)
    return Reading(rows, bad)


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The good rows of a row log (columns from its header), as dicts of strings; a CSV
    without the CHECK column (written before rows carried one) is read as plain CSV, whole
    lines only."""
    path = Path(path)
    header = _first_line(path)
    columns = next(csv.reader([header.rstrip("\n")]), []) if header else []
    if columns[-1:] == [CHECK]:
        return read_valid(path, columns[:-1]).rows
    text = path.read_text()
    return list(csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1])))


class RowLog:
    """Appends rows to `path` (module doc)."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)
        if self.path.exists() and self.path.stat().st_size > 0:
            raw = self.path.read_bytes()
            if not raw.endswith(b"\n"):  # a row cut by a kill: drop it
                with open(self.path, "r+b") as f:
                    f.truncate(raw.rfind(b"\n") + 1)
            header = _first_line(self.path) if self.path.stat().st_size else None
            _check_header(self.path, header, self.columns)
            if header is not None:
                return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(_header_line(self.columns))

    def append(self, rows: Iterable[Mapping]) -> None:
        """Writes `rows` in one write (a missing column or a line break in a value is an
        error, and nothing is written)."""
        text = "".join(_row_line(r, self.columns) for r in rows)
        with open(self.path, "a", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def merge(path: str | os.PathLike, parts: Sequence[str | os.PathLike], columns: Sequence[str], key: Sequence[str],
          order: Callable[[Mapping[str, str]], tuple], check: Optional[Check] = None,
          keep: Optional[Callable[[Mapping[str, str]], bool]] = None) -> list[dict[str, str]]:
    """Rewrites `path` (atomically) with the good rows of `path` and of `parts` that `keep`
    keeps (all when None), the first row of each key, sorted by `order`; deletes the parts;
    returns the rows."""
    path = Path(path)
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    for f in [path, *map(Path, parts)]:
        for r in read_valid(f, columns, check).rows:
            if keep is None or keep(r):
                rows.setdefault(tuple(r[k] for k in key), r)
    ordered = sorted(rows.values(), key=order)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(_header_line(columns) + "".join(_row_line(r, columns) for r in ordered))
    os.replace(tmp, path)
    for f in parts:
        if Path(f) != path:
            Path(f).unlink(missing_ok=True)
    return ordered
