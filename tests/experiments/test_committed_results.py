"""What is committed under experiments/results/ is what committed code produced, and every
report shows all it promises: each folder's provenance.json names a commit of this
repository with a clean tree; a study's ReX rows share one extraction setting; each
report.html has every picture and exactly its CSV's rows."""

import base64
import binascii
import csv
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "experiments" / "results"
FOLDERS = sorted(p for p in RESULTS.iterdir() if p.is_dir())
REPORTS = sorted(RESULTS.glob("*/report.html"))


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)


def test_there_are_results():
    assert len(FOLDERS) >= 6 and len(REPORTS) >= 5


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_provenance_names_a_clean_commit_of_this_repository(folder):
    prov = json.loads((folder / "provenance.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", str(prov.get("commit"))), f"{folder.name}: no code commit recorded"
    assert prov.get("dirty") is False, f"{folder.name}: written from a tree with changes {prov.get('changed')}"
    assert prov.get("command") and prov.get("versions", {}).get("jax") and prov.get("date")
    if _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout: the commit cannot be looked up")
    assert _git("merge-base", "--is-ancestor", prov["commit"], "HEAD").returncode == 0, \
        f"{folder.name}: commit {prov['commit']} is not in this branch's history"


def _csv_rows(folder: Path) -> list[dict]:
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("folder", [p.parent for p in REPORTS], ids=lambda p: p.name)
def test_rows_of_one_study_share_one_extraction_and_one_commit(folder):
    rows = _csv_rows(folder)
    assert rows
    assert len({r["rexjax_commit"] for r in rows}) == 1, "rows from more than one code version"
    by_method: dict[str, set] = {}
    for r in rows:
        config = json.loads(r["method_config"])
        if "extract" in config:  # ReX: its extraction settings, gamma apart (a convad axis)
            extract = {k: v for k, v in config["extract"].items() if k != "min_confidence"}
            by_method.setdefault(r["method"].split("[")[0], set()).add(json.dumps(extract, sort_keys=True))
    for method, settings in by_method.items():
        assert len(settings) == 1, f"{method}: rows with different extraction settings {settings}"


class _Page(HTMLParser):
    """The report's pictures (src and alt) and the text cells of its rows table."""

    def __init__(self):
        super().__init__()
        self.images, self.rows, self._in_rows, self._row, self._cell = [], [], False, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append((attrs.get("src", ""), attrs.get("alt", "")))
        elif tag == "table" and attrs.get("id") == "rows":
            self._in_rows = True
        elif self._in_rows and tag == "tr":
            self._row = []
        elif self._in_rows and tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table" and self._in_rows:
            self._in_rows = False
        elif self._in_rows and tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif self._in_rows and tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.parent.name)
def test_committed_report_is_complete(report):
    text = report.read_text()
    assert "missing:" not in text, f"{report}: a picture is missing"
    page = _Page()
    page.feed(text)
    assert page.images, "no pictures"
    for src, alt in page.images:
        match = re.fullmatch(r"data:image/(png|jpeg);base64,(.+)", src, re.S)
        assert match, f"{alt}: not an embedded picture"
        try:
            data = base64.b64decode(match.group(2), validate=True)
        except binascii.Error:
            pytest.fail(f"{alt}: its data is not base64")
        assert data[:4] == b"\x89PNG" or data[:2] == b"\xff\xd8", f"{alt}: not a PNG or JPEG"
    header, *cells = page.rows
    rows = _csv_rows(report.parent)
    key = [header.index(c) for c in ("image", "model", "method")]
    shown = [tuple(c[i] for i in key) for c in cells]
    assert shown == [(r["image"], r["model"], r["method"]) for r in rows], "the rows table is not the CSV"


def test_reproduction_table_names_runs_that_happened():
    """REPRODUCTION.md: at least 12 claims, each with a verdict, and every command either the
    recorded command of a committed results folder (so it ran as written and produced the
    numbers beside it) or a test of this repository."""
    text = (RESULTS / "REPRODUCTION.md").read_text()
    recorded = {json.loads((f / "provenance.json").read_text())["command"] for f in FOLDERS}
    recorded |= {json.loads(p.read_text())["command"] for p in (REPO / "benchmarks" / "results").glob("*/*/provenance.json")}
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| claim")
            and not set(line) <= set("|- ")]
    assert len(rows) >= 12
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[5] in ("agrees", "disagrees", "undecided"), row
        commands = re.findall(r"`([^`]+)`", cells[6])
        assert commands, row
        for command in commands:
            if command.startswith("python -m pytest "):
                target = command.split()[3].split("::")[0]
                assert (REPO / target).is_file(), command
            else:
                assert command in recorded, f"not the command of any committed result: {command}"
