"""The weights reader parses zips itself (`pth._directory`), not with `zipfile`; here zipfile is
the oracle. Every archive torch wrote for the zoo fixtures, and archives Python's zipfile writes
in each of its layouts (stored, deflated, streamed with data descriptors, a 64 KiB comment,
UTF-8 names, zip64 end records and extra fields), give the records zipfile reads, and load the
weights they hold."""

import glob
import os
import zipfile

import numpy as np
import pytest

from rexjax.models.convert import pth
from tests.security import mutations

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TORCH_ZIPS = sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*_zip.pth"), recursive=True))
LAYOUTS = ["stored", "deflated", "streamed", "comment_64k", "utf8_names", "zip64"]


def _records(path) -> list[tuple]:
    """(name, flags, method, CRC, compressed, size, header offset) of each record, by zipfile."""
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, i.flag_bits, i.compress_type, i.CRC, i.compress_size, i.file_size, i.header_offset)
                for i in zf.infolist()]


def _parsed(path) -> list[tuple]:
    with open(path, "rb") as f:
        members = pth._directory(f, os.path.getsize(path))
    return [(m.name, m.flags, m.method, m.crc, m.compressed, m.size, m.offset) for m in members]


class _Unseekable:
    """A file zipfile cannot seek in: it writes each member's sizes in a data descriptor."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        return self.f.write(data)

    def flush(self):
        self.f.flush()

    def tell(self):
        return self.f.tell()

    def seek(self, *_):
        raise OSError("not seekable")


def _write(path, layout: str, monkeypatch) -> None:
    """The mutation module's valid state_dict as a zip in `layout`."""
    root = "données/" if layout == "utf8_names" else "archive/"
    members = {f"{root}data.pkl": mutations.state_dict_pickle(), f"{root}byteorder": b"little"}
    members.update({f"{root}data/{k}": a.tobytes() for k, (_, a) in mutations.STORAGES.items()})
    if layout == "zip64":  # zipfile writes zip64 records past these limits: lowered, every record has them
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 8)
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    method = zipfile.ZIP_DEFLATED if layout in ("deflated", "streamed") else zipfile.ZIP_STORED
    with open(path, "wb") as out:
        with zipfile.ZipFile(_Unseekable(out) if layout == "streamed" else out, "w", compression=method) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
            if layout == "comment_64k":
                zf.comment = b"c" * 0xFFFF


@pytest.mark.parametrize("layout", LAYOUTS)
def test_python_zip_layouts_parse_as_zipfile_reads_them(tmp_path, monkeypatch, layout):
    path = tmp_path / f"{layout}.pth"
    _write(path, layout, monkeypatch)
    monkeypatch.undo()
    records = _records(path)
    if layout == "zip64":
        assert open(path, "rb").read().count(b"PK\x06\x06") == 1  # a zip64 end record was written
    if layout == "streamed":
        assert all(r[1] & 0x08 for r in records)  # data descriptors
    assert _parsed(path) == records
    got, want = pth.load_state_dict(path), mutations.expected()
    assert list(got) == list(want)
    assert all(np.array_equal(got[k], want[k]) and got[k].dtype == want[k].dtype for k in want)


@pytest.mark.parametrize("path", TORCH_ZIPS, ids=os.path.basename)
def test_archives_written_by_torch_parse_as_zipfile_reads_them(path):
    assert _parsed(path) == _records(path)


def test_torch_fixtures_exist():
    assert len(TORCH_ZIPS) >= 5, TORCH_ZIPS
