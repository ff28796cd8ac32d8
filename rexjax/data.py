"""Images and segmentations on disk: what an evaluation reads.

    list_images(path)                   [Path]  one image file, or a folder's images, sorted by name
    find_segment(masks_dir, image)      Path | None   <masks_dir>/<image stem>.png|.bmp|.gif
    read_segment(path, hw)              bool[H, W]    nonzero = segment, resized NEAREST to hw
    load_segment(masks_dir, image, hw)  bool[H, W] | None   find_segment + read_segment
    Sample(image, segment, label)       one image file, its segmentation file (or None) and
                                        its ground-truth class index (or None)
    folder(images, masks=None)          [Sample]  the plain layout: an image folder (or file)
                                        and, optionally, a folder of same-stem segmentations
    imagenet_val(images, labels, synsets=None)   [Sample]  an image folder + a labels file
    voc2012(root, image_set="val", segmentation="object")  [Sample]  the VOC2012 layout
    ecssd(root)                         [Sample]  ECSSD: images/ + ground_truth_mask/
    load(layout, root, **options)       [Sample]  one of LAYOUTS by name (for configs)

A data-set layout is a function returning `Sample`s (`folder` is the plain one); the
Evaluator (`rexjax.evaluation`) takes Samples or plain paths. `read_segment` is the one place
a segmentation file becomes a boolean mask at the model's input size: grey / RGB files are
"nonzero = segment" (ECSSD's 0/255 masks, the photobombing occluders), palette files (VOC)
are "class or instance index not 0 (background) and not 255 (VOC's void border)".
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SEGMENT_SUFFIXES = (".png", ".bmp", ".gif")
VOC_VOID = 255
SYNSET = re.compile(r"^n\d{8}$")
MAX_LABELS_BYTES = 64 << 20  # a labels file larger than this is refused (untrusted input)


class Sample(NamedTuple):
    """One image file and its segmentation file (nonzero = segment), or None."""

    image: Path
    segment: Optional[Path] = None
    label: Optional[int] = None

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
    """bool[H, W]: the segmentation file at `path`, resized with nearest-neighbour sampling to
    `hw` = (H, W), the model's input size. Grey / RGB files: nonzero = segment. Palette files
    (mode "P", VOC's SegmentationObject / SegmentationClass): the palette index, segment =
    not 0 (background) and not VOC_VOID (255, the object borders VOC leaves unlabelled)."""
    from PIL import Image

    h, w = (int(v) for v in hw)
    with Image.open(path) as im:
        if im.mode == "P":
            idx = np.asarray(im.resize((w, h), Image.Resampling.NEAREST))
            return (idx != 0) & (idx != VOC_VOID)
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


def _label_token(token: str, synsets: Optional[dict[str, int]], where: str) -> Optional[int]:
    """A class index from `token` (an integer, or a synset via `synsets`); None if neither."""
    if re.fullmatch(r"\d+", token):
        return int(token)
    if SYNSET.match(token):
        if synsets is None:
            raise ValueError(f"labels: {where} names synset {token!r}; pass synsets= (a file of the class-ordered wnids)")
        if token not in synsets:
            raise ValueError(f"labels: {where} names synset {token!r}, which is not in the synsets file")
        return synsets[token]
    return None


def read_synsets(path: str | os.PathLike) -> dict[str, int]:
    """{wnid: class index} from a file listing the wnids in class order, one per line, each
    optionally followed by its names (`LOC_synset_mapping.txt`: 'n01440764 tench, ...')."""
    lines = _text_lines(path, "synsets")
    wnids = [ln.split()[0] for ln in lines if ln.strip()]
    bad = [w for w in wnids if not SYNSET.match(w)]
    if bad or not wnids:
        raise ValueError(f"synsets: {str(path)!r} must list wnids like n01440764, one per line (got {bad[:1] or 'none'})")
    return {w: i for i, w in enumerate(wnids)}


def _text_lines(path: str | os.PathLike, name: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name} must be a text file, got {str(path)!r} (no such file)")
    if p.stat().st_size > MAX_LABELS_BYTES:
        raise ValueError(f"{name}: {str(path)!r} is larger than {MAX_LABELS_BYTES} bytes")
    return p.read_text(errors="replace").splitlines()


def read_labels(path: str | os.PathLike, synsets: Optional[str | os.PathLike] = None) -> dict[str, int]:
    """{image stem: class index} from a labels file: one line per image, '<file or stem>
    <label> ...' separated by whitespace or a comma, label = a class index or a synset wnid
    (with `synsets`, `read_synsets`). Only the first label counts (Kaggle's
    LOC_val_solution.csv: 'ImageId,PredictionString' with the wnid first); a first line
    whose label is neither is a header and skipped. The devkit's bare one-index-per-line
    ground truth is not accepted: its ILSVRC ids are not the models' class order."""
    wnids = read_synsets(synsets) if synsets is not None else None
    out: dict[str, int] = {}
    for n, line in enumerate(_text_lines(path, "labels")):
        tokens = [t for t in re.split(r"[\s,]+", line.strip()) if t]
        if not tokens:
            continue
        where = f"line {n + 1} of {str(path)!r}"
        label = _label_token(tokens[1], wnids, where) if len(tokens) > 1 else None
        if label is None:
            if n == 0 and len(tokens) > 1:
                continue  # a header
            raise ValueError(f"labels: {where} must be '<image> <class index or wnid>', got {line.strip()!r}")
        out[Path(tokens[0]).stem] = label
    return out


def imagenet_val(images: str | os.PathLike, labels: str | os.PathLike,
                 synsets: Optional[str | os.PathLike] = None) -> list[Sample]:
    """An ImageNet-val-style folder: `list_images(images)`, each with its class index from
    the `labels` file (`read_labels`, matched by stem); an image without a label is a
    ValueError naming it (a labels file for another folder is a mistake, not a subset)."""
    table = read_labels(labels, synsets)
    samples = []
    for p in list_images(images):
        if p.stem not in table:
            raise ValueError(f"labels: {str(labels)!r} has no label for image {p.name!r}")
        samples.append(Sample(p, None, table[p.stem]))
    return samples


SEGMENTATIONS = {"object": "SegmentationObject", "class": "SegmentationClass"}


def voc2012(root: str | os.PathLike, image_set: str = "val", segmentation: str = "object") -> list[Sample]:
    """The PASCAL VOC2012 layout under `root` (the VOC2012 folder): the images named in
    `ImageSets/Segmentation/<image_set>.txt`, from `JPEGImages/<id>.jpg`, each with its palette
    PNG in `SegmentationObject/` (segmentation="object") or `SegmentationClass/` ("class");
    every object of the image is the segment (palette index not 0, not 255)."""
    r = Path(root)
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {sorted(SEGMENTATIONS)}, got {segmentation!r}")
    listing = r / "ImageSets" / "Segmentation" / f"{image_set}.txt"
    ids = [ln.split()[0] for ln in _text_lines(listing, "image_set") if ln.strip()]
    if not ids:
        raise ValueError(f"image_set: {str(listing)!r} lists no images")
    seg_dir = r / SEGMENTATIONS[segmentation]
    samples = []
    for i in ids:
        image, seg = r / "JPEGImages" / f"{i}.jpg", seg_dir / f"{i}.png"
        for f in (image, seg):
            if not f.is_file():
                raise ValueError(f"voc2012: {str(listing)!r} lists {i!r} but {str(f)!r} is missing")
        samples.append(Sample(image, seg))
    return samples


def ecssd(root: str | os.PathLike, images: str = "images", masks: str = "ground_truth_mask") -> list[Sample]:
    """The ECSSD layout under `root`: `images/<stem>.jpg` and the binary ground truth
    `ground_truth_mask/<stem>.png` (0 / 255); an image without a mask is a ValueError."""
    r = Path(root)
    samples = folder(r / images, r / masks)
    missing = [s.name for s in samples if s.segment is None]
    if missing:
        raise ValueError(f"ecssd: no mask in {str(r / masks)!r} for {missing[:3]}")
    return samples


LAYOUTS = {"folder": folder, "imagenet_val": imagenet_val, "voc2012": voc2012, "ecssd": ecssd}


def load(layout: str, root: str | os.PathLike, **options) -> list[Sample]:
    """The samples of data set `root` in `layout` (one of LAYOUTS), with that layout's
    keyword `options` (folder: masks; imagenet_val: labels, synsets; voc2012: image_set,
    segmentation; ecssd: images, masks). Options set to None are left at their defaults."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    options = {k: v for k, v in options.items() if v is not None}
    try:
        return LAYOUTS[layout](root, **options)
    except TypeError as e:
        raise ValueError(f"layout {layout!r}: {e}") from None
