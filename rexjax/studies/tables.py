"""Reading a run's CSV rows (strings) back as numbers, and grouping them.

    number(text) -> float | None      "" / "None" / unparsable -> None
    numeric(rows) -> [dict]           every COLUMNS value that is a number, as float
    values(rows, column, **where) -> [float]   the non-missing values of column in matching rows
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

NUMERIC = ("full_confidence", "area", "ins", "del", "IN", "OUT", "segment_area", "time_s", "compile_s", "forward_images",
           "forward_images_area")


def number(text) -> Optional[float]:
    if text is None or text == "" or text == "None":
        return None
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def numeric(rows: Sequence[Mapping[str, str]]) -> list[dict]:
    """Rows with the NUMERIC columns as floats (None where empty), the rest as given."""
    return [{k: (number(v) if k in NUMERIC else v) for k, v in r.items()} for r in rows]


def values(rows: Sequence[Mapping], column: str, **where) -> list[float]:
    """The numbers in `column` of the rows whose columns equal `where` (missing skipped)."""
    out = []
    for r in rows:
        if all(str(r[k]) == str(v) for k, v in where.items()):
            v = number(r[column])
            if v is not None:
                out.append(v)
    return out


def mean_sem(xs: Sequence[float]) -> tuple[Optional[float], Optional[float]]:
    """(mean, standard error of the mean (ddof 1)); (None, None) when empty, SEM None for 1."""
    if not xs:
        return None, None
    a = np.asarray(xs, float)
    return float(a.mean()), (float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else None)
