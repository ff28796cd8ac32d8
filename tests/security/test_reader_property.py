"""The weights reader on random mutations of a small valid `.pth` (`tests/security/mutations.py`:
bytes flipped, inserted or deleted, files and zip members truncated, header fields and the
pickle's integers set to edge values, opcodes inserted and deleted): several hundred seeded
cases, crafted at run time and read in one child process under a wall-time bound, an
address-space bound and a per-case alarm. Every case either loads (bit-identical weights
after a raw mutation of a zip) or is refused with one line naming the file."""

import json
import os
import subprocess
import sys

from tests.security import mutations

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READER = os.path.join(ROOT, "rexjax", "models", "convert", "pth.py")
CASES = 600
SEED = 4  # a seed whose cases include a BYTEARRAY8 with a huge length (the reader once allocated it)
LIMIT_S = 60  # the 600 cases take about 2 s
MEMORY = 2 << 30  # address space of the child
PEAK_MB = 100  # the child's peak RSS (a valid file is 2 KB)


def test_mutated_files_load_exactly_or_are_refused_in_one_line():
    out = subprocess.run([sys.executable, "-m", "tests.security.mutations", READER, str(CASES), str(SEED), str(MEMORY)],
                         capture_output=True, text=True, timeout=LIMIT_S, cwd=ROOT)
    assert out.returncode == 0, f"exit {out.returncode} (a signal if negative): {out.stderr[-2000:]}"
    report = json.loads(out.stdout)
    assert report["failures"] == [], json.dumps(report["failures"][:10], indent=1)
    counts = report["counts"]
    assert sum(counts.values()) == CASES, counts
    # not vacuous: some mutations leave a loadable file, some a different valid one, most are refused
    assert counts.get("identical", 0) >= 10 and counts.get("other", 0) >= 5, counts
    assert counts.get("refused", 0) >= CASES // 2, counts
    assert report["peak_mb"] < PEAK_MB, report["peak_mb"]


def test_the_cases_are_seeded():
    assert mutations.case(SEED, 7) == mutations.case(SEED, 7)
    assert mutations.case(SEED, 7) != mutations.case(SEED + 1, 7)
