"""The docs stay true: BUILD_NOTES.md is a short design record whose deviations table names
tests that exist, the measurement docs equal what `benchmarks.docs` writes from the results
files, and no code, comment or doc cites a tracker (issue / item / session numbers) that is not
in the repository. Static: reads files, runs no model."""

import ast
import re
from pathlib import Path

import pytest

from benchmarks import docs

REPO = Path(__file__).resolve().parents[1]
BUILD_NOTES = REPO / "BUILD_NOTES.md"
MAX_BUILD_NOTES_BYTES = 40 * 1024
# The word issue, item or session (any case, plural too) followed by a number, with an
# optional '#': a reference to a tracker outside the repository.
TRACKER = re.compile(r"\b(issue|item|session)s? #?\d+", re.IGNORECASE)
SCANNED = ("rexjax", "tests", "experiments", "benchmarks", "docs", "README.md", "BUILD_NOTES.md", "CHANGELOG.md")
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".yaml", ".yml"}
TEST_REF = re.compile(r"`?(tests/[\w/.-]+\.py)::(\w+)(?:\[[^\]]*\])?`?")


def deviation_rows(text: str) -> list[list[str]]:
    """The rows (cells) of the table under the '## ... Deviations' heading."""
    section = re.search(r"^## [^\n]*Deviations[^\n]*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, "BUILD_NOTES.md has no '## ... Deviations' section"
    lines = [line for line in section.group(1).splitlines() if line.startswith("|")]
    assert len(lines) > 2, "the Deviations section has no table"
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[2:]]


def defines_test(path: Path, name: str) -> bool:
    """Whether `path` defines a function `name` (module level or in a test class)."""
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in ast.walk(tree))


def missing_tests(text: str) -> list[str]:
    """Every `tests/...py::name` of the deviations table whose file or function does not exist,
    and every row that names no test."""
    out = []
    for cells in deviation_rows(text):
        refs = TEST_REF.findall(cells[-1])
        if not refs:
            out.append(f"row names no test: {cells[0]}")
        for file, name in refs:
            path = REPO / file
            if not path.is_file() or not defines_test(path, name):
                out.append(f"{file}::{name}")
    return out


def tracker_references() -> list[str]:
    out = []
    for entry in SCANNED:
        base = REPO / entry
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.suffix in TEXT_SUFFIXES)
        for path in files:
            if not path.is_file() or "fixtures" in path.relative_to(REPO).parts:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if TRACKER.search(line):
                    out.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    return out


def test_build_notes_is_a_short_design_record():
    """Catches the work diary growing back (it was 240 KB)."""
    size = BUILD_NOTES.stat().st_size
    assert size <= MAX_BUILD_NOTES_BYTES, f"BUILD_NOTES.md is {size} bytes > {MAX_BUILD_NOTES_BYTES}"


def test_every_test_the_deviations_table_names_exists():
    """Catches a deviation whose pinning test was renamed, moved or deleted."""
    text = BUILD_NOTES.read_text()
    assert len(deviation_rows(text)) >= 10
    assert missing_tests(text) == []


def test_the_deviation_check_sees_a_missing_test():
    """The check itself can fail: a made-up test name and a row without a test are reported."""
    row = "| tool: x | rexjax: y | why | `tests/causal/test_search.py::test_that_does_not_exist` |"
    bare = "| tool: z | rexjax: w | why | none |"
    text = BUILD_NOTES.read_text()
    header = re.search(r"^## [^\n]*Deviations[^\n]*\n", text, re.MULTILINE).group(0)
    table_start = text.index("| ---", text.index(header))
    end_of_rule = text.index("\n", table_start) + 1
    broken = text[:end_of_rule] + row + "\n" + bare + "\n" + text[end_of_rule:]
    assert missing_tests(broken) == ["tests/causal/test_search.py::test_that_does_not_exist",
                                     "row names no test: tool: z"]


def test_no_tracker_references():
    """Catches 'issue N' / 'item M' / 'session N' in code, comments and docs: the tracker they
    point to is not in the repository, so the reason must be stated instead."""
    found = tracker_references()
    assert found == [], "state the reason instead of the ticket:\n" + "\n".join(found)


@pytest.mark.parametrize("line,hit", [("as issue_13 changed it", True), ("(Issue_11 item_15)", True),
                                      ("sessions_7-8", True), ("issue_#4", True),
                                      ("the issue is 13 pixels wide", False), ("items", False)])
def test_tracker_pattern(line, hit):
    """Written with '_' for the space, so this file does not cite what it forbids."""
    assert bool(TRACKER.search(line.replace("_", " "))) is hit


def test_generated_docs_equal_what_the_results_files_give():
    """Catches a hand edit of docs/benchmarks.md or a study README, and a results file changed
    without `make docs` (a number in the docs that its file no longer says)."""
    stale = [path.relative_to(REPO).as_posix() for path, text in docs.outputs().items()
             if not path.is_file() or path.read_text() != text]
    assert stale == [], f"out of date, run `make docs`: {stale}"
