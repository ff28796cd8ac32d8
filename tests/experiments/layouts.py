"""Small synthetic data sets in each `rexjax.data` layout, written at test time.

Every image is a grey square with one bright rectangle (the "object"); its segmentation
marks that rectangle, so IN / OUT have a known answer.
"""

from pathlib import Path

import numpy as np
from PIL import Image

OBJECT = (slice(2, 6), slice(3, 9))  # rows, cols of the object in every 8 x 12 image
HW = (8, 12)


def image_array(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    im = np.full(HW + (3,), 90, np.uint8) + rng.integers(0, 20, HW + (3,), dtype=np.uint8)
    im[OBJECT] = (230, 40 + 30 * seed % 200, 40)
    return im


def object_mask() -> np.ndarray:
    m = np.zeros(HW, bool)
    m[OBJECT] = True
    return m


def write_images(folder: Path, stems, suffix=".jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, stem in enumerate(stems):
        p = folder / f"{stem}{suffix}"
        Image.fromarray(image_array(i)).save(p, quality=95) if suffix == ".jpg" else Image.fromarray(image_array(i)).save(p)
        paths.append(p)
    return paths


def voc_palette_mask(instance: int = 1) -> Image.Image:
    """A VOC-style palette PNG: index `instance` on the object, 255 (void) on its border row."""
    idx = np.zeros(HW, np.uint8)
    idx[OBJECT] = instance
    idx[OBJECT[0].stop, OBJECT[1]] = 255  # the void border VOC draws around objects
    im = Image.fromarray(idx, mode="P")
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192]
    im.putpalette(palette)
    return im


def make_voc(root: Path, ids=("2008_000001", "2008_000002"), image_set="val") -> Path:
    write_images(root / "JPEGImages", ids)
    for sub in ("SegmentationObject", "SegmentationClass"):
        (root / sub).mkdir(parents=True)
        for n, i in enumerate(ids):
            voc_palette_mask(instance=n + 1).save(root / sub / f"{i}.png")
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / f"{image_set}.txt").write_text("\n".join(ids) + "\n")
    return root


def make_ecssd(root: Path, stems=("0001", "0002")) -> Path:
    write_images(root / "images", stems)
    (root / "ground_truth_mask").mkdir(parents=True)
    for s in stems:
        Image.fromarray(object_mask().astype(np.uint8) * 255).save(root / "ground_truth_mask" / f"{s}.png")
    return root


def make_imagenet(root: Path, labels: dict[str, str], header: str = "") -> tuple[Path, Path]:
    images = root / "val"
    write_images(images, list(labels), suffix=".JPEG")
    lines = ([header] if header else []) + [f"{k},{v}" for k, v in labels.items()]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return images, root / "labels.csv"
