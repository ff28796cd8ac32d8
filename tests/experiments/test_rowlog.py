"""The row log line by line: which lines count as rows (whole, checksum, cells, the caller's
type check) and what reopening a file does to a cut one. `test_resume.py` holds the same
properties end to end."""

import zlib

import pytest

from rexjax.studies import rowlog, runner

COLUMNS = ["image", "method", "area", "note"]
ROW = {"image": "a.png", "method": "rise", "area": 0.25, "note": 'say "hi", twice'}


def written(tmp_path, *rows):
    log = rowlog.RowLog(tmp_path / "r.csv", COLUMNS)
    log.append(rows)
    return log.path


def test_rows_round_trip_with_a_checksum_cell(tmp_path):
    """Quotes and commas inside a value survive; the file's header ends in CHECK and every
    line in 8 hex digits. Catches a checksum computed over other text than the one written."""
    path = written(tmp_path, ROW, {**ROW, "image": "b.png", "note": None})
    assert path.read_text().splitlines()[0] == "image,method,area,note,row_crc32"
    reading = rowlog.read_valid(path, COLUMNS)
    assert reading.bad == [] and [r["image"] for r in reading.rows] == ["a.png", "b.png"]
    assert reading.rows[0]["note"] == 'say "hi", twice' and reading.rows[1]["note"] == ""
    assert rowlog.read_rows(path) == reading.rows


def test_a_changed_value_fails_its_checksum(tmp_path):
    """One digit of a number changed (still a number): the line is bad, not a row with
    another value. Catches a reader that trusts any line whose cells parse."""
    path = written(tmp_path, ROW)
    path.write_text(path.read_text().replace("0.25", "0.35"))
    assert rowlog.read_valid(path, COLUMNS) == ([], [(2, "checksum does not match (cut or damaged)")])


def test_bad_lines_are_named_with_their_reason(tmp_path):
    """A line cut in the middle that got a newline, an empty line, bytes that are not UTF-8,
    a line with a cell too many (its checksum recomputed), a last line without a newline:
    each is one bad line (number and reason), and the good line between them is kept."""
    path = written(tmp_path, ROW, {**ROW, "image": "b.png"})
    header, first, second = path.read_bytes().split(b"\n")[:3]
    body = first.rpartition(b",")[0] + b",extra"
    extra = body + b"," + f"{zlib.crc32(body):08x}".encode()  # a checksum that holds
    path.write_bytes(b"\n".join([header, first[:20], b"", b"\xff\xfe" + first, extra, second, first[:30]]))
    reading = rowlog.read_valid(path, COLUMNS)
    assert [r["image"] for r in reading.rows] == ["b.png"]
    damaged = "checksum does not match (cut or damaged)"
    assert reading.bad == [(2, damaged), (3, damaged), (4, "not UTF-8"), (5, "5 cells, 4 expected"),
                           (7, "cut short (no newline)")]


def test_the_callers_check_drops_a_row_with_a_good_checksum(tmp_path):
    """A row written whole whose cell is not of its type (the runner's `check_row`: target
    not an integer) is bad, with the column named. Catches the type check not applied."""
    columns = ["image", "target", "area"]
    log = rowlog.RowLog(tmp_path / "r.csv", columns)
    log.append([{"image": "a.png", "target": "x", "area": 0.5}, {"image": "b.png", "target": 3, "area": "nan"}])
    reading = rowlog.read_valid(log.path, columns, runner.check_row)
    assert [r["image"] for r in reading.rows] == ["b.png"] and reading.bad == [(2, "target 'x' does not parse")]


def test_reopening_drops_a_cut_line_and_restores_a_cut_header(tmp_path):
    """Reopening a log cut in its last row truncates that row so the next append starts on a
    line of its own; a file cut inside its header gets its header back. Catches an append
    glued to a cut line and a headerless file."""
    path = written(tmp_path, ROW)
    path.write_bytes(path.read_bytes()[:-5])
    rowlog.RowLog(path, COLUMNS).append([{**ROW, "image": "c.png"}])
    assert [r["image"] for r in rowlog.read_rows(path)] == ["c.png"]
    path.write_bytes(path.read_bytes()[:10])
    rowlog.RowLog(path, COLUMNS).append([ROW])
    assert rowlog.read_valid(path, COLUMNS) == ([{k: str(v) for k, v in ROW.items()}], [])


def test_another_header_and_line_breaks_are_refused(tmp_path):
    """A file with other columns is another study's (ValueError naming it); a value with a
    line break is refused before anything is written (a row must be one line)."""
    path = written(tmp_path, ROW)
    with pytest.raises(ValueError, match="holds other columns"):
        rowlog.RowLog(path, COLUMNS + ["more"])
    with pytest.raises(ValueError, match=r"columns \['note'\] hold a line break"):
        rowlog.RowLog(path, COLUMNS).append([ROW, {**ROW, "note": "two\nlines"}])
    assert len(rowlog.read_rows(path)) == 1


def test_merge_keeps_the_first_good_row_of_each_key(tmp_path):
    """Merging a file and a part: bad lines dropped, each key once (the first good one), the
    rows `keep` rejects dropped, sorted, the part deleted, the result a valid log."""
    a = written(tmp_path, {**ROW, "image": "b.png"}, ROW)
    part = rowlog.RowLog(tmp_path / "p.csv", COLUMNS)
    part.append([{**ROW, "area": 0.5}, {**ROW, "image": "c.png"}, {**ROW, "image": "gone.png"}])
    with open(part.path, "a") as f:
        f.write("damaged,line\n")
    merged = rowlog.merge(a, [part.path], COLUMNS, ("image", "method"), lambda r: r["image"],
                          keep=lambda r: r["image"] != "gone.png")
    assert [(r["image"], r["area"]) for r in merged] == [("a.png", "0.25"), ("b.png", "0.25"), ("c.png", "0.25")]
    assert not part.path.exists() and rowlog.read_valid(a, COLUMNS) == (merged, [])
