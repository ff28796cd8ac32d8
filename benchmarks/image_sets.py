"""The benchmarks' two image sets, and which one a folder is.

    TUNING       third_party/images: the 11 photos defaults and budgets were chosen on
                 (`benchmarks.screen` screens on it by default)
    VALIDATION   third_party/validation: photos from installable packages, never tuned on
                 (`make bench-compare` and `benchmarks.frontier` report on it by default;
                 its SOURCE.md records each file's source and licence)

Every benchmark names the set its numbers come from (`describe`), in its summary and in
its provenance.json.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUNING = ROOT / "third_party" / "images"
VALIDATION = ROOT / "third_party" / "validation"


def describe(images: str | os.PathLike) -> str:
    """'validation set (third_party/validation)', 'tuning set (third_party/images)' or
    'other images (<path>)' for a folder or an image inside one."""
    path = Path(images).resolve()
    for name, folder in (("validation", VALIDATION), ("tuning", TUNING)):
        if path == folder or folder in path.parents:
            return f"{name} set ({folder.relative_to(ROOT)})"
    return f"other images ({images})"
