"""ImageNet-1k class names from the vendored `third_party/labels/imagenet1k_labels.json`."""

from __future__ import annotations

import functools
import json
from pathlib import Path

LABELS_FILE = Path(__file__).resolve().parents[2] / "third_party" / "labels" / "imagenet1k_labels.json"


@functools.lru_cache(maxsize=None)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 full ImageNet-1k names (index = class id), e.g. 'ladybug, ladybeetle, ...'."""
    if not LABELS_FILE.is_file():
        raise ValueError(f"ImageNet labels file missing: {LABELS_FILE}")
    raw = json.loads(LABELS_FILE.read_text())
    labels = tuple(raw[str(i)] for i in range(len(raw)))
    if len(labels) != 1000:
        raise ValueError(f"{LABELS_FILE} has {len(labels)} labels, expected 1000")
    return labels


@functools.lru_cache(maxsize=None)
def imagenet_short_labels() -> tuple[str, ...]:
    """Short names: the first comma-separated name of each class ('ladybug')."""
    return tuple(name.split(",")[0].strip() for name in imagenet_labels())


def short_name(full: str) -> str:
    return full.split(",")[0].strip()
