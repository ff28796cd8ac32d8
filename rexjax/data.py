"""Images and segmentations on disk: what an evaluation reads.

    list_images(path)                   [Path]  one image file, or a folder's images, sorted by name
    find_segment(masks_dir, image)      Path | None   <masks_dir>/<image stem>.png|.bmp|.gif
    read_segment(path, hw)              bool[H, W]    nonzero = segment, resized NEAREST to hw
    load_segment(masks_dir, image, hw)  bool[H, W] | None   find_segment + read_segment
    Sample(image, segment)              one image file and its segmentation file (or None)
    folder(images, masks=None)          [Sample]  the plain layout: an image folder (or file)
                                        and, optionally, a folder of same-stem segmentations

A data-set layout is a function returning `Sample`s (`folder` is the plain one); the
Evaluator (`rexjax.evaluation`) takes Samples or plain paths. Layouts whose segmentations
live elsewhere or are encoded differently (VOC's palette PNGs, ECSSD's ground-truth
folder) add one such function; `read_segment` stays the one place a segmentation file
becomes a boolean mask at the model's input size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SEGMENT_SUFFIXES = (".png", ".bmp", ".gif")


class Sample(NamedTuple):
    """One image file and its segmentation file (nonzero = segment), or None."""

    image: Path
    segment: Optional[Path] = None

    @property
    def name(self) -> str:
        return self.image.name


def list_images(path: str | os.PathLike) -> list[Path]:
    """An image file -> [it]; a folder -> its image files (not recursive), sorted by name.

    Image files are those whose suffix (any case) is in IMAGE_SUFFIXES. A missing path, a
    file that is not an image, or a folder without images is a ValueError.
    """
    p = Path(path)
    known = ", ".join(IMAGE_SUFFIXES)
    if p.is_file():
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"images: {str(p)!r} is not an image file (known suffixes: {known})")
        return [p]
    if not p.is_dir():
        raise ValueError(f"images must be an image file or a folder, got {str(path)!r} (no such file or folder)")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"images folder {str(path)!r} holds no images (known suffixes: {known})")
    return files


def find_segment(masks_dir: Optional[str | os.PathLike], image: str | os.PathLike) -> Optional[Path]:
    """The segmentation file of `image` in `masks_dir`: `<stem>.png`, `.bmp` or `.gif` (first
    found, in that order), or None (also when masks_dir is None). A masks_dir that is not a
    folder is a ValueError."""
    if masks_dir is None:
        return None
    d = Path(masks_dir)
    if not d.is_dir():
        raise ValueError(f"masks must be a folder of segmentations, got {str(masks_dir)!r}")
    stem = Path(image).stem
    for suffix in SEGMENT_SUFFIXES:
        candidate = d / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_segment(path: str | os.PathLike, hw: Sequence[int]) -> np.ndarray:
    """bool[H, W]: the segmentation file at `path` (grey levels; nonzero = segment), resized
    with nearest-neighbour sampling to `hw` = (H, W), the model's input size."""
    from PIL import Image

    h, w = (int(v) for v in hw)
    with Image.open(path) as im:
        m = im.convert("L").resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(m) > 0


def load_segment(masks_dir: Optional[str | os.PathLike], image: str | os.PathLike, hw: Sequence[int]) -> Optional[np.ndarray]:
    """bool[H, W] segmentation of `image` from `masks_dir` (see find_segment / read_segment),
    or None when there is none."""
    found = find_segment(masks_dir, image)
    return None if found is None else read_segment(found, hw)


def folder(images: str | os.PathLike, masks: Optional[str | os.PathLike] = None) -> list[Sample]:
    """The plain layout: `list_images(images)`, each with its segmentation from `masks`
    (`find_segment`; None where a stem has no file, or without `masks`)."""
    return [Sample(p, find_segment(masks, p)) for p in list_images(images)]
