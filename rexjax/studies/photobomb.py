"""The photobombing set (ReX paper, Sec. 6): black occluders inserted into an image so that
the model's classification does not change; the occluders are then the region a good
explanation must avoid (their mask is the segmentation, so a study's IN column is the
fraction of the explanation lying on them).

    placed = photobomb(classifier, image, rng, n_occluders=2, size=(0.1, 0.25), tries=16)
    placed.image uint8[H, W, 3] (original resolution), placed.mask bool[H, W], or None

For one image: the model's top-1 t on the original; then `tries` candidate placements, each
`n_occluders` black axis-aligned squares with sides uniform in `size` x min(H, W) at uniform
positions (drawn from `rng`, so a seed fixes them); the first candidate whose top-1 is still
t is kept (all candidates go through the model in one batch). `write_set` does this for a
folder and writes the plain layout `<out>/images/<stem>.png`, `<out>/masks/<stem>.png`
(255 = occluder) and `<out>/photobomb.csv` (per image: target, confidence before / after,
occluded fraction, index of the kept candidate, or the reason it was skipped).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple, Optional

import jax.numpy as jnp
import numpy as np

from rexjax import data

FIELDS = ("image", "target", "confidence", "confidence_after", "occluded", "candidate", "skipped")


class Placed(NamedTuple):
    image: np.ndarray
    mask: np.ndarray
    target: int
    confidence: float
    confidence_after: float
    candidate: int


def occluder_mask(rng: np.random.Generator, hw: tuple[int, int], n_occluders: int, size: tuple[float, float]) -> np.ndarray:
    """bool[H, W]: the union of `n_occluders` squares, sides uniform in size x min(H, W)."""
    h, w = hw
    mask = np.zeros((h, w), bool)
    for _ in range(n_occluders):
        side = max(1, int(round(rng.uniform(*size) * min(h, w))))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        mask[y: y + side, x: x + side] = True
    return mask


def photobomb(classifier, image: np.ndarray, rng: np.random.Generator, *, n_occluders: int = 2,
              size: tuple[float, float] = (0.1, 0.25), tries: int = 16) -> tuple[Optional[Placed], int, float]:
    """(the first placement keeping the top-1, or None; the original top-1; its probability).
    image: uint8[H, W, 3] at its own resolution; the classifier prepares it (`prepare`)."""
    from PIL import Image

    probs = np.asarray(classifier.full_probs(classifier.prepare(Image.fromarray(image))))
    target, confidence = int(probs.argmax()), float(probs.max())
    masks = [occluder_mask(rng, image.shape[:2], n_occluders, size) for _ in range(tries)]
    candidates = [np.where(m[..., None], 0, image).astype(np.uint8) for m in masks]
    batch = jnp.stack([classifier.prepare(Image.fromarray(c)) for c in candidates])
    after = np.asarray(classifier.probs(batch))
    for k in range(tries):
        if int(after[k].argmax()) == target:
            return Placed(candidates[k], masks[k], target, confidence, float(after[k, target]), k), target, confidence
    return None, target, confidence


def write_set(classifier, images, out, *, seed: int = 0, n_occluders: int = 2, size=(0.1, 0.25), tries: int = 16,
              max_images: Optional[int] = None) -> list[dict]:
    """Photobombs every image of `images` (a folder or file, `data.list_images`) into `out`
    (module doc); image i draws from np.random.default_rng([seed, i]). Returns the manifest rows."""
    from PIL import Image

    lo, hi = (float(v) for v in size)
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"size must be (low, high) with 0 < low <= high <= 1, got {size!r}")
    for name, v in (("n_occluders", n_occluders), ("tries", tries)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    paths = data.list_images(images)[:max_images]
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
        placed, target, confidence = photobomb(classifier, image, np.random.default_rng([seed, i]),
                                               n_occluders=n_occluders, size=(lo, hi), tries=tries)
        row = dict(image=path.name, target=target, confidence=confidence, confidence_after="", occluded="",
                   candidate="", skipped="")
        if placed is None:
            row["skipped"] = f"every one of {tries} placements changed the top-1"
        else:
            Image.fromarray(placed.image).save(out / "images" / f"{path.stem}.png")
            Image.fromarray(placed.mask.astype(np.uint8) * 255).save(out / "masks" / f"{path.stem}.png")
            row.update(confidence_after=placed.confidence_after, occluded=float(placed.mask.mean()),
                       candidate=placed.candidate)
        rows.append(row)
    with open(out / "photobomb.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
